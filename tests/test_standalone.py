"""Standalone use: the button starts, steps and stops the default program; the
status LED shows idle / running / fault; power-on never resumes a session."""
import pytest

from myotone.emulator.flash import Flash
from safety_helpers import MS, Bench

S = 1_000_000_000


def press(bench, hold_s=0.1, settle_s=0.1):
    bench.emu.press_button(hold_s)
    bench.run(hold_s + settle_s)
    return bench.events("button")[-1]


def level_now(bench, t0_ns, t1_ns):
    tr = bench.emu.plant.trace
    return max((abs(i) for t, i in zip(tr.t_ns, tr.i_ua) if t0_ns <= t < t1_ns), default=0)


# ---- the button's press classification, alone ------------------------------------

def test_button_debounces_and_tells_short_from_long(fw):
    B = fw("myotone.standalone")
    b = B.Button()
    seen = []
    # contact bounce: 10 ms blips are ignored
    for t, down in [(0, True), (10, False), (20, True), (30, False), (100, False)]:
        seen.append(b.update(t, down))
    assert seen == [None] * 5 and not b.down
    # a clean 200 ms press is SHORT, once, on release
    out = [b.update(t, 200 <= t < 400) for t in range(180, 600, 20)]
    assert out.count(B.SHORT) == 1 and B.LONG not in out
    # held 2 s: LONG fires while held (at ~1.5 s), and the release adds no SHORT
    out = [(t, b.update(t, 1000 <= t < 3000)) for t in range(980, 3400, 20)]
    assert [a for _, a in out if a] == [B.LONG]
    t_long = next(t for t, a in out if a == B.LONG)
    assert 1000 + B.LONG_MS <= t_long <= 1000 + B.LONG_MS + 60


def test_status_patterns(fw):
    B = fw("myotone.standalone")
    on = lambda kind: sum(B.status_level(kind, t) for t in range(0, 4000, 10)) / 400   # noqa: E731
    assert on(B.RUNNING) == 1.0
    assert on(B.FAULT) == pytest.approx(0.5)
    assert on(B.IDLE) == pytest.approx(0.05)


# ---- on the emulated device ----------------------------------------------------------

def test_button_starts_steps_and_stops_the_default_program(bench):
    t0 = bench.emu.clock.now_ns
    ev = press(bench)
    assert ev["action"] == "short" and ev["state"] in ("ramp", "run") and ev["level"] == 1
    bench.run(4)
    st = bench.request("status")
    assert st["program"] == "lift" and st["state"] == "run" and st["setpoint_ua"] == 100   # level 1 of 5
    assert level_now(bench, t0 + 3 * S, bench.emu.clock.now_ns) == pytest.approx(100, abs=1)
    # soft start from the button too: first current at the minimum
    tr = bench.emu.plant.trace
    first = next(i for t, i in zip(tr.t_ns, tr.i_ua) if t >= t0 and i != 0)
    assert abs(first) <= 10.5
    t_step = bench.emu.clock.now_ns
    assert press(bench)["level"] == 2
    bench.run(4)
    assert bench.request("status")["setpoint_ua"] == 200
    reach = next(t for t, i in zip(tr.t_ns, tr.i_ua) if t > t_step and abs(i) >= 199)
    assert reach - t_step >= 0.3 * S                  # ramped (100 uA at <= 250 uA/s), not a jump
    for _ in range(3):                                # 3, 4, 5, then back to 1 (down by a ramp)
        press(bench)
    assert press(bench)["level"] == 1
    bench.run(4)
    assert bench.request("status")["setpoint_ua"] == 100
    t_long = bench.emu.clock.now_ns
    ev = press(bench, hold_s=2.0)
    assert ev["action"] == "long" and ev["state"] == "ramp_down"
    bench.run(2)
    last_on = max(t for t, i in zip(tr.t_ns, tr.i_ua) if abs(i) > 0)
    assert last_on - t_long >= 1.5 * S + 1.0 * S - 0.1 * S     # held 1.5 s, then >= 1 s of ramp-down
    assert bench.request("status")["state"] == "done" and bench.output_is_safe()
    assert bench.record()["program"] == "lift"                 # a button session is logged too


def test_status_led_shows_idle_running_and_fault(bench):
    status = bench.emu.status_led
    bench.run(4)
    t = bench.emu.clock.now_ns
    assert status.on_fraction(t - 4 * S, t) == pytest.approx(0.05, abs=0.015)     # idle: short blink
    assert status.rising_edges(t - 4 * S, t) == 2
    press(bench)
    bench.run(4)
    t = bench.emu.clock.now_ns
    assert status.on_fraction(t - 3.5 * S, t) == 1.0                              # running: steady
    bench.run_until_bridge_on()
    bench.emu.set_fault("electrode_off")
    bench.run(4)
    assert bench.faults() == ["contact_lost"]
    t = bench.emu.clock.now_ns
    assert status.on_fraction(t - 3 * S, t) == pytest.approx(0.5, abs=0.05)       # fault: 2 Hz blink
    assert status.rising_edges(t - 3 * S, t) == 6
    # a short press does not start over a fault; a long press clears it once the cause is gone
    ev = press(bench)
    assert ev["action"] == "short" and ev["state"] == "fault"
    assert bench.request("status")["fault"] == "contact_lost" and bench.output_is_safe()
    bench.emu.set_fault("electrode_off", False)
    ev = press(bench, hold_s=2.0)
    assert ev["action"] == "long" and bench.request("status")["fault"] is None
    bench.run(4)
    t = bench.emu.clock.now_ns
    assert status.on_fraction(t - 4 * S, t) == pytest.approx(0.05, abs=0.015)


def test_a_long_press_cannot_clear_a_fault_while_its_cause_lasts(bench):
    press(bench)
    bench.run(1)
    bench.emu.set_fault("vbus")                       # charging: output stops, fault latched
    bench.run(0.5)
    assert bench.faults() == ["charging"]
    ev = press(bench, hold_s=2.0)
    assert ev["refused"] == "condition_present"
    assert bench.request("status")["fault"] == "charging" and bench.output_is_safe()


def test_settings_choose_the_default_program_and_level_and_persist(bench):
    r = bench.request("settings", default_program="sculpt", level=3)
    assert r["ok"] and r["default_program"] == "sculpt" and r["level"] == 3 and r["level_ua"][2] == 300
    assert bench.request("settings", default_program="nope")["error"] == "out_of_range"
    assert bench.request("settings", level=6)["error"] == "out_of_range"
    image = bench.emu.fs.image_bytes()
    again = Bench(fs=Flash.from_image(image))
    try:
        press(again)
        again.run(4)
        st = again.request("status")
        assert st["program"] == "sculpt" and st["setpoint_ua"] == 300 and st["level"] == 3
        assert again.emu.led_red.duty == pytest.approx(0.6, abs=1e-4)
    finally:
        again.close()


def test_power_on_never_resumes_a_session(bench):
    press(bench)
    bench.run(4)
    assert bench.request("status")["state"] == "run" and bench.emu.plant.hv_on
    bench.emu.set_fault("brownout")                   # the supply dips: the MCU resets
    bench.run(1)
    assert bench.events("ready")[-1]["reset_cause"] == "power_on"
    assert bench.request("status")["state"] == "idle" and bench.output_is_safe()
    # a full power cycle: a new board from the flash as it was mid-session
    image = bench.emu.fs.image_bytes()
    again = Bench(fs=Flash.from_image(image))
    try:
        again.run(3)
        assert again.request("status")["state"] == "idle"
        assert again.output_is_safe() and again.emu.plant.trace.max_abs_ua == 0
        assert again.emu.led_red.on_ns(again.emu.clock.now_ns) == 0
        t = again.emu.clock.now_ns
        assert again.emu.status_led.on_fraction(t - 2 * S, t) < 0.1       # idle pattern
    finally:
        again.close()


def test_a_board_without_a_button_or_status_led_works_without_them():
    from myotone.emulator.board import load_board
    board = load_board("pico-mcp4725")
    del board["button_pin"], board["status_led_pin"]
    b = Bench(board)
    try:
        assert b.request("hello")["standalone"] == {"button": False, "status_led": False}
        b.emu.press_button(0.2)
        b.run(1)
        assert b.events("button") == [] and b.request("status")["state"] == "idle"
    finally:
        b.close()

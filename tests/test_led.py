"""The red / NIR LED channel (SAFETY.md "LED session", "over_temp"), measured on
the emulator's LED model: what the PWM pins actually did, not what the firmware says."""
import json

import pytest

from myotone.emulator.board import load_board
from safety_helpers import MS, Bench

S = 1_000_000_000


def board(name="pico-mcp4725", **led):
    b = load_board(name)
    b["led"].update(led)
    return b


class FakePwm:
    def __init__(self):
        self.writes = []
        self.deinited = False

    def duty_u16(self, d=None):
        if d is not None:
            self.writes.append(d)

    def deinit(self):
        self.deinited = True


def make_led(fw, hz=1000):
    L = fw("myotone.led")
    red, nir = FakePwm(), FakePwm()
    # thermistor codes: 40 C -> 20000, 41 C -> 19000 (they fall as the skin warms)
    return L, L.Led(red, nir, 15.0, 12.0, hz, 20000, 19000), red, nir


# ---- the Led driver alone ---------------------------------------------------------

def test_led_off_at_exactly_10_minutes_of_light(fw):
    L, led, red, _ = make_led(fw)
    lim = fw("myotone.limits")
    led.set_percent(40, 0)
    lit = 0
    for _ in range(lim.LED_MAX_MS + 500):
        led.tick(30000, True)
        lit += led.red_duty > 0
    assert lit == lim.LED_MAX_MS                   # 1 kHz tick: 600 000 ticks of light, then dark
    assert led.stopped == L.MAX_TIME and red.writes[-1] == 0


def test_dose_counts_the_light_and_the_cap_turns_it_off(fw):
    L, led, red, nir = make_led(fw)
    led.set_percent(50, 50)                        # (7.5 + 6) mW/cm2 = 13.5 mJ/cm2 per s
    for _ in range(100_000):                       # 100 s
        led.tick(30000, True)
    assert led.dose_uj == pytest.approx(1_350_000, rel=1e-3)
    led.begin()
    led.set_percent(100, 100)                      # 27 mW/cm2: the 10 J/cm2 cap after ~370 s
    for _ in range(400_000):
        led.tick(30000, True)
    assert led.stopped == L.DOSE_CAP
    assert 10_000_000 <= led.dose_uj < 10_000_000 + 30
    assert red.writes[-1] == 0 and nir.writes[-1] == 0


def test_derating_is_linear_between_the_thresholds(fw):
    _, led, red, _ = make_led(fw)
    led.set_percent(100, 0)
    for raw, permille in ((25000, 1000), (20000, 1000), (19750, 750), (19500, 500), (19250, 250),
                          (19000, 0), (15000, 0)):
        led.begin()
        led.set_percent(100, 0)
        for _ in range(50):
            led.tick(raw, True)
        assert led.derate_permille == permille
        assert red.writes[-1] == 65535 * permille // 1000


def test_led_refuses_nir_without_a_channel_and_deinit_zeroes_first(fw):
    L = fw("myotone.led")
    red = FakePwm()
    led = L.Led(red, None, 15.0, 0, 1000, 20000, 19000)
    with pytest.raises(ValueError):
        led.set_percent(10, 10)
    with pytest.raises(ValueError):
        led.set_percent(101, 0)
    led.set_percent(80, 0)
    led.tick(30000, True)
    led.deinit()
    assert red.writes[-1] == 0 and red.deinited


# ---- through the emulator ------------------------------------------------------

def test_led_pwm_runs_at_1_khz_or_more_at_the_programs_intensity(bench):
    r = bench.request("start", program="glow", duration_s=5, red_pct=40)
    assert r["ok"] and r["led_dose_j_cm2"] == pytest.approx(15.0 * 0.4 * 5 / 1000)
    bench.run(1)
    red = bench.emu.led_red
    assert red.duty == pytest.approx(0.40, abs=1 / 65535)
    assert red.irradiance_mw_cm2 == pytest.approx(6.0, rel=1e-3)
    assert red.lit_frequencies() and min(red.lit_frequencies()) >= 1000     # never lit below 1 kHz
    assert bench.request("status")["led_pct"] == 40
    assert bench.emu.plant.trace.max_abs_ua == 0                              # LED only: no current
    bench.run(5)
    assert red.duty == 0 and bench.output_is_safe()


def test_led_turns_off_at_10_minutes_and_the_logged_dose_matches_the_light(bench):
    r = bench.request("start", program="glow")
    assert r["ok"] and r["duration_s"] == 600
    for _ in range(11):                        # in steps: each lockstep call has a wall-clock timeout
        bench.run(55)
    red, now = bench.emu.led_red, bench.emu.clock.now_ns
    lit = [(t, d) for t, d, _ in red.history if d > 0]
    on_at = lit[0][0]
    off_at = next(t for t, d, _ in red.history if t > on_at and d == 0)
    # never more than 10 min of light; counted by the bookkeeping tick (100 Hz): within one of its periods
    assert 600 * S - 10 * MS <= off_at - on_at <= 600 * S
    assert red.on_ns(now) == off_at - on_at
    truth = bench.emu.periph.led_dose_j_cm2(now)
    assert truth == pytest.approx(15.0 * 600 / 1000, rel=1e-3)                # 9 J/cm2 of 630 nm
    rec = bench.record()
    assert rec["program"] == "glow" and rec["led_dose_j_cm2"] == pytest.approx(truth, rel=2e-3)
    assert rec["led_on_s"] == pytest.approx(600, abs=0.01)


def test_no_program_may_keep_the_led_on_longer_than_10_minutes(bench):
    r = bench.request("start", program="glow", duration_s=601)
    assert r["error"] == "out_of_range" and "at most 600 s" in r["message"]
    prog = {"phases": [{"duration_s": 400, "red_pct": 10}, {"duration_s": 201, "red_pct": 10}]}
    r = bench.request("program_write", name="long", program=prog)
    assert r["error"] == "out_of_range" and "at most 600 s" in r["message"]
    assert bench.emu.led_red.on_ns(bench.emu.clock.now_ns) == 0


def test_led_derates_linearly_from_40_c_and_over_temp_stops_it(bench):
    assert bench.request("start", program="glow", duration_s=60)["ok"]
    plant, red = bench.emu.plant, bench.emu.led_red
    for temp_c, expected in ((39.5, 1.0), (40.25, 0.75), (40.5, 0.5), (40.75, 0.25)):
        plant.skin_temp_c = temp_c
        bench.run(0.5)              # the thermistor is smoothed over ~8 bookkeeping samples (80 ms)
        duties = []
        for _ in range(20):
            bench.run(0.013)
            duties.append(red.duty)
        # the thermistor's ADC noise (1 LSB) is ~3 % of the 1 C derating span
        assert all(abs(d - expected) <= 0.07 for d in duties), (temp_c, duties)
        assert abs(sum(duties) / len(duties) - expected) <= 0.04, (temp_c, duties)
    assert bench.faults() == []
    t_hot = bench.emu.clock.now_ns
    plant.skin_temp_c = 41.5
    bench.run(1.2)
    assert bench.faults() == ["over_temp"]
    off_at = next(t for t, d, _ in red.history if t >= t_hot and d == 0)
    assert off_at - t_hot <= 1000 * MS and bench.output_is_safe()


def test_dose_cap_refuses_a_program_before_any_light():
    b = Bench(board(red_mw_cm2_at_100=20.0))        # 20 mW/cm2: glow (600 s) would give 12 J/cm2
    try:
        r = b.request("start", program="glow")
        assert r["error"] == "dose_cap" and "12.00 J/cm2" in r["message"]
        assert b.request("start", program="glow", duration_s=500)["ok"]     # 10 J/cm2: at the cap
        b.run(0.1)
        b.request("stop")
        b.run(0.1)
        prog = {"phases": [{"duration_s": 300, "red_pct": 100}, {"duration_s": 300, "red_pct": 70}]}
        r = b.request("program_write", name="bright", program=prog)
        assert r["error"] == "dose_cap"
        # a file put on the flash by other means (mpremote cp) is checked again at start
        b.emu.fs.write_file("/programs/bright.json", json.dumps(prog).encode())
        assert b.request("start", program="bright")["error"] == "dose_cap"
        assert b.emu.led_red.on_ns(b.emu.clock.now_ns) <= 110 * MS            # only the accepted start
    finally:
        b.close()


@pytest.mark.parametrize("name,changes", [("esp32-devkit", {}), ("pico-mcp4725", {"eye_shields": False})])
def test_nir_is_refused_without_eye_shields(name, changes):
    b = Bench(board(name, **changes))
    try:
        assert b.request("hello")["led"]["nir_nm"] is None
        r = b.request("start", program="glow_nir")
        assert r["error"] == "nir_unavailable"
        r = b.request("start", program="glow", duration_s=10, nir_pct=20)
        assert r["error"] == "nir_unavailable"
        r = b.request("program_write", name="deep", program={"phases": [{"duration_s": 60, "nir_pct": 30}]})
        assert r["error"] == "nir_unavailable"
        progs = {p["name"]: p for p in b.request("programs")["programs"]}
        assert progs["glow_nir"]["available"] is False and progs["glow"]["available"] is True
        b.run(1)
        nir = b.emu.led_nir
        assert nir.on_ns(b.emu.clock.now_ns) == 0 and nir.pwm is None    # never a PWM on the NIR pin
        assert b.emu.mcu.levels.get(nir.pin) == 0                         # held low
    finally:
        b.close()


def test_nir_runs_on_a_board_with_eye_shields(bench):
    r = bench.request("start", program="glow_nir", duration_s=5)
    assert r["ok"], r
    bench.run(1)
    nir, red = bench.emu.led_nir, bench.emu.led_red
    assert nir.duty == pytest.approx(0.5, abs=1e-4) and red.duty == pytest.approx(0.5, abs=1e-4)
    assert min(nir.lit_frequencies()) >= 1000
    bench.run(5)
    assert bench.emu.periph.led_dose_j_cm2(bench.emu.clock.now_ns) == pytest.approx(
        (7.5 + 6.0) * 5 / 1000, rel=2e-3)


def test_ctrl_c_and_soft_reset_leave_the_led_dark_and_its_pwm_released(bench):
    assert bench.request("start", program="glow", duration_s=60)["ok"]
    bench.run(1)
    assert bench.emu.led_red.duty == 1.0
    bench.emu.write(b"\x03")
    bench.run(0.05)
    led_pins = {bench.emu.led_red.pin, bench.emu.led_nir.pin}
    assert bench.output_is_safe()
    assert not [p for p in bench.emu.mcu.pwms if p.pin_id in led_pins]       # deinitialised, not paused
    bench.emu.write(b"\x04")
    bench.run(0.5)
    assert bench.output_is_safe() and bench.request("status")["state"] == "idle"


def test_a_trip_darkens_the_led_at_once(bench):
    prog = {"phases": [{"duration_s": 60, "current_pct": 100, "hz": 10, "phase_us": 40000, "red_pct": 50}]}
    assert bench.request("program_write", name="both", program=prog)["ok"]
    assert bench.request("start", program="both", ua=300)["ok"]
    bench.run(4)
    bench.run_until_bridge_on()
    assert bench.emu.led_red.duty == pytest.approx(0.5, abs=1e-4)
    t_fault = bench.emu.clock.now_ns
    bench.emu.set_fault("electrode_off")
    bench.run(0.05)
    assert bench.faults() == ["contact_lost"]
    off_at = next(t for t, d, _ in bench.emu.led_red.history if t >= t_fault and d == 0)
    assert off_at - t_fault <= 10 * MS and bench.output_is_safe()

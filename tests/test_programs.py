"""Programs: the built-in library, phases (zones), the sham control, and user
programs stored on the device as validated JSON. Output is measured on the plant."""
import json

import pytest

from safety_helpers import Bench

S = 1_000_000_000


def envelope(trace, t0_ns, t1_ns):
    """Largest |I| the plant delivered between two times."""
    return max((abs(i) for t, i in zip(trace.t_ns, trace.i_ua) if t0_ns <= t < t1_ns),
               default=abs(trace.current_at(t0_ns)))


def lift(**kw):
    p = {"hz": 10, "phase_us": 40000, "gap_us": 200, "current_pct": 100}
    p.update(kw)
    return p


# ---- the library ------------------------------------------------------------------

def test_builtin_library_has_each_kind_of_program(bench):
    progs = {p["name"]: p for p in bench.request("programs")["programs"]}
    assert {"lift", "contour", "gentle", "glow", "glow_nir", "sculpt", "sham"} <= set(progs)
    assert progs["lift"]["microcurrent"] and not progs["lift"]["led"]              # microcurrent only
    assert progs["glow"]["led"] and not progs["glow"]["microcurrent"]              # LED only
    assert progs["sculpt"]["microcurrent"] and progs["sculpt"]["led"] and progs["sculpt"]["phases"] >= 3
    assert progs["sham"]["duration_s"] == progs["sculpt"]["duration_s"]            # same length as its pair
    assert all(p["builtin"] and p["available"] for p in progs.values())
    sculpt = bench.request("program_read", name="sculpt")["program"]
    assert [p["label"] for p in sculpt["phases"]] == ["forehead", "move", "cheeks", "move", "jaw"]


def test_sham_ramps_to_a_perceptible_level_and_back_to_zero_while_the_led_runs(bench):
    t0 = bench.emu.clock.now_ns
    assert bench.request("start", program="sham", ua=300)["ok"]
    bench.run(45)
    tr, red = bench.emu.plant.trace, bench.emu.led_red
    reach = next(t for t, i in zip(tr.t_ns, tr.i_ua) if abs(i) >= 299)
    assert reach - t0 >= 2 * S                                   # ramped up, not switched on
    assert envelope(tr, t0 + 5 * S, t0 + 29 * S) == pytest.approx(300, abs=1)    # perceptible: the setpoint
    last_on = max(t for t, i in zip(tr.t_ns, tr.i_ua) if abs(i) > 0)
    assert 30 * S + 1.9 * S <= last_on - t0 <= 30 * S + 2.2 * S  # ramps down over ~2 s after 30 s ...
    assert envelope(tr, t0 + 33 * S, bench.emu.clock.now_ns) == 0     # ... and stays at zero
    assert not bench.emu.plant.hv_on and not bench.emu.plant.bridge_a  # the stage is off, not idling
    assert red.duty == pytest.approx(0.6, abs=1e-4)              # the light runs on as in sculpt
    assert red.on_ns(bench.emu.clock.now_ns) >= 44.5 * S
    st = bench.request("status")
    assert st["state"] == "run" and st["program"] == "sham" and st["phase"] == 2
    bench.request("stop")
    bench.run(0.2)
    rec = bench.record()
    assert rec["program"] == "sham" and rec["setpoint_ua"] == 300


def test_phases_change_current_waveform_and_light_in_session_time(bench):
    prog = {"description": "three zones", "phases": [
        lift(duration_s=10, red_pct=50, label="one"),
        {"duration_s": 5, "red_pct": 20, "label": "pause"},
        {"duration_s": 16, "hz": 100, "phase_us": 2000, "gap_us": 500, "burst_on_ms": 500,
         "burst_off_ms": 500, "current_pct": 50, "label": "two"},
    ]}
    assert bench.request("program_write", name="zones", program=prog)["ok"]
    t0 = bench.emu.clock.now_ns
    r = bench.request("start", program="zones", ua=400)
    assert r["ok"] and r["duration_s"] == 31
    red, tr = bench.emu.led_red, bench.emu.plant.trace
    bench.run(8)
    assert red.duty == pytest.approx(0.5, abs=1e-4) and envelope(tr, t0 + 5 * S, t0 + 8 * S) == pytest.approx(400, abs=1)
    bench.run(5)                                      # t = 13 s: the pause
    assert red.duty == pytest.approx(0.2, abs=1e-4)
    assert envelope(tr, t0 + 12.5 * S, t0 + 13 * S) == 0 and not bench.emu.plant.hv_on
    bench.run(16)               # t = 29 s: zone two, contour at 50 %, after its ramp
    assert red.duty == 0
    assert envelope(tr, t0 + 26 * S, t0 + 29 * S) == pytest.approx(200, abs=1)
    # the contour waveform: 2 ms phases in 0.5 s bursts
    widths = [(b - a) for (a, i), (b, _) in zip(zip(tr.t_ns, tr.i_ua), zip(tr.t_ns[1:], tr.i_ua[1:]))
              if a >= t0 + 26 * S and abs(i) > 150]
    assert widths and all(abs(w - 2_000_000) <= 1000 for w in widths)
    bench.run(5)
    states = [m["state"] for m in bench.events("state")]
    assert states[-1] == "done" and bench.output_is_safe()
    tr.close(bench.emu.clock.now_ns)
    assert abs(tr.net_charge_nc) < 0.01 * tr.abs_charge_nc


def test_a_waveform_change_passes_through_zero_at_the_ramp_rate(bench):
    prog = {"phases": [lift(duration_s=8), {"duration_s": 8, "hz": 0.5, "phase_us": 500000,
                                            "gap_us": 1000, "current_pct": 100}]}
    assert bench.request("program_write", name="swap", program=prog)["ok"]
    t0 = bench.emu.clock.now_ns
    assert bench.request("start", program="swap", ua=300)["ok"]
    bench.run(18)
    dac = [(t, c) for t, c in bench.emu.mcu.dac_writes if t >= t0]
    low = [t for t, c in dac if t0 + 8 * S <= t and c == 0]
    assert low and low[0] - (t0 + 8 * S) >= 1.9 * S             # ramped down over >= 2 s, not cut
    ua_per_code = 1000 / 4095
    for (ta, ca), (tb, cb) in zip(dac, dac[1:]):                 # never rises faster than 250 uA/s
        if tb - ta >= 20_000_000:          # (a fall of the DAC between pairs plays nothing higher)
            assert (cb - ca) * ua_per_code <= 250 * (tb - ta) / S + 1
    assert bench.faults() == []


def test_the_density_limit_of_every_phase_caps_the_setpoint():
    from myotone.emulator.board import load_board
    board = load_board("pico-mcp4725")
    board["electrode_area_cm2"] = 0.25                # lift: 139 uA peak at 0.5 mA/cm2 rms
    b = Bench(board)
    try:
        prog = {"phases": [{"duration_s": 5, "hz": 10, "phase_us": 20000, "current_pct": 100},
                           lift(duration_s=5)]}
        assert b.request("program_write", name="dense", program=prog)["ok"]
        r = b.request("start", program="dense", ua=300)
        assert r["ok"] and r["density_limited"] and r["setpoint_ua"] == 139
        b.run(11)
        assert b.emu.plant.trace.max_abs_ua <= 139.5 and b.faults() == []
    finally:
        b.close()


# ---- user programs -----------------------------------------------------------------

GOOD = {"description": "mine", "phases": [lift(duration_s=30, red_pct=30)]}


def test_user_programs_are_written_read_listed_and_deleted(bench):
    r = bench.request("program_write", name="my-prog_1", program=GOOD)
    assert r["ok"] and r["duration_s"] == 30
    got = bench.request("program_read", name="my-prog_1")["program"]
    assert got["builtin"] is False and got["phases"][0]["red_pct"] == 30
    assert got["phases"][0]["alternate"] is True                  # defaults filled in
    listed = {p["name"]: p for p in bench.request("programs")["programs"]}
    assert listed["my-prog_1"]["builtin"] is False and listed["my-prog_1"]["led"]
    assert json.loads(bench.emu.fs.read_file("/programs/my-prog_1.json"))["phases"][0]["red_pct"] == 30
    assert bench.request("start", program="my-prog_1", ua=100)["ok"]
    assert bench.request("program_delete", name="my-prog_1")["error"] == "busy"   # no flash writes in a session
    bench.request("stop")
    bench.run(2)
    assert bench.request("program_delete", name="my-prog_1")["ok"]
    assert bench.request("program_read", name="my-prog_1")["error"] == "out_of_range"
    assert bench.request("program_delete", name="my-prog_1")["error"] == "not_found"
    assert not bench.emu.fs.exists("/programs/my-prog_1.json")


def test_user_programs_survive_a_power_cycle(bench):
    from myotone.emulator import Emulator
    from myotone.emulator.flash import Flash
    assert bench.request("program_write", name="keep", program=GOOD)["ok"]
    image = bench.emu.fs.image_bytes()
    again = Bench(fs=Flash.from_image(image))
    try:
        assert again.request("program_read", name="keep")["program"]["description"] == "mine"
    finally:
        again.close()


@pytest.mark.parametrize("name", ["", "UPPER", "../main", "a/b", "x" * 17, "sp ace", "dot.py", "é"])
def test_bad_names_are_refused(bench, name):
    r = bench.request("program_write", name=name, program=GOOD)
    assert not r["ok"] and r["error"] == "bad_request", r
    assert bench.request("program_read", name=name)["ok"] is False
    assert bench.request("program_delete", name=name)["ok"] is False


def test_builtins_are_read_only(bench):
    assert bench.request("program_write", name="lift", program=GOOD)["error"] == "read_only"
    assert bench.request("program_delete", name="sham")["error"] == "read_only"


@pytest.mark.parametrize("program,code,words", [
    ([], "bad_request", "object"),
    ({"phases": []}, "bad_request", "1..8"),
    ({"phases": [lift(duration_s=10)] * 9}, "bad_request", "1..8"),
    ({"phases": [lift(duration_s=10)], "run": "import os"}, "bad_request", "unknown field"),
    ({"phases": [lift(duration_s=10, code="x")]}, "bad_request", "unknown field"),
    ({"phases": [lift()]}, "bad_request", "missing field duration_s"),
    ({"phases": [lift(duration_s="10")]}, "bad_request", "duration_s must be int"),
    ({"phases": [lift(duration_s=0)]}, "out_of_range", "1..1200"),
    ({"phases": [lift(duration_s=700), lift(duration_s=600)]}, "out_of_range", "at most 1200 s"),
    ({"phases": [lift(duration_s=10, current_pct=101)]}, "out_of_range", "0..100"),
    ({"phases": [lift(duration_s=10, red_pct=-1)]}, "out_of_range", "0..100"),
    ({"phases": [lift(duration_s=10, hz=5000)]}, "out_of_range", "0.1..1000 Hz"),
    ({"phases": [lift(duration_s=10, phase_us=10)]}, "out_of_range", "phase_us"),
    ({"phases": [{"duration_s": 10}]}, "out_of_range", "no output"),
    ({"phases": [lift(duration_s=10, alternate=1)]}, "bad_request", "alternate must be bool"),
])
def test_invalid_programs_are_refused_and_nothing_is_written(bench, program, code, words):
    r = bench.request("program_write", name="bad", program=program)
    assert r["ok"] is False and r["error"] == code and words in r["message"], r
    assert not bench.emu.fs.exists("/programs/bad.json")
    assert bench.emu.plant.trace.max_abs_ua == 0 and bench.emu.led_red.on_ns(bench.emu.clock.now_ns) == 0


def test_a_program_the_pulse_back_end_cannot_play_is_refused():
    from myotone.emulator.board import load_board
    board = load_board("esp32-devkit")         # the timer back-end at 1 ms: phases in whole ms
    board["pulse"] = {"backend": "timer", "timer_id": 0, "hard": False, "tick_us": 1000}
    b = Bench(board)
    try:
        prog = {"phases": [{"duration_s": 10, "hz": 100, "phase_us": 2500, "current_pct": 100}]}
        r = b.request("program_write", name="fine", program=prog)
        assert r["error"] == "timing_unsupported" and "multiple" in r["message"]
        prog["phases"][0]["phase_us"] = 2000
        assert b.request("program_write", name="fine", program=prog)["ok"]
        assert b.request("programs")["programs"][-1]["available"] is True
    finally:
        b.close()


@pytest.mark.parametrize("board", ["pico-mcp4725", "esp32-devkit"])
def test_the_microcurrent_stage_restarts_cleanly_between_zones_and_sessions(board):
    """Zones switch the stage off and on again mid-session; every back-end must
    play the new start from its first segment (a stale PIO FIFO did not)."""
    b = Bench(board)
    try:
        zone = {"hz": 10, "phase_us": 40000, "gap_us": 1000, "current_pct": 100}
        prog = {"phases": [dict(zone, duration_s=6), {"duration_s": 3, "red_pct": 10}, dict(zone, duration_s=6)]}
        assert b.request("program_write", name="zones", program=prog)["ok"]
        step_ua = 1000 / ((1 << b.emu.board["dac"]["bits"]) - 1)    # codes round down: within a step below
        for _ in range(2):
            t0 = b.emu.clock.now_ns
            assert b.request("start", program="zones", ua=250)["ok"]
            b.run(17)
            tr = b.emu.plant.trace
            assert 250 - step_ua < envelope(tr, t0 + 4 * S, t0 + 6 * S) <= 250
            assert envelope(tr, t0 + 8.5 * S, t0 + 9 * S) == 0
            assert 250 - step_ua < envelope(tr, t0 + 13 * S, t0 + 15 * S) <= 250
        assert b.faults() == [] and tr.shoot_through == 0
        tr.close(b.emu.clock.now_ns)
        assert abs(tr.net_charge_nc) < 0.01 * tr.abs_charge_nc
    finally:
        b.close()


def test_a_broken_program_file_on_the_flash_never_starts(bench):
    bench.emu.fs.write_file("/programs/broken.json", b'{"phases": [{"duration_s": 10, "current')
    bench.emu.fs.write_file("/programs/sneaky.json", json.dumps(
        {"phases": [lift(duration_s=10, current_pct=400)]}).encode())
    for name in ("broken", "sneaky"):
        r = bench.request("start", program=name, ua=100)
        assert r["error"] == "bad_program", r
    listed = {p["name"]: p for p in bench.request("programs")["programs"]}
    assert "error" in listed["broken"] and "error" in listed["sneaky"]
    bench.run(1)
    assert bench.emu.plant.trace.max_abs_ua == 0 and bench.output_is_safe()


def test_bad_json_and_oversized_program_lines_are_refused(bench):
    bench.emu.write(b'{"cmd": "program_write", "name": "x", "program": {"phases": [\n')
    bench.run(0.01)
    biggest = {"phases": [lift(duration_s=10, label="z" * 16)] * 8, "description": "d" * 128}
    assert bench.request("program_write", name="biggest", program=biggest)["ok"]   # the largest fits a line
    huge = {"phases": [lift(duration_s=10, label="z" * 16)] * 8, "description": "d" * 600}
    line = json.dumps({"id": 5, "cmd": "program_write", "name": "huge", "program": huge})
    assert len(line) > 1536
    bench.emu.write(line.encode() + b"\n")
    bench.run(0.01)
    errors = [m.get("error") for _, m in bench.log if m.get("ok") is False]
    assert errors[-2:] == ["bad_json", "line_too_long"]
    assert not bench.emu.fs.exists("/programs/x.json") and not bench.emu.fs.exists("/programs/huge.json")


def test_program_commands_write_only_program_files(bench):
    before = {path for path, _, _ in bench.emu.fs.walk()}
    files = lambda: sorted(p + "/" + f for p, _, fs in bench.emu.fs.walk() for f in fs)   # noqa: E731
    old = files()
    for name in ("../boot", "/main", "..", "board"):
        bench.request("program_write", name=name, program=GOOD)
    assert bench.request("program_write", name="board", program=GOOD)["ok"]
    new = [f for f in files() if f not in old]
    assert new == ["/programs/board.json"]
    assert {path for path, _, _ in bench.emu.fs.walk()} == before
    assert json.loads(bench.emu.fs.read_file("/board.json"))["name"] == "pico-mcp4725"


def test_start_overrides_apply_to_single_phase_programs_only(bench):
    r = bench.request("start", program="sculpt", ua=200, duration_s=30)
    assert r["error"] == "bad_request" and "phases" in r["message"]
    r = bench.request("start", program="lift", ua=200, duration_s=30, red_pct=20)
    assert r["ok"] and r["duration_s"] == 30
    bench.run(1)
    assert bench.emu.led_red.duty == pytest.approx(0.2, abs=1e-4)
    r = bench.request("start", program="sham")
    assert r["error"] == "busy"


def test_session_zero_means_no_current_and_is_reached_by_a_ramp(fw):
    S = fw("myotone.session")
    s = S.Session(500)
    s.begin(0, 10_000, 0)                           # an LED-only program: running, no current
    assert s.state == S.RUN and s.step(5) == 0
    s.change_setpoint(300)
    ups = [s.step(t) for t in range(6, 3000)]
    assert max(b - a for a, b in zip(ups, ups[1:])) <= 1 and ups[-1] == 300    # <= 250 uA/s, from 0
    s.change_setpoint(0)
    t = 3000
    while s.target_na:
        t += 1
        s.step(t)
    assert t - 2999 >= 2000 and s.state == S.RUN     # down over >= 2 s (from the last step at 2999)
    for bad in (5, 9, 501, -1):
        with pytest.raises(ValueError):
            s.change_setpoint(bad)

"""End to end: the unmodified firmware on the emulator, through its console."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from myotone.cli import main
from myotone.link import Link
from emu_lines import json_messages


def messages(emu):
    """Everything the device said since the last call (and what request() set aside)."""
    out = getattr(emu, "seen", [])
    emu.seen = []
    return out + json_messages(emu)


def request(emu, cmd, dt=0.05, **args):
    emu.send({"id": 9, "cmd": cmd, **args})
    emu.run_for(dt)
    got = messages(emu)
    emu.seen = [m for m in got if m.get("id") != 9]
    return next(m for m in got if m.get("id") == 9)


def test_boot_enters_safe_state_and_announces_itself():
    from myotone.emulator import Emulator
    with Emulator("pico-mcp4725") as emu:
        emu.run_for(0.2)
        out = messages(emu)
        assert out[0]["ev"] == "ready" and out[0]["reset_cause"] == "power_on"
        assert emu.plant.dac_code == 0 and emu.plant.bridge_a == 0 and emu.plant.bridge_b == 0
        assert emu.plant.hv_on == 0


def test_hello_reports_limits(emu):
    r = request(emu, "hello")
    assert r["ok"] and r["protocol"] == 1 and r["board"] == "pico-mcp4725"
    assert r["limits"]["max_ua"] == 500 and r["limits"]["soft_start_ua"] <= 10
    # the unit: machine.unique_id() in hex, the RP2040's 8-byte flash ID (selftest's report header)
    assert r["unit_id"] == emu.mcu.unique_id.hex() and len(r["unit_id"]) == 16


def test_session_ramps_runs_at_setpoint_and_ends_by_itself(emu):
    t_start = emu.clock.now_ns
    r = request(emu, "start", program="lift", ua=200, duration_s=10)
    assert r["ok"] and r["state"] == "ramp"
    emu.run_for(14)
    states = [m["state"] for m in messages(emu) if m.get("ev") == "state"]
    assert states == ["ramp", "run", "ramp_down", "done"]
    tr = emu.plant.trace
    # the plant (truth, not the firmware's belief): soft start, ramp >= 2 s, setpoint reached
    first_on = next(i for i, t in enumerate(tr.t_ns) if t >= t_start and tr.i_ua[i] != 0)
    assert abs(tr.i_ua[first_on]) <= 10.5
    reach = next(t for t, i in zip(tr.t_ns, tr.i_ua) if abs(i) >= 199)
    assert reach - t_start >= 2_000_000_000
    assert max(abs(i) for i in tr.i_ua) <= 201
    assert tr.current_at(emu.clock.now_ns) == 0
    assert emu.plant.hv_on == 0 and emu.plant.dac_code == 0
    # biphasic: as much charge each way (within the ramp's own change)
    tr.close(emu.clock.now_ns)
    assert abs(tr.net_charge_nc) < 0.01 * tr.abs_charge_nc


def test_stop_ramps_down(emu):
    request(emu, "start", program="lift", ua=300, duration_s=60)
    emu.run_for(4)
    r = request(emu, "stop")
    assert r["state"] == "ramp_down"
    t_stop = emu.clock.now_ns
    emu.run_for(3)
    tr = emu.plant.trace
    last_on = max(t for t, i in zip(tr.t_ns, tr.i_ua) if abs(i) > 0)
    assert last_on - t_stop >= 1_000_000_000 - 100_000_000  # ramp-down lasts about RAMP_DOWN_MS
    assert request(emu, "status")["state"] == "done"


@pytest.mark.parametrize("line,code", [
    (b"hello\n", "bad_json"), (b"[]\n", "bad_json"), (b'{"cmd":"launch"}\n', "unknown_cmd"),
    (b'{"cmd":"start","program":"lift","ua":900}\n', "out_of_range"),
    (b'{"cmd":"start","program":"nope","ua":100}\n', "out_of_range"),
    (b'{"cmd":"start","program":"lift","ua":100,"hz":5000}\n', "out_of_range"),
    (b'{"cmd":"start","program":"lift","ua":"100"}\n', "bad_request"),
    (b'{"cmd":"start","program":"lift","ua":100,"evil":1}\n', "bad_request"),
    (b"x" * 2000 + b"\n", "line_too_long"),
])
def test_bad_input_gets_an_error_and_output_stays_off(emu, line, code):
    emu.write(line)
    emu.run_for(0.5)
    replies = [m for m in messages(emu) if "ok" in m]
    assert replies and replies[-1]["ok"] is False and replies[-1]["error"] == code, replies
    assert emu.plant.trace.max_abs_ua == 0 and emu.plant.hv_on == 0
    assert request(emu, "hello")["ok"]          # still serving


def test_a_timing_the_backend_cannot_play_is_refused_not_degraded():
    from myotone.emulator import Emulator
    from safety_helpers import board_for
    with Emulator(board_for("timer")) as emu:
        emu.run_for(0.2)
        emu.write(b'{"id":3,"cmd":"start","program":"lift","ua":100,"phase_us":850,"hz":100}\n')
        emu.run_for(0.2)
        reply = [m for m in messages(emu) if m.get("id") == 3][0]
        assert reply["error"] == "timing_unsupported" and "100 us step" in reply["message"]
        assert emu.plant.trace.max_abs_ua == 0


@pytest.mark.parametrize("backend,need_us,shortest_us", [("pio", 750, 750), ("rmt", 1250, 1250),
                                                         ("timer", 750, 800)])
def test_a_phase_too_short_for_the_safety_monitor_to_see_is_refused(backend, need_us, shortest_us):
    """SAFETY.md: what the monitor cannot supervise is refused. The fast path samples at
    supervisor.hz (2 kHz on the Pico, 1 kHz on the ESP32): a phase shorter than one sample
    period + limits.SAMPLE_SLACK_US may hold no sample at all, so it is refused with the reason;
    the shortest phase the board supervises runs (the timer back-end rounds up to its 100 us step)."""
    from myotone.emulator import Emulator
    from safety_helpers import board_for
    with Emulator(board_for(backend)) as emu:
        emu.run_for(0.2)
        short = need_us - (50 if backend == "timer" else 1)
        reply = request(emu, "start", program="lift", ua=100, phase_us=short, hz=100, duration_s=5)
        assert reply["error"] == "timing_unsupported", reply
        assert "too short to supervise" in reply["message"] and f">= {need_us} us" in reply["message"]
        assert emu.plant.trace.max_abs_ua == 0
        reply = request(emu, "start", program="lift", ua=100, phase_us=shortest_us, hz=100, duration_s=5)
        assert reply["ok"], reply
        emu.run_for(3)
        assert emu.plant.trace.max_abs_ua > 90


def test_ctrl_c_leaves_output_safe(emu):
    request(emu, "start", program="lift", ua=300, duration_s=60)
    emu.run_for(3)
    assert emu.plant.trace.max_abs_ua > 250
    emu.write(b"\x03")
    emu.run_for(0.1)
    out = emu.read().decode()
    assert "KeyboardInterrupt" in out
    assert emu.plant.dac_code == 0 and not emu.plant.bridge_a and not emu.plant.bridge_b and not emu.plant.hv_on
    assert emu.mcu.timers == []                   # timers deinitialised, not left running
    t = emu.clock.now_ns
    emu.run_for(1)
    assert all(i == 0 for tt, i in zip(emu.plant.trace.t_ns, emu.plant.trace.i_ua) if tt > t)


def test_cli_against_in_process_emulator():
    r = CliRunner().invoke(main, ["hello", "--port", "emu"])
    assert r.exit_code == 0, r.output
    assert "pico-mcp4725" in r.output and "500 µA" in r.output
    r = CliRunner().invoke(main, ["status", "--json"], env={"MYOTONE_PORT": "emu:esp32-devkit"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["state"] == "idle"
    r = CliRunner().invoke(main, ["session", "start", "--port", "emu", "--program", "lift", "--ua", "150",
                                  "--duration-s", "5", "--watch", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["final_state"] == "done" and abs(summary["mean_measured_ua"] - 150) < 5


def test_cli_errors_are_one_line_and_non_zero():
    r = CliRunner().invoke(main, ["session", "start", "--port", "emu", "--program", "lift", "--ua", "900"])
    assert r.exit_code == 1 and "out_of_range" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["hello"], env={"MYOTONE_PORT": ""})
    assert r.exit_code == 1 and "no port" in r.output


def test_emu_serve_over_tcp_speaks_to_a_pyserial_link():
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--tcp", "0", "--speed", "5"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().split()
        assert first[0] == "serving" and first[1].startswith("socket://127.0.0.1:")
        with Link.open(first[1]) as link:
            assert link.request("hello", timeout_s=10)["board"] == "pico-mcp4725"
            assert link.request("status")["state"] == "idle"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_real_mpremote_talks_to_the_served_emulator(tmp_path):
    """mpremote (the real one) execs, lists, copies and resets the emulated board."""
    import shutil
    mpremote = shutil.which("mpremote") or str(__import__("pathlib").Path(sys.executable).with_name("mpremote"))
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--tcp", "0", "--speed", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[1]

        def mp(*args):
            r = subprocess.run([mpremote, "connect", url, *args], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout
        assert mp("exec", "import machine, sys; print(machine.freq(), sys.platform)").split() == ["125000000", "rp2"]
        listing = mp("fs", "ls")
        assert "main.py" in listing and "board.json" in listing and "myotone/" in listing
        note = tmp_path / "note.txt"
        note.write_text("hello board\n")
        mp("fs", "cp", str(note), ":note.txt")
        assert mp("fs", "cat", ":note.txt") == "hello board\n"
        mp("reset")
        with Link.open(url) as link:          # after the reset, main.py serves the protocol again
            assert link.request("hello", timeout_s=10)["reset_cause"] == "hard"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_runs_a_real_session_through_a_served_emulator():
    r = subprocess.run([sys.executable, "-m", "myotone", "demo", "--speed", "20", "--duration-s", "6"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("emulator: pico-mcp4725 at socket://127.0.0.1:")
    assert sum(" run " in l for l in lines) >= 2                  # a telemetry line per second
    assert lines[-1].startswith("summary: done") and "FAULT" not in lines[-1]

"""Interruptions (Ctrl-C, SIGTERM, SIGHUP, a closed pipe) of the commands that drive
the output: the device is left safe, its calibration as it was, the port free, one
line on stderr and the shell's exit code (128 + the signal; 141 for a closed pipe).

The served emulator runs in real time (speed 10); every wait is on a condition
(a line of output, a device state), never a sleep that has to be long enough."""
import json
import os
import signal
import subprocess
import sys

import pytest

from cli_helpers import REPO, Served, cli, json_lines
from myotone import measuring
from myotone.calibrate import calibrate
from myotone.link import Link
from myotone.rig import EmuRig
from test_cli_session import wait_state

UNIT = {"dac_gain": 1.06, "dac_offset_ua": 0.5, "adc_gain": 0.97, "adc_offset_ua": -0.3}


@pytest.fixture
def served():
    s = Served(speed=10)
    yield s
    s.close()


def myotone(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "host"))
    return subprocess.Popen([sys.executable, "-m", "myotone", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def until(stream, fragment):
    """Read lines of `stream` until one contains `fragment` (the process says where it is)."""
    for line in stream:
        if fragment in line:
            return line
    raise AssertionError(f"the stream ended before {fragment!r}")


def finish(proc):
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def assert_safe_and_port_free(served, states=("done",)):
    """The plant's truth: output off; and the port opens again (nobody holds it)."""
    st = wait_state(served.url, ("done", "idle", "fault"))
    assert st["state"] in states, st                  # not `fault: heartbeat_lost` after a while
    c = served.control()
    try:
        p = c.plant()
        assert p["hv_on"] == 0 and p["dac_code"] == 0 and p["current_ua"] == 0
    finally:
        c.close()


@pytest.mark.parametrize("sig, code, said", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")])
def test_a_signal_in_a_watched_session_stops_it(served, sig, code, said):
    proc = myotone("session", "start", "--port", served.url, "--program", "lift", "--ua", "150", "--watch")
    until(proc.stdout, " run ")
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"Interrupted by {said}: the session was stopped (ramp-down), "
                                            "the output is off")
    assert_safe_and_port_free(served)


def test_sigterm_in_monitor_stops_the_session_it_started(served):
    proc = myotone("monitor", "--port", served.url, "--program", "lift", "--ua", "200", "--json")
    until(proc.stdout, '"state": "run"')
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert proc.returncode == 143 and "Traceback" not in err
    assert json_lines(out)[-1]["final_state"] == "done"
    assert err.strip().splitlines()[-1].startswith("Interrupted by SIGTERM: the session was stopped")
    assert_safe_and_port_free(served)


def test_a_closed_pipe_stops_a_watched_session(served):
    """`myotone session start --watch | head -3`: the reader goes, the session must not run on."""
    proc = myotone("session", "start", "--port", served.url, "--program", "lift", "--ua", "150", "--watch")
    until(proc.stdout, " ramp ")
    proc.stdout.close()                          # head has its lines and exits
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.strip().splitlines()[-1].startswith("Interrupted by a closed pipe: the session was stopped")
    assert_safe_and_port_free(served)


def test_monitor_exits_at_the_end_of_the_session_it_started():
    r = cli("monitor", "--port", "emu", "--program", "lift", "--ua", "200", "--duration-s", "3", "--json")
    assert r.exit_code == 0, r.output
    states = [m["state"] for m in json_lines(r.stdout) if m.get("ev") == "state"]
    assert states[-1] == "done" and json_lines(r.stdout)[-1]["final_state"] == "done"


# ---- calibrate ----------------------------------------------------------------------
def test_calibrate_interrupted_mid_level_puts_the_previous_calibration_back(monkeypatch):
    """The issue's case: Ctrl-C 2 s into a level. The device refuses calib_set while the
    measuring session ramps down, so the old code's restore failed in silence and the
    unit was left at identity."""
    real = measuring.measure
    calls = []

    def interrupted_measure(link, ua, **kw):
        calls.append(ua)
        if len(calls) < 2:
            return real(link, ua, **kw)
        link.request("measure", ua=ua, hold_s=kw.get("hold_s", 2))
        t = link.now_s() + 2
        while link.now_s() < t:
            link.read_message(timeout_s=0.25)
        raise KeyboardInterrupt
    monkeypatch.setattr("myotone.calibrate.measure", interrupted_measure)
    with Link.open("emu") as link:
        link.request("calib_set", **UNIT, note="factory")
        with pytest.raises(KeyboardInterrupt) as info:
            calibrate(link, 1000, EmuRig(link.transport.emulator))
        got = link.request("calib_get")["calibration"]
        assert {k: got[k] for k in UNIT} == UNIT and got["note"] == "factory"
        assert link.request("status")["state"] in ("idle", "done")
        assert "previous calibration put back" in info.value.myotone_detail


def test_sigterm_during_calibrate_keeps_the_calibration(served):
    with Link.open(served.url) as link:
        link.request("calib_set", **UNIT, note="factory", timeout_s=5)
    proc = myotone("calibrate", "--port", served.url, "--rig", served.control_url, "--load-ohm", "1000")
    until(proc.stderr, "measuring at 150")
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("Interrupted by SIGTERM: the measuring was stopped and the previous "
                                            "calibration put back")
    assert_safe_and_port_free(served, states=("done", "idle"))
    with Link.open(served.url) as link:
        got = link.request("calib_get", timeout_s=5)["calibration"]
    assert {k: got[k] for k in UNIT} == UNIT and got["note"] == "factory"


def test_sigterm_during_selftest_stops_its_measuring_session(served):
    """A measuring session is host-driven: left alone it would end in a latched heartbeat_lost."""
    proc = myotone("selftest", "--port", served.url, "--rig", served.control_url, "--load", "500,2000")
    until(proc.stderr, "measuring at")
    c = served.control()
    try:
        while c.plant()["current_ua"] == 0:      # the measuring session is on (a condition, not a delay)
            pass
    finally:
        c.close()
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("Interrupted by SIGTERM: the measuring session was stopped, "
                                            "the output is off")
    assert_safe_and_port_free(served, states=("done", "idle"))


def test_emu_serve_ends_on_sigterm_with_its_code_and_one_line():
    s = Served(speed=10)
    s.proc.stderr = None
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30) == 143


def test_the_device_going_away_mid_watch_is_one_line_that_says_what_follows():
    s = Served(speed=10)
    try:
        proc = myotone("session", "start", "--port", s.url, "--program", "lift", "--ua", "150", "--watch")
        until(proc.stdout, " run ")
    finally:
        s.proc.kill()                           # unplugged
        s.proc.wait(timeout=30)
    out, err = finish(proc)
    assert proc.returncode == 1 and "Traceback" not in err
    *before, line = err.strip().splitlines()
    assert all(b.startswith("device clock set to") for b in before), err     # the connect's note, if any
    assert line.startswith(f"Error: lost the device on {s.url}") and "heartbeat_lost" in line, line


def test_a_closed_terminal_sighup_stops_the_session_though_stdout_is_gone(served):
    """A real hang-up: the terminal (a pty here) is closed, then SIGHUP; every write to it
    fails from then on, and the clean-up must still stop the session."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO / "host"))
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "session", "start", "--port", served.url,
                             "--program", "lift", "--ua", "150", "--watch"], stdout=slave,
                            stderr=subprocess.PIPE, text=True, env=env)
    os.close(slave)
    seen = b""
    while b" run " not in seen:
        seen += os.read(master, 4096)
    os.close(master)                             # the terminal is gone
    proc.send_signal(signal.SIGHUP)
    _, err = finish(proc)
    assert proc.returncode == 129 and "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1].startswith("Interrupted by SIGHUP: the session was stopped")
    assert_safe_and_port_free(served)

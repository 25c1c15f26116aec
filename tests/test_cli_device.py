"""Everything a user needs without Python: fault clear, reset, programs write/delete,
settings -- each through the device's own checks. A served emulator keeps its state
across commands; waits are on device states, never sleeps."""
import json
import socket
from urllib.parse import urlparse

import pytest

from cli_helpers import Served, cli, one_line_error, usage_error
from myotone.link import Link
from test_cli_session import wait_state

MINE = {"description": "forehead then cheeks, red light", "phases": [
    {"duration_s": 120, "label": "forehead", "current_pct": 100, "hz": 10, "phase_us": 40000, "gap_us": 200,
     "red_pct": 50},
    {"duration_s": 10, "label": "move", "red_pct": 50},
    {"duration_s": 120, "label": "cheeks", "current_pct": 80, "hz": 10, "phase_us": 40000, "gap_us": 200,
     "red_pct": 50}]}


@pytest.fixture(scope="module")
def served():
    s = Served(speed=10)
    yield s
    s.close()


def test_fault_clear_after_heartbeat_lost(served):
    """The guide's old remedy was a `python -c` line."""
    with Link.open(served.url) as link:
        link.request("start", program="lift", ua=100, heartbeat=True, timeout_s=5)
    assert wait_state(served.url, ("fault",))["fault"] == "heartbeat_lost"      # nobody sent the heartbeat
    err = one_line_error(cli("session", "start", "--port", served.url, "--program", "lift", "--ua", "100"),
                         "device refused: faulted", "heartbeat_lost", "myotone fault clear")
    assert "python" not in err
    r = cli("fault", "clear", "--port", served.url)
    assert r.exit_code == 0 and r.stdout.strip() == "cleared heartbeat_lost; state: idle", r.output
    r = cli("fault", "clear", "--port", served.url, "--json")
    assert json.loads(r.stdout)["cleared"] is None
    assert cli("status", "--port", served.url, "--json").stdout.count('"fault": null') == 1


def test_programs_write_from_json_and_yaml_then_delete(served, tmp_path):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps(MINE))
    r = cli("programs", "write", str(f), "--port", served.url)
    assert r.exit_code == 0 and "stored mine (250 s)" in r.stdout, r.output
    r = cli("programs", "show", "mine", "--port", served.url, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["name"] == "mine", r.output
    r = cli("programs", "delete", "mine", "--port", served.url)
    assert r.exit_code == 0 and r.stdout.strip() == "deleted mine"
    one_line_error(cli("programs", "delete", "mine", "--port", served.url), "not_found", "no user program mine")
    y = tmp_path / "zones.yaml"
    y.write_text("name: zones\nphases:\n  - {duration_s: 60, red_pct: 40}\n")
    pytest.importorskip("yaml")
    r = cli("programs", "write", str(y), "--port", served.url, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["name"] == "zones", r.output


def test_programs_write_is_checked_by_the_firmware(served, tmp_path):
    bright = tmp_path / "bright.json"
    bright.write_text(json.dumps({"phases": [{"duration_s": 600, "red_pct": 100}, {"duration_s": 600,
                                                                                    "red_pct": 100}]}))
    one_line_error(cli("programs", "write", str(bright), "--port", served.url), "device refused: out_of_range",
                   "at most 600 s")
    lift = tmp_path / "lift.json"
    lift.write_text(json.dumps({"phases": [{"duration_s": 60, "red_pct": 50}]}))
    one_line_error(cli("programs", "write", str(lift), "--port", served.url), "read_only")
    one_line_error(cli("programs", "write", str(lift), "--name", "Bad Name", "--port", served.url), "name may")


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "is not valid JSON (line 1"),
    ('["a list"]', "a program is an object with a list of `phases`"),
    (json.dumps({"description": "x" * 600, "phases": [{"duration_s": 60, "red_pct": 5}]}), "bytes as one protocol line"),
])
def test_programs_write_bad_files_are_one_line(tmp_path, text, fragment):
    f = tmp_path / "p.json"
    f.write_text(text)
    one_line_error(cli("programs", "write", str(f), "--port", "emu"), fragment)


def test_yaml_without_pyyaml_says_how_to_get_it(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_yaml(name, *a, **kw):
        if name == "yaml":
            raise ImportError("no yaml")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_yaml)
    f = tmp_path / "p.yaml"
    f.write_text("phases: []\n")
    one_line_error(cli("programs", "write", str(f), "--port", "emu"), "PyYAML", "myotone[yaml]")


def test_settings_read_and_change(served):
    r = cli("settings", "--port", served.url, "--json")
    assert json.loads(r.stdout)["levels"] == 5
    r = cli("settings", "--port", served.url, "--default-program", "glow", "--level", "3")
    assert r.exit_code == 0 and r.stdout.startswith("default program glow, level 3 of 5 (1: 100 µA"), r.output
    assert json.loads(cli("settings", "--port", served.url, "--json").stdout)["level"] == 3
    one_line_error(cli("settings", "--port", served.url, "--default-program", "nope"), "out_of_range")
    usage_error(cli("settings", "--port", served.url, "--level", "9"), "myotone settings", "--level")


def test_reset_hard_and_soft(served):
    r = cli("reset", "--port", served.url, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reset"] == "hard" and out["hello"]["reset_cause"] == "hard"
    r = cli("reset", "--port", served.url, "--soft")
    assert r.exit_code == 0 and "firmware 0.1.0 answers" in r.stdout, r.output
    one_line_error(cli("reset", "--port", "emu"), "nothing to reset")


def test_a_board_at_the_repl_prompt_is_named_and_reset_brings_it_back(served):
    """Ctrl-C over the port stops the firmware at `>>>` (as mpremote leaves it)."""
    u = urlparse(served.url)
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(b"\x03\x03")
        seen = b""
        while b">>> " not in seen:
            seen += s.recv(4096)
    err = one_line_error(cli("hello", "--port", served.url), "MicroPython REPL", "myotone reset")
    assert "is the Myotone firmware flashed" not in err
    r = cli("reset", "--port", served.url)
    assert r.exit_code == 0, r.output
    assert cli("hello", "--port", served.url).exit_code == 0


def test_a_second_client_of_a_served_emulator_is_told_so(served):
    with Link.open(served.url) as first:
        first.request("hello", timeout_s=5)
        err = one_line_error(cli("hello", "--port", served.url), "another client may have it")
    assert "flash" not in err


def test_clock_set_then_session_logs_carry_the_time(served):
    """The device's clock is set from this computer's (any command that connects sets an
    unset one: tests/test_device_clock.py; `clock set` sets it regardless); it then runs on
    (faster than the wall: the emulator is served at 10x), so only "not before" is asserted,
    never a tolerance. Through the protocol, during a session too: no firmware restart."""
    import time
    assert cli("session", "start", "--port", served.url, "--program", "glow", "--duration-s", "60").exit_code == 0
    before = int(time.time())
    r = cli("clock", "set", "--port", served.url, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["device_time_s"] >= before
    assert wait_state(served.url, ("run",))["program"] == "glow"       # the session ran on
    assert cli("session", "stop", "--port", served.url).exit_code == 0
    wait_state(served.url, ("done",))
    assert cli("hello", "--port", served.url).exit_code == 0
    r = cli("session", "start", "--port", served.url, "--program", "glow", "--duration-s", "1")
    assert r.exit_code == 0 and "LED only" in r.stdout, r.output
    wait_state(served.url, ("done",))
    with Link.open(served.url) as link:
        newest = link.request("log_list", timeout_s=5)["records"][-1]
    assert newest["start_s"] >= out["device_time_s"]
    one_line_error(cli("clock", "set", "--port", "emu"), "nothing to set")

"""User mistakes: one line, exit code != 0, no traceback -- in text and in --json."""
import json
import os
import socket

import pytest
import serial

from cli_helpers import cli, one_line_error, usage_error


@pytest.fixture
def pty_path():
    """A serial port nobody answers on (a pty whose other end stays silent)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_no_port_at_all():
    one_line_error(cli("hello", env={"MYOTONE_PORT": ""}), "no port", "MYOTONE_PORT")


def test_missing_port_path(tmp_path):
    one_line_error(cli("status", "--port", str(tmp_path / "ttyACM9")), "no such port", "myotone ports")


def test_busy_port(pty_path):
    holder = serial.serial_for_url(pty_path, exclusive=True)
    try:
        one_line_error(cli("hello", "--port", pty_path), "port busy")
    finally:
        holder.close()


def test_nothing_listening_and_not_a_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    one_line_error(cli("hello", "--port", f"socket://127.0.0.1:{free}"), "nothing is listening")
    one_line_error(cli("hello", "--port", "bogus://x"), "not a port")
    one_line_error(cli("hello", "--port", "emu:no-such-board"), "no board file", "pico-mcp4725")


def test_board_not_answering(pty_path):
    err = one_line_error(cli("hello", "--port", pty_path), "no reply to 'hello'", "not answering")
    assert "myotone flash" in err


def test_device_error_reply_is_one_line_and_json_too():
    err = one_line_error(cli("session", "start", "--port", "emu", "--program", "lift", "--ua", "900"),
                         "device refused: out_of_range", "10..500")
    assert err.startswith("Error: ")
    r = cli("session", "start", "--port", "emu", "--program", "lift", "--ua", "900", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out == {"ok": False, "error": "out_of_range", "message": out["message"]} and "10..500" in out["message"]
    one_line_error(cli("session", "resume", "--port", "emu"), "not_running")


def test_json_error_for_a_missing_port(tmp_path):
    r = cli("status", "--json", "--port", str(tmp_path / "nope"))
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False


def test_usage_errors_are_one_line_and_exit_2():
    usage_error(cli("session", "start", "--port", "emu"), "myotone session start", "give --program")
    usage_error(cli("selftest", "--port", "emu", "--load", "5x"), "myotone selftest", "comma-separated ohms")
    usage_error(cli("logs", "pull", "--port", "emu"), "myotone logs pull", "give log numbers")


def test_flash_to_a_busy_or_missing_port_is_a_clear_result(pty_path, tmp_path):
    holder = serial.serial_for_url(pty_path, exclusive=True)
    try:
        r = cli("flash", "--port", pty_path, "--port", str(tmp_path / "ttyACM7"), "--json")
    finally:
        holder.close()
    assert r.exit_code == 1
    busy, missing = json.loads(r.stdout)["results"]
    assert "port busy" in busy["error"] and "no such port" in missing["error"]
    r = cli("flash", "--port", str(tmp_path / "ttyACM7"))
    assert r.exit_code == 1 and "FAILED: cannot open" in r.stdout and "Traceback" not in r.output


# ---- where the port came from -------------------------------------------------------
def test_an_error_names_myotone_port_when_the_port_came_from_it(tmp_path):
    missing = str(tmp_path / "ttyACM9")
    err = one_line_error(cli("status", env={"MYOTONE_PORT": missing}), "no such port")
    assert f"{missing} (from MYOTONE_PORT)" in err
    err = one_line_error(cli("status", "--port", missing))
    assert "MYOTONE_PORT" not in err
    err = one_line_error(cli("hello", env={"MYOTONE_PORT": "emu:no-such-board"}), "no board file")
    assert "from MYOTONE_PORT" in err


def test_port_before_the_command_as_well_as_after_it():
    r = cli("--port", "emu:esp32-devkit", "hello", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["board"] == "esp32-devkit", r.output
    r = cli("-p", "emu:esp32-devkit", "hello", "--port", "emu", "--json")     # after the command wins
    assert json.loads(r.stdout)["board"] == "pico-mcp4725"
    r = cli("-p", "emu", "status", "--json", env={"MYOTONE_PORT": "emu:esp32-devkit"})   # the command line wins
    assert r.exit_code == 0
    assert cli("--port", "emu", "session", "start", "--program", "glow", "--duration-s", "1").exit_code == 0


def board(device):
    return {"device": device, "vid": 0x2E8A, "pid": 0x0005, "usb_id": "2E8A:0005", "serial_number": None,
            "description": None, "board": "RP2040 (MicroPython USB)"}


def test_the_one_board_plugged_in_is_found(monkeypatch):
    from myotone import ports
    other = dict(board("/dev/ttyUSB3"), board=None)
    monkeypatch.setattr(ports, "list_ports", lambda: [board("emu"), other])    # "emu": so that it answers
    r = cli("hello", "--json", env={"MYOTONE_PORT": ""})
    assert r.exit_code == 0 and json.loads(r.stdout)["board"] == "pico-mcp4725", r.output
    monkeypatch.setattr(ports, "list_ports", lambda: [board("/dev/ttyACM0"), board("/dev/ttyACM1")])
    one_line_error(cli("hello", env={"MYOTONE_PORT": ""}), "several boards", "/dev/ttyACM0, /dev/ttyACM1",
                   "--port")
    monkeypatch.setattr(ports, "list_ports", lambda: [other])
    one_line_error(cli("hello", env={"MYOTONE_PORT": ""}), "no port", "no Myotone board found")


def test_auto_detected_port_is_named_so_in_errors(monkeypatch, tmp_path):
    from myotone import ports
    missing = str(tmp_path / "ttyACM0")
    monkeypatch.setattr(ports, "list_ports", lambda: [board(missing)])
    one_line_error(cli("status", env={"MYOTONE_PORT": ""}), f"{missing} (auto-detected)")


def test_flash_port_before_the_command_and_from_myotone_port(tmp_path):
    env_port, cli_port = str(tmp_path / "ttyACM5"), str(tmp_path / "ttyACM6")
    r = cli("flash", "--json", env={"MYOTONE_PORT": env_port})
    (res,) = json.loads(r.stdout)["results"]
    assert r.exit_code == 1 and f"{env_port} (from MYOTONE_PORT)" in res["error"], res
    r = cli("-p", cli_port, "flash", "--json", env={"MYOTONE_PORT": env_port})
    (res,) = json.loads(r.stdout)["results"]
    assert res["port"] == cli_port and "MYOTONE_PORT" not in res["error"], res


def test_cli_value_ranges_come_from_the_firmware_limits():
    """SAFETY.md's numbers are written once (firmware/myotone/limits.py): the CLI's ranges are
    read from there (myotone.fwlimits), never typed again in the host's source."""
    import ast
    import re

    import click

    from myotone import fwlimits, paths
    from myotone.cli import main
    src = (paths.firmware_dir() / "myotone" / "limits.py").read_text()
    consts = fwlimits.constants()
    n_const = sum(1 for n in ast.parse(src).body if isinstance(n, ast.Assign) and "const(" in ast.unparse(n.value))
    assert len(consts) == n_const and consts["ABS_CEILING_UA"] == 1000        # every const read, none missed
    ua_max = {}
    for name, cmd in [("session start", main.commands["session"].commands["start"]),
                      ("monitor", main.commands["monitor"])]:
        opt = next(p for p in cmd.params if p.name == "ua")
        assert isinstance(opt.type, click.IntRange)
        ua_max[name] = opt.type.max
    assert set(ua_max.values()) == {fwlimits.ceiling_ua()}, ua_max
    host = paths.repo_root() / "host" / "myotone"
    typed = [f"{f.name}: {m.group(0)}" for f in host.glob("*.py")
             for m in re.finditer(r"IntRange\([^)]*\b(1000|1200)\b[^)]*\)", f.read_text())]
    assert typed == []

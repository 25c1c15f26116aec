"""The HIL plugin as a maker meets it: `myotone hil --port` on a board.

The "board" is an emulator served over TCP in real time, so the suite takes
its board path (serial link, real-time waits, no rig, no fault rig): tests
that need what a bare board lacks are skipped with the reason, never passed.
"""
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from myotone.cli import main
from myotone.hil import pytest_argv, suite_dir


def _serve(speed: str):
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--tcp", "0", "--speed", speed],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().split()[1], proc.stdout.readline().split()[1]


@pytest.fixture
def served_board():
    proc, url, _control = _serve("1")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def junit_cases(xml_path):
    out = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        skipped = case.find("skipped")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[case.get("name")] = ("skipped" if skipped is not None else "failed" if failed is not None else "passed",
                                 skipped.get("message") if skipped is not None else "", props)
    return out


def test_on_a_bare_board_what_needs_a_rig_or_faults_is_skipped_with_the_reason(served_board, tmp_path):
    xml = tmp_path / "hil.xml"
    r = CliRunner().invoke(main, ["hil", "--port", served_board, "--",
                                  "-k", "hello or accuracy or trips or longest or pause",
                                  f"--junitxml={xml}", "-p", "no:cacheprovider"])
    assert r.exit_code == 0, r.output
    cases = junit_cases(xml)
    assert cases["test_hello_names_the_board_and_its_limits"][0] == "passed"
    props = cases["test_hello_names_the_board_and_its_limits"][2]
    assert props == {"hil_target": "board", "hil_board": "pico-mcp4725", "hil_port": served_board}
    rig = [c for name, c in cases.items() if name.startswith("test_delivered_current")]
    assert len(rig) == 9 and all(c[0] == "skipped" and "measuring rig" in c[1] for c in rig)
    trips = [c for name, c in cases.items() if "within" in name and "test_" in name]
    assert trips and all(c[0] == "skipped" and "fault injection" in c[1] for c in trips)
    slow = cases["test_the_longest_session_ends_by_itself_at_20_min"]
    assert slow[0] == "skipped" and "--slow" in slow[1]
    pause = cases["test_pause_and_resume"]
    assert pause[0] == "passed" or (pause[0] == "skipped" and "firmware lacks pause" in pause[1])


def test_a_board_is_one_device_so_xdist_is_refused():
    r = subprocess.run(pytest_argv("/dev/ttyNOPE", None, ["-n", "2", "-p", "no:cacheprovider"]),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "run without -n" in r.stderr


def test_arguments_reach_pytest_and_emu_means_the_emulator():
    argv = pytest_argv("emu:esp32-devkit", None, ["--junitxml=x.xml", "-k", "hello"])
    assert argv[1:4] == ["-m", "pytest", str(suite_dir())]
    assert "--port" not in argv and argv[4:6] == ["--board", "esp32-devkit"]
    assert argv[-3:] == ["--junitxml=x.xml", "-k", "hello"]
    argv = pytest_argv("socket://127.0.0.1:4000", "pico-mcp4725", [])
    assert argv[4:] == ["--port", "socket://127.0.0.1:4000", "--board", "pico-mcp4725"]


def test_without_a_checkout_the_command_says_so(tmp_path):
    r = CliRunner().invoke(main, ["hil"], env={"MYOTONE_ROOT": str(tmp_path), "MYOTONE_PORT": ""})
    assert r.exit_code == 1 and "no HIL suite" in r.output


def test_with_its_control_port_a_served_emulator_runs_the_rig_and_fault_tests_in_its_own_time(tmp_path):
    """--control: the suite waits in the board's simulated time (here 20x faster than the wall
    clock; the silicon tier is slower) and the control port is the rig and the fault rig."""
    proc, url, control = _serve("20")
    try:
        xml = tmp_path / "hil.xml"
        r = CliRunner().invoke(main, ["hil", "--port", url, "--control", control, "--",
                                      "-k", "hello or over_current or contact_lost or stuck_adc or (delivered_current and 500)",
                                      f"--junitxml={xml}", "-p", "no:cacheprovider"])
        assert r.exit_code == 0, r.output
        cases = junit_cases(xml)
        trips = {name: c for name, c in cases.items() if "within" in name}
        assert len(trips) >= 3 and all(c[0] == "passed" for c in trips.values()), trips
        rig = [c for name, c in cases.items() if name.startswith("test_delivered_current")]
        assert rig and all(c[0] == "passed" for c in rig), rig
        assert cases["test_hello_names_the_board_and_its_limits"][2]["hil_target"] == "served"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_control_without_a_port_is_refused():
    r = CliRunner().invoke(main, ["hil", "--control", "tcp://127.0.0.1:1"])
    assert r.exit_code == 1 and "--control goes with --port" in r.output

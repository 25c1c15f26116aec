"""The HIL plugin: choose the target, skip what it cannot do, hand tests a `dut`.

    pytest hil_tests                          # each worker gets its own emulator
    pytest hil_tests --port /dev/ttyACM0      # a freshly flashed board
    pytest hil_tests --port socket://127.0.0.1:4000 --board esp32-devkit
    myotone hil [--port P] [--board B] [-- PYTEST ARGS]

Markers (docs/hil.md): `fault_injection` needs the emulator or a fault rig
(`--fault-rig module:Class`); `rig` needs the measuring rig (`--rig
module:Class`, the emulator's plant otherwise); `slow` takes minutes of device
time, so on a board it runs only with `--slow`; `flash` flashes the target
with `myotone flash` (on the emulator it gets its own emulator served over
TCP). A test whose needs the target lacks is skipped with the reason, never
passed.
"""
from __future__ import annotations

import os
import sys
import threading

HOST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host")
if HOST not in sys.path:
    sys.path.insert(0, HOST)

import pytest

from myotone.emulator.board import EmulatorError, load_board
from myotone.link import EmuTransport, Link, LinkError
from myotone import bench
from .dut import EmuDut, SerialDut, ServedDut

MARKERS = {
    "fault_injection": "needs fault injection: the emulator, or a board with a fault rig (--fault-rig)",
    "rig": "needs the measuring rig of docs/hil.md: dummy loads and a current probe (--rig)",
    "slow": "minutes of device time: runs on the emulator, and on a board only with --slow",
    "flash": "flashes the target with myotone flash (on the emulator: an emulator of its own, served over TCP)",
}
DEFAULT_BOARD = "pico-mcp4725"


def pytest_addoption(parser):
    g = parser.getgroup("myotone-hil", "Myotone HIL target (docs/hil.md)")
    g.addoption("--port", default=None,
                help="A board's serial port (path or pyserial URL). Without it (or with emu[:BOARD]) "
                     "each test worker gets its own emulator.")
    g.addoption("--board", default=None,
                help="Board file name or path (default: the emulator's pico-mcp4725; "
                     "on a board, the one `hello` names).")
    g.addoption("--rig", default=None, metavar="MODULE:CLASS", help="Measuring rig driver for a board.")
    g.addoption("--fault-rig", default=None, metavar="MODULE:CLASS", help="Fault rig driver for a board.")
    g.addoption("--slow", action="store_true", help="Run `slow` tests on a board too.")
    g.addoption("--control", default=None, metavar="tcp://HOST:PORT",
                help="A served emulator's control port (the `control` line of `myotone emu serve`, "
                     "either tier): the suite waits in its simulated time and uses it as the "
                     "measuring and fault rig.")


class Target:
    """What the command line asked for; known before any port is opened."""

    def __init__(self, config):
        port = config.getoption("--port")
        self.board_name = config.getoption("--board")
        if port and (port == "emu" or port.startswith("emu:")):
            self.board_name = self.board_name or port.partition(":")[2] or None
            port = None
        self.port = port
        self.is_board = port is not None
        self.board_name = self.board_name or (None if self.is_board else DEFAULT_BOARD)
        self.rig_spec = config.getoption("--rig")
        self.fault_spec = config.getoption("--fault-rig")
        self.slow = config.getoption("--slow")
        self.control = config.getoption("--control")
        if self.control and not self.is_board:
            raise pytest.UsageError("--control goes with --port: the URL of the served board it controls")
        self.has_rig = not self.is_board or self.rig_spec is not None or self.control is not None
        self.has_faults = not self.is_board or self.fault_spec is not None or self.control is not None

    def describe(self) -> str:
        if not self.is_board:
            return f"emulator ({self.board_name}); rig and faults: the emulated plant"
        if self.control:
            return (f"served emulator at {self.port}, controlled at {self.control}: its simulated time, "
                    "rig and faults")
        return (f"board at {self.port} ({self.board_name or 'board file from hello'}); "
                f"rig: {self.rig_spec or 'none'}; fault rig: {self.fault_spec or 'none'}")


TARGET = pytest.StashKey[Target]()


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    target = Target(config)
    config.stash[TARGET] = target
    workers = getattr(config.option, "numprocesses", None)
    if target.is_board and workers not in (None, 0):
        raise pytest.UsageError("--port: a board is one device; run without -n (pytest-xdist)")


def pytest_report_header(config):
    return f"myotone HIL target: {config.stash[TARGET].describe()}"


def pytest_runtest_setup(item):
    target = item.config.stash[TARGET]
    if item.get_closest_marker("fault_injection") and not target.has_faults:
        pytest.skip("needs fault injection (the emulator, or --fault-rig on a board)")
    if item.get_closest_marker("rig") and not target.has_rig:
        pytest.skip("needs the measuring rig of docs/hil.md (--rig on a board)")
    if item.get_closest_marker("slow") and target.is_board and not target.slow:
        pytest.skip("slow: minutes of real time on a board; pass --slow to run it")


def _board_file(name: str) -> dict:
    try:
        return load_board(name)
    except EmulatorError as exc:
        raise pytest.UsageError(f"--board: {exc}") from exc


def _emulator_dut(board_name: str) -> EmuDut:
    from myotone.emulator.bench import PlantFaults, PlantRig
    board = _board_file(board_name)
    link = Link(EmuTransport(board))
    emu = link.transport.emulator
    dut = EmuDut(link, board, rig=PlantRig(emu), faults=PlantFaults(emu))
    dut.wait(0.3)                       # boot: the `ready` event
    return dut


def _board_dut(target: Target) -> SerialDut:
    try:
        link = Link.open(target.port)
        hello = link.request("hello", timeout_s=5.0)
    except LinkError as exc:
        pytest.exit(f"HIL: cannot reach the board at {target.port}: {exc}", returncode=3)
    board = _board_file(target.board_name or hello["board"])
    rig = bench.load_driver(target.rig_spec, board) if target.rig_spec else None
    faults = bench.load_driver(target.fault_spec, board) if target.fault_spec else None
    if target.control:
        from myotone.emulator.bench import ServedFaults, ServedRig
        from myotone.emulator.control import ControlClient
        try:
            client = ControlClient(target.control)
        except (OSError, ValueError) as exc:
            pytest.exit(f"HIL: cannot reach the control port {target.control}: {exc}", returncode=3)
        return ServedDut(link, board, port=target.port, rig=rig or ServedRig(client),
                         faults=faults or ServedFaults(client), control=client)
    return SerialDut(link, board, port=target.port, rig=rig, faults=faults)


@pytest.fixture(scope="session")
def hil_target(pytestconfig):
    """The device every test of this worker shares: one emulator per worker, or the board."""
    target = pytestconfig.stash[TARGET]
    dut = _board_dut(target) if target.is_board else _emulator_dut(target.board_name)
    yield dut
    try:
        dut.settle()                    # leave the board at rest
    finally:
        dut.close()


@pytest.fixture
def served_emulator(pytestconfig):
    """An emulator of its own behind a TCP port, in real time, for tools like mpremote."""
    from myotone.emulator import Emulator
    from myotone.emulator.serve import serve_tcp
    board = _board_file(pytestconfig.stash[TARGET].board_name)
    emu = Emulator(board)
    ready, url = threading.Event(), []
    emu.serve_realtime(1.0)
    thread = threading.Thread(target=serve_tcp, args=(emu, 0),
                              kwargs={"on_ready": lambda u: (url.append(u), ready.set())}, daemon=True)
    thread.start()
    assert ready.wait(10), "the emulator's TCP endpoint did not come up"
    yield emu, url[0], board
    emu.close()
    thread.join(timeout=5)


@pytest.fixture
def dut(request, pytestconfig):
    """The device under test, at rest: no session, no fault, default load."""
    target = pytestconfig.stash[TARGET]
    if request.node.get_closest_marker("flash") and not target.is_board:
        emu, url, board = request.getfixturevalue("served_emulator")
        d = SerialDut(Link.open(url), board, port=url)
        d.request("hello", timeout_s=10.0)
        request.node.user_properties += [("hil_target", "served emulator"), ("hil_board", board["name"])]
        yield d
        d.close()
        return
    d = request.getfixturevalue("hil_target")
    request.node.user_properties += [("hil_target", d.target), ("hil_board", d.board["name"])]
    if target.is_board:
        request.node.user_properties.append(("hil_port", target.port))
    d.settle()
    yield d
    d.settle()

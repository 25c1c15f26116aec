"""Make the in-tree ``host/`` package importable without installing it."""
import pathlib
import sys

_HOST = pathlib.Path(__file__).resolve().parent.parent / "host"
if str(_HOST) not in sys.path:
    sys.path.insert(0, str(_HOST))
# The fidelity-gate helpers (mpvm.py, firmware_paths.py) live beside this file.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


import heapq  # noqa: E402
import itertools  # noqa: E402

import pytest  # noqa: E402


class FakeHandle:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class FakeClock:
    """Minimal virtual clock implementing the emulator Clock protocol."""

    def __init__(self):
        self.t = 0
        self._heap = []
        self._seq = itertools.count()

    def now_ns(self):
        return self.t

    def schedule(self, t_ns, callback):
        handle = FakeHandle()
        heapq.heappush(self._heap, (max(t_ns, self.t), next(self._seq), handle, callback))
        return handle

    def sleep_until(self, t_ns):
        self.run_until(t_ns)

    def quiet_until(self):
        """Inside a callback of run_until: the next callback or the end of the run."""
        nxt = min((e[0] for e in self._heap if not e[2].cancelled), default=None)
        end = self._until if self._until is not None else self.t
        return end if nxt is None or end < nxt else nxt

    _until = None
    callbacks_run = 0

    def run_until(self, t_ns):
        outer, self._until = self._until, t_ns
        try:
            while self._heap and self._heap[0][0] <= t_ns:
                t, _, handle, callback = heapq.heappop(self._heap)
                if not handle.cancelled:
                    self.t = max(self.t, t)
                    self.callbacks_run += 1
                    callback()
            self.t = max(self.t, t_ns)
        finally:
            self._until = outer

    def pending(self):
        return sum(1 for entry in self._heap if not entry[2].cancelled)


class FakePins:
    """Records every drive(); inputs are set by the test in ``inputs``."""

    def __init__(self):
        self.history = []
        self.levels = {}
        self.inputs = {}

    def drive(self, pin_id, level, t_ns):
        self.history.append((t_ns, pin_id, level))
        self.levels[pin_id] = level

    def level(self, pin_id):
        return self.inputs.get(pin_id, self.levels.get(pin_id, 0))

    def edges(self, pin_id):
        return [(t, lvl) for t, p, lvl in self.history if p == pin_id]


class Pin:
    """machine.Pin stand-in: the shims only read ``.id``."""

    def __init__(self, id):
        self.id = id


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def board():
    return FakePins()





import os  # noqa: E402

from myotone.emulator import Emulator  # noqa: E402
from firmware_paths import FIRMWARE_DIR, REPO, SAMPLE_FIRMWARE_DIR  # noqa: E402
from mpvm import MicroPythonVM, device_modules  # noqa: E402
from safety_helpers import Bench  # noqa: E402

STUBS_ROOT = REPO / ".stubs"


@pytest.fixture
def fw():
    """Import firmware modules (pure logic) into an isolated emulator world."""
    emu = Emulator("pico-mcp4725")
    yield emu.runtime.import_module
    emu.close()


@pytest.fixture
def emu():
    """A started emulator, in lockstep, with the boot output drained."""
    e = Emulator("pico-mcp4725").start()
    e.run_for(0.2)
    e.read()
    yield e
    e.close()


@pytest.fixture
def bench():
    """A started emulator with the plant as the measuring rig (safety_helpers.Bench)."""
    b = Bench()
    yield b
    b.close()


@pytest.fixture(scope="session")
def mpvm():
    """One real MicroPython VM (WebAssembly port under Node) for the whole session.

    It holds the firmware's pure-logic files; imports are limited to modules
    that both the rp2 and the esp32 firmware have.  Under pytest-xdist each
    worker gets its own VM.
    """
    vm = MicroPythonVM(FIRMWARE_DIR, allow_modules=device_modules(STUBS_ROOT, ["rp2", "esp32"]),
                       timeout=float(os.environ.get("MYOTONE_MPVM_TIMEOUT", "30")))
    vm.start()
    yield vm
    vm.close()


@pytest.fixture(scope="session")
def sample_mpvm():
    """A VM holding tests/mpvm_sample/firmware, for the gate's own tests."""
    vm = MicroPythonVM(SAMPLE_FIRMWARE_DIR, allow_modules=device_modules(STUBS_ROOT, ["rp2", "esp32"]))
    vm.start()
    yield vm
    vm.close()

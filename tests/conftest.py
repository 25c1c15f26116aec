"""Make the `myotone` package importable without installing it."""

import os
import sys
from pathlib import Path

HOST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host")
if HOST not in sys.path:
    sys.path.insert(0, HOST)
# The fidelity-gate helpers (mpvm.py, firmware_paths.py) live beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest

from myotone.emulator import Emulator

from firmware_paths import FIRMWARE_DIR, REPO, SAMPLE_FIRMWARE_DIR  # noqa: E402
from mpvm import MicroPythonVM, device_modules  # noqa: E402

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

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from firmware_paths import FIRMWARE_DIR, REPO  # noqa: E402
from mpvm import MicroPythonVM, device_modules  # noqa: E402

STUBS_ROOT = REPO / ".stubs"


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
    from firmware_paths import SAMPLE_FIRMWARE_DIR

    vm = MicroPythonVM(SAMPLE_FIRMWARE_DIR, allow_modules=device_modules(STUBS_ROOT, ["rp2", "esp32"]))
    vm.start()
    yield vm
    vm.close()

"""Make the `myotone` package importable without installing it."""

import os
import sys

HOST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host")
if HOST not in sys.path:
    sys.path.insert(0, HOST)

import pytest

from myotone.emulator import Emulator


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

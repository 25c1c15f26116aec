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

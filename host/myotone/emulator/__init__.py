"""The Myotone emulator: the unmodified firmware on a virtual board.

    from myotone.emulator import Emulator
    with Emulator("pico-mcp4725") as emu:
        emu.run_for(1.0)
        emu.send({"id": 1, "cmd": "hello"})
"""
from .board import Emulator, EmulatorError  # noqa: F401

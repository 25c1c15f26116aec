"""The silicon tier: the official MicroPython RP2040 firmware, instruction by instruction
in rp2040js, with the project's firmware in its flash and the fast tier's plant on its
pins. The ground truth for execution time, heap and the port's own behaviour
(docs/emulator.md)."""
from .assets import SiliconUnavailable, find_uf2  # noqa: F401
from .board import SiliconBoard  # noqa: F401

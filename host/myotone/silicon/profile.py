"""Where the chip's cycles go: a profile taken on the silicon tier, by function.

rp2040js runs the official firmware instruction by instruction; the rig counts the cycles
spent at each instruction address (SiliconBoard.profile_start / profile_take) and this
module names them with the ELF's functions. The MicroPython VM's C functions are named
(mp_execute_bytecode: the bytecode interpreter; mp_map_lookup: attribute and global
lookups; ...); code the VM compiled into RAM (@micropython.native and .viper functions) is
one bucket, as it has no symbol.
"""
from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path

from myotone.silicon import elf

RAM = (0x2000_0000, 0x2004_2000)
NATIVE_CODE = "(native/viper code in RAM)"
BOOT_ROM = "(boot ROM)"


class Symbols:
    def __init__(self, elf_path: Path):
        funcs = [f for f in elf.functions(elf_path) if f[1] > 0]
        self._starts = [a for a, _, _ in funcs]
        self._funcs = funcs

    def name(self, pc: int) -> str:
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0:
            addr, size, name = self._funcs[i]
            if pc < addr + size:
                return name
        if RAM[0] <= pc < RAM[1]:
            return NATIVE_CODE
        if pc < 0x4000:
            return BOOT_ROM
        return f"0x{pc:08x}"


def by_function(cycles: dict[int, int], symbols: Symbols) -> list[tuple[str, int]]:
    """The cycles per function, most first."""
    total: Counter[str] = Counter()
    for pc, c in cycles.items():
        total[symbols.name(pc)] += c
    return total.most_common()

"""Symbols of the firmware's ELF (32-bit little-endian ARM), to map a function to its
address: the silicon tier times calls of a named function on the chip (`Chip(probe=…)`)."""
from __future__ import annotations

import struct
from pathlib import Path

_SHT_SYMTAB = 2


def symbols(path: Path) -> dict[str, int]:
    """Function and object symbols by name: their address (Thumb bit cleared)."""
    return {name: addr for name, addr, _size, _func in _entries(path)}


def functions(path: Path) -> list[tuple[int, int, str]]:
    """Every function: (address, size, name), by address (a profile's addresses name them)."""
    return sorted((addr, size, name) for name, addr, size, func in _entries(path) if func)


def _entries(path: Path) -> list[tuple[str, int, int, bool]]:
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{path} is not a 32-bit little-endian ELF file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    out: list[tuple[str, int, int, bool]] = []
    for sh in sections:
        if sh[1] != _SHT_SYMTAB:
            continue
        strtab = sections[sh[6]]                     # sh_link: the symbol names' string table
        names = data[strtab[4]:strtab[4] + strtab[5]]
        for off in range(sh[4], sh[4] + sh[5], sh[9] or 16):
            name_off, value, size, info = struct.unpack_from("<IIIB", data, off)
            if (info & 0xF) in (1, 2) and name_off:     # STT_OBJECT, STT_FUNC
                end = names.index(b"\0", name_off)
                out.append((names[name_off:end].decode(), value & ~1, size, info & 0xF == 2))
    return out

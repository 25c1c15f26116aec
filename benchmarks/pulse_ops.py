"""Bytecodes per interrupt step: pulse_vm's program run in CPython, its opcodes counted.

The MicroPython WebAssembly VM cannot trace (no sys.settrace), so the
bytecode-level comparison runs the very same program (fakes, firmware pulse
back-ends, straightforward versions, step loops) in the emulator's firmware
world on CPython, with a fake rp2, and counts the CPython bytecodes each
step executes (sys.settrace with f_trace_opcodes), minus the empty loop's.
CPython's instruction set is not MicroPython's, but one source line costs a
similar handful of either: the counts compare the two designs, not the VMs.
"""
from __future__ import annotations

import sys
import types

from myotone.emulator import Emulator


def _opcodes(fn, n: int) -> int:
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "opcode":
            count += 1
        return local

    def start(frame, event, arg):
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    old = sys.gettrace()
    sys.settrace(start)
    try:
        fn(n)
    finally:
        sys.settrace(old)
    return count


def opcodes_per_step(program: str, fake_rp2: str, names: list[str], steps_n: int = 2000) -> dict[str, float]:
    """{loop name: CPython opcodes per iteration, minus "empty_loop"'s} for each name in `names`."""
    emu = Emulator("pico-mcp4725")              # not started: only its firmware world is used
    try:
        rt = emu.runtime
        rp2 = types.ModuleType("rp2")
        rp2.__dict__["__builtins__"] = rt.builtins
        exec(compile(fake_rp2, "rp2.py", "exec"), rp2.__dict__)
        rt.modules["rp2"] = rp2                 # before the port's own rp2 is made
        ns = {"__name__": "__main__", "__builtins__": rt.builtins}
        exec(compile(program, "pulse_vm", "exec"), ns)
        base = _opcodes(ns["empty_loop"], steps_n)
        return {name: (_opcodes(ns[name], steps_n) - base) / steps_n for name in names}
    finally:
        emu.close()

"""Emulator speed: virtual seconds per wall second of the 20-minute reference session.

Lockstep, every fast-path sample (supervisor.hz), every bookkeeping tick and
every pulse interrupt of the unmodified firmware executed (session20.py). Also
measured: what the firmware's own ticks cost per virtual second under CPython
with the ADC reads replaced by constants, which bounds how fast any emulator
running them can be.
"""
from __future__ import annotations

import time

import session20
from report import Section
from safety_helpers import board_for

TARGET_X = 200                      # the target: 20 minutes in under 6 s


class _ConstantAdc:
    """An ADC that costs nothing: what is left of a tick is the firmware's own code."""

    def __init__(self, value: int):
        self.value = value

    def read_u16(self) -> int:
        return self.value

    def read_uv(self) -> int:
        return self.value


def firmware_tick_us(n: int = 20_000) -> float:
    """CPython cost of the firmware's ticks per virtual millisecond in `run` (supervisor.hz / 1000
    fast-path samples and BOOKKEEPING_SLICES x BOOKKEEPING_HZ / 1000 bookkeeping calls), ADC reads excluded
    (median of 5)."""
    from myotone.emulator import Emulator
    emu = Emulator(board_for("pio")).start()
    try:
        emu.run_for(0.5)
        emu.send({"id": 1, "cmd": "start", "program": "lift", "ua": session20.UA, "duration_s": 600,
                  "telemetry_ms": 1000, **session20.WAVE})
        emu.run_for(5.0)                            # in run, the pulse playing
        sup = emu.runtime.modules["myotone.app"].supervisor
        sense, hw = sup.sense, sup.hw
        sense._conv_i = _ConstantAdc(sense._conv_i()).read_u16     # the conversions Sense binds
        sense._conv_v = _ConstantAdc(sense._conv_v()).read_u16
        hw._adc_temp = _ConstantAdc(hw._adc_temp.read_u16())
        fast_per_ms = emu.board["supervisor"]["hz"] / 1000
        fw = emu.runtime.import_module
        books_per_ms = fw("myotone.limits").BOOKKEEPING_HZ * fw("myotone.supervisor").BOOKKEEPING_SLICES / 1000
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                sup.fast.run(None)
            fast_us = (time.perf_counter() - t0) / n * 1e6
            t0 = time.perf_counter()
            for _ in range(n):
                sup.tick(None)
            books_us = (time.perf_counter() - t0) / n * 1e6
            runs.append(fast_per_ms * fast_us + books_per_ms * books_us)
        return sorted(runs)[2]
    finally:
        emu.close()


def measure(quick: bool = False) -> Section:
    session_s = 20 if quick else session20.SESSION_S
    tick_us = firmware_tick_us(2_000 if quick else 20_000)      # first: before the sessions fill the heap
    rows = []
    for backend in ("pio", "rmt", "timer"):
        r = session20.run(backend, session_s)
        rows.append({"backend": backend, "board": r["board"], "virtual_s": r["virtual_s"],
                     "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                     "speed_x": r["virtual_s"] / r["wall_s"],
                     "ticks": r["ticks"], "hz": r["hz"], "telemetry": r["telemetry"],
                     "telemetry_late_ms": r["telemetry_late_ms"],
                     "states": " ".join(r["states"]), "faults": len(r["faults"])})
    pio = rows[0]
    return Section(
        name="emulator",
        title=f"a {session_s // 60 or session_s} {'min' if session_s >= 60 else 's'} session, "
              "100 Hz biphasic, fast path at supervisor.hz, telemetry 1/s, lockstep",
        rows=rows,
        target=f">= {TARGET_X}x real time on the reference (pio) session",
        met=pio["speed_x"] >= TARGET_X,
        notes=[f"the firmware's own ticks (fast path and bookkeeping) cost {tick_us:.1f} us per virtual ms "
               f"under CPython (ADC reads excluded): no emulator that executes them can exceed "
               f"{1000 / tick_us:.0f}x on this machine",
               "speed_x = virtual_s / wall_s; cpu_s counts every thread of the process"])

"""The reference session of the benchmarks, run once per board/back-end and shared.

A 20-minute session of 100 Hz biphasic pulses (1 ms phases, 200 µs gap,
alternating polarity) at 300 µA, telemetry every second, on the emulator in
lockstep: every supervisor tick (1 kHz) and every pulse interrupt of the
unmodified firmware runs. The emulator section reports its speed; the pulse
section checks its bridge edges against the ideal schedule.
"""
from __future__ import annotations

import resource
import time

from myotone.emulator import Emulator
from emu_lines import json_messages
from safety_helpers import BACKEND_BOARDS, board_for

SESSION_S = 1200
WAVE = {"hz": 100, "phase_us": 2000, "gap_us": 200, "alternate": True}
UA = 300
BACKENDS = tuple(BACKEND_BOARDS)    # pio, rmt, timer (the board each runs on: safety_helpers.board_for)

_cache: dict = {}


def _cpu_s() -> float:
    """CPU time of the whole process (the emulated CPU runs on its own thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _late_ms(t_ms: list[int]) -> int:
    """How far the periodic telemetry lines strayed from 1 s apart (device ms): the main loop
    sends each when it sees it due. The last line is the session's end (sent at once)."""
    gaps = [(b - a) & 0x3FFFFFFF for a, b in zip(t_ms, t_ms[1:-1])]
    return max((abs(g - 1000) for g in gaps), default=-1)


def run(backend: str, session_s: int = SESSION_S) -> dict:
    """Run (or recall) the reference session on `backend`; figures and the emulator's records."""
    key = (backend, session_s)
    if key in _cache:
        return _cache[key]
    emu = Emulator(board_for(backend), seed=1).start()
    try:
        emu.run_for(0.5)                                    # boot: not part of the figure
        emu.read()
        sup = emu.runtime.modules["myotone.app"].supervisor
        ticks0 = sup.fast.n                                 # the fast path's samples
        msgs: list[dict] = []
        w0, c0, v0 = time.perf_counter(), _cpu_s(), emu.clock.now_ns
        emu.send({"id": 1, "cmd": "start", "program": "lift", "ua": UA, "duration_s": session_s,
                  "telemetry_ms": 1000, **WAVE})
        states: list[str] = []
        while "done" not in states and "fault" not in states:
            if emu.clock.now_ns - v0 > (session_s + 10) * 1_000_000_000:
                raise RuntimeError(f"{backend}: the session did not end (states {states})")
            emu.run_for(1.0)
            for m in json_messages(emu):           # whole lines (a paced one may come in two reads)
                msgs.append(m)
                if m.get("ev") == "state":
                    states.append(m["state"])
        wall, cpu, virt = time.perf_counter() - w0, _cpu_s() - c0, (emu.clock.now_ns - v0) / 1e9
        reply = next(m for m in msgs if m.get("id") == 1)
        if not reply.get("ok"):
            raise RuntimeError(f"{backend}: start refused: {reply}")
        fw = emu.runtime.modules
        table = fw["myotone.pulse"].Table().compile(fw["myotone.pulse"].Waveform(WAVE["hz"] * 1000, WAVE["phase_us"], WAVE["gap_us"], WAVE["alternate"]), 1, 1, 0x3FFFFFFF)
        pins = (emu.board["bridge"]["pol_a"], emu.board["bridge"]["pol_b"])
        result = {
            "backend": backend, "board": emu.board["name"], "session_s": session_s,
            "virtual_s": virt, "wall_s": wall, "cpu_s": cpu,
            "ticks": sup.fast.n - ticks0, "hz": emu.board["supervisor"]["hz"], "states": states,
            "telemetry": sum(1 for m in msgs if m.get("ev") == "telemetry"),
            "telemetry_late_ms": _late_ms([m["t_ms"] for m in msgs if m.get("ev") == "telemetry"]),
            "faults": [m for m in msgs if m.get("ev") == "fault"],
            "edges": [e for e in emu.mcu.edges if e[0] >= v0 and e[1] in pins],
            "pins": pins, "table": table, "start_ns": v0,
        }
    finally:
        emu.close()
    _cache[key] = result
    return result

"""Soak: back-to-back sessions on the emulated board, in lockstep virtual time.

Shared by tests/test_soak.py (minutes) and benchmarks/soak.py (8 hours).
After every session it checks, from the truth of the emulator:

* edges: every POL_A/POL_B edge of the session against the ideal schedule
  of the program's compiled table, from the session's first edge (drift =
  the error of the last edge; PIO and RMT play exact microseconds);
* ticks: the supervisor's own tick count against elapsed virtual time x hz;
* memory: the bytes of the Python objects the firmware world holds (its
  modules and every firmware object reachable from them) and the process RSS;
* the session itself: its states, no fault, output safe afterwards.

The emulator's own records (pin edges, DAC writes, current trace) are
analysed and then trimmed after each session, so an 8-hour run is flat.
"""
from __future__ import annotations

import itertools

import array
import json
import os
import sys
import time

from myotone.emulator import Emulator
from emu_lines import json_messages

NS_PER_US = 1000
# program, current, how the session ends: "end" (its duration), "stop" (host stop half-way)
PLAN = [("lift", 300, "end"), ("contour", 200, "end"), ("gentle", 150, "stop"), ("lift", 500, "stop"),
        ("contour", 450, "end"), ("gentle", 80, "end")]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def world_bytes(runtime) -> int:
    """Bytes of the data the firmware's modules hold (objects of firmware classes and containers).

    Module objects loaded from the flash are the roots; instances of their
    classes and built-in containers are followed; functions, classes and the
    emulator's shims (hardware) are not.
    """
    fw_modules = {name for name, m in runtime.modules.items() if getattr(m, "__file__", None)}
    seen: set[int] = set()
    total = 0
    stack = [vars(runtime.modules[n]) for n in fw_modules]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        t = type(obj)
        if t in (dict,):
            if obj is runtime.builtins:
                continue
            total += sys.getsizeof(obj)
            for k, v in obj.items():
                if k != "__builtins__":
                    stack.append(k)
                    stack.append(v)
        elif t in (list, tuple, set, frozenset):
            total += sys.getsizeof(obj)
            stack.extend(obj)
        elif t in (str, bytes, int, float, bool, bytearray, array.array, type(None)):
            total += sys.getsizeof(obj)
        elif getattr(t, "__module__", None) in fw_modules and hasattr(obj, "__dict__"):
            total += sys.getsizeof(obj)
            stack.append(vars(obj))
    return total


def _ideal_iter(table, t0_ns: int, pin_a: int, pin_b: int):
    """The bridge edges the table should produce from t0 (first segment's start), without end."""
    segs = [(table.dur[i], table.state[i] & 3) for i in range(table.n)]
    cycle = segs * table.reps + [(table.off, 0)] if table.reps else segs
    a = b = 0
    t = t0_ns
    while True:
        for dur_us, state in cycle:
            na, nb = state & 1, (state >> 1) & 1
            # break-before-make order, as the bridge drivers do: a falling pin first
            for pin, old, new in sorted(((pin_a, a, na), (pin_b, b, nb)), key=lambda x: x[2]):
                if old != new:
                    yield (t, pin, new)
            a, b = na, nb
            t += dur_us * NS_PER_US


def ideal_edges(table, t0_ns: int, pin_a: int, pin_b: int, count: int) -> list[tuple[int, int, int]]:
    """The first `count` bridge edges the table should produce from t0 (first segment's start)."""
    return list(itertools.islice(_ideal_iter(table, t0_ns, pin_a, pin_b), count))


def edge_errors_ns(edges, table, pin_a: int, pin_b: int, signed: bool = False,
                   restarts: list | None = None, glitches: list | None = None) -> list[int]:
    """|error| (or, signed, edge - ideal) in ns of each bridge edge of one session against the table's
    schedule from its first edge.

    `edges` are (t_ns, pin, level) of pins a and b, in order. The stop's own
    edges (those at the time of the last edge) end the schedule and are not
    checked. An edge on the wrong pin or to the wrong level raises SoakError.

    A checkpoint (firmware/myotone/checkpoint.py) stops the table after a pair and
    starts it again from its first pair, never sooner than the schedule's next one: a
    pair's first edge that comes later than the schedule (or where the schedule has
    another edge) with the bridge off begins the schedule again there, and its time goes
    to `restarts` (when given; else it is an error like any other). An edge earlier than
    the schedule is always one.

    With `glitches` given, a pin that rises and falls at the same instant (a close that lands
    at the very start of a pair on the RMT back-end: no current flows) is not a pulse: both
    edges leave the schedule and their time goes to `glitches`.
    """
    if not edges:
        raise SoakError("no bridge edges in a session")
    t_stop = edges[-1][0]
    edges = [e for e in edges if e[0] < t_stop]
    if glitches is not None:
        kept: list = []
        for e in edges:
            if kept and e[2] == 0 and kept[-1] == (e[0], e[1], 1):
                glitches.append(kept.pop()[0])
            else:
                kept.append(e)
        edges = kept
    if not edges:
        raise SoakError("no bridge edges before the stop")
    first = table.state[0] & 3
    first_pin = pin_a if first & 1 else pin_b
    ideal = _ideal_iter(table, edges[0][0], pin_a, pin_b)
    level = {pin_a: 0, pin_b: 0}
    errs = []
    for got in edges:
        want = next(ideal)
        if (restarts is not None and (got[0] > want[0] or got[1:] != want[1:]) and got[0] >= want[0]
                and got[1:] == (first_pin, 1) and not level[pin_a] and not level[pin_b]):
            restarts.append(got[0])
            ideal = _ideal_iter(table, got[0], pin_a, pin_b)
            want = next(ideal)
        if got[1:] != want[1:]:
            raise SoakError(f"edge {got} where the schedule has {want}")
        errs.append(got[0] - want[0] if signed else abs(got[0] - want[0]))
        level[got[1]] = got[2]
    return errs


def program_wave(modules, program: str):
    """The Waveform of a single-phase built-in program, from the firmware's own library."""
    P = modules["myotone.programs"]
    return P.waveform(P.builtin(program)["phases"][0])


class SoakError(AssertionError):
    pass


class Soak:
    def __init__(self, board: str = "pico-mcp4725", session_s: int = 60, seed: int = 1):
        self.emu = Emulator(board, seed=seed).start()
        self.board = self.emu.board
        self.session_s = session_s
        self.emu.run_for(0.2)
        self.emu.read()
        self.hz = self.board["supervisor"]["hz"]
        fw = self.emu.runtime.import_module
        self.books_hz = fw("myotone.limits").BOOKKEEPING_HZ * fw("myotone.supervisor").BOOKKEEPING_SLICES
        self.pins = (self.board["bridge"]["pol_a"], self.board["bridge"]["pol_b"])
        self.sessions = []
        self.t0_ns = self.emu.clock.now_ns
        self.ticks0 = self.sup.fast.n        # the fast path's samples, at supervisor.hz
        self.books0 = self.book_calls()      # the bookkeeping tick's calls
        self.dropped0 = self.emu.clock.soft_dropped
        self.max_edge_err_ns = 0
        self.edges_checked = 0
        self.wall_s = 0.0

    @property
    def sup(self):
        return self.emu.runtime.modules["myotone.app"].supervisor

    def close(self) -> None:
        self.emu.close()

    def messages(self) -> list[dict]:
        return json_messages(self.emu)

    def _table(self, program: str):
        fw = self.emu.runtime.modules
        return fw["myotone.pulse"].Table().compile(program_wave(fw, program), 1, 1, 0x3FFFFFFF)

    def _ramp_s(self, program: str) -> float:
        """How long the program's ramp to its setpoint lasts: >= 2 s, and >= 20 pair intervals
        (its period plus a burst's off time: limits.RAMP_MIN_PAIRS)."""
        fw = self.emu.runtime.modules
        lim, w = fw["myotone.limits"], program_wave(fw, program)
        return max(lim.RAMP_MIN_MS, lim.RAMP_MIN_PAIRS * (w.period_us + w.burst_off_ms * 1000) / 1000) / 1000

    def _end_s(self, program: str) -> float:
        """From the stop (or the end of its time) to done: the ramp-down, 1.5 s or two pair
        intervals when longer, then the pair under way; and a second of margin."""
        fw = self.emu.runtime.modules
        lim, w = fw["myotone.limits"], program_wave(fw, program)
        pair_s = (w.period_us + w.burst_off_ms * 1000) / 1e6
        return max(lim.RAMP_DOWN_MS / 1000, 2 * pair_s) + pair_s + 1

    def one_session(self, k: int) -> dict:
        emu = self.emu
        program, ua, how = PLAN[k % len(PLAN)]
        t_start = emu.clock.now_ns
        emu.send({"id": k, "cmd": "start", "program": program, "ua": ua, "duration_s": self.session_s})
        msgs, reply = [], None
        for _ in range(50):            # the reply within 0.5 s (a collection with the output off, or
            emu.run_for(0.01)          # the ESP32's paced console, can hold it past 10 ms)
            msgs += self.messages()
            reply = next((m for m in msgs if m.get("id") == k), None)
            if reply is not None:
                break
        if not (reply and reply.get("ok")):
            raise SoakError(f"session {k}: start refused: {reply}")
        if how == "stop":
            emu.run_for(self.session_s / 2)
            emu.send({"id": k, "cmd": "stop"})
        limit_ns = t_start + int((self.session_s + self._end_s(program)) * 1e9)
        states = [m["state"] for m in msgs if m.get("ev") == "state"]
        while "done" not in states and "fault" not in states:
            if emu.clock.now_ns > limit_ns:
                raise SoakError(f"session {k} did not end: states {states}")
            emu.run_for(1.0)
            msgs = self.messages()
            states += [m["state"] for m in msgs if m.get("ev") == "state"]
            faults = [m for m in msgs if m.get("ev") == "fault"]
            if faults:
                raise SoakError(f"session {k} ({program}): fault {faults}")
        ends_s = self.session_s / 2 if how == "stop" else self.session_s
        want = ["ramp", "run", "ramp_down", "done"] if self._ramp_s(program) < ends_s else ["ramp", "ramp_down", "done"]
        if states != want:
            raise SoakError(f"session {k} ({program}, {how}): states {states}, expected {want}")
        p = emu.plant
        if p.dac_code or p.bridge_a or p.bridge_b or p.hv_on:
            raise SoakError(f"session {k}: output not safe after the session")
        err_ns, drift_ns, n = self._check_edges(program, t_start)
        self._trim()
        emu.run_for(1.0)                        # idle between sessions, a host asking as hosts do
        emu.send({"id": "s", "cmd": "status"})
        got: list = []
        for _ in range(50):         # the reply takes ~40 ms at the ESP32 UART's rate (console.py)
            emu.run_for(0.01)
            got += [m for m in self.messages() if m.get("id") == "s"]
            if got:
                break
        st = got[0]
        if st["state"] != "done" or st["fault"] is not None:
            raise SoakError(f"session {k}: status after it {st}")
        rec = {"n": k, "program": program, "ua": ua, "end": how, "edges": n, "max_edge_err_us": err_ns / 1000,
               "drift_us": drift_ns / 1000, "world_bytes": world_bytes(emu.runtime), "rss_bytes": rss_bytes(),
               "missed_ticks": self.missed_ticks(), "t_s": round(emu.now_s, 3)}
        self.sessions.append(rec)
        return rec

    def _check_edges(self, program: str, t_start: int) -> tuple[int, int, int]:
        a, b = self.pins
        edges = [e for e in self.emu.mcu.edges if e[0] >= t_start and e[1] in (a, b)]
        restarts: list = []
        errs = edge_errors_ns(edges, self._table(program), a, b, restarts=restarts, glitches=[])
        # a restart only where a hold collected the heap with the output off (heap.py, checkpoint.py)
        held = [c.t_ns for c in self.emu.runtime.heap.collections if c.t_ns >= t_start and not c.hv_on]
        for t in restarts:
            if not any(t - 11 * 10**9 <= c <= t for c in held):
                raise SoakError(f"the schedule restarted at {t} ns with no hold before it")
        self.max_edge_err_ns = max(self.max_edge_err_ns, max(errs))
        self.edges_checked += len(errs)
        return max(errs), errs[-1], len(errs)

    def _trim(self) -> None:
        """Forget the emulator's records of the session (analysed already)."""
        mcu, tr = self.emu.mcu, self.emu.plant.trace
        mcu.edges.clear()
        mcu.dac_writes.clear()
        n = len(tr.t_ns)
        if n > 1:                   # keep the present segment (totals stay integrated)
            last = tr.exp.get(n - 1)
            del tr.t_ns[:-1]
            del tr.i_ua[:-1]
            tr.exp.clear()
            if last is not None:
                tr.exp[0] = last

    def book_calls(self) -> int:
        """The bookkeeping tick's calls: its slices and the calls that finished a cut."""
        return self.sup.ticks + self.sup.cut_calls

    def missed_ticks(self) -> int:
        """Fast-path samples and bookkeeping ticks missing (or extra) against elapsed
        virtual time x their rates. On the ESP32 one soft timer runs both (hardware._Both), and
        a garbage collection with the output off (heap.py) drops the calls MicroPython's
        scheduler queue cannot hold: those are counted apart (`dropped_ticks`), and the
        bookkeeping is judged against the calls that ran."""
        elapsed_ns = self.emu.clock.now_ns - self.t0_ns
        expected = elapsed_ns * self.hz // 1_000_000_000
        ran = self.sup.fast.n - self.ticks0
        books_ran = self.book_calls() - self.books0
        if self.board["mcu"] == "esp32":
            books = ran * self.books_hz // self.hz     # give or take the one call under way
            return (expected - ran - self.dropped_ticks()) + (0 if abs(books - books_ran) <= 1 else books - books_ran)
        books = elapsed_ns * self.books_hz // 1_000_000_000
        return (expected - ran) + (books - books_ran)

    def dropped_ticks(self) -> int:
        """Soft-timer calls lost while a garbage collection ran (the emulator's heap model)."""
        return self.emu.clock.soft_dropped - self.dropped0

    def elapsed_wall(self) -> float:
        return time.monotonic() - self._wall0

    def run(self, virtual_s: float, progress=None) -> dict:
        wall0 = self._wall0 = time.monotonic()
        k = 0
        while self.emu.now_s - self.t0_ns / 1e9 < virtual_s:
            rec = self.one_session(k)
            k += 1
            if progress:
                progress(rec)
        self.wall_s = time.monotonic() - wall0
        return self.summary()

    def world_growth(self) -> int:
        """Growth of the firmware's bytes: the last plan cycle against the second.

        What the firmware holds depends on the last session's program (its
        log record, its table), so sessions are compared a whole cycle of
        PLAN apart, the first cycle being the warm-up.
        """
        wb = [r["world_bytes"] for r in self.sessions]
        c = len(PLAN)
        base = max(wb[c:2 * c]) if len(wb) >= 2 * c else max(wb[:c])
        return max(wb[-c:]) - base

    def summary(self) -> dict:
        s = self.sessions
        warm = s[min(2, len(s) - 1)]              # after the first sessions have built what they keep
        return {
            "board": self.board["name"], "backend": self.board["pulse"]["backend"],
            "sessions": len(s), "virtual_s": round(self.emu.now_s - self.t0_ns / 1e9, 1),
            "wall_s": round(self.wall_s, 1),
            "speed_x": round((self.emu.now_s - self.t0_ns / 1e9) / self.wall_s, 1) if self.wall_s else None,
            "edges_checked": self.edges_checked, "max_edge_err_us": self.max_edge_err_ns / 1000,
            "max_drift_us": max(abs(r["drift_us"]) for r in s),
            "ticks": self.sup.fast.n - self.ticks0, "missed_ticks": self.missed_ticks(),
            "dropped_ticks": self.dropped_ticks(),
            "world_bytes_first": s[0]["world_bytes"], "world_bytes_warm": warm["world_bytes"],
            "world_bytes_last": s[-1]["world_bytes"],
            "world_bytes_growth_after_warmup": self.world_growth(),
            "rss_mb_warm": round(warm["rss_bytes"] / 2 ** 20, 1), "rss_mb_last": round(s[-1]["rss_bytes"] / 2 ** 20, 1),
            "rss_mb_max": round(max(r["rss_bytes"] for r in s) / 2 ** 20, 1),
        }

"""Pulse core: edge-time error per back-end over the 20-minute session, and the cost of one interrupt step.

Part A: every bridge edge (POL_A/POL_B) of the reference session
(session20.py: ramp, run, ramp-down) against the ideal schedule of the
firmware's compiled table, from the session's first edge and again from each
restart after a checkpoint (the record saved once a minute with the output
off: `restarts`; never sooner than the schedule's next pair); amplitude
changes do not move edges, and the stop at the end ends the schedule
(tests/soak_run.edge_errors_ns). Part B: pulse_vm.py, on the real
MicroPython VM.
"""
from __future__ import annotations

import statistics

import report
import session20
from safety_helpers import TIMER_PULSE
from soak_run import edge_errors_ns

QUICK_SESSION_S = 20
EXACT_BACKENDS = ("pio", "rmt")          # the target: 0 us drift and error for these


def edge_rows(session_s: int) -> list[dict]:
    rows = []
    for backend in session20.BACKENDS:
        r = session20.run(backend, session_s)
        restarts: list[int] = []            # the session's checkpoints: the schedule from each restart
        glitches: list[int] = []            # a rise and a fall at one instant: no pulse (counted, not judged)
        signed_ns = edge_errors_ns(r["edges"], r["table"], *r["pins"], signed=True, restarts=restarts,
                                   glitches=glitches)
        errs_ns = [abs(e) for e in signed_ns]
        rows.append({"backend": backend, "board": r["board"], "session_s": session_s, "edges": len(errs_ns),
                     "max_err_us": max(errs_ns) / 1000, "drift_us": errs_ns[-1] / 1000,
                     "mean_err_us": round(statistics.fmean(errs_ns) / 1000, 3),
                     "min_signed_us": min(signed_ns) / 1000, "max_signed_us": max(signed_ns) / 1000,
                     "first_edge_after_start_us": (r["edges"][0][0] - r["start_ns"]) / 1000,
                     "restarts": len(restarts), "zero_width": len(glitches),
                     "faults": len(r["faults"])})
    return rows


def measure(quick: bool) -> report.Section:
    import pulse_vm                       # imports the MicroPython VM client (needs Node)
    session_s = QUICK_SESSION_S if quick else session20.SESSION_S
    edges = edge_rows(session_s)
    exact = [r for r in edges if r["backend"] in EXACT_BACKENDS]
    met = all(r["max_err_us"] == 0 and r["drift_us"] == 0 and r["faults"] == 0 for r in exact)
    timer = next(r for r in edges if r["backend"] == "timer")
    tick_us = TIMER_PULSE["tick_us"]
    notes = [f"edges: {session_s} s sessions of 100 Hz biphasic pulses (1 ms phases, 200 us gap, alternating) "
             "at 300 uA in lockstep virtual time, ramp and ramp-down included; the schedule starts at the first "
             "edge and again from each restart after a checkpoint (restarts: the session's record is saved once "
             "a minute with the output off; a restart is never sooner than the schedule's next pair); errors are "
             "|edge - ideal| (signed columns: edge - ideal).",
             "zero_width: a bridge pin that rose and fell at one instant (the RMT back-end, when a checkpoint's "
             "close lands at the very start of a pair: no current flows, no pulse); counted, not judged.",
             f"timer back-end ({tick_us} us tick): largest error {timer['max_err_us']} us, last edge "
             f"{timer['drift_us']} us. Every segment of this waveform is a whole number of ticks and the emulator "
             "runs timer callbacks at their exact deadlines (no interrupt latency is modelled), so its edges land "
             "on the schedule; it cannot drift (counting ticks of a periodic timer gives absolute deadlines). Its "
             f"quantisation shows where it starts: the first edge waits for the first tick (up to {tick_us} us "
             "after start). On hardware each edge is late by that interrupt's latency (jitter, not drift). A "
             "phase or gap that is not a multiple of the tick is refused (timing_unsupported), not rounded."]
    steps, step_notes = pulse_vm.measure_steps(quick)
    return report.Section(
        name="pulse", title="edge-time error against the ideal schedule; one interrupt step on the MicroPython VM",
        rows=edges, target="0 us drift and 0 us edge error for pio and rmt over a 20-minute session",
        met=met, notes=notes + step_notes,
        more=[("one interrupt step, firmware vs a straightforward version (MicroPython VM, wasm):", steps)])

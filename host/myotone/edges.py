"""Pulse timing read from the edges of a captured electrode current, as a scope
would: frequency, phase width, inter-phase gap and the burst envelope.

A phase is a stretch of one sign with |I| at or above half the capture's
peak (the 50 % crossings, as a scope measures a pulse width). Two phases of
opposite sign close together are one biphasic pulse; pulses further apart
than 1.5 periods start a new burst. Medians over the capture, so that the
ramps at the start and the end of a measuring session (phases cut by the
50 % level) do not move a figure; a burst counts only when both its ends
were seen. Times in the capture are seconds; figures come out in the units
the programs use (Hz, µs, ms).
"""
from __future__ import annotations

from statistics import median

LEVEL = 0.5                  # the crossing, as a fraction of the peak
BURST_GAP_PERIODS = 1.5      # a pause longer than this between pulses ends a burst


def phases(capture, level: float = LEVEL) -> list:
    """(start_s, end_s, sign) of each phase: one sign, |I| >= level × peak."""
    thr = level * capture.max_abs_ua
    out: list = []
    if thr <= 0:
        return out
    for a, b, i in capture.segments():
        sign = (i >= thr) - (i <= -thr)
        if not sign:
            continue
        if out and out[-1][2] == sign and out[-1][1] == a:
            out[-1] = (out[-1][0], b, sign)          # the same phase, at another level (a ramp step)
        else:
            out.append((a, b, sign))
    return out


def pulses(ph: list) -> list:
    """(start_s, end_s, gap_s) of each biphasic pulse: two phases of opposite sign. A capture
    may begin mid-pulse: of the two ways to pair the phases, the one whose pairs are (nearly)
    all of opposite sign, and then the one with the shorter gaps inside its pulses."""
    best, best_key = [], None
    for parity in (0, 1):
        cand = [(ph[k], ph[k + 1]) for k in range(parity, len(ph) - 1, 2)]
        pairs = [(a, b) for a, b in cand if a[2] == -b[2]]
        if not pairs:
            continue
        frac = len(pairs) / len(cand)
        inner = median(b[0] - a[1] for a, b in pairs)
        key = (frac >= 0.9, -inner if frac >= 0.9 else frac)
        if best_key is None or key > best_key:
            best, best_key = pairs, key
    return [(a[0], b[1], b[0] - a[1]) for a, b in best]


def timing(capture, level: float = LEVEL) -> dict | None:
    """The measured timing (None: fewer than two pulses seen, no period between them)."""
    ph = phases(capture, level)
    ps = pulses(ph)
    if len(ps) < 2:
        return None
    starts = [p[0] for p in ps]
    steps = [b - a for a, b in zip(starts, starts[1:])]
    period = median(steps)
    out = {"frequency_hz": 1.0 / period,
           "phase_width_us": median(b - a for a, b, _ in ph) * 1e6,
           "interphase_gap_us": median(p[2] for p in ps) * 1e6,
           "burst_on_ms": None, "burst_off_ms": None, "pulses": len(ps)}
    breaks = [k for k, s in enumerate(steps) if s > BURST_GAP_PERIODS * period]
    if len(breaks) >= 2:
        # a burst runs from the pulse after one break to the pulse before the next: n pulses
        # are n periods on; the rest of the burst-to-burst time is off
        bursts = [(breaks[j] + 1, breaks[j + 1]) for j in range(len(breaks) - 1)]
        on = [(last - first + 1) * period for first, last in bursts]
        cycle = [starts[last + 1] - starts[first] for first, last in bursts]
        out["burst_on_ms"] = median(on) * 1e3
        out["burst_off_ms"] = median(c - o for c, o in zip(cycle, on)) * 1e3
    return out

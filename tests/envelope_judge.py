"""Judges of SAFETY.md's invariants on the plant's truth: pure functions of a current trace and pin edges.

The envelope property (tests/test_envelope_property.py, benchmarks/bench_envelope.py) runs a
session and hands these functions what the plant drove (`Trace.segments()`: ``(t0_ns, t1_ns, i0_ua,
i_inf_ua, tau_ns)``, constant when ``tau_ns`` is 0, else relaxing exponentially from ``i0`` towards
``i_inf``) and the MCU's pin edges ``(t_ns, pin, level)``. Nothing here reads what the firmware
reports; the ramp rules are in tests/envelope_ramps.py. Each judge is unit-tested on hand-made
traces in tests/test_envelope_property.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MS = 1_000_000
S = 1_000_000_000

OVER_CURRENT_GRACE_NS = 2 * MS        # SAFETY.md: output off <= 2 ms after the onset
CHARGE_WINDOW_NS = 10 * S             # SAFETY.md: net charge over a sliding 10 s window ...
CHARGE_FRACTION = 0.02                # ... above 2 % of the charge moved
# Absolute floor of the charge-balance judge: 1 nC, the charge of a 20 us phase (the shortest the
# envelope accepts) at 50 uA. Below it the ratio is numerical noise of the trace's float
# integration and of phases the soft start makes tiny (10 uA x 20 us = 0.2 nC a phase); it is 5000
# times under the charge of one lift phase at 500 uA, and a real DC fault moves microcoulombs.
CHARGE_FLOOR_NC = 1.0
# The sense's resolution (SAFETY.md: "*measured* net charge"; docs/safety.md, "Charge balance"): a
# board's sense reads a pair's two phases to 2 % only from its judge level J (`sense.charge_judge_ua`,
# never under 50 uA: whole-uA readings); under it the firmware holds a window's mean net current to
# 2 % of 2 J, F = 0.04 J (2 uA; 3.76 on the ESP32), which its sense reads to within F / 2. So a
# trip is owed where the plant's net passes 2 % of the charge moved, or 1.5 F in mean current where
# less moved: 2 % of what the window's phases would move at 1.5 J (the proposal in docs/safety.md).
# The waveform's own balance (charge_balance) keeps 2 % of the charge moved: its construction has
# no resolution to allow for.
CHARGE_JUDGE_MIN_UA = 50.0
SENSE_TOLERANCE = 1.5


def judge_level_ua(board: dict) -> float:
    """The current at which the plant's net is held to 2 % where less flowed (see above)."""
    j = max(CHARGE_JUDGE_MIN_UA, float(board.get("sense", {}).get("charge_judge_ua", 0)))
    return SENSE_TOLERANCE * j


@dataclass
class Violation:
    cls: str                  # the invariant broken: over_limit, trip_late, not_off, soft_start, ...
    t_ns: int                 # when the plant showed it
    detail: str

    def __str__(self) -> str:
        return f"{self.cls} at {self.t_ns / S:.6f} s: {self.detail}"


# ---- the current trace ----------------------------------------------------------------------------

def current_at(seg, t_ns: float) -> float:
    t0, _, i0, i_inf, tau = seg
    if not tau:
        return i0
    return i_inf + (i0 - i_inf) * math.exp(-(t_ns - t0) / tau)


def above_span(seg, level_ua: float, after_ns: int = 0):
    """The part [a, b) of a segment, from `after_ns` on, where |I| > level_ua (None: nowhere).
    A segment is constant or monotone (one exponential), so the part is a single interval."""
    t0, t1, i0, i_inf, tau = seg
    a = max(t0, after_ns)
    if a >= t1:
        return None
    if not tau:
        return (a, t1) if abs(i0) > level_ua else None
    ia, ib = abs(current_at(seg, a)), abs(current_at(seg, t1))
    if ia > level_ua and ib > level_ua:
        return a, t1
    if ia <= level_ua and ib <= level_ua:
        return None
    # one crossing: |i| - level changes sign between a and t1
    ratio = (level_ua * (1 if i0 >= 0 else -1) - i_inf) / (i0 - i_inf)
    tc = t0 + (-tau * math.log(ratio) if ratio > 0 else 0)
    tc = int(min(max(tc, a), t1))
    return (a, tc) if ia > level_ua else (tc, t1)


def over_limit(segments, level_ua: float, fault_ns: int | None, grace_ns: int = OVER_CURRENT_GRACE_NS):
    """|I| <= level_ua except within `grace_ns` of a fault's onset.

    Onset (for any waveform): the first instant at or after the fault's injection (`fault_ns`) at
    which the plant's |I| exceeds `level_ua`. With a pulsed waveform the current is above the level
    only inside phases; the onset is the start of the first phase (or part of a phase, when the
    fault lands inside one) in which it exceeds the level after the fault, and the grace runs from
    there: a later phase above the level that ends more than `grace_ns` after the onset is a
    violation, even though the current fell to 0 in between. Without a fault (`fault_ns` None),
    and before the fault, every instant above the level is a violation.

    Returns None or a Violation (the first instant above the level outside the grace).
    """
    onset = None
    for seg in segments:
        span = above_span(seg, level_ua)
        if span is None:
            continue
        a, b = span
        if fault_ns is not None and b > fault_ns:
            a = max(a, fault_ns)
            if onset is None:
                onset = a
            if b <= onset + grace_ns:
                continue
            a = max(a, onset + grace_ns)
        peak = max(abs(current_at(seg, a)), abs(current_at(seg, b)))
        since = "" if onset is None else f", {(a - onset) / MS:.3f} ms after the onset at {onset / S:.6f} s"
        return Violation("over_limit", a, f"|I| = {peak:.1f} uA > {level_ua:.1f} uA{since}")
    return None


def first_at_least(segments, level_ua: float, after_ns: int) -> int | None:
    """The first instant at or after `after_ns` with |I| >= level_ua."""
    for seg in segments:
        span = above_span(seg, level_ua - 1e-9, after_ns)
        if span is not None:
            return span[0]
    return None


def zero_since(segments, end_ns: int) -> int:
    """Start of the final span, up to end_ns, in which the plant's current is 0."""
    since = end_ns
    for seg in reversed(list(segments)):
        t0, t1, i0, i_inf, tau = seg
        if t0 >= end_ns:
            continue
        if i0 != 0 or (tau and i_inf != 0):
            return min(t1, end_ns)
        since = t0
    return since


def pin_low_since(edges, pin: int, end_ns: int) -> int | None:
    """When `pin` last went low, if it is low at end_ns (None: high at end_ns); 0 if never driven."""
    level, since = 0, 0
    for t, p, lv in edges:
        if t > end_ns:
            break
        if p == pin and lv != level:
            level, since = lv, t
    return since if level == 0 else None


def driving_from(edges, hv_pin: int, bridge_pins, after_ns: int) -> int | None:
    """The first instant at or after `after_ns` at which the rail is on and the bridge drives."""
    level = {hv_pin: 0, **dict.fromkeys(bridge_pins, 0)}

    def drives():
        return level[hv_pin] and sum(level[p] for p in bridge_pins) == 1

    for t, p, lv in edges:
        if p not in level:
            continue
        if t > after_ns and drives():
            return after_ns
        level[p] = lv
        if t >= after_ns and drives():
            return t
    return after_ns if drives() else None


# ---- phases and pairs -------------------------------------------------------------------------------

@dataclass
class Pulse:
    """One phase, or a biphasic pair, on the plant: its span, peak |I|, net and moved charge."""
    t0: int
    t1: int
    amp_ua: float
    net_nc: float
    moved_nc: float
    sign: int = 0
    whole: bool = True        # a pair with both its phases (False: a phase left without its partner)
    due_ns: int | None = None  # a lone phase: when its partner was due (its end + the gap); until
                               # then it is a healthy pair's first phase, by design unbalanced
    on_ns: int = 0            # how long current flowed: a phase's span, a pair's two phases'

    def known_ns(self) -> int:
        """When the plant shows this pulse's net charge: a pair's end, a lone phase's partner due."""
        return self.t1 if self.due_ns is None else max(self.t1, self.due_ns)


def _charge_nc(seg, a, b) -> float:
    t0, _, i0, i_inf, tau = seg
    if not tau:
        return i0 * (b - a) / 1e6
    ia = current_at(seg, a)
    return (i_inf * (b - a) + (ia - i_inf) * tau * (1 - math.exp(-(b - a) / tau))) / 1e6


def phases(segments, phase_ns: int | None = None) -> list[Pulse]:
    """The phases on the plant: maximal runs of current of one sign. A run `n` times as long as
    `phase_ns` (an alternating waveform without off-time plays -+ +- back to back) is split in n."""
    runs: list[list] = []
    for seg in segments:
        t0, t1, i0, i_inf, tau = seg
        if t1 <= t0:
            continue
        sign = (i0 > 0) - (i0 < 0)
        if sign == 0:
            continue
        if runs and runs[-1][-1][1] == t0 and runs[-1][0] == sign:
            runs[-1].append(seg)
        else:
            runs.append([sign, seg])
    out = []
    for run in runs:
        sign, segs = run[0], run[1:]
        a, b = segs[0][0], segs[-1][1]
        n = max(1, round((b - a) / phase_ns)) if phase_ns else 1
        cuts = [a + (b - a) * k // n for k in range(n + 1)]
        for lo, hi in zip(cuts, cuts[1:]):
            net = amp = 0.0
            for seg in segs:
                x, y = max(seg[0], lo), min(seg[1], hi)
                if y > x:
                    net += _charge_nc(seg, x, y)
                    amp = max(amp, abs(current_at(seg, x)), abs(current_at(seg, y)))
            out.append(Pulse(lo, hi, amp, net, abs(net), sign, on_ns=hi - lo))
    return out


def pairs(phase_list: list[Pulse], gap_ns: int, tol_ns: int = 1 * MS) -> list[Pulse]:
    """Biphasic pairs: a phase and the next one of the other sign that starts within gap + tol of its
    end. A phase left without its partner (a pair cut in half) is a pair of its own: all net charge."""
    out, k = [], 0
    while k < len(phase_list):
        p = phase_list[k]
        q = phase_list[k + 1] if k + 1 < len(phase_list) else None
        if q is not None and q.sign == -p.sign and q.t0 - p.t1 <= gap_ns + tol_ns:
            out.append(Pulse(p.t0, q.t1, max(p.amp_ua, q.amp_ua), p.net_nc + q.net_nc, p.moved_nc + q.moved_nc,
                             on_ns=p.on_ns + q.on_ns))
            k += 2
        else:
            out.append(Pulse(p.t0, p.t1, p.amp_ua, p.net_nc, p.moved_nc, whole=False, due_ns=p.t1 + gap_ns,
                             on_ns=p.on_ns))
            k += 1
    return out


# ---- charge balance -------------------------------------------------------------------------------

def charge_windows(pair_list: list[Pulse], from_ns: int = 0):
    """Net and moved charge over each 10 s window of whole pairs, one window ending at each pair's
    end: the pairs that begin no earlier than 10 s before it. Yields (end_ns, net_nc, moved_nc, on_ns):
    end_ns is when the window's last pulse's charge is known (`Pulse.known_ns`: a lone phase's
    imbalance shows when its partner fails to begin, not at its own end); on_ns how long current
    flowed in the window."""
    lo = 0
    net = moved = 0.0
    on = 0
    for hi, p in enumerate(pair_list):
        net += p.net_nc
        moved += p.moved_nc
        on += p.on_ns
        while pair_list[lo].t0 < p.t1 - CHARGE_WINDOW_NS:
            net -= pair_list[lo].net_nc
            moved -= pair_list[lo].moved_nc
            on -= pair_list[lo].on_ns
            lo += 1
        if p.known_ns() >= from_ns:
            yield p.known_ns(), net, moved, on


def imbalanced(net_nc: float, moved_nc: float) -> bool:
    return abs(net_nc) > CHARGE_FRACTION * moved_nc + CHARGE_FLOOR_NC


def charge_balance(pair_list: list[Pulse]) -> Violation | None:
    """Net charge over any 10 s window of whole pairs <= 2 % of the charge moved + CHARGE_FLOOR_NC."""
    for end, net, moved, _ in charge_windows(pair_list):
        if imbalanced(net, moved):
            return Violation("charge_balance", end, f"net {net:.1f} nC of {moved:.1f} nC moved "
                                                     f"({100 * abs(net) / moved:.1f} %) in the 10 s window ending here")
    return None


def imbalance_onset(pair_list: list[Pulse], after_ns: int, judge_ua: float = 0.0) -> int | None:
    """The first window end at or after `after_ns` at which the plant's window exceeds 2 % of the
    charge moved, or of what its phases would move at `judge_ua` where that is more (the sense's
    resolution: judge_level_ua)."""
    for end, net, moved, on_ns in charge_windows(pair_list, after_ns):
        if imbalanced(net, max(moved, judge_ua * on_ns / 1e6)):
            return end
    return None

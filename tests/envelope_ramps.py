"""The ramp rules of SAFETY.md judged on the pairs the plant delivered (tests/envelope_judge.py finds
them): the soft start, the rise rate and duration, the ramp-down on stop and pause."""
from __future__ import annotations

from envelope_judge import MS, S, Pulse, Violation

RAMP_UA_PER_S = 250.0                 # SAFETY.md: never faster than 250 uA/s ...
RAMP_MIN_NS = 2 * S                   # ... and from minimum to setpoint over >= 2 s
RAMP_DOWN_MIN_NS = 1 * S              # ramp-down on stop (and pause) >= 1 s
SOFT_START_FRACTION = 0.02            # IEC 60601-2-10 201.12.1.101: <= 2 % of the limit
# The longest time a single step of the delivered amplitude may be credited with. The reference
# program `lift` (10 Hz) ramps in steps of 250 uA/s x 100 ms = 25 uA; a step credited with more (a
# pair every 2 s or 10 s taking the whole ramp in one or two steps) is the jump the rate rule exists
# to prevent (issue 17 item 4: `gentle` jumps 10 -> 498 uA, 0.1 Hz ramps in one step): a waveform
# whose period cannot carry the ramp ramps over more pairs, or is refused.
STEP_CREDIT_NS = 100 * MS
RATE_RES_NS = 10 * MS                 # rates are read over spans of >= 10 ms (see too_steep)


def too_steep(train: list[Pulse], level, rate_ua_per_ns: float, step_ua: float, credit_ns: float,
              from_ns: int = -1):
    """The first pair (at or after `from_ns`) whose level(pair) rises above an earlier pair's by more
    than rate x (their distance + RATE_RES_NS) + `step_ua`; None if none does. The DAC follows a ramp
    as a staircase at the firmware's 100 Hz bookkeeping cadence, so a span between two pair onsets
    holds up to one more 10 ms increment than its length (pairs 15 ms apart can straddle two): the
    time quantum, as `step_ua` is the amplitude quantum. Read against the previous pair (its
    distance counted as at most `credit_ns`), the latest pair at least RATE_RES_NS before and the
    latest pair at least 1 s before (so a DAC step larger than a 10 ms increment cannot add up).
    Returns (earlier, pair, allowed_ua)."""
    j10 = j1s = 0
    for k in range(1, len(train)):
        tk = train[k].t0
        while j10 + 1 < k and train[j10 + 1].t0 <= tk - RATE_RES_NS:
            j10 += 1
        while j1s + 1 < k and train[j1s + 1].t0 <= tk - S:
            j1s += 1
        if tk < from_ns:
            continue
        spans = [(k - 1, min(tk - train[k - 1].t0, credit_ns))]
        if train[j10].t0 <= tk - RATE_RES_NS:
            spans.append((j10, tk - train[j10].t0))
        if train[j1s].t0 <= tk - S:
            spans.append((j1s, tk - train[j1s].t0))
        for j, dt in spans:
            allowed = rate_ua_per_ns * (dt + RATE_RES_NS) + step_ua
            if level(train[k]) - level(train[j]) > allowed + 1e-6:
                return train[j], train[k], allowed
    return None


def ramp_up(train: list[Pulse], limit_ua: float, setpoint_ua: float, dac_step_ua: float) -> list[Violation]:
    """A ramp from a start or a resume, judged on the pairs the plant delivered (amplitude = a pair's
    peak |I|): the first pair <= 2 % of the limit + one DAC step; no rise faster than 250 uA/s + one
    DAC step (`too_steep`; a step between consecutive pairs credited with at most STEP_CREDIT_NS);
    the first pair at the setpoint (within one DAC step) >= 2 s after the first pair. `train` ends
    where a ramp-down, a fault or the session's end begins."""
    out: list[Violation] = []
    if not train:
        return out
    first = train[0]
    soft = SOFT_START_FRACTION * limit_ua + dac_step_ua
    if first.amp_ua > soft + 1e-6:
        out.append(Violation("soft_start", first.t0, f"first pair {first.amp_ua:.2f} uA > {soft:.2f} uA "
                                                      f"(2 % of {limit_ua:.0f} uA + a DAC step)"))
    bad = too_steep(train, lambda p: p.amp_ua, RAMP_UA_PER_S / S, dac_step_ua, STEP_CREDIT_NS)
    if bad:
        a, b, allowed = bad
        # a step across >= 100 ms (a slow waveform's pairs) or a rate too fast over 10-100 ms
        cls = "ramp_step" if b.t0 - a.t0 >= STEP_CREDIT_NS else "ramp_rate"
        out.append(Violation(cls, b.t0, f"{a.amp_ua:.1f} -> {b.amp_ua:.1f} uA, pairs "
                                                f"{(b.t0 - a.t0) / MS:.1f} ms apart (allowed +{allowed:.1f} uA)"))
    if setpoint_ua - first.amp_ua > 2 * dac_step_ua:
        reach = next((p for p in train if p.amp_ua >= setpoint_ua - dac_step_ua), None)
        if reach is not None and reach.t0 - first.t0 < RAMP_MIN_NS:
            out.append(Violation("ramp_short", reach.t0, f"setpoint {setpoint_ua:.0f} uA reached "
                                                          f"{(reach.t0 - first.t0) / MS:.0f} ms after the first pair"))
    return out


def ramp_down(train: list[Pulse], asked_ns: int, limit_ua: float, dac_step_ua: float,
              ended: bool = True) -> list[Violation]:
    """A stop or pause asked at `asked_ns`, judged on the delivered pairs (the pair under way
    finishes): from the amplitude then (A, of the last pair begun by then) no pair rises, the fall is
    no steeper than a 1 s ramp from A (`too_steep`, read linearly: SAFETY.md gives the ramp-down a
    duration, and the output is due off within 1.5 s + one period), and the last drop, to zero at the
    end of the last pair, when it comes after the request, is no larger than A x (its time after the
    request) / 1 s + one DAC step. The request counts from one output slice (RATE_RES_NS) later:
    the firmware acts on it at its next 100 Hz output slice, and the DAC is written between pairs,
    ahead of the next, so a pair beginning in between plays what was set before the request (A is
    the last pair begun by then). Amplitudes are measured above the soft-start level (2 % of the
    limit), where a ramp may begin and end with a step (IEC 60601-2-10's minimum setting). `ended`
    False: the ramp-down was cut short (a fault), so its last drop is not judged."""
    soft = SOFT_START_FRACTION * limit_ua

    def above(p):
        return max(0.0, p.amp_ua - soft)

    acts_ns = asked_ns + RATE_RES_NS
    before = [p for p in train if p.t0 <= acts_ns]
    after = [p for p in train if p.t0 > acts_ns]
    ref = above(before[-1]) if before else 0.0
    out: list[Violation] = []
    prev = before[-1] if before else None
    for p in after:
        if prev is not None and p.amp_ua > prev.amp_ua + dac_step_ua + 1e-6:
            out.append(Violation("ramp_down_rise", p.t0, f"rises {prev.amp_ua:.1f} -> {p.amp_ua:.1f} uA after the "
                                                     f"request at {asked_ns / S:.3f} s"))
            return out
        prev = p
    bad = too_steep(train, lambda p: -above(p), ref / RAMP_DOWN_MIN_NS, dac_step_ua, float("inf"), acts_ns + 1)
    if bad:
        a, b, allowed = bad
        out.append(Violation("ramp_down_rate", b.t0, f"falls {a.amp_ua:.1f} -> {b.amp_ua:.1f} uA, pairs "
                                                f"{(b.t0 - a.t0) / MS:.1f} ms apart (a 1 s ramp-down from "
                                                f"{ref + soft:.1f} uA allows -{allowed:.1f} uA)"))
        return out
    prev = train[-1] if train else None
    if ended and prev is not None and prev.t1 > asked_ns:
        allowed = ref * (prev.t1 - asked_ns) / RAMP_DOWN_MIN_NS + dac_step_ua
        if above(prev) > allowed + 1e-6:
            out.append(Violation("ramp_down_step", prev.t1, f"{prev.amp_ua:.1f} uA -> 0 at the end of the last pair, "
                                                        f"{(prev.t1 - asked_ns) / MS:.1f} ms after the request "
                                                        f"(a 1 s ramp-down allows {allowed + soft:.1f} uA)"))
    return out

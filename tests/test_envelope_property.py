"""SAFETY.md's bounds for every waveform the device accepts (issue 17): a property over the envelope x
boards x faults x fault moments x stop / pause-resume moments, judged on the plant's truth.

Each example (tests/envelope_case.py) starts `lift` with overrides drawn from the whole accepted
envelope (0.1-1000 Hz, phases 20 us-5 s, gaps, alternation, bursts, 10-500 uA, sessions of 3-6 s)
on one of the three pulse back-ends (pio: pico-mcp4725, rmt: esp32-devkit, timer: the Pico with a
100 us hard timer), injects one fault at a moment drawn from the session (or none) and stops or
pauses and resumes at another. A refusal (`timing_unsupported`, `out_of_range`) is a fine outcome.
Otherwise the plant must show (tests/envelope_judge.py, tests/envelope_ramps.py, each judge
unit-tested below):

* |I| <= limit x 1.10 + 10 uA, except within 2 ms of a fault's onset. The onset is the first instant
  after the fault's injection at which the plant's |I| exceeds that level; with a pulsed waveform,
  the start of the first phase (or the rest of the phase under way) in which the current exceeds it
  after the fault. The 2 ms run from there across phases and gaps: any later phase above the level
  that ends more than 2 ms after the onset is a violation.
* the trip each fault must cause, within its SAFETY.md bound, judged by when the plant's output went
  off (current 0 and the high-voltage rail off, for good): over_current 2 ms from that onset,
  contact_lost 10 ms from the first instant the bridge drives the open electrode, sense_fault 100 ms
  from the first instant >= 50 uA flows, charge_imbalance 1 s from the first end of a pair at which
  the plant's 10 s window exceeds 2 %, over_temp and temp_sensor_fault 1 s, charging 2 ms,
  the watchdog 1 s, from the injection;
* output off by the session's end (paused time added) + the 1.5 s ramp-down + one period + 50 ms,
  after a stop by the stop + the same, and while paused from the pause + the same until the resume;
* before any fault, on the delivered pairs: the first pair of each start and resume <= 2 % of the
  limit + one DAC step; no pair more than 250 uA/s x min(time since the previous pair, 100 ms) + one
  DAC step above it; the setpoint >= 2 s after the first pair; after a stop or pause a ramp-down of
  >= 1 s (no rise, no drop steeper than a 1 s ramp from the amplitude at the request);
* before any fault, net charge over any 10 s window of whole pairs <= 2 % of the charge moved + 1 nC.

Today's firmware breaks several of these (issue 17). This test fails until it does not: it is not
marked xfail, and its invariants are not to be loosened to make it pass.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import envelope_judge as J
import envelope_ramps as R
from envelope_case import Case, draw_case, run_case

MS, S = J.MS, J.S
EXAMPLES = 40


@st.composite
def cases(draw):
    return draw_case(lambda lo, hi: draw(st.integers(lo, hi)), lambda seq: draw(st.sampled_from(seq)))


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
@given(case=cases())
def test_every_accepted_waveform_keeps_the_safety_bounds_on_the_plant(case):
    out = run_case(case)
    if out.refused:
        assert out.refused in ("timing_unsupported", "out_of_range"), (out.refused, out.message)
        return
    assert not out.violations, f"{case.short()}\n" + "\n".join(str(v) for v in out.violations)


# ---- the judges, on hand-made traces ------------------------------------------------------------------

def seg(t0_ms, t1_ms, i_ua, i_inf=None, tau_ms=0):
    return (int(t0_ms * MS), int(t1_ms * MS), i_ua, i_ua if i_inf is None else i_inf, tau_ms * MS)


def pulsed(amps, phase_ms=1, gap_ms=0, period_ms=10, start_ms=0):
    """A biphasic train: pair k at start + k x period, +amps[k] then -amps[k]."""
    out, t = [], start_ms
    for a in amps:
        out += [seg(t, t + phase_ms, a), seg(t + phase_ms, t + phase_ms + gap_ms, 0),
                seg(t + phase_ms + gap_ms, t + 2 * phase_ms + gap_ms, -a),
                seg(t + 2 * phase_ms + gap_ms, t + period_ms, 0)]
        t += period_ms
    return out


def test_over_limit_grants_2_ms_from_the_first_phase_above_the_level_after_the_fault():
    # the fault at 12.5 ms, the first phase above the level at 20 ms: the 2 ms end at 22 ms
    trace = pulsed([300, 300], period_ms=10) + [seg(20, 20.5, 600), seg(20.5, 21.9, 0), seg(21.9, 22.0, 600),
                                                seg(22.0, 22.1, 0), seg(22.1, 22.2, -600), seg(22.2, 30, 0)]
    v = J.over_limit(trace, 560, fault_ns=int(12.5 * MS))
    assert v is not None and v.cls == "over_limit" and v.t_ns == int(22.1 * MS)   # onset 20 ms: 22.0 is the edge
    assert J.over_limit(trace[:-2] + [seg(22.1, 30, 0)], 560, fault_ns=int(12.5 * MS)) is None
    assert J.over_limit(trace, 560, fault_ns=None).t_ns == 20 * MS                # no fault: no grace
    assert J.over_limit(pulsed([500] * 3), 560, fault_ns=None) is None


def test_over_limit_before_the_fault_gets_no_grace_and_the_onset_may_fall_inside_a_phase():
    trace = [seg(0, 5, 600), seg(5, 10, 0)]
    assert J.over_limit(trace, 560, fault_ns=6 * MS).t_ns == 0
    trace = [seg(0, 5, 300), seg(5, 9, 600), seg(9, 10, 0)]          # the fault at 5 ms, inside a phase
    assert J.over_limit(trace, 560, fault_ns=5 * MS).t_ns == 7 * MS
    # an exponential (compliance) segment crossing the level: the crossing is the instant
    expo = [seg(0, 10, 700, i_inf=0, tau_ms=5)]
    assert J.above_span(expo[0], 560)[1] == pytest.approx(5 * MS * 0.2231, rel=1e-3)


def test_output_off_is_current_zero_and_the_rail_low_for_good():
    trace = [seg(0, 5, 100), seg(5, 8, 0), seg(8, 9, -100), seg(9, 20, 0)]
    assert J.zero_since(trace, 20 * MS) == 9 * MS
    assert J.zero_since(trace, 8.5 * MS) == 8.5 * MS
    edges = [(0, 12, 1), (int(9.5 * MS), 12, 0), (11 * MS, 12, 1), (12 * MS, 12, 0)]
    assert J.pin_low_since(edges, 12, 20 * MS) == 12 * MS
    assert J.pin_low_since(edges, 12, 11.5 * MS) is None
    assert J.driving_from(sorted(edges + [(10 * MS, 10, 1)]), 12, (10, 11), 10.5 * MS) == 11 * MS


def test_phases_and_pairs_find_a_pair_cut_in_half_and_split_back_to_back_phases():
    ps = J.pairs(J.phases(pulsed([100, 100])), gap_ns=0)
    assert [(p.whole, round(p.net_nc, 6), p.amp_ua) for p in ps] == [(True, 0, 100), (True, 0, 100)]
    cut = J.pairs(J.phases(pulsed([100])[:1] + [seg(1, 10, 0)] + pulsed([100], start_ms=10)), gap_ns=0)
    assert [p.whole for p in cut] == [False, True] and cut[0].net_nc == pytest.approx(100)
    # alternating, no off-time: + -- ++ - ; the double runs split into single phases
    alt = [seg(0, 1, 50), seg(1, 3, -50), seg(3, 5, 50), seg(5, 6, -50)]
    assert [(p.t0 // MS, p.t1 // MS) for p in J.pairs(J.phases(alt, 1 * MS), 0)] == [(0, 2), (2, 4), (4, 6)]


def test_a_lone_phases_imbalance_shows_when_its_partner_was_due_not_at_its_own_end():
    """A pair 1.2 s apart (gap 1.2 s): its first phase is unbalanced by design until the second is due;
    a DC fault that drops the second shows there (envelope case 492 had counted 1.2 s early)."""
    gap_ms = 1200
    healthy = J.pairs(J.phases(pulsed([100, 100], gap_ms=gap_ms, period_ms=3000)), gap_ms * MS)
    assert [p.whole for p in healthy] == [True, True] and J.imbalance_onset(healthy, 0) is None
    lone = J.pairs(J.phases(pulsed([100], gap_ms=gap_ms, period_ms=3000)[:2] + [seg(1201, 3000, 0)]), gap_ms * MS)
    assert [p.whole for p in lone] == [False]
    assert J.imbalance_onset(lone, 0) == (1 + gap_ms) * MS          # its end (1 ms) + the gap


def test_ramp_up_judges_soft_start_step_and_duration_on_the_delivered_pairs():
    def train(amps, period_ms):
        return J.pairs(J.phases(pulsed(amps, period_ms=period_ms)), 0)
    good = train([10 + 25 * k for k in range(20)] + [500] * 3, 100)             # lift: 25 uA a pair, 10 Hz
    assert R.ramp_up(good, 500, 500, 0.25) == []
    assert [v.cls for v in R.ramp_up(train([12, 12], 100), 500, 12, 0.25)] == ["soft_start"]
    assert [v.cls for v in R.ramp_up(train([10, 500], 10_000), 500, 500, 0.25)] == ["ramp_step"]   # 0.1 Hz
    assert [v.cls for v in R.ramp_up(train([10, 260, 500], 1000), 500, 500, 0.25)] == ["ramp_step"]
    fast = train([10 + 2.5 * k for k in range(197)], 10)                       # 250 uA/s, but 1.96 s
    assert [v.cls for v in R.ramp_up(fast, 500, 500, 0.25)] == ["ramp_short"]


def test_ramp_down_allows_a_1_s_ramp_and_the_pair_under_way_but_no_step_to_zero():
    down = J.pairs(J.phases(pulsed([500 - 45 * k for k in range(10)], period_ms=100)), 0)
    assert R.ramp_down(down, 0, 500, 0.25) == []
    cut = J.pairs(J.phases(pulsed([500] * 3, period_ms=100)), 0)
    vs = R.ramp_down(cut, 150 * MS, 500, 0.25)                                      # full current, then nothing
    assert [v.cls for v in vs] == ["ramp_down_step"] and "-> 0" in vs[0].detail
    assert R.ramp_down(cut, 150 * MS, 500, 0.25, ended=False) == []                 # a fault cut it: not judged
    slow = J.pairs(J.phases(pulsed([500], phase_ms=4000, period_ms=10_000)), 0)
    assert R.ramp_down(slow, 7000 * MS, 500, 0.25) == []         # asked 1 s before the pair under way ends


def test_a_pair_within_one_output_slice_of_a_stop_plays_what_was_set_before_it():
    # pairs every 7.5 ms; the DAC was set to 302 for the next pair, the stop asked 3 ms before it
    # begins: that pair cannot be changed (the firmware acts at its next 100 Hz output slice)
    amps = [300, 300, 302] + [302 - 0.5 * k for k in range(1, 20)]
    train = J.pairs(J.phases(pulsed(amps, phase_ms=1.2, period_ms=7.5)), 0)
    assert R.ramp_down(train, int(12 * MS), 500, 0.25, ended=False) == []   # (its end: not judged here)
    # asked 14.5 ms before it: an output slice had time to lower the DAC, so it is a rise
    vs = R.ramp_down(train, int(0.5 * MS), 500, 0.25, ended=False)
    assert [v.cls for v in vs] == ["ramp_down_rise"]


def test_charge_balance_judges_whole_pairs_in_10_s_windows():
    balanced = J.pairs(J.phases(pulsed([300] * 50, period_ms=100)), 0)
    assert J.charge_balance(balanced) is None
    asym = pulsed([300] * 50, period_ms=100)
    asym = [(a, b, i * 0.95 if i < 0 else i, j * 0.95 if j < 0 else j, t) for a, b, i, j, t in asym]
    v = J.charge_balance(J.pairs(J.phases(asym), 0))
    assert v is not None and v.t_ns == 2 * MS                                  # the first pair: 2.6 %
    tiny = J.pairs(J.phases([seg(0, 0.02, 10), seg(0.02, 1, 0)]), 0)          # a lone 0.2 nC phase
    assert J.charge_balance(tiny) is None


def test_a_drawn_case_is_inside_the_envelope():
    import random
    rng = random.Random(3)
    for _ in range(500):
        c = draw_case(rng.randint, rng.choice)
        w = c.wave
        assert 0.1 <= w["hz"] <= 1000 and 20 <= w["phase_us"] <= 5_000_000
        assert 2 * w["phase_us"] + w["gap_us"] <= 1e6 / w["hz"] + 1
        assert isinstance(c, Case)


def test_a_rate_is_read_over_10_ms_so_a_staircase_at_the_bookkeeping_cadence_passes():
    # 1 kHz pairs, the DAC stepping 2.5 uA every 10 ms: 250 uA/s
    stairs = J.pairs(J.phases(pulsed([10 + 2.5 * (k // 10) for k in range(2500)], phase_ms=0.1, period_ms=1)), 0)
    assert R.too_steep(stairs, lambda p: p.amp_ua, R.RAMP_UA_PER_S / S, 0.25, R.STEP_CREDIT_NS) is None
    # pairs every 7.5 ms: two 10 ms steps can fall between onsets 15 ms apart (the time quantum)
    odd = J.pairs(J.phases(pulsed([10 + 2.5 * ((15 * k + 5) // 20) for k in range(400)], phase_ms=1.2,
                                  period_ms=7.5)), 0)     # pair k at 7.5 k ms: the step of 10 ms (7.5 k + 2.5)
    assert R.too_steep(odd, lambda p: p.amp_ua, R.RAMP_UA_PER_S / S, 0.25, R.STEP_CREDIT_NS) is None
    # the same staircase at 300 uA/s is too steep over a second although no single step is
    fast = J.pairs(J.phases(pulsed([10 + 3.0 * (k // 10) for k in range(1500)], phase_ms=0.1, period_ms=1)), 0)
    assert R.too_steep(fast, lambda p: p.amp_ua, R.RAMP_UA_PER_S / S, 0.6, R.STEP_CREDIT_NS) is not None

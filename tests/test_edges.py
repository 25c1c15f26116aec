"""Pulse timing from the edges of a captured current (edges.py): what `selftest` reports
as measured, on synthetic captures whose timing is known."""
import pytest

from myotone.bench import Capture
from myotone.edges import phases, pulses, timing


def train(hz, phase_us, gap_us, n, ua=500.0, alternate=True, burst=None, t0=0.0, start_with=0, ramp=()):
    """A capture of `n` biphasic pulses (burst=(on_ms, off_ms): the envelope); `start_with`
    drops that many phases at the front (a capture that begins mid-pulse); `ramp` gives
    the amplitude of the first pulses."""
    t, i = [], []
    period, ph, gap = 1 / hz, phase_us / 1e6, gap_us / 1e6
    k, now = 0, t0
    sign = 1
    on_n = None if burst is None else round(burst[0] / 1000 * hz)
    for p in range(n):
        if on_n is not None and p and p % on_n == 0:
            now += burst[1] / 1000
        amp = ramp[p] if p < len(ramp) else ua
        for j, (start, level) in enumerate(((now, sign * amp), (now + ph, 0.0), (now + ph + gap, -sign * amp),
                                            (now + 2 * ph + gap, 0.0))):
            if k >= start_with * 2 or j % 2:
                t.append(start)
                i.append(level)
            k += 1
        if alternate:
            sign = -sign
        now += period
    return Capture(t, i, now)


def test_a_pulse_train_gives_its_frequency_phase_width_and_gap():
    m = timing(train(10, 40000, 200, 20))
    assert m["frequency_hz"] == pytest.approx(10) and m["phase_width_us"] == pytest.approx(40000)
    assert m["interphase_gap_us"] == pytest.approx(200) and m["pulses"] == 20
    assert m["burst_on_ms"] is None and m["burst_off_ms"] is None


@pytest.mark.parametrize("alternate", [True, False])
def test_a_capture_that_begins_mid_pulse_pairs_the_phases_right(alternate):
    """The first phase seen is a pulse's second: pairing it with the next would make the
    inter-pulse pause the 'gap'."""
    m = timing(train(100, 2000, 500, 30, alternate=alternate, start_with=1))
    assert m["frequency_hz"] == pytest.approx(100) and m["interphase_gap_us"] == pytest.approx(500)
    assert m["phase_width_us"] == pytest.approx(2000)


def test_no_gap_between_the_phases():
    m = timing(train(50, 5000, 0, 10))
    assert m["interphase_gap_us"] == pytest.approx(0, abs=1e-6) and m["phase_width_us"] == pytest.approx(5000)


def test_ramp_pulses_below_half_the_peak_do_not_count_and_a_ramp_step_inside_a_phase_does_not_split_it():
    cap = train(10, 40000, 200, 10, ramp=(10, 100, 240))
    assert len(pulses(phases(cap))) == 7
    t, i = list(cap.t_s), list(cap.i_ua)
    k = i.index(500.0)                          # a step 500 -> 501 µA half-way through a phase
    t.insert(k + 1, t[k] + 0.02)
    i.insert(k + 1, 501.0)
    m = timing(Capture(t, i, cap.end_s))
    assert m["phase_width_us"] == pytest.approx(40000) and m["pulses"] == 7


def test_bursts_give_the_envelope():
    m = timing(train(100, 2000, 500, 200, burst=(500, 500)))
    assert m["frequency_hz"] == pytest.approx(100)
    assert m["burst_on_ms"] == pytest.approx(500) and m["burst_off_ms"] == pytest.approx(500)


def test_too_little_to_measure():
    assert timing(train(0.5, 500000, 1000, 1)) is None
    assert timing(Capture([0.0], [0.0], 1.0)) is None

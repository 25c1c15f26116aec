"""myotone.bench: what the HIL suite computes from a rig's current samples, and rig drivers."""
import pytest

from myotone.bench import Capture, MeasuringRig, load_driver


def biphasic(amplitudes_ua, phase_s=0.04, period_s=0.1):
    """Pairs of +/- phases, one pair per period, the given amplitude each."""
    t, i = [], []
    for k, a in enumerate(amplitudes_ua):
        t0 = k * period_s
        t += [t0, t0 + phase_s, t0 + 2 * phase_s]
        i += [a, -a, 0.0]
    return Capture(t, i, len(amplitudes_ua) * period_s)


def test_levels_onset_and_end():
    cap = biphasic([10, 20, 300, 300, 300])
    assert cap.max_abs_ua == 300
    assert cap.first_above(0.5) == 0.0
    assert cap.first_above(250) == pytest.approx(0.2)
    assert cap.first_above(0.5, after_s=0.29) == pytest.approx(0.3)
    assert cap.first_above(0.5, after_s=0.25) == 0.25          # already on: from the start of the window
    assert cap.last_above(0.5) == pytest.approx(0.48)
    assert cap.last_above(1000) is None
    assert cap.at(0.05) == -10 and cap.at(0.09) == 0 and cap.at(-1) == 0.0


def test_amplitude_is_the_time_weighted_median_of_the_on_levels():
    cap = biphasic([10, 300, 300, 300])
    assert cap.amplitude_ua() == 300
    assert cap.amplitude_ua(0.0, 0.1) == 10
    assert Capture([0.0], [0.0], 1.0).amplitude_ua() == 0.0


def test_charge_net_charge_rms_and_imbalance():
    cap = biphasic([100] * 10)                       # 100 uA x 40 ms x 2 per pair
    assert cap.charge_uc() == pytest.approx(10 * 2 * 100 * 0.04)
    assert cap.net_charge_uc() == pytest.approx(0.0, abs=1e-9)
    assert cap.imbalance(1.0, window_s=1.0) == pytest.approx(0.0, abs=1e-9)
    assert cap.rms_ua(0.0, 1.0) == pytest.approx(100 * (0.8 ** 0.5))
    lopsided = Capture([0.0, 0.04, 0.08], [100.0, -80.0, 0.0], 0.1)
    assert lopsided.imbalance(0.1, window_s=0.1) == pytest.approx(20 / 180)
    assert lopsided.charge_uc(0.02, 0.06) == pytest.approx(100 * 0.02 + 80 * 0.02)


class BenchRig(MeasuringRig):
    def __init__(self, board):
        self.board = board


def test_a_rig_driver_is_named_module_colon_class():
    rig = load_driver(f"{__name__}:BenchRig", {"name": "b"})
    assert isinstance(rig, BenchRig) and rig.board == {"name": "b"}
    with pytest.raises(ValueError, match="module:Class"):
        load_driver("no_colon_here", {})

"""One minimal case per violation class the envelope property found on the firmware of issue 17
(tests/test_envelope_property.py; the classes and figures are in docs/performance.md). Each runs the
property's own case runner and judges, and asserts that its class is gone."""
import pytest

from envelope_case import Case, run_case


def wave(hz, phase_us, gap_us=0, alternate=True, burst_on_ms=0, burst_off_ms=0):
    return {"hz": hz, "phase_us": phase_us, "gap_us": gap_us, "alternate": alternate,
            "burst_on_ms": burst_on_ms, "burst_off_ms": burst_off_ms}


def case(backend, ua, w, fault=None, fault_at_s=0.0, control="none", control_at_s=0.0, hold_s=0.0, duration_s=5):
    return Case(backend, ua, duration_s, w, fault, int(fault_at_s * 1e6), control, int(control_at_s * 1e6),
                int(hold_s * 1e6))


REGRESSIONS = {
    # issue 17 item 1: 100 us phases at 1 kHz alias with the fast path's sampling: a stuck DAC runs 677 uA
    # (the hardware limiter) to the end of the session, untripped
    "over_limit": case("pio", 300, wave(1000, 100, 0, False), "dac_stuck_high", 3.0),
    # the first pair of lift itself: the DAC is written 10 ms into its first phase (9.8 -> 12.0 uA)
    "soft_start": case("pio", 500, wave(10, 40000, 200)),
    "charge_balance": case("pio", 500, wave(10, 40000, 200)),
    # issue 17 item 4: at 1 Hz the ramp is a few big steps (9.8 -> ~170 uA at the second pair)
    "ramp_step": case("pio", 400, wave(1, 350, 0, False)),
    # a stop during a 0.5 Hz pair: the pair finishes at full current, then drops to 0 in one step
    "ramp_down_step": case("pio", 500, wave(0.5, 500000, 1000), control="stop", control_at_s=4.3),
    # issue 17 item 5: short phases: charge balance judged on too few samples, a 20 % asymmetry runs on
    "trip_late": case("pio", 300, wave(34, 80, 1283), "bridge_asymmetry", 0.5, duration_s=6),
    # polarity reversed at once (alternation, no off-time) on the PIO back-end: both bridge pins high
    "shoot_through": case("pio", 100, wave(50, 10000, 0, True)),
}


@pytest.mark.parametrize("cls", sorted(REGRESSIONS))
def test_envelope_regression(cls):
    out = run_case(REGRESSIONS[cls])
    assert out.refused is None or out.refused == "timing_unsupported", out.refused
    found = [str(v) for v in out.violations if v.cls == cls]
    assert not found, f"{REGRESSIONS[cls].short()}\n" + "\n".join(found)

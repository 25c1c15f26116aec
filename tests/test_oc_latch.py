"""The over-current latch (docs/hardware.md, U10-U13): a comparator on the current sense
that gates the bridge off in hardware, whatever the firmware is doing.

The firmware judges `over_current` from its samples: an onset after a phase's last sample
is seen only in the next phase (docs/safety.md, Known limits: over-level current ending
3.2-3.5 ms after onset). The latch closes that: judged on the plant, every onset's
over-level current ends within SAFETY.md's 2 ms, and the firmware says `over_current`.
"""
import pytest

from myotone.emulator import bench as truth
from safety_helpers import MS, Bench, board_for

LEVEL_UA = 500 * 1.1 + 10           # the over_current level of both reference boards
GAP_US = 3000
# the shortest phases each back-end's fast path supervises (a sample period + 250 us: 2 kHz on
# the Pico, 1 kHz on the ESP32), where a phase's last sample is furthest from its end
PHASE_US = {"pio": 800, "timer": 800, "rmt": 1300}
# onsets in a phase's last 300 us: after its last fast-path sample in some of them
BEFORE_END_US = (40, 120, 200, 280)


def _bridge_rises(emu, after_ns):
    b = emu.board["bridge"]
    return [t for t, pin, level in emu.edges if pin in (b["pol_a"], b["pol_b"]) and level and t > after_ns]


def _stuck_late_in_a_phase(backend, before_end_us, latch_dead=False):
    """A session of LATE at 500 uA; the DAC sticks `before_end_us` before a phase ends. Returns
    (onset, end of over-level current, faults) on the plant's clock."""
    b = Bench(board_for(backend))
    try:
        late = {"phases": [{"duration_s": 60, "hz": 100, "phase_us": PHASE_US[backend], "gap_us": GAP_US,
                            "current_pct": 100}]}
        assert b.request("program_write", name="late", program=late)["ok"]
        b.start(ua=500, program="late")
        for _ in range(12):                              # past the ramp (>= 2 s)
            b.run(0.5)
            if b.request("status")["state"] == "run":
                break
        assert b.request("status")["state"] == "run"
        t0 = b.emu.clock.now_ns
        while not _bridge_rises(b.emu, t0):
            b.run(0.0002)
        phase_start = _bridge_rises(b.emu, t0)[0]
        b.emu.run_for((phase_start + (PHASE_US[backend] - before_end_us) * 1000 - b.emu.clock.now_ns) / 1e9)
        t_fault = b.emu.clock.now_ns
        if latch_dead:            # it died since the switch-on's test passed: the firmware's own rule stands
            b.emu.set_fault("oc_latch_dead")
        b.emu.set_fault("dac_stuck_high")
        b.run(0.05)
        onset = truth.onset_ns(b.emu, t_fault, LEVEL_UA)
        return onset, truth.last_above_ns(b.emu, t_fault, LEVEL_UA), b.faults(), b
    except BaseException:
        b.close()
        raise


@pytest.mark.parametrize("before_end_us", BEFORE_END_US)
@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
def test_an_over_current_late_in_a_phase_is_off_within_2_ms_and_named(backend, before_end_us):
    onset, until, faults, b = _stuck_late_in_a_phase(backend, before_end_us)
    try:
        assert onset is not None and until is not None
        assert until - onset <= 2 * MS, f"over-level current until {(until - onset) / 1000:.0f} us after onset"
        assert faults == ["over_current"]
        assert b.emu.plant.trace.off_since(b.emu.clock.now_ns) <= onset + 2 * MS
        # the cut re-armed the latch: once the DAC answers again, a session runs as before
        b.emu.set_fault("dac_stuck_high", False)
        assert b.request("fault_clear")["ok"]
        b.start(ua=300)
        b.run(4.0)
        assert b.request("status")["state"] == "run" and b.faults() == ["over_current"]
        assert 290 < truth.peak_ua(b.emu, b.emu.clock.now_ns - 500 * MS) <= 301
    finally:
        b.close()


def test_without_the_latch_the_samples_alone_miss_the_bound_for_a_late_onset():
    """The negative control (the latch dead): what the latch is for. Some onset in a phase's
    last 300 us has over-level current in the next phase, past 2 ms; the firmware still trips."""
    worst = 0
    for before_end_us in BEFORE_END_US:
        onset, until, faults, b = _stuck_late_in_a_phase("pio", before_end_us, latch_dead=True)
        b.close()
        assert faults == ["over_current"]
        worst = max(worst, until - onset)
    assert worst > 2 * MS, worst


def _rail_rises(emu, after_ns):
    hv = emu.board["hv_enable"]
    return [t for t, pin, level in emu.edges if pin == hv and level and t >= after_ns]


@pytest.mark.parametrize("fault", ["oc_latch_stuck", "oc_latch_dead"])
@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
def test_a_latch_that_fails_its_test_refuses_the_switch_on_and_fault_clear_until_it_passes(backend, fault):
    """Every switch-on tests the latch first, with the output off (OC_TEST must set it, a re-arm
    clear it): one stuck set, or one that cannot set (a dead comparator or flip-flop, which would
    leave only the firmware's own rule with its late-onset gap), is oc_latch_fault, the rail never
    goes on, and fault_clear is refused until the latch passes again."""
    b = Bench(board_for(backend))
    try:
        b.emu.set_fault(fault)
        t0 = b.emu.clock.now_ns
        b.request("start", program="lift", ua=300, duration_s=60)
        b.run(0.5)
        status = b.request("status")
        assert status["state"] == "fault" and status["fault"] == "oc_latch_fault", status
        assert b.faults() == ["oc_latch_fault"]
        assert not _rail_rises(b.emu, t0), "the rail went on"
        assert b.output_is_safe()
        r = b.request("fault_clear")
        assert r["ok"] is False and r["error"] == "condition_present" and "latch" in r["message"]
        b.emu.set_fault(fault, False)
        assert b.request("fault_clear")["ok"]
        b.start(ua=300)
        b.run(3.0)
        assert b.request("status")["state"] == "run"
        assert not b.emu.plant.oc_q_level(), "the test left the latch set"
    finally:
        b.close()


def test_a_latch_that_dies_in_a_session_is_found_at_the_next_switch_on():
    """The test runs at every switch-on, a resume's included: a latch that dies while output is on
    is found when the output next switches on, and the rail stays off."""
    b = Bench()
    try:
        b.start(ua=300)
        b.run(3.0)
        assert b.request("status")["state"] == "run"
        b.emu.set_fault("oc_latch_dead")
        assert b.request("pause")["ok"]
        b.run(2.0)
        assert b.output_is_safe()
        t0 = b.emu.clock.now_ns
        b.request("resume")
        b.run(0.5)
        status = b.request("status")
        assert status["state"] == "fault" and status["fault"] == "oc_latch_fault", status
        assert not _rail_rises(b.emu, t0), "the rail went on"
    finally:
        b.close()

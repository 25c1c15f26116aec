"""heartbeat_lost: a host-driven session without a heartbeat for 5 s ramps down and latches.

No fault rig needed: the host simply stops beating.
"""
import pytest

HEARTBEAT_TIMEOUT_S = 5.0
RAMP_DOWN_MIN_S = 1.0


def beat_for(dut, seconds):
    for _ in range(int(seconds)):
        dut.wait(1.0)
        dut.request("heartbeat")


def test_heartbeat_lost_ramps_down_and_latches(dut):
    since = dut.mark()
    dut.run_to_setpoint(300, heartbeat=True)
    beat_for(dut, 6)                                # a host that beats keeps it going
    assert dut.faults_seen(since) == [] and dut.status()["state"] == "run"
    t_last = dut.now_s()
    after = dut.mark()
    dut.expect("fault", 10, since=after, reason="heartbeat_lost")
    elapsed = dut.now_s() - t_last
    assert HEARTBEAT_TIMEOUT_S - 0.1 < elapsed <= HEARTBEAT_TIMEOUT_S + 2.5, f"fault {elapsed:.2f} s after the last beat"
    states = [m["state"] for m in dut.events("state", after)]
    assert states[:1] == ["ramp_down"], f"heartbeat loss must ramp down, not cut: {states}"
    st = dut.status()
    assert st["fault"] == "heartbeat_lost"
    assert dut.refusal("start", ua=100, **dut.session_args())["error"] == "faulted"


@pytest.mark.rig
def test_heartbeat_lost_on_the_electrodes(dut):
    dut.run_to_setpoint(300, heartbeat=True)
    beat_for(dut, 3)
    t_last = dut.now_s()
    dut.wait(HEARTBEAT_TIMEOUT_S + 3)
    cut = dut.rig.cut_s(t_last)
    assert cut is not None and HEARTBEAT_TIMEOUT_S < cut - t_last <= HEARTBEAT_TIMEOUT_S + 2.0
    cap = dut.rig.capture(t_last)
    falling = next(a for a, _, i in cap.segments(t_last) if 0.5 < abs(i) < 300 * 0.95)
    gone = cap.last_above(0.5)
    assert falling - t_last >= HEARTBEAT_TIMEOUT_S - dut.rig.resolution_s
    assert gone - falling >= RAMP_DOWN_MIN_S, "the output was cut, not ramped down"
    assert dut.rig.output_safe()

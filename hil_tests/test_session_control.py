"""start / stop / pause / resume, and the ramps of SAFETY.md.

Two views of the same rules: the device's own telemetry (any target: its
timestamps `t_ms` resolve one telemetry period, 100 ms here) and the rig's
measurement of the electrode current (exact bounds).
"""
import pytest

from .dut import ms_between

TEL_MS = 100
MAX_RAMP_UA_PER_S = 250
RAMP_UP_MIN_S = 2.0
RAMP_DOWN_MIN_S = 1.0


def limits(dut):
    return dut.request("hello")["limits"]


def span_ms(samples):
    return ms_between(samples[0]["t_ms"], samples[-1]["t_ms"]) if samples else 0


# ---- the device's own account ----------------------------------------------------

def test_session_ramps_up_runs_and_ends_by_itself(dut):
    lim = limits(dut)
    since = dut.mark()
    r = dut.start(300, duration_s=6, telemetry_ms=TEL_MS)
    assert r["state"] == "ramp" and r["setpoint_ua"] == 300 and r["duration_s"] == 6
    dut.expect("state", 15, since=since, state="done")
    assert [m["state"] for m in dut.events("state", since)] == ["ramp", "run", "ramp_down", "done"]
    assert dut.faults_seen(since) == []
    tel = dut.telemetry(since)
    ramp = [t for t in tel if t["state"] == "ramp"]
    assert ramp, "no telemetry during the ramp"
    # soft start: 100 ms in, the ramp cannot have left the minimum by more than 100 ms at the top rate
    assert ramp[0]["target_ua"] <= lim["soft_start_ua"] + MAX_RAMP_UA_PER_S * TEL_MS / 1000
    for a, b in zip(tel, tel[1:]):
        if b["state"] in ("ramp", "run"):
            rise = b["target_ua"] - a["target_ua"]
            assert rise <= MAX_RAMP_UA_PER_S * ms_between(a["t_ms"], b["t_ms"]) / 1000 + 1, (a, b)
    # the ramp was seen for 2 s, give or take one telemetry period at each end
    assert span_ms(ramp) >= RAMP_UP_MIN_S * 1000 - 2 * TEL_MS
    run = [t for t in tel if t["state"] == "run"]
    assert run and all(t["target_ua"] == 300 for t in run)
    assert tel[-1]["state"] == "done" and tel[-1]["output_ua"] == 0
    st = dut.status()
    assert st["state"] == "done" and st["fault"] is None


def test_stop_ramps_down_rather_than_cutting(dut):
    dut.run_to_setpoint(300, telemetry_ms=TEL_MS)
    dut.wait(0.5)
    since = dut.mark()
    assert dut.request("stop")["state"] == "ramp_down"
    dut.expect("state", 5, since=since, state="done")
    tel = dut.telemetry(since)
    down = [t for t in tel if t["state"] == "ramp_down"]
    assert span_ms(down) >= RAMP_DOWN_MIN_S * 1000 - 2 * TEL_MS
    targets = [t["target_ua"] for t in down]
    assert targets == sorted(targets, reverse=True) and targets[0] > 0
    assert tel[-1]["state"] == "done" and tel[-1]["output_ua"] == 0
    assert dut.faults_seen(since) == []


def test_a_second_start_while_running_is_refused(dut):
    dut.run_to_setpoint(200)
    r = dut.refusal("start", ua=300, **dut.session_args())
    assert r["error"] == "busy"
    assert dut.status()["setpoint_ua"] == 200


def test_pause_and_resume(dut):
    dut.require_cmd("pause", "resume")
    lim = limits(dut)
    dut.run_to_setpoint(300, duration_s=120, telemetry_ms=TEL_MS)
    since = dut.mark()
    dut.request("pause")
    dut.wait(3)
    assert dut.faults_seen(since) == []
    states = [m["state"] for m in dut.events("state", since)]
    assert states and states[-1] not in ("ramp", "run", "ramp_down", "fault", "done"), states
    down = [t for t in dut.telemetry(since) if t["state"] not in ("run", states[-1])]    # on the way down
    assert span_ms(down) >= RAMP_DOWN_MIN_S * 1000 - 2 * TEL_MS, "pause must ramp down, not cut"
    st = dut.status()
    assert st["state"] == states[-1] and st["target_ua"] == 0 and st["fault"] is None
    since = dut.mark()
    dut.request("resume")
    dut.expect("state", 6, since=since, state="run")
    ramp = [t for t in dut.telemetry(since) if t["state"] == "ramp"]
    assert ramp and ramp[0]["target_ua"] <= lim["soft_start_ua"] + MAX_RAMP_UA_PER_S * TEL_MS / 1000
    assert span_ms(ramp) >= RAMP_UP_MIN_S * 1000 - 2 * TEL_MS
    assert dut.request("stop")["state"] == "ramp_down"


@pytest.mark.slow
def test_the_longest_session_ends_by_itself_at_20_min(dut):
    lim = limits(dut)
    assert dut.refusal("start", ua=50, duration_s=lim["session_max_s"] + 1,
                       **dut.session_args())["error"] == "out_of_range"
    since = dut.mark()
    dut.start(50, duration_s=lim["session_max_s"])
    dut.wait(lim["session_max_s"] - 5)
    assert dut.status()["state"] == "run"
    dut.expect("state", 15, since=since, state="done")
    assert dut.faults_seen(since) == []


# ---- the rig's measurement --------------------------------------------------------

@pytest.mark.rig
def test_ramps_on_the_electrodes(dut):
    lim, lsb = limits(dut), dut.dac_step_ua()
    t0 = dut.now_s()
    dut.run_to_setpoint(300)
    dut.wait(1.0)
    t_stop = dut.now_s()
    dut.request("stop")
    dut.expect("state", 5, state="done")
    dut.wait(0.5)
    cap = dut.rig.capture(t0)
    first = cap.first_above(0.5)
    assert first is not None, "no current reached the load"
    assert abs(cap.at(first)) <= lim["soft_start_ua"] + lsb          # soft start
    reach = cap.first_above(300 - 2 * lsb)
    assert reach - first >= RAMP_UP_MIN_S - dut.rig.resolution_s, f"setpoint reached {reach - first:.3f} s after the first pulse"
    levels = [(a, abs(i)) for a, _, i in cap.segments(first, reach) if abs(i) > 0.5]
    for (ta, ia), (tb, ib) in zip(levels, levels[1:]):
        assert ib - ia <= MAX_RAMP_UA_PER_S * (tb - ta) + lsb, f"{ia:.1f} -> {ib:.1f} µA in {tb - ta:.3f} s"
    assert cap.max_abs_ua <= 300 * 1.05 + 5
    last = cap.last_above(0.5)
    assert last - t_stop >= RAMP_DOWN_MIN_S - dut.rig.resolution_s, f"output gone {last - t_stop:.3f} s after stop"
    assert dut.rig.output_safe()


@pytest.mark.rig
def test_pause_stops_the_current_and_resume_starts_from_the_minimum(dut):
    dut.require_cmd("pause", "resume")
    lim, lsb = limits(dut), dut.dac_step_ua()
    dut.run_to_setpoint(300, duration_s=120)
    t_pause = dut.now_s()
    dut.request("pause")
    dut.wait(3)
    t_resume = dut.now_s()
    dut.request("resume")
    dut.wait(3)
    cap = dut.rig.capture(t_pause)
    paused_from = max((b for _, b, i in cap.segments(t_pause, t_resume) if abs(i) > 0.5), default=t_pause)
    assert paused_from - t_pause >= RAMP_DOWN_MIN_S, "pause cut the output instead of ramping it down"
    assert paused_from < t_resume - 0.5, "the output never stopped while paused"
    again = cap.first_above(0.5, after_s=t_resume)
    assert again is not None and abs(cap.at(again)) <= lim["soft_start_ua"] + lsb
    reach = cap.first_above(300 - 2 * lsb, after_s=again)
    assert reach is None or reach - again >= RAMP_UP_MIN_S - dut.rig.resolution_s

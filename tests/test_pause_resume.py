"""pause / resume: ramp down and hold at zero; resume is a new ramp from the minimum;
session time stops while paused; the heartbeat is still required."""
import pytest

from safety_helpers import MS, Bench, board_for


def states(bench):
    return [m["state"] for m in bench.events("state")]


def plant_currents(bench, after_ns, before_ns=None):
    tr = bench.emu.plant.trace
    return [(t, abs(i)) for t, i in zip(tr.t_ns, tr.i_ua) if t >= after_ns and (before_ns is None or t < before_ns)]


def test_pause_ramps_down_holds_zero_and_session_time_stops(bench):
    bench.start(ua=300, duration_s=20)
    bench.run(4)
    elapsed_before = bench.request("status")["elapsed_s"]
    t_pause = bench.emu.clock.now_ns
    assert bench.request("pause")["state"] == "pausing"
    bench.run(3)
    assert states(bench)[-2:] == ["pausing", "paused"]
    on = [t for t, i in plant_currents(bench, t_pause) if i > 0]
    assert on and on[-1] - t_pause >= 1000 * MS - 100 * MS       # a ramp-down, not a cut
    t_quiet = bench.emu.clock.now_ns
    bench.run(10)                                                 # paused: nothing flows
    assert all(i == 0 for _, i in plant_currents(bench, t_quiet))
    st = bench.request("status")
    assert st["state"] == "paused" and st["elapsed_s"] in (elapsed_before, elapsed_before + 1)
    assert bench.faults() == []


def test_resume_is_a_new_ramp_from_the_minimum(bench):
    bench.start(ua=300, duration_s=20)
    bench.run(4)
    bench.request("pause")
    bench.run(3)
    t_resume = bench.emu.clock.now_ns
    r = bench.request("resume")
    assert r["state"] == "ramp" and r["setpoint_ua"] == 300
    bench.run(5)
    cur = [(t, i) for t, i in plant_currents(bench, t_resume) if i > 0]
    assert cur[0][1] <= 10.5                                        # soft start
    reach = next(t for t, i in cur if i >= 299)
    assert reach - t_resume >= 2000 * MS                            # ramp >= 2 s
    assert states(bench)[-2:] == ["ramp", "run"]


def test_paused_time_does_not_count_towards_the_session_length(bench):
    bench.start(ua=100, duration_s=8)
    bench.run(4)
    bench.request("pause")
    bench.run(10)
    bench.request("resume")
    bench.run(3)
    assert "done" not in states(bench)            # 4 s ran before, 3 s after: < 8 s
    bench.run(4)
    assert states(bench)[-1] == "done"


def test_heartbeat_is_still_required_while_paused(bench):
    bench.start(ua=200, heartbeat=True)
    bench.run(3)
    bench.request("heartbeat")
    bench.request("pause")
    bench.run(8)
    assert bench.faults() == ["heartbeat_lost"]
    assert bench.output_is_safe()


def test_stop_while_paused_ends_the_session(bench):
    bench.start(ua=200)
    bench.run(3)
    bench.request("pause")
    bench.run(2)
    assert bench.request("stop")["state"] == "ramp_down"
    bench.run(0.1)
    assert states(bench)[-1] == "done" and bench.output_is_safe()


def test_pause_and_resume_refused_when_there_is_nothing_to_do(bench):
    r = bench.request("pause")
    assert r["ok"] is False and r["error"] == "not_running"
    assert bench.request("resume")["error"] == "not_running"
    bench.start(ua=200)
    bench.run(3)
    assert bench.request("resume")["error"] == "not_running"       # running, not paused
    bench.request("pause")
    assert bench.request("resume")["error"] == "busy"              # still ramping down
    assert bench.request("pause")["error"] == "not_running"
    assert bench.emu.plant.trace.max_abs_ua <= 201


def test_session_paused_for_ten_minutes_ends(fw):
    S = fw("myotone.session")
    s = S.Session(500)
    s.begin(200, 600_000, 0)
    t = 0
    while s.state != S.RUN:
        t += 10
        s.step(t)
    assert s.pause()
    while s.state != S.PAUSED:
        t += 10
        s.step(t)
    assert s.target_na == 0
    t += S.PAUSE_MAX_MS - 20
    s.step(t)
    assert s.state == S.PAUSED
    s.step(t + 30)
    assert s.state == S.DONE and not s.active()


@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
def test_every_back_end_plays_again_after_a_stop(backend):
    """Each session (and each resume) starts the pulse back-end again after it was
    stopped: the second session must deliver as the first, with no fault."""
    b = Bench(board_for(backend))
    try:
        for _ in range(2):
            t = b.emu.clock.now_ns
            b.start(ua=300, duration_s=4)
            b.run(7)
            assert b.faults() == [] and states(b)[-1] == "done"
            assert max(i for _, i in plant_currents(b, t)) == pytest.approx(300, abs=3)
        b.start(ua=300, duration_s=20)
        b.run(4)
        b.request("pause")
        b.run(3)
        b.request("resume")
        b.run(4)
        assert b.faults() == [] and states(b)[-2:] == ["ramp", "run"]
    finally:
        b.close()

"""The pulse benchmark section: its edge check can fail, and its quick run works."""
import sys

import pytest

from firmware_paths import REPO
from soak_run import SoakError, edge_errors_ns, ideal_edges

sys.path.insert(0, str(REPO / "benchmarks"))

A, B = 10, 11


@pytest.fixture
def table(fw):
    P = fw("myotone.pulse")
    return P.Table().compile(P.Waveform(100000, 1000, 200, True))


def test_edge_errors_are_zero_on_the_schedule_and_the_stop_edges_end_it(table):
    edges = ideal_edges(table, 5_000_000, A, B, 40)
    stop = (edges[-1][0] + 300_000, A, 0)              # the stop: bridge off mid-phase
    errs = edge_errors_ns(edges + [stop], table, A, B)
    assert len(errs) == 40 and max(errs) == 0


def test_a_late_edge_and_drift_are_measured(table):
    edges = ideal_edges(table, 0, A, B, 41)
    late = [(t + 3000 * (k >= 20), pin, level) for k, (t, pin, level) in enumerate(edges)]
    errs = edge_errors_ns(late, table, A, B)            # the 41st edge stands for the stop
    assert max(errs) == 3000 and errs[-1] == 3000 and errs[19] == 0


def test_a_wrong_edge_is_an_error(table):
    edges = ideal_edges(table, 0, A, B, 10)
    edges[4] = (edges[4][0], B if edges[4][1] == A else A, edges[4][2])
    with pytest.raises(SoakError, match="where the schedule has"):
        edge_errors_ns(edges, table, A, B)


def test_quick_pulse_section():
    """Runs the section as `run.py --only pulse --quick` does; figures of time are not checked."""
    bench_pulse = pytest.importorskip("bench_pulse")
    section = bench_pulse.measure(quick=True)
    rows = {r["backend"]: r for r in section.rows}
    assert set(rows) == {"pio", "rmt", "timer"}
    for r in rows.values():
        assert r["edges"] > 8000 and r["faults"] == 0, r
    assert section.met is True
    assert rows["pio"]["drift_us"] == rows["pio"]["max_err_us"] == 0
    steps = {(r["implementation"], r["step"].split(" (")[0]): r for r in section.more[0][1]}
    assert steps[("firmware", "timer tick")]["allocates"] is False
    assert steps[("firmware", "PIO refill")]["allocates"] is False
    assert steps[("firmware", "supervisor tick")]["allocates"] is False
    # the straightforward refill builds a tuple and a list per word: it cannot run in a hard IRQ
    assert steps[("straightforward", "PIO refill")]["allocates"] is True
    # the straightforward tick's elapsed microseconds outgrow a small int 17.9 minutes in
    assert steps[("straightforward", "timer tick")]["allocates"] is True


def test_signed_errors_say_early_or_late(table):
    edges = ideal_edges(table, 0, A, B, 6)
    edges[1] = (edges[1][0] - 2000, *edges[1][1:])
    edges[2] = (edges[2][0] + 1000, *edges[2][1:])
    assert edge_errors_ns(edges, table, A, B, signed=True) == [0, -2000, 1000, 0, 0]


def test_a_checkpoints_restart_begins_the_schedule_again_and_an_early_one_is_an_error(table):
    edges = ideal_edges(table, 0, A, B, 40)
    # the table stops after a pair (edges 0..7: two pairs, alternating) and starts again from its
    # first pair 37 ms after the schedule's next pair
    again = ideal_edges(table, edges[8][0] + 37_000_000, A, B, 32)
    stop = (again[-1][0] + 300_000, A, 0)
    restarts: list[int] = []
    errs = edge_errors_ns(edges[:8] + again + [stop], table, A, B, restarts=restarts)
    assert restarts == [again[0][0]] and len(errs) == 40 and max(errs) == 0
    # not asked to see restarts: the restart is 37 ms of error
    assert max(edge_errors_ns(edges[:8] + again + [stop], table, A, B)) == 37_000_000
    early = ideal_edges(table, edges[8][0] - 1_000_000, A, B, 32)   # sooner than the schedule: never a restart
    restarts = []
    errs = edge_errors_ns(edges[:8] + early + [stop], table, A, B, signed=True, restarts=restarts)
    assert restarts == [] and min(errs) == -1_000_000


def test_a_zero_width_pulse_is_counted_apart_when_asked(table):
    edges = ideal_edges(table, 0, A, B, 8)
    blip = [(edges[-1][0] + 5_000_000, A, 1), (edges[-1][0] + 5_000_000, A, 0)]
    stop = (edges[-1][0] + 9_000_000, A, 0)
    glitches: list[int] = []
    errs = edge_errors_ns(edges + blip + [stop], table, A, B, glitches=glitches)
    assert glitches == [blip[0][0]] and len(errs) == 8 and max(errs) == 0
    assert max(edge_errors_ns(edges + blip + [stop], table, A, B)) > 0   # not asked: judged as edges

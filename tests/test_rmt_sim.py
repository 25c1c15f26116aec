"""esp32.RMT shim: exact edge times, the three write_pulses modes, loop mode, errors."""
import pytest
from conftest import Pin

from myotone.emulator.rmt_sim import make_rmt_class


@pytest.fixture
def RMT(clock, board):
    return make_rmt_class(clock, board)


def test_mode1_documented_example(RMT, clock, board):
    r = RMT(0, pin=Pin(18), clock_div=8)
    assert r.source_freq() == 80_000_000 and r.clock_div() == 8
    clock.run_until(1_000)
    r.write_pulses((1, 20, 2, 40), 0)  # 0 for 100 ns, 1 for 2 us, 0 for 200 ns, 1 for 4 us
    assert r.wait_done() is False
    assert r.wait_done(timeout=1) is True
    assert clock.now_ns() == 7_300                          # returned when it finished
    assert board.edges(18) == [(0, 0), (1_100, 1), (3_100, 0), (3_300, 1), (7_300, 0)]


def test_mode2_fixed_duration_and_list_of_levels(RMT, clock, board):
    r = RMT(1, pin=Pin(4), clock_div=80, idle_level=True)  # 1 us ticks, idles high
    r.write_pulses(10, [1, 1, 0, 1, False])
    clock.run_until(10**6)
    assert board.edges(4) == [(0, 1), (20_000, 0), (30_000, 1), (40_000, 0), (50_000, 1)]
    assert r.wait_done()


def test_mode3_durations_and_levels(RMT, clock, board):
    r = RMT(2, pin=5, clock_div=80)
    r.write_pulses([5, 10, 15], (True, False, 1))
    clock.run_until(10**6)
    assert board.edges(5) == [(0, 0), (0, 1), (5_000, 0), (15_000, 1), (30_000, 0)]


def test_default_data_starts_high_and_odd_divider_rounds_down(RMT, clock, board):
    r = RMT(0, pin=3, clock_div=1)                        # 12.5 ns ticks
    r.write_pulses([1, 1, 3])
    clock.run_until(10**6)
    assert board.edges(3) == [(0, 0), (0, 1), (12, 0), (25, 1), (62, 0)]


@pytest.mark.parametrize("args, message", [
    (([],), "No pulses"),
    (([1, 2], [1]), "same length"),
    (([0, 5],), "out of range"),
    (([32768],), "out of range"),
    ((3, [1, 0]), None),
])
def test_write_pulses_errors(RMT, args, message):
    r = RMT(0, pin=1)
    if message is None:
        r.write_pulses(*args)          # valid: the parametrisation is not vacuous
        return
    with pytest.raises(ValueError, match=message):
        r.write_pulses(*args)


def test_constructor_errors(RMT):
    for div in (0, 256):
        with pytest.raises(ValueError, match="clock_div"):
            RMT(0, pin=1, clock_div=div)
    with pytest.raises(ValueError, match="duty"):
        RMT(0, pin=1, tx_carrier=(38_000, 101, 1))
    with pytest.raises(TypeError):
        RMT(0)
    r = RMT(0, pin=1, clock_div=255)
    assert r.clock_div() == 255
    r.loop(True)
    with pytest.raises(ValueError, match="Too many pulses for loop"):
        r.write_pulses([1] * 127)
    r.deinit()
    for call in (r.clock_div, r.wait_done, lambda: r.write_pulses([1]), lambda: r.loop(0)):
        with pytest.raises(OSError):
            call()


def test_loop_repeats_until_disabled_then_finishes_the_iteration(RMT, clock, board):
    r = RMT(0, pin=Pin(9), clock_div=80, idle_level=True)
    r.loop(True)
    r.write_pulses([3, 7], 0)                             # 0 for 3 us, 1 for 7 us
    clock.run_until(25_500)
    assert r.wait_done() is False
    r.loop(False)                                         # during the 3rd iteration (20..30 us)
    assert r.wait_done(timeout=1) is True and clock.now_ns() == 30_000
    clock.run_until(10**6)
    assert board.edges(9) == [(0, 1), (0, 0), (3_000, 1), (10_000, 0), (13_000, 1),
                              (20_000, 0), (23_000, 1)]  # idle is high too: no edge at 30 us
    assert r.wait_done()


def test_write_while_busy_blocks_until_done_without_idle_glitch(RMT, clock, board):
    r = RMT(0, pin=2, clock_div=80)
    r.write_pulses([10])
    r.write_pulses([5], 1)
    assert clock.now_ns() == 10_000
    clock.run_until(10**6)
    assert board.edges(2) == [(0, 0), (0, 1), (15_000, 0)]


def test_write_while_looping_switches_at_the_iteration_end(RMT, clock, board):
    r = RMT(0, pin=2, clock_div=80)
    r.loop(True)
    r.write_pulses([4, 6])                                # 1 for 4 us, 0 for 6 us
    clock.run_until(12_000)
    r.write_pulses([2, 2], 0)
    assert clock.now_ns() == 20_000
    clock.run_until(29_000)
    # the old sequence would have gone high again at 20 us: it must not, not even briefly
    assert board.edges(2) == [(0, 0), (0, 1), (4_000, 0), (10_000, 1), (14_000, 0),
                              (22_000, 1), (24_000, 0), (26_000, 1), (28_000, 0)]


def test_deinit_returns_pin_to_idle_and_stops(RMT, clock, board):
    r = RMT(0, pin=2, clock_div=80)
    r.write_pulses([100])
    clock.run_until(50_000)
    r.deinit()
    clock.run_until(10**6)
    assert board.edges(2) == [(0, 0), (0, 1), (50_000, 0)]
    assert clock.pending() == 0


def test_hours_of_looping_have_no_drift_and_one_callback_per_edge(RMT, clock, board):
    scheduled = []
    real_schedule = clock.schedule
    clock.schedule = lambda t, cb: scheduled.append(t) or real_schedule(t, cb)
    r = RMT(0, pin=7, clock_div=255)                      # 3187.5 ns ticks: not an integer
    clock.run_until(123)
    r.loop(True)
    pattern = [32767, 32767, 1, 32767]                    # ~0.418 s per iteration
    r.write_pulses(pattern, 1)
    two_hours = 2 * 3600 * 10**9
    clock.run_until(123 + two_hours)
    edges = board.edges(7)[1:]
    period = sum(pattern)
    offsets = [0, 32767, 65534, 65535]
    expected = []
    k = 0
    while True:
        ticks = (k // 4) * period + offsets[k % 4]
        t = 123 + ticks * 255 * 25 // 2
        if t > 123 + two_hours:
            break
        expected.append((t, 1 - k % 2))
        k += 1
    assert edges == expected
    assert len(edges) > 60_000
    assert len(scheduled) <= len(edges) + len(edges) // 4 + 2   # per edge + per iteration

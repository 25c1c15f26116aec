"""The three pulse back-ends play the compiled table exactly, on the plant's pins.

Edge times come from the emulated MCU's pin log (`mcu.edges`), i.e. what a
logic analyser on POL_A / POL_B would show.
"""
import pytest

from myotone.emulator import Emulator
from safety_helpers import board_for

US = 1000


def firmware_pulse(emu):
    return emu.runtime.modules["myotone.app"]._hw.pulse


def bridge_edges(emu):
    b = emu.board["bridge"]
    return [(t, pin == b["pol_a"], level) for t, pin, level in emu.mcu.edges
            if pin in (b["pol_a"], b["pol_b"])]


def start(emu, **args):
    emu.run_for(0.2)
    emu.send({"id": 1, "cmd": "start", "program": "lift", "ua": 200, **args})
    emu.run_for(0.01)
    assert b'"ok": true' in emu.read()


def rising_times(edges, a_pin):
    return [t for t, is_a, level in edges if is_a == a_pin and level == 1]


@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
def test_phases_are_exact_and_never_overlap(backend):
    with Emulator(board_for(backend)) as emu:
        start(emu, duration_s=30)
        emu.run_for(5)
        edges = bridge_edges(emu)
        # each high period of each pin: the program's 40 ms phase
        widths = []
        high_since = {}
        for t, is_a, level in edges:
            if level:
                high_since[is_a] = t
            elif is_a in high_since:
                widths.append(t - high_since.pop(is_a))
        assert len(widths) > 40
        assert all(w == 40_000 * US for w in widths), set(widths)
        assert emu.plant.trace.shoot_through == 0


@pytest.mark.parametrize("backend,minutes", [("pio", 10), ("rmt", 10), ("timer", 2)])
def test_no_drift(backend, minutes):
    """Absolute deadlines: every pulse starts exactly where the schedule says.

    The session's record is saved once a minute with the output stage off
    (firmware/myotone/checkpoint.py), and on the ESP32 the heap is collected
    with it off when its budget runs low (heap.py): each such hold stops the
    table after a pair and starts it again from its first pair, no sooner than
    the schedule's next one. So the schedule is judged from each (re)start, to
    the nanosecond, each restart comes after a hold's collection and is never
    early (an exact integer schedule over 300 pulses leaves no per-pulse error
    to accumulate over more).
    (The timer back-end interrupts at 10 kHz, so it is checked over 2 minutes
    to keep the suite quick; benchmarks/ measures it over 20.)
    """
    unit = 200_000 * US                    # POL_A rises twice per 200 ms unit (alternating polarity) ...
    second = 140_200 * US                  # ... at 0 and +140.2 ms
    with Emulator(board_for(backend)) as emu:
        start(emu, duration_s=minutes * 60 + 20)
        for _ in range(minutes):           # a minute per lockstep call: each has a wall-clock
            emu.run_for(60)                # timeout, which a loaded machine must not trip
        edges = bridge_edges(emu)
        # a cut at the very instant a pair begins leaves a rise and a fall at one instant (no
        # current flows): not a pulse
        glitch = {t for t, is_a, level in edges if is_a and level == 0}
        rises = [t for t in rising_times(edges, True) if t not in glitch]
        runs = [[rises[0]]]                # the schedule from each (re)start of the table
        for t in rises[1:]:
            run = runs[-1]
            k = len(run)
            if t - run[0] == k // 2 * unit + (second if k % 2 else 0):
                run.append(t)              # where the schedule says, to the nanosecond
            else:                          # a checkpoint's restart: never sooner than the waveform
                assert t - run[-1] >= unit - second, (t, run[-1])      # spaces two rises (59.8 ms)
                runs.append([t])
        holds = [c.t_ns for c in emu.runtime.heap.collections if not c.hv_on and c.t_ns > rises[0]]
        for run in runs[1:]:                # every restart after a hold (a checkpoint, or the heap)
            assert any(run[0] - unit <= t <= run[0] for t in holds), run[0]
        assert minutes <= len(runs) <= len(holds) + 1   # a checkpoint a minute at least
        assert sum(len(run) for run in runs) >= 2 * (minutes * 300 - 15 - len(runs))


def test_pio_starved_fifo_plays_bridge_off_never_a_stuck_phase():
    with Emulator(board_for("pio")) as emu:
        start(emu, duration_s=60)
        emu.run_for(3)
        while not emu.plant.bridge_a:                  # in the middle of a positive phase
            emu.run_for(0.001)
        pulse = firmware_pulse(emu)
        pulse._sm.irq(None)                            # the feeder stops: nothing refills the FIFO
        emu.run_for(1)
        assert not emu.plant.bridge_a and not emu.plant.bridge_b
        tr = emu.plant.trace
        assert tr.current_at(emu.clock.now_ns) == 0
        assert emu.plant.trace.shoot_through == 0


@pytest.mark.parametrize("backend", ["pio", "timer"])
def test_new_table_is_swapped_in_at_a_unit_boundary(backend):
    with Emulator(board_for(backend)) as emu:
        start(emu, duration_s=60)
        emu.run_for(2.05)                              # mid-unit
        first_rise = rising_times(bridge_edges(emu), True)[0]
        pulse = firmware_pulse(emu)
        waveform = emu.runtime.import_module("myotone.pulse").Waveform
        t_swap = emu.clock.now_ns
        pulse.start(pulse.prepare(waveform(20_000, 10_000, 200, True)))   # 20 Hz, 10 ms phases
        emu.run_for(1.5)
        phases, since = [], {}
        for t, is_a, level in bridge_edges(emu):
            if t < t_swap - 40_000 * US:
                continue
            if level:
                since[is_a] = t
            elif is_a in since:
                begun = since.pop(is_a)
                phases.append((begun, t - begun))
        widths = [w for _, w in phases]
        k = widths.index(10_000 * US)
        # never mid-phase: old phases whole, then only new ones, all exact
        assert set(widths[:k]) == {40_000 * US} and set(widths[k:]) == {10_000 * US}, widths
        # and the first new phase starts on a boundary of the old 200 ms unit grid
        assert (phases[k][0] - first_rise) % (200_000 * US) == 0
        assert emu.plant.trace.shoot_through == 0


def test_pio_refills_in_batches_and_never_starves_across_table_swaps():
    """The refill interrupt comes at every segment's end but fills the FIFO only once it holds
    4 words (any 4 of one table span a pair period, >= 1 ms); around a swap, when the FIFO holds
    two tables' words, at every segment. Swapping between the shortest segments the back-end
    plays (1 kHz, 20 us phases and gap) and long ones, every pair starts on its schedule: a
    starved FIFO would play "off" and push the next pair late."""
    with Emulator(board_for("pio")) as emu:
        start(emu, duration_s=60)
        emu.run_for(2.05)
        pulse = firmware_pulse(emu)
        waveform = emu.runtime.import_module("myotone.pulse").Waveform
        puts = []
        put = pulse._sm.put
        pulse._sm.put = lambda w, *a: (puts.append(emu.clock.now_ns), put(w, *a))
        runs = []
        for wave, period_us, width_us in ((waveform(1_000_000, 20, 20, False), 1000, 20),
                                          (waveform(500_000, 1000, 0, False), 2000, 1000),
                                          (waveform(1_000_000, 20, 20, False), 1000, 20)):
            t0 = emu.clock.now_ns
            pulse.start(pulse.prepare(wave))
            emu.run_for(0.7)                 # the swap waits for a unit boundary: up to 2 of lift's
            runs.append((t0, emu.clock.now_ns, period_us, width_us))
        edges = bridge_edges(emu)
        for t0, t1, period_us, width_us in runs:
            rises = [t for t, is_a, level in edges if is_a and level and t0 < t < t1]
            falls = [t for t, is_a, level in edges if is_a and not level and rises[0] < t < t1]
            k = next(i for i, (r, f) in enumerate(zip(rises, falls)) if f - r == width_us * US)
            rises, falls = rises[k:], falls[k:]      # from the swap (at the old unit's end) on
            assert len(rises) >= 100
            assert {b - a for a, b in zip(rises, rises[1:])} == {period_us * US}   # none late
            assert {f - r for r, f in zip(rises, falls)} == {width_us * US}
        # in batches: a steady table's words go in 4 (or more) at a time, not one per segment
        t0, t1 = runs[1][0] + 50_000 * US, runs[1][1]
        steady = [t for t in puts if t0 < t < t1]
        batches = len({t // (50 * US) for t in steady})
        assert len(steady) >= 300 and batches * 4 <= len(steady) + 4, (len(steady), batches)
        assert emu.plant.trace.shoot_through == 0


def test_rmt_refuses_phases_without_dead_time_and_timer_refuses_off_grid():
    with Emulator(board_for("rmt")) as emu:
        emu.run_for(0.2)
        emu.send({"id": 1, "cmd": "start", "program": "lift", "ua": 200, "gap_us": 0})
        emu.run_for(0.05)
        assert b"timing_unsupported" in emu.read()
        assert emu.plant.trace.max_abs_ua == 0


@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
def test_ctrl_c_stops_the_back_end_not_only_the_session(backend):
    """Timers, PIO and RMT keep running after Ctrl-C unless deinitialised: main.py does."""
    with Emulator(board_for(backend)) as emu:
        start(emu, duration_s=60)
        emu.run_for(3)
        emu.write(b"\x03")
        emu.run_for(0.01)
        t_safe = emu.clock.now_ns
        emu.run_for(2)
        # (an ESP32's watchdog, which MicroPython cannot stop, may reset it meanwhile: still safe)
        assert [e for e in bridge_edges(emu) if e[0] > t_safe] == []
        assert not emu.plant.bridge_a and not emu.plant.bridge_b and emu.plant.dac_code == 0


@pytest.mark.parametrize("backend", ["pio", "rmt", "timer"])
@pytest.mark.parametrize("program", ["lift", "contour", "gentle"])
@pytest.mark.parametrize("start_s", [0.05, 0.2337])
def test_no_false_trips_over_a_full_charge_window(backend, program, start_s):
    """Sampling at edges, ramps and partial pairs must not look like a fault."""
    with Emulator(board_for(backend)) as emu:
        emu.run_for(start_s)
        emu.send({"id": 1, "cmd": "start", "program": program, "ua": 300, "duration_s": 14})
        emu.run_for(21)     # 14 s, the ramp-down (1.5 s or two pair intervals: 4 s for gentle), the last pair
        out = emu.read().decode()
        assert '"ok": true' in out and '"ev": "fault"' not in out, out[-400:]
        assert '"state": "done"' in out

"""The plant-side measuring helpers (myotone.emulator.bench) that the safety tests and benchmarks time with."""

from myotone.emulator import bench as truth
from safety_helpers import MS


def test_drive_ns_is_now_during_a_phase_and_the_next_phase_start_in_a_gap(bench):
    bench.start(ua=300)
    bench.run(3)
    bench.run_until_bridge_on()
    t_on = bench.emu.clock.now_ns
    assert truth.drive_ns(bench.emu, t_on) == t_on              # a phase under way counts from now
    while bench.emu.plant.bridge_a or bench.emu.plant.bridge_b:  # into the gap between pairs
        bench.emu.run_for(0.0005)
    t_gap = bench.emu.clock.now_ns
    assert truth.drive_ns(bench.emu, t_gap) is None              # nothing driven yet
    bench.run_until_bridge_on()
    drive = truth.drive_ns(bench.emu, t_gap)
    assert t_gap < drive <= bench.emu.clock.now_ns and bench.emu.clock.now_ns - drive < MS // 2
    hv = bench.emu.board["hv_enable"]
    assert truth.cut_ns(bench.emu, t_gap) is None and any(p == hv for _, p, _ in bench.emu.mcu.edges)

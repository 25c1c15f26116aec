"""Several emulators in one process share nothing: modules, flash, clock, pins, plant."""
import sys

from myotone.emulator import Emulator


def drain(emu):
    return emu.read().decode()


def test_two_boards_in_one_process_share_nothing():
    a = Emulator("pico-mcp4725", seed=1).start()
    b = Emulator("esp32-devkit", seed=2).start()
    try:
        a.run_for(0.2)
        b.run_for(0.2)
        assert '"ready"' in drain(a) and '"ready"' in drain(b)
        # modules: each world has its own machine, firmware and builtins
        ma, mb = a.runtime.import_module("machine"), b.runtime.import_module("machine")
        assert ma is not mb and ma.Pin is not mb.Pin and hasattr(mb, "DAC") and not hasattr(ma, "DAC")
        sa, sb = a.runtime.modules["myotone.supervisor"], b.runtime.modules["myotone.supervisor"]
        assert sa is not sb and a.runtime.builtins is not b.runtime.builtins
        assert "machine" not in sys.modules and "myotone.supervisor" not in sys.modules
        assert ma.unique_id() != mb.unique_id()
        # clocks: a runs a session, b stays where it was
        a.send({"id": 1, "cmd": "start", "program": "lift", "ua": 300})
        a.run_for(3)
        assert b.now_s == 0.2 and a.now_s == 3.2
        # pins and plant: a's output is on, b's never was
        assert a.plant.trace.max_abs_ua > 250 and len(a.mcu.edges) > 10
        assert b.plant.trace.max_abs_ua == 0 and not b.plant.hv_on
        ol = b.board["oc_latch"]
        own = (14, 26, 27, ol["clear_pin"], ol["test_pin"])         # rail, bridge, the latch's re-arm and test
        assert all(pin in own for _, pin, _ in b.mcu.edges)               # only b's own boot edges
        # faults: one board's fault is not the other's
        b.set_fault("over_temp")
        a.run_for(1.5)
        assert '"fault"' not in drain(a) and "over_temp" not in a.plant.faults
        # flash: a file written on one board is not on the other
        a.fs.write_file("/only_a.txt", b"a")
        assert a.fs.exists("/only_a.txt") and not b.fs.exists("/only_a.txt")
    finally:
        a.close()
        b.close()


def test_two_boards_with_the_same_seed_interleaved_give_the_same_truth():
    boards = [Emulator("pico-mcp4725", seed=7).start() for _ in range(2)]
    try:
        for e in boards:
            e.run_for(0.2)
            e.send({"id": 1, "cmd": "start", "program": "contour", "ua": 200})
        for _ in range(20):                      # step them in turns: no state leaks across
            for e in boards:
                e.run_for(0.1)
        t = boards[0].clock.now_ns
        for e in boards:
            e.plant.trace.close(t)
        ta, tb = (e.plant.trace for e in boards)
        assert list(ta.t_ns) == list(tb.t_ns) and list(ta.i_ua) == list(tb.i_ua)
        assert ta.net_charge_nc == tb.net_charge_nc and ta.max_abs_ua > 20   # ramping: above the 10 uA soft start
        for e in boards:        # off the once-a-second telemetry instant (2.2 s): a line written at
            e.run_for(0.05)     # the very instant the run stops may or may not be out yet
        assert drain(boards[0]) == drain(boards[1])
    finally:
        for e in boards:
            e.close()

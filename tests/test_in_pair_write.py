"""A ramp step decided inside a pair is written by the next bookkeeping call (Supervisor.
_write_pending, docs/safety.md): the rise is in the in-pair ledger when decided; the write comes
2.5 ms later, only while the output stage is on. Judged on the emulator's plant."""
from safety_helpers import Bench, board_for, supervisor

MS = 1_000_000
NO_OFF_TIME = dict(program="lift", ua=300, duration_s=60, hz=500, phase_us=1000, gap_us=0)


def _until_pending(b, sup, pending_slot):
    """Run in 0.25 ms steps until the output slice has left a step for the next call."""
    for _ in range(20000):
        b.run(0.00025)
        if sup._amp[pending_slot] >= 0:
            return sup._amp[pending_slot]
    raise AssertionError("no step was decided inside a pair")


def test_a_step_decided_inside_a_pair_is_written_at_the_next_call_and_the_pair_plays_it():
    b = Bench(board_for("pio"))
    try:
        sup = supervisor(b)
        S = b.emu.runtime.modules["myotone.supervisor"]
        assert b.request("start", **NO_OFF_TIME)["ok"]
        b.run(0.5)                                   # switched on, ramping: every pair in a pair
        code = _until_pending(b, sup, S._A_PENDING)
        assert sup.output.code != code               # decided, not written yet
        b.run(0.003)                                 # the next bookkeeping call
        assert sup._amp[S._A_PENDING] == -1
        assert sup.output.code == code == b.emu.plant.dac_code
        assert sup.output.pair_code >= code          # the pair it landed in plays it
    finally:
        b.close()


def test_a_cut_between_the_decision_and_the_write_leaves_the_dac_at_zero():
    """The write is the output stage's only while it is on: a trip in between writes nothing
    (the stage's off state is the DAC at 0), and the step is forgotten."""
    b = Bench(board_for("pio"))
    try:
        sup = supervisor(b)
        S = b.emu.runtime.modules["myotone.supervisor"]
        assert b.request("start", **NO_OFF_TIME)["ok"]
        b.run(0.5)
        _until_pending(b, sup, S._A_PENDING)
        sup.stage.trip("charging")                   # as the main loop or a slice would
        b.run(0.02)
        assert sup._amp[S._A_PENDING] == -1
        p = b.emu.plant
        assert sup.output.code == 0 and p.dac_code == 0 and p.hv_on == 0
    finally:
        b.close()

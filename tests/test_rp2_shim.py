"""The rp2 module shim, driven like firmware would, on a fake virtual clock."""
import sys
import types
from array import array
from fractions import Fraction

import pytest
from conftest import Pin

from myotone.emulator.rp2_shim import make_rp2_module, pio_freq


def word(state, count):
    return state | count << 2


@pytest.fixture
def rp2(clock, board):
    return make_rp2_module(clock, board)


def pulse_player(rp2):
    @rp2.asm_pio(out_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW),
                 set_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW), out_shiftdir=rp2.PIO.SHIFT_RIGHT)
    def prog():
        wrap_target()
        pull(block)
        out(pins, 2)
        out(x, 30)
        label("countdown")
        jmp(x_dec, "countdown")
        set(pins, 0)
        wrap()
    return prog


FIRMWARE_SOURCE = """
import rp2
STATES = 2
@rp2.asm_pio(out_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW), set_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW), out_shiftdir=rp2.PIO.SHIFT_RIGHT)
def pulse_player():
    wrap_target()
    pull(block)
    out(pins, 2)
    out(x, 30)
    label("countdown")
    jmp(x_dec, "countdown")
    set(pins, 0)
    wrap()

def player(pin):
    return rp2.StateMachine(0, pulse_player, freq=1_000_000, out_base=pin, set_base=pin)
"""


def test_firmware_module_as_written_for_micropython(rp2, clock, board, monkeypatch):
    monkeypatch.setitem(sys.modules, "rp2", rp2)
    fw = types.ModuleType("firmware_pulses")
    exec(FIRMWARE_SOURCE, fw.__dict__)
    assert list(fw.pulse_player[0]) == [0x80A0, 0x6002, 0x603E, 0x0043, 0xE000]
    assert fw.STATES == 2 and fw.rp2 is rp2 and callable(fw.player)  # globals restored
    sm = fw.player(Pin(2))
    sm.active(1)
    sm.put(word(3, 7))
    clock.run_until(10**6)
    assert board.edges(2)[1:] == [(2_000, 1), (12_000, 0)]
    assert board.edges(3)[1:] == [(2_000, 1), (12_000, 0)]


def test_blocking_put_advances_virtual_time_and_edges_are_exact(rp2, clock, board):
    sm = rp2.StateMachine(0, pulse_player(rp2), freq=1_000_000, out_base=Pin(2), set_base=Pin(2))
    assert board.history == [(0, 2, 0), (0, 3, 0)]          # out_init/set_init at init()
    sm.active(1)
    for _ in range(3):
        sm.put(word(1, 10))
        sm.put(word(2, 5))
    # 4 words fit; the 5th waits for the first pull (1 us), the 6th for the second (16 us)
    assert clock.now_ns() == 16_000
    clock.run_until(10**9)
    assert board.edges(2)[1:] == [(2_000, 1), (15_000, 0), (27_000, 1), (40_000, 0),
                                 (52_000, 1), (65_000, 0)]
    assert board.edges(3)[1:] == [(17_000, 1), (25_000, 0), (42_000, 1), (50_000, 0),
                                 (67_000, 1), (75_000, 0)]
    assert sm.tx_fifo() == 0 and clock.pending() == 0      # starved: no more wake-ups


def test_put_on_an_inactive_sm_waits_for_a_timer_to_start_it(rp2, clock):
    sm = rp2.StateMachine(1, pulse_player(rp2), freq=1_000_000, out_base=2, set_base=2)
    for _ in range(4):
        sm.put(word(1, 100))
    clock.schedule(5_000_000, lambda: sm.active(1))        # e.g. a machine.Timer callback
    sm.put(word(1, 100))
    assert clock.now_ns() == 5_000_000                     # the SM pulls in its first cycle


def test_fifo_levels_and_buffer_put(rp2, clock):
    sm = rp2.StateMachine(0, pulse_player(rp2), freq=1_000_000, out_base=2, set_base=2)
    sm.put(array("I", [word(1, 50), word(0, 50)]))
    sm.put(bytearray([1]))
    assert sm.tx_fifo() == 3 and sm.rx_fifo() == 0
    with pytest.raises(ValueError, match="unsupported buffer type"):
        sm.put(array("f", [1.0]))


def test_exec_string_and_blocking_get(rp2, clock):
    @rp2.asm_pio()
    def delayed_report():
        set(y, 31)
        label("w")
        jmp(y_dec, "w")[31]
        mov(isr, x)
        push()
        pull()
    sm = rp2.StateMachine(0, delayed_report, freq=1_000_000)
    sm.exec("set(x, 5)")
    sm.active(1)
    assert sm.get() == 5
    assert clock.now_ns() == (1 + 32 * 32 + 1) * 1_000     # the push, 1026 cycles in
    sm.restart()
    buf = bytearray(1)
    assert sm.get(buf) is buf and buf[0] == 5


def test_irq_handlers_run_at_the_pio_time_and_ack_the_flag(rp2, clock):
    @rp2.asm_pio()
    def ticker():
        irq(rel(0))
        set(x, 31)
        label("d")
        jmp(x_dec, "d")[31]
    sm_times, pio_flags = [], []
    sm = rp2.PIO(0).state_machine(1, ticker, freq=1_000_000)
    sm.irq(lambda s: sm_times.append((s, clock.now_ns())))
    rp2.PIO(0).irq(lambda p: pio_flags.append(p.irq().flags()), trigger=rp2.PIO.IRQ_SM1)
    sm.active(1)
    clock.run_until(2_500_000)
    assert sm_times == [(sm, 0), (sm, 1_026_000), (sm, 2_052_000)]
    assert pio_flags == [rp2.PIO.IRQ_SM1] * 3
    assert rp2._emu.blocks[0].irq_flags.value == 0


def test_irq_wait_stalls_without_handler_and_runs_with_one(rp2, clock, board):
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def handshake():
        irq(block, rel(0))
        set(pins, 1)
        pull()
    sm = rp2.StateMachine(4, handshake, freq=1_000_000, set_base=Pin(7))
    sm.active(1)
    clock.run_until(1_000_000)
    assert board.edges(7) == [(0, 0)] and rp2._emu.blocks[1].irq_flags.value == 1
    sm.irq(lambda s: None)
    sm.exec("irq(clear, 0)")                                # firmware releases it by hand
    clock.run_until(2_000_000)
    # exec'd "irq clear" runs in cycle 1001, the waiting irq completes in 1002
    assert board.edges(7) == [(0, 0), (1_003_000, 1)]


def test_wait_on_input_pin_resumes_after_input_changed(rp2, clock, board):
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def follower():
        wait(1, pin, 0)
        set(pins, 1)
        pull()
    sm = rp2.StateMachine(0, follower, freq=1_000_000, in_base=Pin(5), set_base=Pin(6))
    sm.active(1)
    clock.run_until(50_000)
    rp2._emu.sync()
    board.inputs[5] = 1
    rp2._emu.input_changed()
    clock.run_until(100_000)
    # sync() ran the 50 us cycle with the old level: the wait ends at 51 us
    assert board.edges(6) == [(0, 0), (52_000, 1)]


def test_two_state_machines_synchronise_on_an_irq_flag(rp2, clock, board):
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def waiter():
        wait(1, irq, 4)
        set(pins, 1)
        pull()

    @rp2.asm_pio()
    def signaller():
        set(x, 9)
        label("d")
        jmp(x_dec, "d")[9]
        irq(4)
        pull()
    a = rp2.StateMachine(0, waiter, freq=1_000_000, set_base=Pin(10))
    b = rp2.StateMachine(1, signaller, freq=1_000_000)
    a.active(1)
    b.active(1)
    clock.run_until(1_000_000)
    # irq 4 set in cycle 101, seen by the waiter in 102, set pins in 103
    assert board.edges(10) == [(0, 0), (103_000, 1)]
    assert rp2._emu.blocks[0].irq_flags.value == 0          # "wait 1 irq" cleared it


def test_program_memory_placement_remove_and_enomem(rp2):
    pio = rp2.PIO(1)
    prog = pulse_player(rp2)
    pio.add_program(prog)
    assert prog[2] == 32 - 5 and prog[1] == -1             # top of PIO1's memory

    @rp2.asm_pio()
    def big():
        for _ in range(28):
            nop()
    with pytest.raises(OSError) as err:
        rp2.StateMachine(4, big)
    assert err.value.errno == 12
    pio.remove_program(prog)
    assert prog[2] == -1
    rp2.StateMachine(4, big)
    assert big[2] == 4
    with pytest.raises(ValueError, match="not in instruction memory"):
        pio.remove_program(prog)


def test_jmp_targets_are_relocated(rp2, clock, board):
    sm = rp2.StateMachine(0, pulse_player(rp2), freq=1_000_000, out_base=2, set_base=2)
    assert sm._sim.offset == 27
    sm.active(1)
    sm.put(word(1, 3))
    clock.run_until(10**6)
    assert board.edges(2)[1:] == [(2_000, 1), (8_000, 0)]


def test_ids_and_freq_range(rp2):
    assert rp2.PIO(0).state_machine(3) is rp2.StateMachine(3)
    for bad in (lambda: rp2.PIO(2), lambda: rp2.StateMachine(8),
                lambda: rp2.PIO(0).state_machine(4)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="freq out of range"):
        rp2.StateMachine(0, pulse_player(rp2), freq=1_000)
    with pytest.raises(TypeError):
        rp2.StateMachine(0, pulse_player(rp2), freq=2_000, autopull=True)  # not an init() arg


def test_clock_divider_like_the_rp2_port():
    assert pio_freq(125_000_000, 1_000_000) == 1_000_000
    assert pio_freq(125_000_000, 3_000_000) == Fraction(125_000_000 * 256, 10667)
    assert pio_freq(125_000_000, -1) == 125_000_000
    assert pio_freq(125_000_000, 0) == Fraction(125_000_000, 65536)


def _toggler(rp2):
    @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
    def prog():
        wrap_target()
        set(pins, 1)
        set(pins, 0)
        wrap()
    return prog


def test_pio_plays_ahead_only_until_the_next_event_of_anyone_else(rp2, clock, board):
    """Between two wake-ups the SM runs on by itself, but never past another
    callback: what that callback sees of the pins is the level at its time."""
    sm = rp2.StateMachine(0, _toggler(rp2), freq=1_000_000, set_base=Pin(2))
    seen = []
    for t in (10_500, 11_500, 33_500, 34_200):       # set(pins, 1) issues at even us
        clock.schedule(t, lambda t=t: seen.append((t, board.level(2))))
    sm.active(1)
    clock.run_until(40_000)
    assert seen == [(10_500, 1), (11_500, 0), (33_500, 0), (34_200, 1)]
    edges = board.edges(2)[1:]                        # after set_init
    assert edges == [(i * 1_000, 1 - i % 2) for i in range(41)]
    assert clock.callbacks_run < 12                   # ~ one per other callback, not 41

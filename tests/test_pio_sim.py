"""PIO state machine simulator: exact edge times, FIFOs, instructions, fast-forward."""
from fractions import Fraction

import pytest

from myotone.emulator import pio_asm as PIO
from myotone.emulator.pio_asm import asm_pio
from myotone.emulator.pio_block import PioBlock
from myotone.emulator.pio_sim import StateMachineSim


@asm_pio(out_init=(PIO.OUT_LOW, PIO.OUT_LOW), set_init=(PIO.OUT_LOW, PIO.OUT_LOW),
         out_shiftdir=PIO.SHIFT_RIGHT)
def pulse_player():
    wrap_target()
    pull(block)
    out(pins, 2)
    out(x, 30)
    label("countdown")
    jmp(x_dec, "countdown")
    set(pins, 0)
    wrap()


def word(state, count):
    return state | count << 2


def make(program, freq_hz=1_000_000, **kw):
    log = []
    sm = StateMachineSim(program, freq_hz, pin_write=lambda p, lvl, t: log.append((t, p, lvl)), **kw)
    return sm, log


def player(freq_hz=1_000_000, **kw):
    return make(pulse_player, freq_hz, out_base=2, set_base=2, **kw)


def test_pulse_player_exact_edges_and_starvation_leaves_pins_low():
    sm, log = player()
    sm.start(0)
    assert log == [(0, 2, 0), (0, 3, 0)]      # *_init levels on start
    log.clear()
    assert sm.put(word(1, 10), 0) and sm.put(word(2, 5), 0)
    sm.advance_to(10**9)
    # pull stalls at cycle 0, sees the word at cycle 1; out pins at 2;
    # out x at 3; 11 jmp issues 4..14; set pins 0 at 15; next word likewise.
    assert log == [(2000, 2, 1), (15000, 2, 0), (17000, 3, 1), (25000, 3, 0)]
    assert sm.x == 0xFFFFFFFF and sm.pc == 0
    assert sm.next_event_ns() is None          # starved: stalled on pull forever
    assert sm._levels == {2: 0, 3: 0}
    sm.advance_to(10**12)
    assert len(log) == 4 and sm.tx_fifo() == 0


def test_put_returns_false_when_fifo_full_and_join_tx_doubles_depth():
    sm, _ = player()
    assert [sm.put(word(1, 1000), 0) for _ in range(5)] == [True] * 4 + [False]
    sm2, _ = player(fifo_join=PIO.JOIN_TX)
    assert [sm2.put(1, 0) for _ in range(9)] == [True] * 8 + [False]
    assert sm2.rx_depth == 0


def test_pull_noblock_copies_x():
    @asm_pio()
    def prog():
        set(x, 7)
        pull(noblock)
        mov(y, osr)
        push()
    sm, _ = make(prog)
    sm.start(0)
    sm.advance_to(10_000)
    assert sm.y == 7 and sm.get(10_000) == 0   # ISR was empty when pushed


def test_autopull_autopush_loopback():
    @asm_pio(autopull=True, autopush=True)
    def loopback():
        out(x, 32)
        in_(x, 32)
    sm, _ = make(loopback)
    sm.start(0)
    for v in (1, 0xDEADBEEF, 3):
        assert sm.put(v, 0)
    sm.advance_to(100_000)
    assert [sm.get(100_000) for _ in range(3)] == [1, 0xDEADBEEF, 3]
    assert sm.get(100_000) is None


def test_pull_is_a_no_op_on_a_full_osr_with_autopull():
    @asm_pio(autopull=True)
    def prog():
        pull()
        pull()                # OSR still full: must not drop the first word
        out(x, 32)
        out(y, 32)            # autopull refilled the OSR after the previous out
    sm, _ = make(prog)
    sm.put(0xA, 0)
    sm.put(0xB, 0)
    sm.start(0)
    sm.advance_to(3_000)
    assert (sm.x, sm.y) == (0xA, 0xB)


def test_shift_directions_and_thresholds():
    @asm_pio(in_shiftdir=PIO.SHIFT_RIGHT, out_shiftdir=PIO.SHIFT_LEFT)
    def prog():
        pull()
        out(x, 4)
        out(y, 4)
        in_(x, 4)
        in_(y, 4)
        push()
    sm, _ = make(prog)
    sm.start(0)
    sm.put(0xAB000000, 0)
    sm.advance_to(10**6)
    assert (sm.x, sm.y) == (0xA, 0xB)
    assert sm.get(10**6) == 0xBA000000        # shifted in from the left (right shift)


def test_mov_invert_reverse_and_status():
    @asm_pio()
    def prog():
        set(x, 1)
        mov(y, invert(x))
        mov(isr, reverse(x))
        mov(osr, status)
    sm, _ = make(prog)
    sm.start(0)
    sm.advance_to(10**6)
    assert sm.y == 0xFFFFFFFE and sm.isr == 0x80000000 and sm.osr == 0


def test_jmp_conditions():
    @asm_pio()
    def prog():
        set(x, 0)
        jmp(not_x, "a")
        set(y, 31)            # skipped
        label("a")
        set(y, 1)
        jmp(x_not_y, "b")
        set(x, 9)             # skipped
        label("b")
        jmp(pin, "c")
        set(x, 2)             # executed: jmp pin reads 0
        label("c")
        jmp(not_osre, "d")    # OSR empty after start: not taken
        set(y, 3)
        label("d")
        jmp("d")
    sm, _ = make(prog, jmp_pin=5)
    sm.start(0)
    sm.advance_to(10**6)
    assert (sm.x, sm.y) == (2, 3)


def test_sideset_opt_applies_even_when_stalled_and_wins_over_set():
    @asm_pio(sideset_init=PIO.OUT_LOW, set_init=PIO.OUT_LOW)
    def prog():
        pull().side(1)
        set(pins, 1).side(0)
        nop()
    sm, log = make(prog, sideset_base=9, set_base=9)
    sm.start(0)
    log.clear()
    sm.advance_to(5_000)                        # pull stalls; side-set already applied
    assert log == [(0, 9, 1)]
    sm.put(0, 5_000)
    sm.advance_to(8_000)
    assert log == [(0, 9, 1), (7_000, 9, 0)]   # side 0 beats set pins,1 on the same pin


def test_set_pindirs_reports_directions():
    @asm_pio(set_init=PIO.IN_LOW)
    def prog():
        set(pindirs, 1)
        set(pins, 1)
    dirs = []
    sm, log = make(prog, set_base=4, pindir_write=lambda p, d, t: dirs.append((t, p, d)))
    sm.start(0)
    sm.advance_to(1_000)
    assert dirs == [(0, 4, 0), (0, 4, 1)] and log[-1] == (1_000, 4, 1)


def test_wait_gpio_resumes_after_input_changed():
    level = {"v": 0}

    @asm_pio(set_init=PIO.OUT_LOW)
    def prog():
        wait(1, gpio, 7)
        set(pins, 1)
    sm, log = make(prog, set_base=0, pin_read=lambda p: level["v"] if p == 7 else 0)
    sm.start(0)
    sm.advance_to(50_000)
    assert sm.next_event_ns() is None
    level["v"] = 1                  # input rises at 50 us (after advance_to(50 us))
    sm.input_changed()
    assert sm.next_event_ns() == 51_000
    sm.advance_to(100_000)
    assert log[-1] == (52_000, 0, 1)


def test_irq_handler_and_irq_wait():
    @asm_pio()
    def prog():
        irq(block, rel(0))
        set(x, 1)
    calls = []
    sm, _ = make(prog, sm_index=2)

    def handler(t, flag):
        calls.append((t, flag))
        sm.irq_flags.value &= ~(1 << flag)   # acknowledge, as MicroPython's ISR does
    sm.irq_handler = handler
    sm.start(0)
    sm.advance_to(10_000)
    # rel(0) on SM 2 -> flag 2; acked at once, so the wait ends after 1 retry
    assert calls[:2] == [(0, 2), (3_000, 2)] and sm.x == 1


def test_irq_wait_without_ack_stalls_forever():
    @asm_pio()
    def prog():
        irq(block, 0)
        set(x, 1)
    sm, _ = make(prog)
    sm.start(0)
    sm.advance_to(10**9)
    assert sm.x == 0 and sm.irq_flags.value == 1 and sm.next_event_ns() is None


def test_exec_and_out_exec_and_restart():
    @asm_pio()
    def prog():
        pull()
        out(exec, 16)
        jmp("end")
        set(y, 3)
        label("end")
        set(x, 1)
    sm, _ = make(prog)
    sm.exec(0xE025, 0)                          # set x, 5 while stopped: runs at once
    assert sm.x == 5
    sm.start(0)
    sm.put(0xE04A << 16, 0)                     # set y, 10 run by out exec (shift left)
    sm.advance_to(10_000)
    assert (sm.x, sm.y, sm.pc) == (1, 10, 0)       # set y,3 skipped; stalled on pull
    sm.restart(20_000)
    assert sm.pc == 0 and sm.osr_count == 32


def test_fraction_frequency_has_no_drift():
    sm, _ = player(freq_hz=3_000_000)
    sm.start(7)
    assert [sm.t_of(c) for c in (0, 1, 2, 3)] == [7, 340, 673, 1007]
    c = 3 * 10**6 * 3600  # one hour of cycles
    assert sm.t_of(c) == 7 + 3600 * 10**9
    clkdiv = Fraction(125_000_000 * 256, 10667)  # what freq=3 MHz gives on a 125 MHz RP2040
    sm2, _ = player(freq_hz=clkdiv)
    assert sm2.t_of(125_000_000 * 256) == 10667 * 10**9


def _countdown_program():
    @asm_pio(sideset_init=PIO.OUT_LOW, out_init=PIO.OUT_LOW, out_shiftdir=PIO.SHIFT_RIGHT)
    def prog():
        pull().side(0)
        out(y, 32).side(1)
        label("hi")
        jmp(y_dec, "hi").side(1)[3]
        pull().side(0)
        out(x, 32).side(0)
        label("lo")
        jmp(x_dec, "lo")
        out(pins, 1).side(0)
    return prog


@pytest.mark.parametrize("count", [0, 1, 2, 7, 100])
@pytest.mark.parametrize("steps", [[10**9], [5_000, 5_001, 5_003, 40_000, 10**9], list(range(0, 1_500_000, 997))])
def test_fast_forward_matches_stepping(count, steps):
    runs = []
    for ff in (True, False):
        sm, log = make(_countdown_program(), freq_hz=Fraction(3_000_000, 7),
                       sideset_base=3, out_base=4, fast_forward=ff)
        sm.start(11)
        sm.put(count, 11)
        sm.put(3, 11)
        states = []
        for t in steps:
            sm.advance_to(t)
            states.append((sm.cycle, sm.pc, sm.x, sm.y, sm.next_event_ns() is None))
        runs.append((log, states))
    assert runs[0] == runs[1]
    assert runs[0][0]  # something happened


def test_next_event_skips_a_countdown():
    sm, _ = player()
    sm.start(0)
    sm.put(word(1, 1_000_000), 0)
    sm.advance_to(3_000)                        # out x done at 3 us; countdown starts at 4 us
    assert sm.next_event_ns() == 4_000 + 1_000_001 * 1_000


def test_countdown_of_a_billion_cycles_is_one_step():
    sm, log = player()
    sm.start(0)
    sm.put(word(1, 2**30 - 1), 0)
    issued = []
    issue = sm._issue
    sm._issue = lambda *a: issued.append(a[0]) or issue(*a)
    sm.advance_to(2 * 10**12)
    assert len(issued) < 10                      # pull, out, out, the whole loop, set, pull...
    assert log[-1] == ((2 + 2**30 - 1 + 3) * 1000, 2, 0)   # set pins,0 after the loop


def test_twenty_minutes_of_100hz_without_drift():
    freq_hz = 3_000_000                         # 333.33 ns cycles: exact only in aggregate
    hi_cycles = 15_000                           # 5 ms
    period = 30_000                              # 10 ms
    high = word(1, hi_cycles - 3)                # out pins..set pins spans count + 3 cycles
    low = word(0, period - 10 - (hi_cycles - 3))  # the 2 words add 10 cycles of overhead
    sm, log = player(freq_hz=freq_hz)
    sm.start(0)
    log.clear()
    end_ns = 20 * 60 * 10**9
    t = 0
    queue = [high, low]
    while t < end_ns + 10**7:
        while sm.tx_fifo() < 4:
            sm.put(queue[0], t)
            queue.reverse()
        t += 8 * 10**6                           # top up every 8 ms (the FIFO holds 20 ms)
        sm.advance_to(t)
    rises = [e[0] for e in log if e[2] == 1]
    falls = [e[0] for e in log if e[2] == 0]
    n = end_ns // 10**7
    assert len(rises) > n
    expected_rises = [(2 + j * period) * 10**9 // freq_hz for j in range(len(rises))]
    expected_falls = [(2 + hi_cycles + j * period) * 10**9 // freq_hz for j in range(len(falls))]
    assert rises == expected_rises and falls == expected_falls
    assert rises[n] - rises[0] == 20 * 60 * 10**9  # exactly 20 min after 120000 periods


def test_program_too_long_for_instruction_memory():
    @asm_pio()
    def long_prog():
        for _ in range(33):
            nop()
    with pytest.raises(OSError) as err:
        StateMachineSim(long_prog, 1_000_000, pin_write=lambda *a: None)
    assert err.value.errno == 12


def test_stop_and_resume_keeps_state():
    sm, log = player()
    sm.start(0)
    sm.put(word(1, 100), 0)
    sm.stop(50_000)                              # mid-countdown
    x_at_stop = sm.x
    sm.advance_to(10**9)
    assert sm.x == x_at_stop and log[-1] == (2_000, 2, 1)
    sm.start(1_000_000)
    sm.advance_to(2_000_000)
    # stopped after cycle 50; set pins,0 was due at cycle 105, i.e. 54 cycles after resuming
    assert log[-1] == (1_000_000 + 54_000, 2, 0)


def test_block_orders_irq_handshake_within_one_long_advance():
    @asm_pio(set_init=PIO.OUT_LOW)
    def waiter():
        wait(1, irq, 4)
        set(pins, 1)
        pull()

    @asm_pio()
    def signaller():
        set(x, 9)
        label("d")
        jmp(x_dec, "d")[9]
        irq(4)
        pull()
    block, log = PioBlock(0), []
    a = block.make_sm(0, waiter, 1_000_000, set_base=10,
                      pin_write=lambda p, lvl, t: log.append((t, p, lvl)))
    b = block.make_sm(1, signaller, 1_000_000, pin_write=lambda *args: None)
    a.start(0)
    b.start(0)
    block.advance_to(10**9)                       # one call: no per-event wake-ups
    assert log == [(0, 10, 0), (103_000, 10, 1)]
    assert block.irq_flags.value == 0 and block.next_event_ns() is None


def test_wrap_target_loops_only_the_wrapped_part():
    @asm_pio()
    def prog():
        set(y, 0)             # once
        wrap_target()
        set(x, 1)
        mov(y, invert(y))     # toggles every loop iteration
        wrap()
        set(y, 7)             # never reached
    sm, _ = make(prog)
    sm.start(0)
    sm.advance_to(4_000)      # set y, then (set x, mov y) twice: 5 issues
    assert (sm.y, sm.pc) == (0, 1)
    sm.advance_to(6_000)      # set x, mov y: y toggled again, no "set y, 7"
    assert (sm.y, sm.pc) == (0xFFFFFFFF, 1)


def test_autopush_at_a_threshold_below_32():
    @asm_pio(autopush=True, push_thresh=8, in_shiftdir=PIO.SHIFT_LEFT)
    def prog():
        set(x, 0xA)
        in_(x, 4)
        set(x, 0x5)
        in_(x, 4)             # 8 bits in: pushed automatically
    sm, _ = make(prog)
    sm.start(0)
    sm.advance_to(3_000)
    assert sm.get(3_000) == 0xA5 and sm.isr_count == 0


def test_sideset_can_drive_pindirs():
    @asm_pio(sideset_init=PIO.IN_LOW, side_pindir=True)
    def prog():
        nop().side(1)
        nop().side(0)
    dirs = []
    sm, log = make(prog, sideset_base=12, pindir_write=lambda p, d, t: dirs.append((t, p, d)))
    sm.start(0)
    sm.advance_to(2_000)
    assert dirs == [(0, 12, 0), (0, 12, 1), (1_000, 12, 0), (2_000, 12, 1)]
    assert log == [(0, 12, 0)]               # levels untouched after init

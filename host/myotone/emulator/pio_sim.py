"""One RP2040 PIO state machine, executed from its 16-bit instruction words.

Timing model
  * Cycle ``c`` (counted from the last ``start``) begins at
    ``start_ns + floor(c * 1e9 / freq_hz)`` with ``freq_hz`` an int or
    ``Fraction`` (an exact clock-divider result): times are always computed
    from the absolute cycle count, so there is no drift over any run length.
    Real hardware snaps cycles to system-clock edges (<= 1 sys cycle jitter).
  * An instruction issued in cycle ``c`` takes 1 cycle plus its delay; pin
    writes (out/set/mov/side-set) are reported at the start time of ``c``.
  * A stalled instruction (blocking pull/push on a FIFO, wait, irq wait)
    retries every cycle without consuming its delay; side-set is applied on
    the first issue even when stalled.
  * ``advance_to(t)`` runs every issue whose start time is ``<= t``.  Inputs
    (``pin_read``, FIFOs, IRQ flags from outside) are taken as constant
    between calls: the integrator must ``advance_to(t)`` before changing an
    input at ``t``, then call ``input_changed()``.  Thanks to that a stalled
    machine costs O(1) per call, and ``jmp x--``/``jmp y--`` loops to
    themselves are skipped in O(1) (``fast_forward``).
"""
from collections import deque
from fractions import Fraction

from .pio_asm import (PROG_DATA, PROG_EXECCTRL, PROG_OUT_PINS, PROG_SET_PINS,
                      PROG_SHIFTCTRL, PROG_SIDESET_PINS)
from .pio_instr import _RETRY, _STALL, M32, PioInstructions


class IrqFlags:
    """The 8 IRQ flags of one PIO block, shared by its state machines."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


def _pin_group(init):
    """(count, pindir bits, level bits) from an out_init/set_init/sideset_init value."""
    if init is None:
        return 0, 0, 0
    init = (init,) if isinstance(init, int) else tuple(init)
    return (len(init), sum((v >> 1 & 1) << i for i, v in enumerate(init)),
            sum((v & 1) << i for i, v in enumerate(init)))


def relocate(words, offset):
    """Program words as loaded at *offset*: jmp targets move, like pio_add_program."""
    return [(w & ~0x1F) | ((w + offset) & 0x1F) if w >> 13 == 0 else w for w in words]


class StateMachineSim(PioInstructions):
    """One state machine running *program* (an ``asm_pio`` result) at *freq_hz*.

    Pins are GPIO numbers.  ``pin_write(pin, level, t_ns)`` is called on every
    output level change, ``pindir_write(pin, is_output, t_ns)`` (optional) on
    direction changes, ``pin_read(pin)`` gives input levels.  Shift, FIFO and
    autopush/autopull settings default to the program's, overridable as in
    ``StateMachine.init``.  *offset*/*instr_mem*/*irq_flags*/*sm_index* let a
    PIO block share its instruction memory and IRQ flags (see ``pio_block``).
    """

    def __init__(self, program, freq_hz, *, pin_write, pin_read=lambda pin: 0,
                 set_base=None, out_base=None, in_base=None, sideset_base=None, jmp_pin=None,
                 out_shiftdir=None, in_shiftdir=None, push_thresh=None, pull_thresh=None,
                 autopush=None, autopull=None, fifo_join=None,
                 sm_index=0, offset=0, instr_mem=None, irq_flags=None, pindir_write=None,
                 fast_forward=True):
        self._pin_write, self._pin_read, self._pindir_write = pin_write, pin_read, pindir_write
        self.irq_handler = None  # irq_handler(t_ns, flag) when an irq instruction sets flag 0..7
        self.sideset_base = self.sideset_count = 0
        self.sm_index, self.offset, self.fast_forward = sm_index, offset, fast_forward
        self.irq_flags = irq_flags if irq_flags is not None else IrqFlags()
        period_ns = Fraction(10**9) / Fraction(freq_hz)
        self.freq_hz, self._num, self._den = freq_hz, period_ns.numerator, period_ns.denominator
        shiftctrl = program[PROG_SHIFTCTRL]
        for value, lsb, width in ((autopush, 16, 1), (autopull, 17, 1), (in_shiftdir, 18, 1),
                                  (out_shiftdir, 19, 1), (push_thresh, 20, 5),
                                  (pull_thresh, 25, 5), (fifo_join, 30, 2)):
            if value is not None:  # same override StateMachine.init applies
                mask = ((1 << width) - 1) << lsb
                shiftctrl = shiftctrl & ~mask | (int(value) << lsb) & mask
        self.autopush, self.autopull = bool(shiftctrl >> 16 & 1), bool(shiftctrl >> 17 & 1)
        self.in_right, self.out_right = bool(shiftctrl >> 18 & 1), bool(shiftctrl >> 19 & 1)
        self.push_thresh = (shiftctrl >> 20 & 31) or 32
        self.pull_thresh = (shiftctrl >> 25 & 31) or 32
        join_tx, join_rx = shiftctrl >> 30 & 1, shiftctrl >> 31 & 1
        self.tx_depth = 8 if join_tx else 0 if join_rx else 4
        self.rx_depth = 8 if join_rx else 0 if join_tx else 4
        execctrl = program[PROG_EXECCTRL]
        self.wrap_bottom = ((execctrl >> 7 & 31) + offset) & 31
        self.wrap_top = ((execctrl >> 12 & 31) + offset) & 31
        self.side_pindir, side_en = execctrl >> 29 & 1, execctrl >> 30 & 1
        self.status_sel, self.status_n = execctrl >> 4 & 1, execctrl & 15
        # Pin groups: a group exists only with both a base and *_init (as in MicroPython).
        groups = []
        for name, base, init in (("out", out_base, program[PROG_OUT_PINS]),
                                 ("set", set_base, program[PROG_SET_PINS]),
                                 ("sideset", sideset_base, program[PROG_SIDESET_PINS])):
            count, dirs, levels = _pin_group(init) if base is not None else (0, 0, 0)
            setattr(self, name + "_base", base or 0)
            setattr(self, name + "_count", count)
            if count:
                groups.append((base, count, dirs, levels))
        self._init_groups = groups
        self.in_base, self.jmp_pin = in_base or 0, jmp_pin or 0
        self.ss_bits = self.sideset_count + side_en if self.sideset_count else 0
        self._side_opt = bool(side_en and self.ss_bits)
        self._side_pins = frozenset((self.sideset_base + i) & 31 for i in range(self.sideset_count))
        if instr_mem is None:
            words = list(program[PROG_DATA])
            if offset + len(words) > 32:
                raise OSError(12, "ENOMEM")
            instr_mem = [0] * 32
            instr_mem[offset:offset + len(words)] = relocate(words, offset)
        self._code = [self._decode(w, addr) for addr, w in enumerate(instr_mem)]
        self._levels, self._dirs = {}, {}
        self._side_active = False
        self.tx, self.rx = deque(), deque()
        self.x = self.y = self.isr = self.osr = 0
        self.active = False
        self._pins_initialized = False
        self._start_ns, self.cycle, self._resume_cycles = 0, 0, 0
        self._reset_internal()
        self.pc = offset

    # -- decoding -------------------------------------------------------------
    def _decode(self, word, addr=None):
        """Tuple (handler, arg1, arg2, delay, side or None, touches_irq, countdown)."""
        op, arg1, arg2, field = word >> 13, word >> 5 & 7, word & 0x1F, word >> 8 & 0x1F
        n = self.ss_bits
        delay, side = field & ((1 << (5 - n)) - 1), None
        if n:
            side = field >> (5 - n)
            if self._side_opt:
                side = side & ((1 << (n - 1)) - 1) if side >> (n - 1) else None
        if op == 4:
            handler = self._pull if word & 0x80 else self._push
            arg1 &= 3
        else:
            handler = (self._jmp, self._wait, self._in, self._out,
                       None, self._mov, self._irq, self._set)[op]
        touches_irq = op == 6 or (op == 1 and arg1 & 3 == 2)
        countdown = op == 0 and arg1 in (2, 4) and arg2 == addr
        return handler, arg1, arg2, delay, side, touches_irq, countdown

    # -- time -----------------------------------------------------------------
    def t_of(self, cycle):
        return self._start_ns + cycle * self._num // self._den

    def cycle_after(self, t_ns):
        """First cycle whose start time is > t_ns."""
        d = t_ns - self._start_ns + 1
        return max(0, -(-d * self._den // self._num))

    def next_issue_ns(self):
        return self.t_of(self.cycle) if self.active else None

    def next_event_ns(self):
        """Earliest time the SM may next change a pin, a FIFO or an IRQ flag.

        Never later than the true next event (it may be earlier: just ask again
        after ``advance_to``).  None while stalled on something only an outside
        call (put/get/input_changed/exec/...) can release."""
        if not self.active or self._stalled:
            return None
        instr = self._pending or self._code[self.pc]
        if instr[6] and self.fast_forward and self._pending is None:
            pins_change = instr[4] is not None and self._side_would_change(instr[4])
            if not pins_change:
                k = self.x if instr[1] == 2 else self.y
                return self.t_of(self.cycle + (k + 1) * (1 + instr[3]))
        return self.t_of(self.cycle)

    # -- control ----------------------------------------------------------------
    def _reset_internal(self):
        self.isr_count, self.osr_count = 0, 32
        self._pending = None     # an exec'd instruction waiting to run (OUT/MOV EXEC, exec())
        self._irq_waiting = None  # the "irq wait" instruction whose flag is set
        self._current = None      # the instruction being issued
        self._stalled = False

    def init_pins(self, t_ns):
        """Drive the *_init pin directions and levels (done by StateMachine.init)."""
        for base, count, dirs, levels in self._init_groups:
            self._write(base, count, dirs, t_ns, self._dirs, self._pindir_write)
            self._write(base, count, levels, t_ns, self._levels, self._pin_write)
        self._pins_initialized = True

    def start(self, t_ns):
        if self.active:
            return
        if not self._pins_initialized:
            self.init_pins(t_ns)
        self._start_ns, self.cycle = t_ns, self._resume_cycles
        self.active, self._stalled = True, False

    def stop(self, t_ns):
        if self.active:
            self.advance_to(t_ns)
            self._resume_cycles = max(0, self.cycle - self.cycle_after(t_ns))
            self.active = False

    def restart(self, t_ns):
        """StateMachine.restart(): clear shift counters, ISR, delay and stall; jump to start."""
        self.advance_to(t_ns)
        self._reset_internal()
        self.isr, self.pc = 0, self.offset
        self._resume_cycles = 0
        if self.active:
            self.cycle = self.cycle_after(t_ns)

    def exec(self, word, t_ns):
        """Execute one instruction word next cycle (now, if the SM is stopped). An earlier
        exec() still waiting runs first, a cycle before it: MicroPython's calls on the chip are
        microseconds apart, each SM cycle (1 us at 1 MHz) apart at least."""
        instr = self._decode(word)
        self.advance_to(t_ns)
        if self.active and self._pending is not None and not self._stalled:
            c = self.cycle
            self._issue(self._pending, c, self.t_of(c), self.t_of(c))
        self._pending, self._stalled = instr, False
        if self.active:
            self.cycle = self.cycle_after(t_ns)
        else:
            self._issue(instr, 0, t_ns, t_ns)

    def input_changed(self):
        """Pins or IRQ flags changed from outside: retry a stalled instruction."""
        self._stalled = False

    def put(self, word, t_ns):
        self.advance_to(t_ns)
        if len(self.tx) >= self.tx_depth:
            return False
        self.tx.append(word & M32)
        self._stalled = False
        instr = self._pending or self._code[self.pc]
        if self.active and instr[0] != self._out:
            self._autopull_refill()  # background refill (the hardware does it next cycle)
        return True

    def get(self, t_ns):
        self.advance_to(t_ns)
        if not self.rx:
            return None
        self._stalled = False
        return self.rx.popleft()

    def tx_fifo(self):
        return len(self.tx)

    def rx_fifo(self):
        return len(self.rx)

    # -- execution ----------------------------------------------------------------
    def advance_to(self, t_ns, *, stop_at_irq=False):
        """Run every issue starting at or before *t_ns*.

        With *stop_at_irq*, stop before an instruction that touches the shared
        IRQ flags and return True (``pio_block`` orders those across SMs)."""
        while self.active:
            c = self.cycle
            tc = self._start_ns + c * self._num // self._den
            if tc > t_ns:
                return False
            instr = self._pending or self._code[self.pc]
            if stop_at_irq and instr[5]:
                return True
            self._issue(instr, c, tc, t_ns)
        return False

    def step(self):
        """Issue exactly one instruction (at ``next_issue_ns()``); True if it stalled."""
        c = self.cycle
        tc = self.t_of(c)
        self._issue(self._pending or self._code[self.pc], c, tc, tc)
        return self._stalled

    def at_irq_instruction(self):
        """True if the next instruction reads or writes the IRQ flags."""
        return (self._pending or self._code[self.pc])[5]

    def skip_past(self, t_ns):
        """Move a stalled SM's next retry to its first cycle after *t_ns*."""
        self.cycle = max(self.cycle, self.cycle_after(t_ns))

    def _issue(self, instr, c, tc, t_limit):
        handler, arg1, arg2, delay, side, _, countdown = instr
        pending = self._pending
        if side is not None:
            self._side_set(side, tc)
        if countdown and pending is None and self.fast_forward:
            return self._countdown(arg1, delay, c, t_limit)
        self._next_pc = self._new_exec = None
        self._current = instr
        if side is None:
            result = handler(arg1, arg2, tc)
        else:
            self._side_active = True
            result = handler(arg1, arg2, tc)
            self._side_active = False
        if result is not True:
            if result is _STALL:
                self._stalled = True
                self.cycle = max(c + 1, self.cycle_after(t_limit))
            else:  # _RETRY
                self._stalled = False
                self.cycle = c + 1
            return
        self._stalled = False
        if pending is not None and instr is pending:
            self._pending = pending = None
            if self._next_pc is not None:
                self.pc = self._next_pc
        elif self._next_pc is not None:
            self.pc = self._next_pc
        else:
            self.pc = self.wrap_bottom if self.pc == self.wrap_top else (self.pc + 1) & 31
        if self._new_exec is not None:  # OUT/MOV EXEC: runs next cycle, own delay ignored
            self._pending, self.cycle = self._new_exec, c + 1
        else:
            self.cycle = c + 1 + delay
        if self.autopull:
            self._autopull_refill()

    def _countdown(self, cond, delay, c, t_limit):
        """``label L; jmp x--/y-- L``: run as many iterations as start by t_limit."""
        k = self.x if cond == 2 else self.y
        per = 1 + delay
        m = min(k + 1, (self.cycle_after(t_limit) - 1 - c) // per + 1)
        if cond == 2:
            self.x = (k - m) & M32
        else:
            self.y = (k - m) & M32
        if m == k + 1:  # the last iteration falls through
            self.pc = self.wrap_bottom if self.pc == self.wrap_top else (self.pc + 1) & 31
        self.cycle = c + m * per
        self._autopull_refill()

    def _autopull_refill(self):
        if self.autopull and self.osr_count >= self.pull_thresh and self.tx:
            self.osr, self.osr_count = self.tx.popleft(), 0

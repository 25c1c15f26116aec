"""One RP2040 PIO block: 32-word instruction memory, 8 IRQ flags, 4 state machines.

Program placement follows pico-sdk ``pio_add_program`` (highest free offset
first, jmp targets relocated) as used by MicroPython, so ``PIO.add_program``,
``remove_program`` and the ``OSError(ENOMEM)`` of a full memory behave alike.

State machines of one block only interact through the IRQ flags (pin
cross-talk between SMs is only seen at ``advance_to`` boundaries).  To order
those interactions in time without stepping every cycle, ``advance_to`` lets
each SM run freely up to its next IRQ instruction (``irq``/``wait irq``), then
executes the parked IRQ instructions earliest first.  An SM whose ``wait irq``
is not satisfied retries after the next IRQ instruction of another SM.  Two
SMs issuing in the very same nanosecond are ordered by SM number (hardware
would show one cycle of latency there).
"""
import errno
from typing import Callable, List, Optional

from .pio_asm import PROG_DATA, PROG_OFFSET_PIO0
from .pio_sim import IrqFlags, StateMachineSim, relocate


class PioBlock:
    def __init__(self, index):
        self.index = index
        self.instr_mem = [0] * 32
        self.used_mask = 0
        self.irq_flags = IrqFlags()
        self.sms: List[Optional[StateMachineSim]] = [None] * 4
        # on_irq(t_ns, flag): an SM set IRQ flag 0..3 (the CPU-visible ones)
        self.on_irq: Optional[Callable[[int, int], None]] = None

    # -- instruction memory ----------------------------------------------------
    def add_program(self, prog):
        words = list(prog[PROG_DATA])
        offset = self._free_offset(len(words))
        if offset is None:
            raise OSError(errno.ENOMEM, "ENOMEM")
        self.instr_mem[offset:offset + len(words)] = relocate(words, offset)
        self.used_mask |= ((1 << len(words)) - 1) << offset
        prog[PROG_OFFSET_PIO0 + self.index] = offset
        return offset

    def _free_offset(self, length):
        if length > 32:
            return None
        mask = (1 << length) - 1
        for offset in range(32 - length, -1, -1):  # pico-sdk works down from the top
            if not self.used_mask & (mask << offset):
                return offset
        return None

    def remove_program(self, prog=None):
        if prog is None:
            self.used_mask = 0  # remove everything (program objects keep their offsets)
            return
        offset = prog[PROG_OFFSET_PIO0 + self.index]
        if offset < 0:
            raise ValueError("prog not in instruction memory")
        prog[PROG_OFFSET_PIO0 + self.index] = -1
        self.used_mask &= ~(((1 << len(prog[PROG_DATA])) - 1) << offset)

    # -- state machines ----------------------------------------------------------
    def make_sm(self, sm_index, prog, freq_hz, **kw):
        """A new ``StateMachineSim`` for SM *sm_index* (loading *prog* if needed)."""
        offset = prog[PROG_OFFSET_PIO0 + self.index]
        if offset < 0:
            offset = self.add_program(prog)
        sim = StateMachineSim(prog, freq_hz, sm_index=sm_index, offset=offset,
                              instr_mem=self.instr_mem, irq_flags=self.irq_flags, **kw)
        sim.irq_handler = self._irq_from_sm
        self.sms[sm_index] = sim
        return sim

    def _irq_from_sm(self, t_ns, flag):
        if flag < 4 and self.on_irq is not None:
            self.on_irq(t_ns, flag)

    def next_event_ns(self):
        times = [t for t in (sm.next_event_ns() for sm in self.sms if sm is not None)
                 if t is not None]
        return min(times) if times else None

    def input_changed(self):
        for sm in self.sms:
            if sm is not None:
                sm.input_changed()

    def advance_to(self, t_ns):
        active = [sm for sm in self.sms if sm is not None and sm.active]
        if len(active) == 1:
            active[0].advance_to(t_ns)
            return
        while True:
            parked = [sm for sm in active if sm.advance_to(t_ns, stop_at_irq=True)]
            if not parked:
                return
            parked.sort(key=lambda sm: sm.next_issue_ns())
            first = parked[0]
            if first.step():
                # Stalled on a flag: only another SM's IRQ instruction can change it.
                first.skip_past(parked[1].next_issue_ns() if len(parked) > 1 else t_ns)
            for sm in active:
                if sm is not first and sm.at_irq_instruction():
                    sm.input_changed()  # the flags may have changed under it

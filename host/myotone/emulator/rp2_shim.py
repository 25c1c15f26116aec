"""The MicroPython ``rp2`` module (PIO part) for the emulator.

Integrator interface::

    rp2 = make_rp2_module(clock, pins, sys_freq_hz=125_000_000)
    # ... make ``import rp2`` in the firmware return this module ...
    rp2._emu.sync()            # before changing an input a running SM may read
    rp2._emu.input_changed()   # after changing it (releases ``wait``-stalled SMs)

*clock* and *pins* are only used through the ``Clock``/``Pins`` protocols
of ``sim_protocols``.  The shim keeps one clock callback scheduled at the earliest next
event of any state machine; that callback advances the PIO blocks to the
clock's time, so every pin change reaches ``pins.drive`` at its exact time.

Blocking calls (``put`` on a full TX FIFO, ``get`` on an empty RX FIFO) call
``clock.sleep_until(t)`` with *t* the next state machine event, i.e. virtual
time passes exactly as it would while the firmware spins on the real chip.
If no state machine will ever change the FIFO, the shim sleeps in steps of
*poll_ns* so that timers/IRQ handlers can still unblock it (a real RP2040
would hang there too).

Pins given to ``StateMachine`` (``out_base=``, ``set_base=``, ...) may be ints
or ``machine.Pin``-like objects exposing the GPIO number as ``pin.id`` (an
int attribute or a method returning one).  Python IRQ handlers (``PIO.irq``,
``StateMachine.irq``, soft or hard) are run through ``clock.schedule`` at the
time the PIO raised the flag; the flag itself is acknowledged at once, as
MicroPython's interrupt service routine does.
"""
import types
from array import array
from fractions import Fraction

from . import pio_asm
from .pio_asm import PIOASMEmit, PIOASMError, asm_pio, asm_pio_encode
from .pio_block import PioBlock
from .sim_protocols import pin_id

M32 = 0xFFFFFFFF
_UNSET = object()


def pio_freq(sys_freq_hz, freq):
    """Effective SM frequency (a Fraction) for StateMachine(freq=...), as rp2_pio.c divides."""
    if freq < 0:
        div256 = 256                       # default: run at the system clock
    elif freq == 0:
        div256 = 65536 * 256               # clkdiv 0 means 65536
    else:
        lo = sys_freq_hz * 256 // freq     # 8.8 fixed-point divider, nearest of lo/lo+1
        if lo < 256 or lo + 1 >= 65536 * 256:
            raise ValueError("freq out of range")
        err_lo, err_hi = freq * lo - sys_freq_hz * 256, freq * (lo + 1) - sys_freq_hz * 256
        div256 = lo if -err_lo <= err_hi else lo + 1
    return Fraction(sys_freq_hz * 256, div256)


class _Irq:
    """What ``.irq()`` returns: handler settings plus ``flags()``/``trigger()``."""

    def __init__(self, trigger):
        self.handler, self._trigger, self.hard, self._flags = None, trigger, False, 0

    def flags(self):
        return self._flags

    def trigger(self, value=None):
        if value is not None:
            self._trigger, self._flags = value, 0
        return self._trigger


class Rp2Emulation:
    """State shared by one ``rp2`` module instance: PIO blocks and clock wake-ups."""

    def __init__(self, clock, pins, sys_freq_hz, poll_ns):
        self.clock, self.pins, self.sys_freq_hz, self.poll_ns = clock, pins, sys_freq_hz, poll_ns
        self.blocks = [PioBlock(0), PioBlock(1)]
        self.pio_irqs = [_Irq(0xF00), _Irq(0xF00)]
        self.sm_irqs = [_Irq(1) for _ in range(8)]
        self.inte0 = [0, 0]                 # per block: bits 8..11 = IRQ flags 0..3 enabled
        self.pio_objs, self.sm_objs = {}, {}
        self._wake, self._wake_ns = None, None
        self._sims, self._solo, self._coordinated = [], [], []
        for block in self.blocks:
            block.on_irq = lambda t, flag, b=block: self._on_irq(b, t, flag)

    def now(self):
        return self.clock.now_ns()

    def refresh(self):
        """Re-list the running SMs (after init/active): lone SMs run without coordination."""
        self._sims, self._solo, self._coordinated = [], [], []
        for block in self.blocks:
            running = [sm for sm in block.sms if sm is not None and sm.active]
            self._sims += running
            if len(running) == 1:
                self._solo += running
            elif running:
                self._coordinated.append(block)

    def sync(self):
        self._advance(self.clock.now_ns())

    def _advance(self, t):
        for sm in self._solo:
            sm.advance_to(t)
        for block in self._coordinated:
            block.advance_to(t)

    def input_changed(self):
        """Inputs changed at ``now``: stalled SMs retry from their first cycle at/after now."""
        t = self.now()
        for sm in self._sims:
            if sm.next_event_ns() is None:
                sm.skip_past(t - 1)
            sm.input_changed()
        self.reschedule()

    def next_event_ns(self):
        first = None
        for sm in self._sims:
            t = sm.next_event_ns()
            if t is not None and (first is None or t < first):
                first = t
        return first

    def reschedule(self):
        """Keep one clock wake-up at the next PIO event; returns that time (or None)."""
        t = self.next_event_ns()
        if t != self._wake_ns:
            if self._wake is not None:
                self._wake.cancel()
            self._wake, self._wake_ns = None, t
            if t is not None:
                self._wake = self.clock.schedule(t, self._on_wake)
        return t

    def _on_wake(self):
        """Play the PIO's events up to the next thing anyone else does, then sleep.

        Nothing can see an SM between two of the clock's other events, so the
        instructions before the next one need no wake-up each (a 100 Hz
        session: 2 instead of 5 per segment). An irq instruction schedules
        its handler, which ends the run there."""
        self._wake = self._wake_ns = None
        self.sync()
        t = self.next_event_ns()
        while t is not None and t < self.clock.quiet_until():
            self._advance(t)
            t = self.next_event_ns()
        self.reschedule()

    def block_until(self, ready):
        """Let virtual time pass (as a spinning CPU would) until ``ready()``."""
        while True:
            self.sync()
            t = self.reschedule()
            if ready():
                return
            now = self.clock.now_ns()
            self.clock.sleep_until(t if t is not None and t > now else now + self.poll_ns)

    def _on_irq(self, block, t_ns, flag):
        bit = 1 << (8 + flag)
        if not self.inte0[block.index] & bit:
            return                                       # flag stays set (no handler)
        block.irq_flags.value &= ~(1 << flag)            # acknowledged by the ISR
        pio_irq = self.pio_irqs[block.index]
        if pio_irq.handler is not None and pio_irq._trigger & bit:
            pio_irq._flags = bit
            self._call_later(t_ns, pio_irq.handler, self.pio_objs[block.index])
        sm_irq = self.sm_irqs[block.index * 4 + flag]
        if sm_irq.handler is not None and sm_irq._trigger & 1:
            sm_irq._flags = 1
            self._call_later(t_ns, sm_irq.handler, self.sm_objs[block.index * 4 + flag])

    def _call_later(self, t_ns, handler, arg):
        self.clock.schedule(max(t_ns, self.now()), lambda: handler(arg))

    def update_inte0(self, block_index):
        mask = self.pio_irqs[block_index]._trigger if self.pio_irqs[block_index].handler else 0
        for i in range(4):
            if self.sm_irqs[block_index * 4 + i].handler is not None:
                mask |= 1 << (8 + i)
        self.inte0[block_index] = mask


def _configure_irq(irq, handler, trigger, hard):
    irq.handler = None if handler is _UNSET else handler
    irq._trigger = irq._trigger if trigger is _UNSET else trigger
    irq.hard, irq._flags = (False if hard is _UNSET else bool(hard)), 0


class PIO:
    _emu: Rp2Emulation
    IN_LOW, IN_HIGH, OUT_LOW, OUT_HIGH = pio_asm.IN_LOW, pio_asm.IN_HIGH, pio_asm.OUT_LOW, pio_asm.OUT_HIGH
    SHIFT_LEFT, SHIFT_RIGHT = pio_asm.SHIFT_LEFT, pio_asm.SHIFT_RIGHT
    JOIN_NONE, JOIN_TX, JOIN_RX = pio_asm.JOIN_NONE, pio_asm.JOIN_TX, pio_asm.JOIN_RX
    IRQ_SM0, IRQ_SM1, IRQ_SM2, IRQ_SM3 = pio_asm.IRQ_SM0, pio_asm.IRQ_SM1, pio_asm.IRQ_SM2, pio_asm.IRQ_SM3

    def __new__(cls, id):
        if id not in (0, 1):
            raise ValueError("invalid PIO")
        objs = cls._emu.pio_objs
        if id not in objs:
            objs[id] = super().__new__(cls)
            objs[id]._index = id
        return objs[id]

    def __repr__(self):
        return "PIO({})".format(self._index)

    def add_program(self, prog):
        self._emu.blocks[self._index].add_program(prog)

    def remove_program(self, prog=None):
        self._emu.blocks[self._index].remove_program(prog)

    def state_machine(self, id, *args, **kw):
        if not 0 <= id < 4:
            raise ValueError("invalid StateMachine")
        return self._emu.StateMachine(self._index * 4 + id, *args, **kw)

    def irq(self, handler=_UNSET, trigger=_UNSET, hard=_UNSET):
        irq = self._emu.pio_irqs[self._index]
        if (handler, trigger, hard) != (_UNSET, _UNSET, _UNSET):
            _configure_irq(irq, handler, trigger, hard)
            self._emu.update_inte0(self._index)
        return irq


class StateMachine:
    _emu: Rp2Emulation

    def __new__(cls, id, *args, **kw):
        if not 0 <= id < 8:
            raise ValueError("invalid StateMachine")
        objs = cls._emu.sm_objs
        if id not in objs:
            objs[id] = super().__new__(cls)
            objs[id]._id, objs[id]._sim = id, None
        self = objs[id]
        if args or kw:
            self.init(*args, **kw)
        return self

    def __init__(self, id, *args, **kw):
        pass  # everything happens in __new__ (StateMachine objects are singletons)

    def __repr__(self):
        return "StateMachine({})".format(self._id)

    def init(self, prog, freq=-1, *, in_base=None, out_base=None, set_base=None, jmp_pin=None,
             sideset_base=None, in_shiftdir=None, out_shiftdir=None, push_thresh=None,
             pull_thresh=None):
        emu = self._emu
        if len(prog) != pio_asm.PROG_MAX_FIELDS:
            raise ValueError("tuple/list has wrong length")
        freq_hz = pio_freq(emu.sys_freq_hz, freq)
        emu.sync()
        now = emu.now()
        block = emu.blocks[self._id // 4]
        if self._sim is not None:
            self._sim.stop(now)
        self._sim = block.make_sm(
            self._id % 4, prog, freq_hz, pin_write=emu.pins.drive, pin_read=emu.pins.level,
            in_base=pin_id(in_base), out_base=pin_id(out_base), set_base=pin_id(set_base),
            jmp_pin=pin_id(jmp_pin), sideset_base=pin_id(sideset_base), in_shiftdir=in_shiftdir,
            out_shiftdir=out_shiftdir, push_thresh=push_thresh, pull_thresh=pull_thresh)
        self._sim.init_pins(now)
        emu.refresh()
        emu.reschedule()

    def _require_sim(self):
        if self._sim is None:
            raise RuntimeError("{} used before init() (emulator)".format(self))
        return self._sim

    def active(self, value=None):
        if value is not None:
            sim = self._require_sim()
            self._emu.sync()
            (sim.start if value else sim.stop)(self._emu.now())
            self._emu.refresh()
            self._emu.reschedule()
        return self._sim is not None and self._sim.active

    def restart(self):
        sim = self._require_sim()
        self._emu.sync()
        sim.restart(self._emu.now())
        self._emu.reschedule()

    def exec(self, instr):
        sim = self._require_sim()
        if isinstance(instr, str):
            instr = asm_pio_encode(instr, sim.ss_bits, sim._side_opt)
        self._emu.sync()
        sim.exec(instr, self._emu.now())
        self._emu.blocks[self._id // 4].input_changed()  # it may have touched IRQ flags
        self._emu.reschedule()

    def put(self, value, shift=0):
        sim, emu = self._require_sim(), self._emu
        if isinstance(value, (bytes, bytearray)):
            words = list(value)
        elif isinstance(value, array):
            if value.typecode not in "BHI":
                raise ValueError("unsupported buffer type")
            words = list(value)
        else:
            words = [value]
        for w in words:
            w = (w << shift) & M32
            emu.block_until(lambda: sim.tx_fifo() < sim.tx_depth)
            sim.put(w, emu.now())
            emu.reschedule()

    def get(self, buf=None, shift=0):
        sim, emu = self._require_sim(), self._emu
        if buf is not None and len(buf) == 0:
            return buf
        code = "b" if isinstance(buf, bytearray) else buf.typecode.lower() if buf is not None else ""
        if buf is not None and code not in "bhi":
            raise ValueError("unsupported buffer type")
        for i in range(1 if buf is None else len(buf)):
            emu.block_until(lambda: sim.rx_fifo() > 0)
            value = sim.get(emu.now()) >> shift
            emu.reschedule()
            if buf is None:
                return value
            bits = {"b": 8, "h": 16, "i": 32}[code]
            value &= (1 << bits) - 1
            if not isinstance(buf, bytearray) and buf.typecode.islower() and value >> (bits - 1):
                value -= 1 << bits
            buf[i] = value
        return buf

    def tx_fifo(self):
        self._emu.sync()
        return self._require_sim().tx_fifo()

    def rx_fifo(self):
        self._emu.sync()
        return self._require_sim().rx_fifo()

    def irq(self, handler=_UNSET, trigger=_UNSET, hard=_UNSET):
        emu = self._emu
        irq = emu.sm_irqs[self._id]
        if (handler, trigger, hard) != (_UNSET, _UNSET, _UNSET):
            _configure_irq(irq, handler, trigger, hard)
            emu.update_inte0(self._id // 4)
        return irq


def make_rp2_module(clock, pins, *, sys_freq_hz=125_000_000, poll_ns=1_000_000):
    """A fresh ``rp2`` module whose PIO runs on *clock* and drives *pins*."""
    emu = Rp2Emulation(clock, pins, sys_freq_hz, poll_ns)
    mod = types.ModuleType("rp2", "rp2 module (myotone emulator: PIO part)")
    emu.PIO = type("PIO", (PIO,), {"_emu": emu, "__module__": "rp2"})
    emu.StateMachine = type("StateMachine", (StateMachine,), {"_emu": emu, "__module__": "rp2"})
    mod.PIO, mod.StateMachine = emu.PIO, emu.StateMachine
    mod.asm_pio, mod.asm_pio_encode = asm_pio, asm_pio_encode
    mod.PIOASMError, mod.PIOASMEmit = PIOASMError, PIOASMEmit
    mod._emu = emu
    return mod

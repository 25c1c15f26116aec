# Pulse back-end `pio` (RP2040): a PIO state machine at 1 MHz plays the
# segment table, so every edge is exact to the microsecond.
#
# Each FIFO word is one segment: bits 0-1 drive POL_A/POL_B (both pins change
# in the same cycle), bits 2-31 the length. The program makes a starved FIFO
# safe by construction: `pull noblock` copies X, which is 0 after the count,
# so an empty FIFO plays "bridge off" (never the last phase, never both pins).
# A hard IRQ raised once per segment refills the FIFO from the preallocated
# table; the table is swapped at a unit boundary (double buffer).
import rp2
import time
from micropython import const
from myotone.pulse import Table, BRIDGE
from myotone.hal.followed import FollowedPulse

_OVERHEAD_US = const(6)    # cycles per segment besides the count loop
_FIFO_DEPTH = const(8)     # TX FIFO joined
_MOV_PINS_NULL = const(0xA003)   # `mov(pins, null)`: every OUT pin low


@rp2.asm_pio(out_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW), out_shiftdir=rp2.PIO.SHIFT_RIGHT,
             fifo_join=rp2.PIO.JOIN_TX)
def _player():
    wrap_target()
    pull(noblock)          # OSR <- next segment, or X (= 0: bridge off) if starved
    out(pins, 2)           # bridge state, both pins in one cycle
    out(x, 30)             # count
    label("count")
    jmp(x_dec, "count")
    set(x, 0)              # X = 0 again: a starved pull plays "off"
    irq(rel(0))            # ask for the next word
    wrap()


class PioPulse(FollowedPulse):
    def __init__(self, sm_id, pin_a, pin_b, min_phase_us=20):
        super().__init__()
        self._sm = rp2.StateMachine(sm_id, _player, freq=1000000, out_base=pin_a)
        self._pin_a = pin_a
        self._pin_b = pin_b
        self._min_units = max(_OVERHEAD_US + 1, min_phase_us)
        self._tables = (Table(), Table())
        self._t = self._tables[0]
        self._next = self._t
        self._pending = False
        self._i = 0
        self._rep = 0
        self._stopped = False
        self._feed_cb = self._feed         # bound once: the IRQ must not allocate

    def prepare(self, wave):
        table = self._tables[1] if self._t is self._tables[0] else self._tables[0]
        return table.compile(wave, 1, self._min_units, 0x0FFFFFFF)

    def _word(self):
        """The next FIFO word, walking the table with its burst envelope."""
        t = self._t
        i = self._i
        if i >= t.n:                          # unit boundary
            i = 0
            if self._pending:
                self._t = t = self._next
                self._pending = False
                self._rep = 0
            elif t.reps:
                self._rep += 1
                if self._rep >= t.reps:
                    self._rep = 0
                    self._i = 0
                    return (t.off - _OVERHEAD_US) << 2
        self._i = i + 1
        return ((t.dur[i] - _OVERHEAD_US) << 2) | (t.state[i] & BRIDGE)

    def _feed(self, _sm):
        sm = self._sm
        while sm.tx_fifo() < _FIFO_DEPTH:
            sm.put(self._word())

    def start(self, table):
        if self.running:
            self._next = table
            self._pending = True
            return
        if self._stopped:
            # stop() took the pins back from PIO, and restart() keeps the words left in
            # the TX FIFO: init() clears the FIFOs and hands the pins to the SM again
            self._sm.init(_player, freq=1000000, out_base=self._pin_a)
            self._stopped = False
        self._t = table
        self._i = 0
        self._rep = 0
        self._pending = False
        # Re-init for every start: it clears the TX FIFO (restart() does not, and
        # words left from the last run would play first, out of step with the
        # playhead) and hands the pins back to the PIO (stop() made them GPIO).
        self._sm.init(_player, freq=1000000, out_base=self._pin_a)
        self._sm.irq(self._feed_cb, hard=True)
        self._feed(self._sm)
        self.running = True
        self.head.start(table, time.ticks_us())
        self._sm.active(1)

    def halt(self):
        """The fast path's cut (hard interrupt, allocation-free): the state machine stops
        and drives both bridge pins low in the same cycle; stop() follows (bookkeeping)."""
        self._sm.active(0)
        self._sm.exec(_MOV_PINS_NULL)

    def stop(self):
        """Stop the state machine and drive both bridge pins low."""
        self._sm.active(0)
        self._sm.irq(None)
        self._sm.restart()
        self._pin_a.init(self._pin_a.OUT, value=0)   # take the pins back from PIO
        self._pin_b.init(self._pin_b.OUT, value=0)
        self._stopped = True
        self._played_out()

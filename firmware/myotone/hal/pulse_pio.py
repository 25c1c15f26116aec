# Pulse back-end `pio` (RP2040): a PIO state machine at 1 MHz plays the
# segment table, so every edge is exact to the microsecond.
#
# Each FIFO word is one segment: bits 0-1 drive POL_A/POL_B (both pins change
# in the same cycle), bits 2-31 the length. The program makes a starved FIFO
# safe by construction: `pull noblock` copies X, which is 0 after the count,
# so an empty FIFO plays "bridge off" (never the last phase, never both pins).
# A hard IRQ raised at each segment's end refills the FIFO from the
# preallocated table once it holds 4 words or fewer (_REFILL_AT), and returns
# at once otherwise; the table is swapped at a unit boundary (double buffer).
# Each table's FIFO words are computed when it is prepared (main loop), so the
# refill only copies them: a 500 Hz waveform without off times raises the IRQ
# 1 000 times a second, each nested in whatever the CPU was doing.
import micropython
import rp2
import time
from array import array
from micropython import const
from myotone.pulse import Table, BRIDGE, IN_PAIR, PAIR_START, MAX_SEGMENTS
from myotone.hal.followed import FollowedPulse

_OVERHEAD_US = const(6)    # cycles per segment besides the count loop
_FIFO_DEPTH = const(8)     # TX FIFO joined
_MOV_PINS_NULL = const(0xA003)   # `mov(pins, null)`: every OUT pin low
_PULL_NOBLOCK = const(0x8080)    # `pull(noblock)`: forced, it drops the FIFO's next word
_RING = const(16)                # flags of the last words fed (> FIFO depth + 1)
_LONG_OFF = const(0x80)          # ring flag: an off time long enough to drop words in
_LONG_OFF_US = const(200)        # (the refill interrupt and the forced pulls: tens of us)
# The refill waits until the FIFO holds this few words: any 4 consecutive words of one table
# span at least one pair period (a pair is at most 4 segments), 1 ms at the highest rate, so a
# refill may come that late. Right after a table swap the FIFO may hold the end of one table
# and the start of the next (4 words of 20 us): then it refills at every segment, as before.
_REFILL_AT = const(4)
_HALTED = const(4)               # PioPulse._finish: halted, the refill feeds nothing


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
    def __init__(self, sm_id, pin_a, pin_b, min_phase_us, disable_irq, enable_irq):
        super().__init__()
        # machine.disable_irq / enable_irq, passed in: finish() runs in the bookkeeping tick, and
        # `import machine` there searched the filesystem each time (machine is an extensible
        # built-in module): 1-8 ms of littlefs in one tick at the end of every session
        self._disable_irq = disable_irq
        self._enable_irq = enable_irq
        self._sm = rp2.StateMachine(sm_id, _player, freq=1000000, out_base=pin_a)
        self._pin_a = pin_a
        self._pin_b = pin_b
        self._min_units = max(_OVERHEAD_US + 1, min_phase_us)
        self._tables = (Table(), Table())
        # per table: its FIFO words and the ring flags they carry (prepare())
        self._words = (array("i", [0] * MAX_SEGMENTS), array("i", [0] * MAX_SEGMENTS))
        self._flags = (bytearray(MAX_SEGMENTS), bytearray(MAX_SEGMENTS))
        self._t = self._tables[0]
        self._w = self._words[0]
        self._f = self._flags[0]
        self._next = self._t
        self._next_w = self._w
        self._next_f = self._f
        self._pending = False
        self._i = 0
        self._rep = 0
        self._low = _REFILL_AT     # refill once the FIFO holds this few words
        self._mixed = 0            # words still to feed after a swap before the FIFO holds one table
        self._stopped = False
        # finish(): which word plays is fed - in the FIFO - 1; the ring keeps each fed word's
        # pair flags, so the IRQ knows when the pair under way is in its last segment
        self._ring = bytearray(_RING)
        self._fed = 0
        self._finish = 0           # 1: finishing; 2: the FIFO drained, the pair's last plays;
                                   # 3: starved into "off" (halted at the next segment's end);
                                   # _HALTED: halted (halt()), nothing more is fed
        self._done = 0
        self._feed_cb = self._feed         # bound once: the IRQ must not allocate

    def prepare(self, wave):
        k = 1 if self._t is self._tables[0] else 0
        table = self._tables[k].compile(wave, 1, self._min_units, 0x0FFFFFFF)
        words = self._words[k]
        flags = self._flags[k]
        for i in range(table.n):
            d = table.dur[i]
            st = table.state[i]
            words[i] = ((d - _OVERHEAD_US) << 2) | (st & BRIDGE)
            flags[i] = st | _LONG_OFF if d >= _LONG_OFF_US and not st & IN_PAIR else st
        return table

    def _plan(self, table):
        """The FIFO words and ring flags prepare() computed for `table`."""
        k = 0 if table is self._tables[0] else 1
        return self._words[k], self._flags[k]

    @micropython.native
    def _feed(self, _sm):
        """The hard IRQ at each segment's end: fill the FIFO, walking the table with its burst
        envelope (allocation-free; the words were computed by prepare())."""
        sm = self._sm
        f = self._finish
        if f:
            if f != _HALTED:
                self._finishing(sm)
            return          # halted: the IRQ its last word raised has nothing to feed (it had
                            # refilled 8 words into the stopped machine: 280 us, hard IRQ)
        queued = sm.tx_fifo()
        if queued > self._low:
            return                              # enough queued: most interrupts end here
        room = _FIFO_DEPTH - queued             # only the state machine takes words meanwhile
        ring = self._ring
        fed = self._fed
        t = self._t
        n = t.n
        words = self._w
        flags = self._f
        i = self._i
        while room > 0:
            if i >= n:                          # unit boundary
                i = 0
                if self._pending:
                    self._t = t = self._next
                    n = t.n
                    self._w = words = self._next_w
                    self._f = flags = self._next_f
                    self._pending = False
                    self._rep = 0
                    self._low = _FIFO_DEPTH - 1  # two tables' words queued: refill at every segment
                    self._mixed = _FIFO_DEPTH + fed - self._fed   # (fed - self._fed: this call's, before)
                elif t.reps:
                    self._rep += 1
                    if self._rep >= t.reps:     # the burst's off time
                        self._rep = 0
                        ring[fed % _RING] = _LONG_OFF
                        sm.put((t.off - _OVERHEAD_US) << 2)
                        fed += 1
                        room -= 1
                        continue
            ring[fed % _RING] = flags[i]
            sm.put(words[i])
            fed += 1
            i += 1
            room -= 1
        self._i = i
        if self._mixed:
            self._mixed -= fed - self._fed
            if self._mixed <= 0:                # the FIFO holds one table's words again
                self._mixed = 0
                self._low = _REFILL_AT
        self._fed = fed

    @micropython.native
    def _finishing(self, sm):
        """finish(), at each segment's end (and once when asked): in the off time after the
        pair, halt; where none follows it (or a short one), drop the words queued after the
        pair's last segment while it plays, so the state machine starves into "off" (the
        program plays X = 0 then) right after it, and halt once that has played."""
        if self._finish == 3:               # the starved "off" word played: halt
            self._halted()
            return
        if self._finish == 2:               # the pair's last segment ended: the state machine
            self._finish = 3                # plays "off" now by itself, at the program's time
            return
        queued = sm.tx_fifo()
        playing = self._fed - queued - 1
        now = self._ring[playing % _RING]
        nxt = self._ring[(playing + 1) % _RING]
        if now & IN_PAIR and nxt & IN_PAIR and not nxt & PAIR_START:
            return                                     # the pair goes on: wait for its last
        if now & IN_PAIR and nxt & _LONG_OFF:
            return          # a long off time follows the pair: halt in it (no forced pull
                            # lengthens the pair's last phase)
        if not now & IN_PAIR:
            self._halted()                             # an off time plays: nothing to wait for
            return
        dropped = 0
        while sm.tx_fifo():
            sm.exec(_PULL_NOBLOCK)
            dropped += 1
        if dropped < queued and nxt & PAIR_START:
            # the pair's last segment ended meanwhile and the next pair's first began: halt
            # now (a few us of it) rather than let it play alone
            self._halted()
            return
        self._finish = 2

    @micropython.native
    def _halted(self):
        """finish() is done: halted, the bridge off."""
        self.halt()
        self._done = 1

    @micropython.native
    def finish(self, left_ms=0):
        """End by itself after the pair under way (OutputStage.close): no word of a later pair
        is played; halted at the end of the pair's last segment. Main loop or bookkeeping tick.
        (native: as bytecode its frame, 9 slots and a try, is over the VM's 11 words on the C
        stack, so every call took it from the heap: 259 us of gc_alloc in the tick that ended a
        session on a fragmented heap; tests/test_silicon.py probes gc_alloc in the tick)"""
        irq = self._disable_irq()
        try:
            self._finish = 1
            self._finishing(self._sm)
        finally:
            self._enable_irq(irq)

    def finished(self, left_ms=0):
        """True once it halted after finish() (or was stopped)."""
        return self._done or not self.running

    def unfinish(self):
        """Take finish() back while no word was dropped yet: True if it could. Main loop."""
        irq = self._disable_irq()
        try:
            if self._finish == 1 and not self._done:
                self._finish = 0
                return True
            return False
        finally:
            self._enable_irq(irq)

    def start(self, table):
        if self.running:
            self._pending = False          # the refill never swaps in a half-set table
            self._next_w, self._next_f = self._plan(table)
            self._next = table
            self._pending = True
            return
        if self._stopped:
            # stop() took the pins back from PIO, and restart() keeps the words left in
            # the TX FIFO: init() clears the FIFOs and hands the pins to the SM again
            self._sm.init(_player, freq=1000000, out_base=self._pin_a)
            self._stopped = False
        self._t = table
        self._w, self._f = self._plan(table)
        self._low = _REFILL_AT
        self._mixed = 0
        self._i = 0
        self._rep = 0
        self._pending = False
        self._fed = 0
        self._finish = self._done = 0
        # Re-init for every start: it clears the TX FIFO (restart() does not, and
        # words left from the last run would play first, out of step with the
        # playhead) and hands the pins back to the PIO (stop() made them GPIO).
        self._sm.init(_player, freq=1000000, out_base=self._pin_a)
        self._sm.irq(self._feed_cb, hard=True)
        self._feed(self._sm)
        self.running = True
        self.head.start(table, time.ticks_us())
        self._sm.active(1)

    @micropython.native
    def halt(self):
        """The fast path's cut (hard interrupt, allocation-free): the state machine stops
        and drives both bridge pins low in the same cycle; stop() follows (bookkeeping).
        The refill interrupt feeds no more words (_HALTED) until the next start."""
        self._sm.active(0)
        self._sm.exec(_MOV_PINS_NULL)
        self._finish = _HALTED

    def stop(self):
        """Stop the state machine and drive both bridge pins low."""
        sm = self._sm
        sm.active(0)
        sm.irq(None)
        sm.restart()
        a = self._pin_a
        a.init(a.OUT, value=0)                         # take the pins back from PIO
        self._pin_b.init(a.OUT, value=0)
        self._stopped = True
        self._played_out()

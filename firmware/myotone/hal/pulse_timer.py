# Pulse back-end `timer`: a periodic machine.Timer at `tick_us` plays the
# segment table by counting ticks. The period of a hardware timer does not
# drift, and counting its ticks gives absolute deadlines: interrupt latency
# shifts an edge (jitter) but never accumulates.
#
# The interrupt indexes preallocated tables only: no allocation, no floats,
# no dict keys, no bound-method creation (the pin methods are bound once, in
# the constructor). New tables are swapped in at a unit boundary.
from myotone.pulse import Table, OFF, POS, NEG, BRIDGE, IN_PAIR, PAIR_START


class TimerPulse:
    def __init__(self, timer, pin_a, pin_b, tick_us, hard, min_phase_us):
        self._timer = timer
        self._a = pin_a.value      # bound once: the interrupt must not allocate
        self._b = pin_b.value
        self.tick_us = tick_us
        self._hard = hard
        self._min_units = max(1, min_phase_us // tick_us)
        self._tables = (Table(), Table())
        self._t = self._tables[0]
        self._next = self._tables[1]
        self._pending = False
        self._i = 0
        self._left = 0
        self._rep = 0
        self.running = False
        self.state = OFF           # bridge state now, read by the supervisor
        self.in_pair = 0           # non-zero inside a biphasic pair
        self.pairs = 0             # pairs started (wraps harmlessly as a small int)
        self.settled = 1           # 0 during the first tick of a segment (edge just made)
        self._finish = 0           # finish(): end at the end of the pair under way
        self._cb = self._tick      # bound once

    def prepare(self, wave):
        """Compile `wave` into the spare table; raises TimingUnsupported."""
        table = self._tables[1] if self._t is self._tables[0] else self._tables[0]
        return table.compile(wave, self.tick_us, self._min_units)

    def start(self, table):
        """Play `table` (from prepare). While running, swap at the next unit boundary."""
        if self.running:
            self._next = table
            self._pending = True
            return
        self._t = table
        self._pending = False
        self._finish = 0
        self._i = -1
        self._left = 1
        self._rep = 0
        self.running = True
        if self._hard:
            self._timer.init(freq=1000000 // self.tick_us, mode=self._timer.PERIODIC, callback=self._cb, hard=True)
        else:
            self._timer.init(freq=1000000 // self.tick_us, mode=self._timer.PERIODIC, callback=self._cb)

    def sample(self):
        """Nothing to do: the interrupt keeps state / in_pair / pairs current."""

    def finish(self, left_ms=0):
        """End by itself at the end of the pair under way (OutputStage.close): the interrupt
        stops at the first segment that is no longer that pair's, to the tick."""
        self._finish = 1

    def finished(self, left_ms=0):
        """True once it stopped after finish() (or was stopped)."""
        return not self.running

    def unfinish(self):
        """Take finish() back while the pair still plays: True if it could."""
        if not self.running:
            return False
        self._finish = 0
        return True

    def stop(self):
        """Stop and deinitialise the timer; bridge off."""
        self._timer.deinit()
        self.running = False
        self._a(0)
        self._b(0)
        self.state = OFF
        self.in_pair = 0
        self.settled = 1

    def halt(self):
        """The fast path's cut: stop() is interrupt-safe (timer deinit, two pin writes)."""
        self.stop()

    def _bridge(self, s):
        # Break before make: the pin going low first, never both high.
        if s == POS:
            self._b(0)
            self._a(1)
        elif s == NEG:
            self._a(0)
            self._b(1)
        else:
            self._a(0)
            self._b(0)
        self.state = s

    def _tick(self, _timer):
        left = self._left - 1
        if left > 0:
            self._left = left
            self.settled = 1
            return
        self.settled = 0
        t = self._t
        i = self._i + 1
        if i >= t.n:                      # unit boundary
            i = 0
            if self._pending:
                self._t = t = self._next
                self._pending = False
                self._rep = 0
            elif t.reps:
                self._rep += 1
                if self._rep >= t.reps:   # burst off
                    if self._finish:
                        self.stop()
                        return
                    self._rep = 0
                    self._bridge(OFF)
                    self.in_pair = 0
                    self._left = t.off
                    self._i = -1
                    return
        s = t.state[i]
        if self._finish and (s & PAIR_START or not s & IN_PAIR):
            self.stop()                   # the pair under way is over: nothing more begins
            return
        self._bridge(s & BRIDGE)
        self.in_pair = s & IN_PAIR
        if s & PAIR_START:
            self.pairs = (self.pairs + 1) & 0xFFFF
        self._left = t.dur[i]
        self._i = i

# Checkpoints: a running session's record written at intervals, so that a
# power loss, a brown-out or a watchdog reset mid-session leaves its progress
# on the flash -- charge, LED dose, duration, marks, samples and faults up to
# the last checkpoint -- as the session's one record, its head marked
# `incomplete`. The first checkpoint allocates the record's number; the later
# ones and the final record replace it whole under that number, atomically
# (store.log_write), so there is nothing to repair at boot.
#
# Nothing writes flash while the output stage is on (SAFETY.md "The output
# stage": on the RP2040 a flash erase or program stops interrupts and XIP for
# tens of ms, and with them the fast path). A checkpoint due while the stage
# is on therefore holds the output: it asks the stage to close after the pair
# under way (CLOSING, every trip armed, as at a pause: no net charge left
# behind), writes once the stage is off, and asks the runner to switch the
# phase's waveform on again from its first pair at the session's target (the
# stage re-checks the latched fault and that the session still ramps or
# runs) -- no sooner than one period after the last pair began, so the next
# pair never comes earlier than the waveform would have played it. The output
# sees the waveform's own off time between two pairs, lengthened by the write
# (on the chip) and a main-loop pass; a rising ramp waits meanwhile
# (Session.step). A ramp-down (stop, pause, the
# end) is never cut short for a checkpoint: one due then waits for the stage
# to be off by itself; none holds the output within a period and a second of
# the session's end; a stop or pause that comes while the held pair still
# plays takes the close back (OutputStage.keep_on), so its ramp-down is
# carried by the pairs that follow (where the back-end has already committed
# to ending after that pair, the hold switches on again in the ramp-down once
# written and collected, as a hold in a ramp-down does). If the session was paused, stopped,
# ended or tripped once the stage is off, or entered a phase without
# current, nothing is switched on again. Due while the stage is off already (a pause, an LED-only phase): it
# is written at once.
#
# The same hold serves the heap (heap.py): garbage is collected only with the
# output stage off, so a hold also comes when the heap's budget runs low, and
# every hold collects once the stage is off (after the write, if one is due).
# Where no hold comes otherwise -- a ramp-down, the session's last second -- one
# comes when the budget is spent down to heap.FLOOR_B: the stage closes after
# the pair under way, the heap is collected, and the waveform switches on again
# at the ramp-down's target, no sooner than a period after the last pair began
# (the ramp-down is timed, so the pairs either side of the gap are as far apart
# in amplitude as in time); a ramp-down that ended meanwhile leaves it off. On
# the ESP32 a collection with the output on had held its fast path off ~20 ms.
#
# Flash wear: one record rewrite per INTERVAL_MS of session, the record up
# to ~15 kB (320 samples) -- at most 60 rewrites and ~240 4 kB blocks per
# hour of sessions, which littlefs's copy-on-write spreads over the free
# blocks (docs/safety.md gives the arithmetic). Main loop only.
import time
from micropython import const
from myotone.stage import ON, OFF, CLOSING
from myotone.session import RAMP, RUN, RAMP_DOWN, PAUSING

INTERVAL_MS = const(60000)      # session time (the log's clock, pauses included) between checkpoints
_END_MARGIN_MS = const(1000)    # no hold this close (plus a period) to the session's planned end


class Checkpoints:
    """The checkpoint schedule of one session, with what it needs: the output stage (its
    state, close), the session (its state), the pulse back-end (when a pair began), the
    runner (switching the phase on again, its period), `write(due_ms)`, which writes the
    record as it stands (the supervisor, output stage off), and the heap (heap.py: is
    its budget low, collect)."""

    def __init__(self, stage, session, pulse, runner, write, heap, input_waiting=None):
        self._stage = stage
        self._session = session
        self._pulse = pulse
        self._runner = runner
        self._write = write
        self._heap = heap
        # a request waiting on the console (a stop, a pause): the reopen waits a pass for it
        self._input_waiting = input_waiting or (lambda: False)
        self.interval_ms = INTERVAL_MS
        self.n = 0                  # the session's record number, once a checkpoint allocated it
        self.due_ms = INTERVAL_MS
        self.held = False           # this hold closed the stage: it switches it on again ...
        self._down = -1             # ... in this ramp-down (RAMP_DOWN, PAUSING) if it began in one
        self._done = False          # ... once written and collected, and no sooner than _reopen_at
        self._pairs = -1            # the pulse back-end's pair count, as last seen ...
        self._pair_at = time.ticks_ms()     # ... and when (a main-loop pass late at most)
        self._reopen_at = self._pair_at     # switched on again no sooner than this (ticks_ms)

    def begin(self):
        self.n = 0
        self.due_ms = self.interval_ms
        self.held = False

    def poll(self, t_ms, now_ms):
        """Main loop, every pass while the session is active (`t_ms`: the log's time)."""
        pairs = self._pulse.pairs
        if pairs != self._pairs:
            self._pairs = pairs
            self._pair_at = now_ms
        stage = self._stage
        sess = self._session
        st = sess.state
        if self.held:
            if self._done:
                if time.ticks_diff(now_ms, self._reopen_at) >= 0:
                    self.held = False
                    self._runner.reopen(self._down)   # refused unless the session still ramps
                return                                # or runs, or is in the hold's ramp-down
            if st != RAMP and st != RUN and st != self._down and stage.state == CLOSING and self._runner.mc_on:
                # a stop or pause came while the held pair plays: its ramp-down needs the pairs
                if stage.keep_on():
                    self.held = False
                else:
                    self._pulse.sample()
                    if self._pulse.in_pair:     # committed to ending after the pair, which still
                        self._down = st         # plays: switched on again in the ramp-down
        due = t_ms >= self.due_ms
        if not due and not self._heap.low(now_ms) and not self.held:
            return                  # (a hold goes on to its collection whoever else collected)
        if stage.state == ON:
            period_ms = (self._runner.period_us() + 999) // 1000
            self._down = -1
            if st != RAMP and st != RUN or sess.duration_ms() - sess.elapsed_ms() <= period_ms + _END_MARGIN_MS:
                if not self._heap.exhausted(now_ms):
                    return          # a ramp-down plays out, or the end is near: wait for the stage off
                # the heap cannot wait: a hold in the ramp-down, or in the last second, which
                # switches on again in the ramp-down the session's end may start meanwhile
                self._down = st if st == PAUSING else RAMP_DOWN
            # the next pair no sooner than the waveform would have begun it (rounded up)
            self._reopen_at = time.ticks_add(self._pair_at, period_ms)
            stage.close(now_ms)     # the pair under way ends first (at once if none plays)
            self.held = True
            self._done = False
        if stage.state != OFF:
            return                  # closing: the last pair plays, every trip armed
        collected = self._heap.exhausted(now_ms)
        if collected:
            self._heap.collect(now_ms)  # an allocation failed (or nearly): room for the write first
        if due:
            self._write(self.due_ms)    # the output stage is off: the flash may be written ...
            self.due_ms = t_ms + self.interval_ms
            collected = False
        if not collected:
            self._heap.collect(now_ms)  # ... and the heap collected
        self._done = True
        # a request that came during the write or the collection (which hold the main loop
        # ~20 ms) is handled before the output comes back: a stop sent in the gap keeps it off
        if self.held and time.ticks_diff(now_ms, self._reopen_at) >= 0 and not self._input_waiting():
            self.held = False
            self._runner.reopen(self._down)

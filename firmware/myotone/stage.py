# The output stage: the one module that switches the high-voltage rail, the
# bridge / pulse back-end and the DAC (SAFETY.md "The output stage").
# Session start, a program's phases, pause / resume, the button, the end of a
# session and every trip ask it; nothing else touches that hardware (boot and
# Ctrl-C excepted: safe_boot / Hardware.safe_off return everything to the safe
# state from scratch).
#
# States (integers, read by the tick):
#   OFF      rail off, bridge off, DAC 0. With a fault latched it reads `cut`.
#   ARMING   the main loop is switching on. A cut that lands meanwhile wins:
#            every switch-on step is followed by a look at `cuts`, and a
#            switch-on that saw one cuts again itself, so no interleaving of
#            the main loop and the tick leaves output on after a cut.
#   ON       current may flow; the supervisor tick watches every sample.
#   CLOSING  output is ending (the session's end, a pause, a zone without
#            current): the pair under way plays out, with every trip still
#            armed, and a hard deadline (one period plus a margin) cuts it
#            regardless.
#   CUT      reported for OFF with a fault latched.
#
# A cut turns the rail off first, then the back-end and the bridge, then the
# DAC to 0, each step guarded on its own: a peripheral that fails (an I2C
# NACK, any exception) cannot stop the others. A DAC that does not answer
# latches `dac_fault` (unless a fault is already latched) and stays a present
# condition until a write of 0 succeeds.
#
# The over-current latch (docs/hardware.md, U10-U13) gates the bridge off in
# hardware, microseconds after any current above its threshold; the firmware
# latches `over_current` when it reads it set (bookkeeping, 100 Hz: latched())
# or finds it set in a cut, and re-arms it in every cut, with the bridge off.
# Every switch-on tests it first, with the output still off: its test input
# must set it and a re-arm must then clear it (a comparator or flip-flop that
# died since the last switch-on is found there, not by the next over-current);
# a latch that fails is `oc_latch_fault`, and nothing is switched on.
#
# The tick calls trip(), cut(), set_code() and closed(); they allocate nothing
# on their normal path (an exception object is made only when a peripheral
# fails). Pure logic: the hardware objects are passed in.
import micropython
from micropython import const
from myotone import limits
from myotone.monitor import DAC_FAULT, OC_LATCH_FAULT, OVER_CURRENT
from myotone.session import RAMP, RUN, _ticks_diff

OFF = const(0)
ARMING = const(1)
ON = const(2)
CLOSING = const(3)
CUT = const(4)
NAMES = ("off", "arming", "on", "closing", "cut")


class OutputStage:
    def __init__(self, output, pulse, led, session):
        self._out = output
        self._pulse = pulse
        self._led = led
        self._session = session
        self.state = OFF
        self.fault = None          # the latched reason code; the first one stays
        self.cuts = 0              # counts every cut (a switch-on compares it)
        self.dac_ok = 1            # 0 once the DAC failed to answer, until a write succeeds
        self.out_ua = 0            # what the DAC commands now (calibrated transfer)
        self.table = None          # the table last switched on (resume plays it again)
        self.close_by = 0          # CLOSING: the deadline (ticks_ms)
        self._pair_ms = 0          # one period of the playing waveform + margin
        # 1: a cut's first half was made (halt(): rail off, bridge halted), the DAC is not 0 yet:
        # the next tick call finishes it (Supervisor._finish_cut), or first records the end of
        # the session that ended (2) and finishes it at the call after
        self.halted = 0

    def name(self):
        if self.state == OFF and self.fault is not None:
            return NAMES[CUT]
        return NAMES[self.state]

    # ---- switching on (main loop) ---------------------------------------
    def switch_on(self, table, ua, period_us, ramp_down=-1):
        """Rail, DAC and back-end on, `table` at `ua`; False if refused or cut meanwhile.

        Refused unless the stage is off, no fault is latched and the session is
        ramping or running -- or is in `ramp_down` (RAMP_DOWN or PAUSING: a hold
        that began in that ramp-down switches it on again, its pairs carry it;
        checkpoint.py) -- all checked again after the last switch-on step."""
        n = self.cuts
        st = self._session.state
        if self.fault is not None or self.state != OFF or not (st == RAMP or st == RUN or st == ramp_down):
            return False
        if not self._out.test_latch():         # dead (it does not set) or stuck (it does not clear)
            self.trip(OC_LATCH_FAULT)
            return False
        self.state = ARMING
        self._pair_ms = period_us // 1000 + limits.CLOSE_MARGIN_MS
        try:
            self._write(ua)                    # the first pulse is whole, at the session's target
            self._out.pair_code = self._out.code
        except Exception:
            self.trip(DAC_FAULT)
            return False
        if self.cuts != n:
            return self._recut()
        self._out.enable()
        if self.cuts != n:
            return self._recut()
        try:
            self._pulse.start(table)
        except Exception:
            self._recut()
            raise
        self.table = table
        self.state = ON
        if self.cuts != n or self.fault is not None:
            return self._recut()
        return True

    def _recut(self):
        """A cut landed while switching on: whatever was switched after it goes off again."""
        self.cut()
        return False

    def check_dac(self):
        """Main loop: try a write of 0 with the output off; True once the DAC answers."""
        if self.state != OFF:
            return self.dac_ok == 1
        try:
            self._out.zero()
            self.out_ua = 0
            self.dac_ok = 1
        except Exception:
            self.dac_ok = 0
        return self.dac_ok == 1

    def check_latch(self):
        """Main loop: test the over-current latch with the output off (it is left re-armed);
        True once it passes: it sets on its test input and clears on a re-arm."""
        if self.state != OFF:
            return True
        try:
            return self._out.test_latch()
        except Exception:
            return False

    # ---- the tick --------------------------------------------------------
    def _write(self, ua):
        out = self._out
        out.set_ua(ua)
        self.out_ua = out.ua_for_code(out.code)

    def set_na(self, na):
        """The amplitude between pairs, in nA (set_code of what it commands)."""
        self.set_code(self._out.code_for_na(na))

    @micropython.native
    def set_code(self, code):
        """The amplitude between pairs (tick): a DAC code (Output.code_for_na's). A DAC that
        does not answer is a fault. An unchanged code writes nothing."""
        out = self._out
        if code == out.code:
            return
        try:
            out.write_code(code)
        except Exception:
            self.dac_ok = 0
            self.trip(DAC_FAULT)
            return
        self.out_ua = out.ua_for_code(out.code)     # what the code written (clamped) commands

    def verify_dac(self):
        """Bookkeeping, while output is on (10 Hz): the DAC asked to answer (a read: nothing
        written), so a DAC that left the bus at a steady setpoint, never written there, is a
        fault within 100 ms, not at the next change."""
        if self.state != ON and self.state != CLOSING:
            return
        try:
            self._out.check()
        except Exception:
            self.dac_ok = 0
            self.trip(DAC_FAULT)

    def latched(self):
        """Bookkeeping (100 Hz): True if the over-current latch cut the bridge while output was
        on; `over_current` is then latched like the fast path's own (the hardware cut first)."""
        # (no attribute of its own for the pin read: one more on this object slowed the fast
        # path's lookups of `state` and `out_ua` by ~3 us on the silicon tier)
        return self.state != OFF and self._out.latch_tripped() == 1

    def close(self, now_ms, from_tick=False):
        """End output after the pair under way (ON -> CLOSING), or at once if none plays: from
        the main loop a whole cut; `from_tick`, the rail and the bridge off now and the rest
        of the cut at the next tick call (halt(): the stage reads CLOSING until then)."""
        if self.state != ON:
            if self.state == ARMING:
                self.cut()
            return
        p = self._pulse
        p.sample()          # where the pair is now: from the main loop, the tick's last look is up
        if not p.running or not p.in_pair:   # to 10 ms old, and a pair begun since was cut short
            if from_tick:
                self.state = CLOSING
                self.halt()
            else:
                self.cut()
            return
        self.close_by = (now_ms + self._pair_ms) & 0x3FFFFFFF
        self.state = CLOSING
        p.finish(self._pair_ms)   # the back-end ends by itself after this pair: none begins

    def keep_on(self):
        """Main loop: a close asked for a checkpoint (checkpoint.py) is taken back while the
        pair under way still plays (CLOSING -> ON): a stop or a pause came meanwhile, and its
        ramp-down is carried by the pairs that follow. False once the back-end has committed
        to ending after the pair (docs/safety.md, Known limits), or the stage is off."""
        if self.state == CLOSING and not self.halted and self._pulse.unfinish():
            self.state = ON
            return True
        return False

    @micropython.native
    def closed(self, now_ms):
        """CLOSING (tick): once the back-end ended after the pair, or at the deadline
        regardless, the rail and the bridge go off now and the rest of the cut comes at the
        next tick call (halt()); True then. (Cutting when a 10 ms slice saw the pair over had
        cut the next one short where the off time after a pair is shorter than a slice.)"""
        left = _ticks_diff(self.close_by, now_ms)
        if left <= 0 or self._pulse.finished(left):
            self.halt()
            return True
        return False

    def halt(self):
        """The first half of a cut, allocation-free (the fast path's, the end of output from the
        tick): rail off, then the bridge halted through GPIO / the state machine -- no current
        flows from here. `halted`: the next tick call finishes the cut (DAC to 0, the latch
        re-armed; Supervisor._finish_cut), so no tick call has to make a whole end (~0.5 ms on
        the RP2040). The state is left to the caller: a trip's reads OFF, an end's CLOSING
        (the main loop waits for OFF either way before it switches on or writes flash)."""
        self.halted = 1
        try:
            self._out.rail_off()
        except Exception:
            pass
        try:
            self._pulse.halt()
        except Exception:
            pass

    def fast_cut(self, reason):
        """The fast path's cut (hard interrupt, allocation-free): rail off, then the bridge
        halted through GPIO / the state machine, now, and the LED dark on a trip; `reason`
        latched unless one is. The bookkeeping tick finishes it (`halted`): DAC to 0, the
        session ended. A trip reads OFF at once (its fault refuses any switch-on); the closing
        window's deadline (no reason) reads CLOSING until the cut is whole, so the main loop
        does not take the stage for off -- and switch on -- before the tick finished it."""
        if reason is not None and self.fault is None:
            self.fault = reason
        self.cuts = (self.cuts + 1) & 0x3FFFFFFF
        self.state = OFF if reason is not None else CLOSING
        self.halt()
        if reason is not None:
            try:
                self._led.off()            # PWM duty writes: interrupt-safe
            except Exception:
                pass

    def trip(self, reason):
        """Latch `reason` (the first fault stays), cut at once, end the session, darken the LED."""
        if self.fault is None:
            self.fault = reason
        self.cut()
        self._session.trip()
        try:
            self._led.off()
        except Exception:
            pass

    def cut(self):
        """Output off now: rail, then back-end and bridge, then DAC 0; no step stops another."""
        self.cuts = (self.cuts + 1) & 0x3FFFFFFF
        self.state = OFF
        self.halted = 0
        out = self._out
        try:
            out.rail_off()
        except Exception:
            pass
        try:
            self._pulse.stop()
        except Exception:
            pass
        try:
            out.bridge_off()
        except Exception:
            pass
        try:
            out.zero()
            self.out_ua = 0
        except Exception:
            self.dac_ok = 0
            if self.fault is None:          # a DAC that does not answer is a fault of its own
                self._fault_in_cut(DAC_FAULT)
        try:
            if out.latch_tripped() and self.fault is None:
                self._fault_in_cut(OVER_CURRENT)     # it cut before the bookkeeping looked
            out.rearm_latch()
        except Exception:
            pass

    def _fault_in_cut(self, reason):
        """A fault the cut itself found (no fault latched yet): latch it, end the session, LED dark."""
        self.fault = reason
        self._session.trip()
        try:
            self._led.off()
        except Exception:
            pass

    def clear(self):
        """fault_clear (main loop, output off): forget the latched fault."""
        self.fault = None

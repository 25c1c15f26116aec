# Session state machine: idle -> ramp -> run -> ramp_down -> done, or fault;
# ramp/run -> pausing -> paused -> (resume) ramp from the minimum again.
#
# Pure logic in integers: current in nA (so a 250 uA/s ramp is 250 nA per
# ms), time in ms from time.ticks_ms(). The supervisor tick calls step();
# commands call begin() / request_stop() / pause() / resume(). Enforces soft
# start, the ramp rates, ramp-down on stop and the session length cap of
# SAFETY.md. Session time runs only in ramp and run: not while paused.
import micropython
from array import array
from micropython import const
from myotone import limits

IDLE = const(0)
RAMP = const(1)
RUN = const(2)
RAMP_DOWN = const(3)
DONE = const(4)
FAULT = const(5)
PAUSING = const(6)     # ramping down to zero, as on stop, then holding there
PAUSED = const(7)
NAMES = ("idle", "ramp", "run", "ramp_down", "done", "fault", "pausing", "paused")
# the states a session is under way in (active()), one bit each: RAMP, RUN, RAMP_DOWN, PAUSING,
# PAUSED (the output slice tests the bit without a call: supervisor.py)
ACTIVE_MASK = const((1 << RAMP) | (1 << RUN) | (1 << RAMP_DOWN) | (1 << PAUSING) | (1 << PAUSED))
PAUSE_MAX_MS = const(600000)   # a session paused for 10 min ends (done)

# The numbers step() reads and writes, in one int array (Session._n) read by a viper step: one
# lookup a step, not ~20 (on the RP2040 each attribute costs 3-5 us of the output slice's budget).
# The class has no properties: on MicroPython a class with one makes every attribute store look
# the name up in the class first (step() stores target_na each call), so the times kept here are
# read through methods (elapsed_ms() ...).
_N_LAST_MS = const(0)     # when the last step ran (ticks_ms)
_N_ELAPSED = const(1)     # session time (ms): runs only in RAMP and RUN
_N_DURATION = const(2)    # the session's length (ms)
_N_RATE = const(3)        # the ramp's rate, pA per ms
_N_FRAC = const(4)        # what the ramp moved below 1 nA, carried to the next step (pA)
_N_FLOOR = const(5)       # a ramp-down's first part ends at the soft start (nA) ...
_N_TAIL = const(6)        # ... and its tail falls from there to zero at this rate (pA per ms)
_N_PAUSED = const(7)      # time paused (ms)
_N_DOWN = const(8)        # 1: a stop or pause asked, its ramp-down is set at the next step
_N_SPARE = const(9)
_N_STEP_MAX = const(10)   # limits.RAMP_STEP_MAX_MS
_N_SOFT_NA = const(11)    # start_ua() in nA, as the last ramp from the minimum began (a ramp-down's
                          # floor: start_ua() searches codes, too long for the tick)
_N_DOWN_MS = const(12)    # ramp_down_ms() of the waveform under way (pair_ms, off_short)
_N_SIZE = const(13)


@micropython.native
def _ticks_diff(a, b):
    # time.ticks_diff without importing time: ticks wrap at 2**30 on MicroPython.
    # 0x40000000 is not a small int on a 32-bit port: subtracting it would make a
    # big int (an allocation) for every negative difference, so it goes in two steps.
    d = (a - b) & 0x3FFFFFFF
    return d - 0x3FFFFFFF - 1 if d & 0x20000000 else d


def ramp_rate_pa_per_ms(span_na, permille=1000, min_ms=limits.RAMP_MIN_MS):
    """The one ramp-rate rule (SAFETY.md), in pA per ms: a ramp over `span_na` lasts
    >= RAMP_MIN_MS (or `min_ms`, when longer) and is never faster than RAMP_MAX_NA_PER_MS
    (up, down to zero, or between setpoints), whatever the span (in pA, a span under
    2 uA still takes 2 s). `permille` slows it for an output whose current may climb
    faster than its target (Output.ramp_permille)."""
    rate = min(limits.RAMP_MAX_NA_PER_MS * 1000, span_na * 1000 // max(min_ms, limits.RAMP_MIN_MS))
    return max(1, rate * permille // 1000)


def ramp_down_ms(pair_ms=0, off_short=False):
    """stop / pause: RAMP_DOWN_MS (>= 1 s), or two pair intervals (`pair_ms`) when longer: the
    next pair comes at most half-way down, so at a low frequency the pair under way is followed
    by a lower one before zero (the ramp-down is carried by pairs, not by the end of the last
    one). At >= 1.4 Hz it is RAMP_DOWN_MS.

    `off_short`: the off time after a pair is shorter than an output slice (runner.off_short),
    so a slice may not see it and the DAC follows the fall only every second pair (plus a
    slice): twice RAMP_DOWN_MS keeps such a two-pair step inside what a 1 s ramp allows per
    pair ((2 P + 10 ms) / (0.9 D) <= (P + 10 ms) / 1 s needs D >= 2.22 s at any P). At 1.5 s
    a 13.7 Hz waveform with 2.7 ms off times fell 9.8 uA in one pair where 8.1 was allowed."""
    ms = 2 * limits.RAMP_DOWN_MS if off_short else limits.RAMP_DOWN_MS
    return max(ms, 2 * pair_ms)


@micropython.viper
def ramp_down_rate_pa_per_ms(span_na: int, ms: int) -> int:
    """A fall over `span_na` in `ms`, in pA per ms (at least 1). (viper: the output slice's
    first step after a stop sets the ramp-down; span x 1000 < 2**31 up to the 1000 uA ceiling.)"""
    if ms < 1:
        ms = 1
    rate = span_na * 1000 // ms
    return rate if rate > 1 else 1


class Session:
    def __init__(self, limit_ua, output=None):
        self.limit_ua = limit_ua
        # SAFETY.md: minimum setting / soft start <= 2 % of the board limit
        self.min_ua = max(1, limit_ua * limits.SOFT_START_PERCENT // 100)
        # the output stage's DAC writer (output.Output): how the targets are delivered
        self._out = output
        self.state = IDLE
        self.target_na = 0
        self._n = array("i", [0] * _N_SIZE)
        self._n[_N_STEP_MAX] = limits.RAMP_STEP_MAX_MS
        # the longest time between two pulse pairs of the waveform under way (its period, plus a
        # burst's off time): the amplitude changes only between pairs, so a rising ramp lasts
        # RAMP_MIN_PAIRS of these (no step above 1/20 of its span at any frequency); 0: none
        self.pair_ms = 0
        self.off_short = False       # the off time after a pair is under an output slice (runner)
        self._n[_N_DOWN_MS] = ramp_down_ms()
        self.setpoint_ua = 0
        # the output stage was on at the last step: a rising ramp moves only while it is, and
        # is timed from the step it switched on (arming -- compiling a table -- is no ramp time)
        self.live = False

    def timed_to(self, pair_ms, off_short):
        """The waveform under way (runner): its longest time between two pairs and whether the
        off time after a pair is under an output slice; the ramp-down's length follows."""
        self.pair_ms = pair_ms
        self.off_short = off_short
        self._n[_N_DOWN_MS] = ramp_down_ms(pair_ms, off_short)

    def elapsed_ms(self):
        """Session time: runs only in RAMP and RUN."""
        return self._n[_N_ELAPSED]

    def duration_ms(self):
        return self._n[_N_DURATION]

    def paused_ms(self):
        return self._n[_N_PAUSED]

    def _set_rate(self, pa_per_ms):
        n = self._n
        n[_N_RATE] = pa_per_ms
        n[_N_FRAC] = 0

    def active(self):
        """A session is under way: RAMP, RUN, RAMP_DOWN, PAUSING or PAUSED (not IDLE, DONE, FAULT)."""
        return bool((ACTIVE_MASK >> self.state) & 1)

    def start_ua(self):
        """The ramp's first target: the soft start as the output delivers it (rounded down,
        and at most min_ua on the nominal transfer too: Output.soft_start_ua)."""
        out = self._out
        return self.min_ua if out is None else out.soft_start_ua(self.min_ua)

    def _ramp_rate(self, from_na, to_na, pair_ms=-1):
        """The rate of a ramp between two targets, so that what is *delivered* keeps the ramp
        rules: the last DAC code is reached when the target passes what that code commands
        (codes round down; down: up to one DAC step), and no later than the output's ceiling
        (the limit code); a calibration that may
        make the current climb faster than the target slows the ramp (Output.ramp_permille)."""
        span = abs(to_na - from_na)
        if pair_ms < 0:
            pair_ms = self.pair_ms
        min_ms = limits.RAMP_MIN_PAIRS * pair_ms if to_na > from_na else 0
        out = self._out
        if out is None:
            return ramp_rate_pa_per_ms(span, 1000, min_ms)
        lo = min(from_na, to_na)
        hi = min(max(from_na, to_na), out.ceiling_ua() * 1000)
        if to_na > from_na:     # the last code comes when the target passes what it commands
            delivered = out.na_for_code(out.code_for_na(hi)) - lo
        else:
            delivered = hi - lo - out.step_ua * 1000
        return ramp_rate_pa_per_ms(delivered if delivered > 0 else span, out.ramp_permille, min_ms)

    def ramp_ms(self, setpoint_ua, pair_ms=-1):
        """How long the ramp from the minimum to `setpoint_ua` lasts (with pairs `pair_ms`
        apart: runner.pair_ms(); by default the waveform under way's)."""
        start_na = min(self.start_ua(), setpoint_ua) * 1000
        span_na = setpoint_ua * 1000 - start_na
        if span_na <= 0:
            return 0
        rate = self._ramp_rate(start_na, setpoint_ua * 1000, pair_ms)
        return (span_na * 1000 + rate - 1) // rate

    def _ramp_from_min(self):
        # ramp over >= RAMP_MIN_MS and never faster than RAMP_MAX_NA_PER_MS
        soft = self.start_ua()
        self._n[_N_SOFT_NA] = soft * 1000
        self.target_na = min(soft, self.setpoint_ua) * 1000
        goal = self.setpoint_ua * 1000
        self._set_rate(self._ramp_rate(self.target_na, goal))
        self.state = RAMP if goal > self.target_na else RUN

    def _check(self, setpoint_ua):
        # 0 = no microcurrent (an LED-only phase); else 10 uA .. the limit
        if setpoint_ua != 0 and not limits.PROGRAM_MIN_UA <= setpoint_ua <= self.limit_ua:
            raise ValueError("setpoint out of range")

    def begin(self, setpoint_ua, duration_ms, now_ms):
        """Start from the minimum and ramp to `setpoint_ua` (0: no current)."""
        if self.state == FAULT:
            raise ValueError("fault latched")
        self._check(setpoint_ua)
        if not 0 < duration_ms <= limits.SESSION_MAX_MS:
            raise ValueError("duration out of range")
        self.setpoint_ua = setpoint_ua
        n = self._n
        n[_N_DURATION] = duration_ms
        n[_N_ELAPSED] = 0
        n[_N_LAST_MS] = now_ms
        self.live = False
        self._ramp_from_min()

    def change_setpoint(self, setpoint_ua):
        """New setpoint during a session: reached by ramping, never by a jump.

        0 ramps the current down to nothing (over >= RAMP_MIN_MS) without
        ending the session; from 0 it ramps up from nothing.
        """
        self._check(setpoint_ua)
        if self.state in (RAMP, RUN):
            self.setpoint_ua = setpoint_ua
            self._set_rate(self._ramp_rate(self.target_na, setpoint_ua * 1000))
            self.state = RAMP

    def limit_to(self, ua):
        """Impedance scaling (Monitor.scale): the target falls to `ua` at once -- a fall is
        never a hazard -- and climbs back to the setpoint only as a ramp, under the ramp
        rules, once the scaling lets go (an electrode pressed back on)."""
        na = ua * 1000
        if na >= self.target_na:
            return
        self.target_na = na
        if self.state == RUN or self.state == RAMP:
            self.state = RAMP
            self._set_rate(self._ramp_rate(na, self.setpoint_ua * 1000))

    @micropython.viper
    def _from_delivered(self):
        """A ramp-down starts from what the output delivers: the target may have moved on
        since the DAC was last written (amplitude changes only between pairs), and a fall
        timed from a higher target would be steeper than the ramp-down allows, or the next
        pair would rise. Run by step() -- in the output slice, which has just read which
        pair began at which code -- not when the request arrives. (viper: the ramp-down's
        length is worked out when the waveform is set, _N_DOWN_MS, and the soft start when
        the ramp began, _N_SOFT_NA: this step had taken 0.7 ms on the RP2040.)"""
        n = ptr32(self._n)
        target = int(self.target_na)
        out = self._out
        if out:                      # (an Output; None without one: viper has no `is not None`)
            code = int(out.code)
            if code >= 0:
                played = int(out.pair_code)
                if played < code:
                    code = played
                na = int(out.na_for_code(code))
                if na < target:
                    target = na
                    self.target_na = na
        # the part above the soft start takes 9/10 of the ramp-down (from 11.7 uA a fall to
        # zero over 1.5 s had crossed the soft start, 9.8 uA, in 0.25 s), the tail below it the
        # last tenth: the pair the output ends in carries next to nothing
        ms = n[_N_DOWN_MS]
        floor = n[_N_SOFT_NA]
        if target < floor:
            floor = target
        n[_N_FLOOR] = floor
        tail = int(ramp_down_rate_pa_per_ms(floor, ms // 10))
        n[_N_TAIL] = tail
        if target > floor:
            n[_N_RATE] = int(ramp_down_rate_pa_per_ms(target - floor, ms - ms // 10))
        else:
            n[_N_RATE] = tail
        n[_N_FRAC] = 0

    def hold_at(self, na):
        """A rising ramp waits at `na` (what the output last wrote): its step could not be
        delivered this slice (Supervisor._rise_fits). Anything else goes on."""
        if self.state == RAMP and 0 <= na < self.target_na:
            self.target_na = na
            self._n[_N_FRAC] = 0

    def request_stop(self):
        """Ramp down to zero (ramp_down_rate_pa_per_ms; paused: already at zero, done on the
        next step)."""
        if self.state in (RAMP, RUN):
            self.state = RAMP_DOWN
            self._n[_N_DOWN] = 1
        elif self.state == PAUSING or self.state == PAUSED:
            self.state = RAMP_DOWN

    def pause(self):
        """Ramp down to zero as on stop, then hold at zero; False if nothing runs."""
        if self.state not in (RAMP, RUN):
            return False
        self.state = PAUSING
        n = self._n
        n[_N_PAUSED] = 0
        n[_N_DOWN] = 1
        return True

    def resume(self):
        """A paused session starts again with a new ramp from the minimum."""
        if self.state != PAUSED:
            return False
        self._ramp_from_min()
        return True

    def trip(self):
        """A fault: output target 0 at once (the caller cuts the output)."""
        self.state = FAULT
        self.target_na = 0

    def clear(self):
        if self.state in (FAULT, DONE):
            self.state = IDLE
            self.target_na = 0

    @micropython.viper
    def step(self, now_ms, live=True) -> int:
        """Advance by the time since the last step; return the target in uA. `live`: the
        output stage is on (a rising ramp waits while it is not). (viper over Session._n: the
        output slice's ramp step on the RP2040 went from ~85 us to ~20.)"""
        n = ptr32(self._n)
        now = int(now_ms)
        dt = (now - n[_N_LAST_MS]) & 0x3FFFFFFF       # ticks wrap at 2**30 ...
        if dt & 0x20000000:
            dt = 0                                     # ... and time never runs back
        n[_N_LAST_MS] = now
        lv = 1 if live else 0
        was = 1 if self.live else 0
        if lv != was:
            self.live = live
        st = int(self.state)
        if st == RAMP or st == RUN:
            e = n[_N_ELAPSED] + dt
            n[_N_ELAPSED] = e
            if e >= n[_N_DURATION]:                    # auto-off at program end
                self.request_stop()
                st = int(self.state)
        if n[_N_DOWN]:
            n[_N_DOWN] = 0
            if st == RAMP_DOWN or st == PAUSING:
                self._from_delivered()
        step = 0
        if st == RAMP or st == RAMP_DOWN or st == PAUSING:
            if dt > n[_N_STEP_MAX]:       # a late step (a busy main loop, a soft timer held
                dt = n[_N_STEP_MAX]       # off): the ramp waits, it does not jump
            step = n[_N_RATE] * dt + n[_N_FRAC]        # pA
            n[_N_FRAC] = step % 1000
            step = step // 1000
        target = int(self.target_na)
        new_st = st
        if st == RAMP:
            goal = int(self.setpoint_ua) * 1000
            if target < goal:
                if lv and was:
                    target += step
                    if target > goal:
                        target = goal
            else:
                target -= step
                if target < goal:
                    target = goal
            if target == goal:
                new_st = RUN
        elif st == RAMP_DOWN or st == PAUSING:
            target -= step
            if target <= n[_N_FLOOR]:
                n[_N_RATE] = n[_N_TAIL]
            if target <= 0:
                target = 0
                new_st = DONE if st == RAMP_DOWN else PAUSED
        elif st == PAUSED:
            target = 0
            p = n[_N_PAUSED] + dt
            n[_N_PAUSED] = p
            if p >= PAUSE_MAX_MS:
                new_st = DONE
        elif st != RUN:
            target = 0
        self.target_na = target
        if new_st != st:
            self.state = new_st
        return target // 1000

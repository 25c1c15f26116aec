# Session state machine: idle -> ramp -> run -> ramp_down -> done, or fault;
# ramp/run -> pausing -> paused -> (resume) ramp from the minimum again.
#
# Pure logic in integers: current in nA (so a 250 uA/s ramp is 250 nA per
# ms), time in ms from time.ticks_ms(). The supervisor tick calls step();
# commands call begin() / request_stop() / pause() / resume(). Enforces soft
# start, the ramp rates, ramp-down on stop and the session length cap of
# SAFETY.md. Session time runs only in ramp and run: not while paused.
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
PAUSE_MAX_MS = const(600000)   # a session paused for 10 min ends (done)


def _ticks_diff(a, b):
    # time.ticks_diff without importing time: ticks wrap at 2**30 on MicroPython.
    # 0x40000000 is not a small int on a 32-bit port: subtracting it would make a
    # big int (an allocation) for every negative difference, so it goes in two steps.
    d = (a - b) & 0x3FFFFFFF
    return d - 0x3FFFFFFF - 1 if d & 0x20000000 else d


def ramp_rate_na_per_ms(span_na):
    """The one ramp-rate rule (SAFETY.md): a ramp over `span_na` lasts >= RAMP_MIN_MS
    and is never faster than RAMP_MAX_NA_PER_MS (up, down to zero, or between setpoints)."""
    return max(1, min(limits.RAMP_MAX_NA_PER_MS, span_na // limits.RAMP_MIN_MS))


def ramp_down_rate_na_per_ms(target_na):
    """stop / pause: from `target_na` to zero over RAMP_DOWN_MS (>= 1 s)."""
    return max(1, target_na // limits.RAMP_DOWN_MS)


class Session:
    def __init__(self, limit_ua):
        self.limit_ua = limit_ua
        # SAFETY.md: minimum setting / soft start <= 2 % of the board limit
        self.min_ua = max(1, limit_ua * limits.SOFT_START_PERCENT // 100)
        self.state = IDLE
        self.setpoint_ua = 0
        self.target_na = 0
        self.duration_ms = 0
        self.elapsed_ms = 0
        self._rate_na_per_ms = 0
        self._last_ms = 0
        self.paused_ms = 0

    def active(self):
        return self.state in (RAMP, RUN, RAMP_DOWN, PAUSING, PAUSED)

    def ramp_ms(self, setpoint_ua):
        """How long the ramp from the minimum to `setpoint_ua` lasts."""
        span_na = setpoint_ua * 1000 - min(self.min_ua, setpoint_ua) * 1000
        if span_na <= 0:
            return 0
        rate = ramp_rate_na_per_ms(span_na)
        return (span_na + rate - 1) // rate

    def _ramp_from_min(self):
        # ramp over >= RAMP_MIN_MS and never faster than RAMP_MAX_NA_PER_MS
        self.target_na = min(self.min_ua, self.setpoint_ua) * 1000
        span_na = self.setpoint_ua * 1000 - self.target_na
        self._rate_na_per_ms = ramp_rate_na_per_ms(span_na)
        self.state = RAMP if span_na > 0 else RUN

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
        self.duration_ms = duration_ms
        self.elapsed_ms = 0
        self._last_ms = now_ms
        self._ramp_from_min()

    def change_setpoint(self, setpoint_ua):
        """New setpoint during a session: reached by ramping, never by a jump.

        0 ramps the current down to nothing (over >= RAMP_MIN_MS) without
        ending the session; from 0 it ramps up from nothing.
        """
        self._check(setpoint_ua)
        if self.state in (RAMP, RUN):
            self.setpoint_ua = setpoint_ua
            span = abs(setpoint_ua * 1000 - self.target_na)
            self._rate_na_per_ms = ramp_rate_na_per_ms(span)
            self.state = RAMP

    def request_stop(self):
        """Ramp down to zero over RAMP_DOWN_MS (paused: already at zero, done on the next step)."""
        if self.state in (RAMP, RUN):
            self.state = RAMP_DOWN
            self._rate_na_per_ms = ramp_down_rate_na_per_ms(self.target_na)
        elif self.state == PAUSING or self.state == PAUSED:
            self.state = RAMP_DOWN

    def pause(self):
        """Ramp down to zero as on stop, then hold at zero; False if nothing runs."""
        if self.state not in (RAMP, RUN):
            return False
        self.state = PAUSING
        self.paused_ms = 0
        self._rate_na_per_ms = ramp_down_rate_na_per_ms(self.target_na)
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

    def step(self, now_ms):
        """Advance by the time since the last step; return the target in uA."""
        dt = _ticks_diff(now_ms, self._last_ms)
        if dt < 0:
            dt = 0
        self._last_ms = now_ms
        st = self.state
        if st == RAMP or st == RUN:
            self.elapsed_ms += dt
            if self.elapsed_ms >= self.duration_ms:   # auto-off at program end
                self.request_stop()
                st = self.state
        if st == RAMP:
            goal = self.setpoint_ua * 1000
            step = self._rate_na_per_ms * dt
            if self.target_na < goal:
                self.target_na = min(goal, self.target_na + step)
            else:
                self.target_na = max(goal, self.target_na - step)
            if self.target_na == goal:
                self.state = RUN
        elif st == RAMP_DOWN or st == PAUSING:
            self.target_na -= self._rate_na_per_ms * dt
            if self.target_na <= 0:
                self.target_na = 0
                self.state = DONE if st == RAMP_DOWN else PAUSED
        elif st == PAUSED:
            self.target_na = 0
            self.paused_ms += dt
            if self.paused_ms >= PAUSE_MAX_MS:
                self.state = DONE
        elif st != RUN:
            self.target_na = 0
        return self.target_na // 1000

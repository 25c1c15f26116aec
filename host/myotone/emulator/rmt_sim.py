"""``esp32.RMT`` (transmit) for the emulator, playing pulses in virtual time.

Integrator interface::

    esp32_module.RMT = make_rmt_class(clock, pins)   # Clock/Pins of sim_protocols

API and messages follow MicroPython's ``ports/esp32/esp32_rmt.c`` and the
``esp32.RMT`` documentation: ``RMT(channel, *, pin, clock_div=8,
idle_level=False, tx_carrier=None)``, ``source_freq()`` (80 MHz),
``clock_div()``, ``write_pulses(duration, data=True)`` in its three modes,
``wait_done(*, timeout=0)`` (ms), ``loop(enable)``, ``active()``, ``deinit()``.

Timing: a tick lasts ``clock_div / 80 MHz`` = ``clock_div * 12.5`` ns.  The
edge ending tick ``n`` of a transmission started at ``t0`` is at
``t0 + floor(n * clock_div * 25 / 2)`` ns, computed from the absolute tick
count (exact, no drift however long a loop runs).  One clock callback is
scheduled per level change (plus one per loop iteration), never per tick.

Deliberate differences from the device:
  * durations outside 1..32767 ticks raise ``ValueError`` (the port silently
    truncates them to 15 bits, and 0 ends the transmission early);
  * ``tx_carrier`` is validated and kept in ``.tx_carrier`` but the pin shows
    the envelope, not the carrier cycles;
  * a new ``write_pulses`` starts exactly when the previous transmission (or
    loop iteration) ends, without the few microseconds of driver latency.
"""
from .sim_protocols import Clock, Pins, pin_id

SOURCE_FREQ_HZ = 80_000_000
PULSE_MAX = 32767
LOOP_MAX_PULSES = 126  # "Looping sequences longer than 126 pulses is not supported"


def _pulses(duration, data):
    """[(level, ticks)] from write_pulses() arguments (the port's three modes)."""
    if type(data) not in (tuple, list):        # mode 1: durations, toggling from data
        durations = _array(duration)
        first = 1 if data else 0
        levels = [(first + i) & 1 for i in range(len(durations))]
    elif isinstance(duration, int):            # mode 2: one duration, list of levels
        levels = [1 if d else 0 for d in data]
        durations = [duration] * len(levels)
    else:                                      # mode 3: two lists
        durations = _array(duration)
        levels = [1 if d else 0 for d in data]
        if len(durations) != len(levels):
            raise ValueError("duration and data must have same length")
    if not durations:
        raise ValueError("No pulses")
    for ticks in durations:
        if not isinstance(ticks, int) or not 1 <= ticks <= PULSE_MAX:
            raise ValueError("duration {!r} out of range 1..{} (emulator check)".format(ticks, PULSE_MAX))
    return list(zip(levels, durations))


def _array(obj):
    if type(obj) not in (tuple, list):
        raise TypeError("object '{}' isn't a tuple or list".format(type(obj).__name__))
    return list(obj)


class RMT:
    _clock: Clock  # set by make_rmt_class
    _pins: Pins
    PULSE_MAX = PULSE_MAX

    def __init__(self, channel=-1, *, pin=None, clock_div=8, idle_level=False, tx_carrier=None):
        if pin is None:
            raise TypeError("'pin' argument required")
        if not 1 <= clock_div <= 255:
            raise ValueError("clock_div must be between 1 and 255")
        if tx_carrier is not None:
            freq, duty, level = tx_carrier
            if freq <= 0:
                raise ValueError("tx_carrier frequency must be >0")
            if not 0 <= duty <= 100:
                raise ValueError("tx_carrier duty must be 0..100")
            tx_carrier = (freq, duty, bool(level))
        self.channel, self.tx_carrier = channel, tx_carrier
        self._pin, self._div, self._idle = pin_id(pin), clock_div, 1 if idle_level else 0
        self._loop_en = False
        self._busy = self._looping = self._replacing = False
        self._changes, self._period, self._t0, self._iter, self._idx = [], 0, 0, 0, 0
        self._handle = None
        self._level = None
        self._drive(self._idle, self._clock.now_ns())

    def __repr__(self):
        if self._pin is None:
            return "RMT()"
        return "RMT(pin={}, source_freq={}, clock_div={}, idle_level={})".format(
            self._pin, SOURCE_FREQ_HZ, self._div, self._idle)

    @staticmethod
    def source_freq():
        return SOURCE_FREQ_HZ

    def _check(self):
        if self._pin is None:
            raise OSError("already deinitialized")

    def clock_div(self):
        self._check()
        return self._div

    # -- transmission ------------------------------------------------------------
    def write_pulses(self, duration, data=True):
        self._check()
        pulses = _pulses(duration, data)
        if self._loop_en and len(pulses) > LOOP_MAX_PULSES:
            raise ValueError("Too many pulses for loop")
        self._advance(self._clock.now_ns())
        if self._busy:  # block until the transmission / current loop iteration ends
            self._replacing = True
            try:
                self._clock.sleep_until(self._t(self._iter * self._period + self._period))
                self._advance(self._clock.now_ns())
            finally:
                self._replacing = False
        changes, offset = [], 0
        for level, ticks in pulses:
            if not changes or changes[-1][1] != level:
                changes.append((offset, level))
            offset += ticks
        self._changes, self._period = changes, offset
        self._t0, self._iter, self._idx = self._clock.now_ns(), 0, 0
        self._busy, self._looping = True, self._loop_en
        self._advance(self._t0)

    def wait_done(self, *, timeout=0):
        """True when idle; with *timeout* (ms) block up to that long for the end."""
        self._check()
        now = self._clock.now_ns()
        self._advance(now)
        deadline = now + timeout * 1_000_000
        while self._busy and self._clock.now_ns() < deadline:
            boundary = self._t(self._iter * self._period + self._period)
            self._clock.sleep_until(min(deadline, boundary))
            self._advance(self._clock.now_ns())
        return not self._busy

    def loop(self, enable_loop):
        """Loop the *next* write_pulses; disabling ends the current iteration, then stops."""
        self._check()
        self._advance(self._clock.now_ns())
        self._loop_en = bool(enable_loop)
        if not self._loop_en and self._looping:
            self._looping = False
            self._reschedule()

    def active(self, value=None):
        if value is None:
            self._advance(self._clock.now_ns())
            return self._busy
        if value:
            raise ValueError("activate by calling write_pulses()")
        self._stop()
        return False

    def deinit(self):
        if self._pin is not None:
            self._stop()
            self._pin = None

    def _stop(self):
        now = self._clock.now_ns()
        self._advance(now)
        self._busy = self._looping = False
        self._drive(self._idle, now)
        self._reschedule()

    # -- virtual-time engine -----------------------------------------------------
    def _t(self, ticks):
        return self._t0 + ticks * self._div * 25 // 2

    def _next_event(self):
        """(t_ns, change or None) of the next level change or iteration end."""
        if self._idx < len(self._changes):
            offset, level = self._changes[self._idx]
            return self._t(self._iter * self._period + offset), level
        return self._t(self._iter * self._period + self._period), None

    def _advance(self, t_ns):
        while self._busy:
            t, level = self._next_event()
            if t > t_ns:
                break
            if level is not None:
                self._drive(level, t)
                self._idx += 1
            elif self._looping and not self._replacing:
                self._iter, self._idx = self._iter + 1, 0
            else:
                self._busy = False
                if not self._replacing:  # a following write_pulses starts right here
                    self._drive(self._idle, t)
        self._reschedule()

    def _reschedule(self):
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._busy:
            self._handle = self._clock.schedule(self._next_event()[0], self._on_event)

    def _on_event(self):
        self._handle = None
        self._advance(self._clock.now_ns())

    def _drive(self, level, t_ns):
        if level != self._level:
            self._level = level
            self._pins.drive(self._pin, level, t_ns)


def make_rmt_class(clock, pins):
    """An ``esp32.RMT`` class whose channels play on *clock* and drive *pins*."""
    return type("RMT", (RMT,), {"_clock": clock, "_pins": pins, "__module__": "esp32"})

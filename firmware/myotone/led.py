# The LED output: red 630 nm and, on boards with eye shields, 830 nm NIR.
# The one and only writer of the LED PWM duty, as output.py is for the DAC.
#
# The main loop sets the requested intensity (set_percent); the supervisor
# tick calls tick(), which applies the thermistor derating of SAFETY.md
# (100 % up to 40 C, falling linearly to 0 at 41 C), writes the duty, and
# counts the light delivered: LED on-time (auto-off at limits.LED_MAX_MS)
# and dose from the board's irradiance calibration (LED off at the
# per-session cap). tick() is integer-only and allocates nothing.
import micropython
from micropython import const
from myotone import limits

MAX_TIME = "max_time"     # why the LED went off early (interned constants)
DOSE_CAP = "dose_cap"
_FULL = const(4095)       # duty_u16 >> 4: 12-bit duty keeps products below 2**30


class Led:
    def __init__(self, red_pwm, nir_pwm, red_mw_cm2, nir_mw_cm2, tick_hz, raw_derate_start, raw_derate_end):
        """PWM objects come in (nir_pwm None: no usable NIR channel).

        raw_derate_start / raw_derate_end: thermistor read_u16() codes at
        LED_DERATE_C and OVER_TEMP_C (the code falls as the skin warms).
        """
        self._red_pwm = red_pwm
        self._nir_pwm = nir_pwm
        self._red_w = red_pwm.duty_u16            # bound once: the tick must not allocate
        self._nir_w = nir_pwm.duty_u16 if nir_pwm is not None else None
        self.has_nir = nir_pwm is not None
        self._red_uw = int(red_mw_cm2 * 1000)     # irradiance at 100 %, uW/cm2
        self._nir_uw = int(nir_mw_cm2 * 1000) if nir_pwm is not None else 0
        self.tick_hz = tick_hz
        # one uJ/cm2 is _unit of (12-bit duty x uW/cm2) tick products
        self._unit = _FULL * tick_hz
        self._max_ticks = limits.LED_MAX_MS * tick_hz // 1000
        self._cap_uj = limits.LED_DOSE_MAX_MJ_CM2 * 1000
        self._raw_start = raw_derate_start
        self._raw_end = raw_derate_end
        self._raw_span = max(1, raw_derate_start - raw_derate_end)
        self.red_duty = -1
        self.nir_duty = -1 if nir_pwm is not None else 0
        self.begin()
        self.off()

    def begin(self):
        """A new session: no light yet, counters at zero."""
        self._req_red = 0
        self._req_nir = 0
        self._t_raw = -1
        self._acc = 0
        self.on_ticks = 0
        self.dose_uj = 0            # uJ/cm2, red + NIR
        self.stopped = None         # MAX_TIME or DOSE_CAP once the LED went off for good
        self.derate_permille = 1000

    def set_percent(self, red_pct, nir_pct):
        """Requested intensity in % (main loop); the tick applies it, derated."""
        if not (0 <= red_pct <= 100 and 0 <= nir_pct <= 100):
            raise ValueError("LED intensity must be 0..100 %")
        if nir_pct and not self.has_nir:
            raise ValueError("this board has no usable NIR channel")
        self._req_red = red_pct * 65535 // 100
        self._req_nir = nir_pct * 65535 // 100

    def planned_uj(self, red_pct, nir_pct, seconds):
        """Dose of `seconds` at these intensities, uJ/cm2 (main loop)."""
        return (red_pct * self._red_uw + nir_pct * self._nir_uw) * seconds // 100

    @micropython.native
    def tick(self, temp_raw, on):
        # thermistor, smoothed over ~8 ticks (ADC noise would make the duty jitter)
        t = self._t_raw
        t = temp_raw if t < 0 else t + ((temp_raw - t) >> 3)
        self._t_raw = t
        if t >= self._raw_start:
            f = 1000
        elif t <= self._raw_end:
            f = 0
        else:
            f = (t - self._raw_end) * 1000 // self._raw_span
        self.derate_permille = f
        if on and self.stopped is None:
            red = self._req_red * f // 1000
            nir = self._req_nir * f // 1000
        else:
            red = nir = 0
        if red != self.red_duty:
            self.red_duty = red
            self._red_w(red)
        if nir != self.nir_duty and self._nir_w is not None:
            self.nir_duty = nir
            self._nir_w(nir)
        if red == 0 and nir == 0:
            return
        self.on_ticks += 1
        if self.on_ticks >= self._max_ticks:           # auto-off at 10 min of light
            self.stopped = MAX_TIME
        acc = self._acc + (red >> 4) * self._red_uw + (nir >> 4) * self._nir_uw
        if acc >= self._unit:
            n = acc // self._unit
            self.dose_uj += n
            acc -= n * self._unit
            if self.dose_uj >= self._cap_uj:           # per-session dose cap
                self.stopped = DOSE_CAP
        self._acc = acc

    def percent_now(self):
        return (self.red_duty * 100 + 32767) // 65535 if self.red_duty > 0 else 0

    def off(self):
        """Both channels dark at once (safe state, trips, session end)."""
        self._req_red = 0
        self._req_nir = 0
        self.red_duty = 0
        self._red_w(0)
        if self._nir_w is not None:
            self.nir_duty = 0
            self._nir_w(0)

    def deinit(self):
        """Safe state: zero, then release the PWM hardware (it outlives Ctrl-C)."""
        try:
            self.off()
        finally:
            self._red_pwm.deinit()
            if self._nir_pwm is not None:
                self._nir_pwm.deinit()

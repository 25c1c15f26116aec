# The trip levels (computed once, here), the trips decided at the bookkeeping
# cadence (SAFETY.md "Trips": over_temp, temp_sensor_fault, charging,
# charge_imbalance) and the impedance-adaptive scaling of the output. The
# per-sample trips (over_current, high_density, contact_lost, sense_fault)
# are decided in fastpath.py, from these levels.
#
# Each rule is decided in one place; the supervisor acts on the reason code
# returned. Pure integer logic: environment() and charge() allocate nothing
# on their normal path (they return interned string constants or None).
# Thresholds that need floats are computed once, in the constructor or in
# begin().
import micropython
from array import array
from micropython import const
from myotone import limits, thermal

OVER_CURRENT = "over_current"
CONTACT_LOST = "contact_lost"
HIGH_DENSITY = "high_density"
CHARGE_IMBALANCE = "charge_imbalance"
SENSE_FAULT = "sense_fault"
OVER_TEMP = "over_temp"
TEMP_SENSOR_FAULT = "temp_sensor_fault"   # the skin-side thermistor reads open: temperature unknown
CHARGING = "charging"
HEARTBEAT_LOST = "heartbeat_lost"
DAC_FAULT = "dac_fault"          # latched by the output stage (stage.py): the DAC did not answer
OC_LATCH_FAULT = "oc_latch_fault"  # ... the over-current latch fails its switch-on test (dead or stuck)

_BUCKETS = const(100)   # CHARGE_WINDOW_MS / CHARGE_BUCKET_MS


def max_peak_ua(area_cm2, duty_permille):
    """Largest peak current whose rms density stays within the limit (floats: not in the tick)."""
    if duty_permille <= 0:
        return limits.ABS_CEILING_UA
    rms_max_ua = limits.DENSITY_MAX_UA_PER_CM2 * area_cm2
    return int(rms_max_ua / (duty_permille / 1000) ** 0.5)


class Monitor:
    def __init__(self, board, limit_ua, over_temp_raw, sense_floor_ua=0):
        # over_current: measured |I| > limit x 1.10 + 10 uA on 2 consecutive samples
        self.over_current_ua = limit_ua * limits.OVER_CURRENT_PERMILLE // 1000 + limits.OVER_CURRENT_MARGIN_UA
        self.open_ohm = board["open_ohm"]
        self.compliance_mv = board["compliance_v"] * limits.COMPLIANCE_PERMILLE  # 90 % of the rail, in mV
        self.over_temp_raw = over_temp_raw      # thermistor code at OVER_TEMP_C (falls with heat)
        # ... and at TEMP_SENSOR_OPEN_C: an open thermistor reads the pull-up's full scale
        therm = board.get("thermistor")          # (every board file has one; unit tests' dicts may not)
        self.temp_open_raw = thermal.raw_for_c(therm, limits.TEMP_SENSOR_OPEN_C) if therm else 0x10000
        self._therm_open = 0
        # charge balance is judged only on currents the sense reads without bias: above
        # SENSE_IDLE_UA, and above twice the ADC's floor (ESP32: a current near its floor
        # reads 0 or the floor by noise, and the two polarities' means differ by chance)
        # ... and from the board's sense.charge_judge_ua, where its sense reads a pair's two
        # phases less finely than 2 % of them below that (docs/hardware.md)
        self.judge_ua = max(limits.SENSE_IDLE_UA, 2 * sense_floor_ua,
                            board.get("sense", {}).get("charge_judge_ua", 0))
        # sense_fault's low reading means something only where the sense reads at all: from
        # SENSE_FAULT_MIN_UA, and from twice the ADC's floor (ESP32: ~47 uA reads 0, ~59 uA on a
        # unit whose sense reads 10 uA low; a ramp crossing them was a false sense_fault)
        self.sense_min_ua = max(limits.SENSE_FAULT_MIN_UA, 2 * sense_floor_ua)
        self._pos = array("i", [0] * _BUCKETS)   # per bucket: sum of the POL_A phases' means (1/16 uA)
        self._posk = array("i", [0] * _BUCKETS)  # ... how many POL_A phases
        self._neg = array("i", [0] * _BUCKETS)   # ... the same for POL_B
        self._negk = array("i", [0] * _BUCKETS)
        self._hot = 0
        self.begin(limits.ABS_CEILING_UA)

    def begin(self, density_peak_ua):
        """A new session: forget everything about the last one."""
        self.density_ua = density_peak_ua * 11 // 10 + limits.OVER_CURRENT_MARGIN_UA
        for i in range(_BUCKETS):
            self._pos[i] = self._posk[i] = self._neg[i] = self._negk[i] = 0
        self._b = 0
        self._b_ms = 0
        self._wpos = self._wposk = self._wneg = self._wnegk = 0
        self.z_ohm = 0          # smoothed electrode impedance
        self.z_base_ohm = 0     # the session's baseline (0 = not yet captured)
        self.scale_pct = 100    # scale()'s factor, kept by track(): the output slice reads it

    # ---- environment: checked on every tick, session or not ----
    @micropython.native
    def environment(self, temp_raw, vbus):
        if vbus:
            return CHARGING
        if temp_raw >= self.temp_open_raw:
            self._therm_open += 1
            if self._therm_open >= limits.OVER_TEMP_SAMPLES:
                return TEMP_SENSOR_FAULT
        else:
            self._therm_open = 0
        if temp_raw <= self.over_temp_raw:
            self._hot += 1
            if self._hot >= limits.OVER_TEMP_SAMPLES:
                return OVER_TEMP
        else:
            self._hot = 0
        return None

    # ---- output: the bookkeeping tick, on what the fast path summed (fastpath.py) ----
    @micropython.native
    def track(self, n_on, zua, mv):
        """Impedance from the settled on-samples since the last call (their sums)."""
        if n_on and zua >= limits.PROGRAM_MIN_UA * n_on:
            z = mv * 1000 // zua
            self.z_ohm = z = z if self.z_ohm == 0 else self.z_ohm + ((z - self.z_ohm) >> 3)
            zb2 = self.z_base_ohm * limits.IMPEDANCE_ADAPT_RATIO
            self.scale_pct = 100 if zb2 == 0 or z <= zb2 else zb2 * 100 // z

    @micropython.native
    def charge(self, now_ms, pos_m, pos_k, neg_m, neg_k):
        """charge_imbalance: per-polarity mean current over a sliding 10 s window.

        Both phases of a pair last the same time by construction (pulse.py),
        so net / moved charge = (I+ - I-) / (I+ + I-). The fast path gives each
        phase's mean current (polarity read from the bridge pins), summed per
        polarity with their count since the last call: a phase counts once,
        however many samples fell in it (counting samples would weigh the
        polarities at different amplitudes during a ramp -- a false imbalance),
        and a pair's two phases have the same amplitude (it changes only
        between pairs).
        """
        b = self._b
        # phases too small to judge stay out of the window, numerator and denominator: the soft
        # start's pair had held a 0.19 Hz window's mean under judge_ua for 5 s after a 20 %
        # asymmetry began (only the window's mean was held against it)
        if pos_k and neg_k and pos_m // pos_k + neg_m // neg_k >= (2 * self.judge_ua) << 4:
            self._pos[b] += pos_m
            self._posk[b] += pos_k
            self._neg[b] += neg_m
            self._negk[b] += neg_k
        if ((now_ms - self._b_ms) & 0x3FFFFFFF) < limits.CHARGE_BUCKET_MS:
            return None
        self._b_ms = now_ms
        self._wpos += self._pos[b]
        self._wposk += self._posk[b]
        self._wneg += self._neg[b]
        self._wnegk += self._negk[b]
        b = (b + 1) % _BUCKETS                    # the oldest bucket leaves the window
        self._wpos -= self._pos[b]
        self._wposk -= self._posk[b]
        self._wneg -= self._neg[b]
        self._wnegk -= self._negk[b]
        self._pos[b] = self._posk[b] = self._neg[b] = self._negk[b] = 0
        self._b = b
        if self._wposk == 0 or self._wnegk == 0:   # a whole pair is enough to judge: at 0.5 Hz a
            return None                            # 10 s window holds 5 (waiting for 10: never)
        mp = self._wpos // self._wposk            # means in 1/16 uA: no truncation bias
        mn = self._wneg // self._wnegk
        if mp + mn < (2 * self.judge_ua) << 4:    # too little current to judge
            return None
        if abs(mp - mn) * 1000 > limits.CHARGE_IMBALANCE_PERMILLE * (mp + mn):
            return CHARGE_IMBALANCE
        return None

    # ---- impedance-adaptive output ----
    def capture_baseline(self):
        self.z_base_ohm = self.z_ohm
        self.scale_pct = 100        # Z is its own baseline: not above 2 x it

    @micropython.native
    def scale(self, target_ua):
        """Above 2 x the baseline impedance, current falls as baseline x 2 / Z (the
        supervisor caps the session's target there: Session.limit_to). The factor (scale_pct,
        100: not engaged) changes only with the impedance, so it is kept where that is tracked."""
        pct = self.scale_pct
        return target_ua if pct >= 100 else target_ua * pct // 100

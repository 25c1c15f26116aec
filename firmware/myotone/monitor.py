# Trip conditions evaluated on every supervisor sample (SAFETY.md "Trips"),
# and the impedance-adaptive scaling of the output.
#
# Each rule is decided here and only here; the supervisor acts on the reason
# code returned. Pure integer logic: sample() and environment() allocate
# nothing (they return interned string constants or None). Thresholds that
# need floats are computed once, in the constructor or in begin().
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
        self.judge_ua = max(limits.SENSE_IDLE_UA, 2 * sense_floor_ua)
        self._pos = array("i", [0] * _BUCKETS)   # per bucket: sum over pairs of the POL_A mean (1/64 uA)
        self._neg = array("i", [0] * _BUCKETS)   # ... of the POL_B mean
        self._pairs = array("i", [0] * _BUCKETS) # ... how many pairs
        self._hot = 0
        self.begin(limits.ABS_CEILING_UA)

    def begin(self, density_peak_ua):
        """A new session: forget everything about the last one."""
        self.density_ua = density_peak_ua * 11 // 10 + limits.OVER_CURRENT_MARGIN_UA
        self.reset_counts()
        for i in range(_BUCKETS):
            self._pos[i] = self._neg[i] = self._pairs[i] = 0
        self._b = 0
        self._b_ms = 0
        self._pair = -1
        self._pp = self._npp = self._pn = self._npn = 0
        self._wpos = self._wneg = self._wpairs = 0
        self.z_ohm = 0          # smoothed electrode impedance
        self.z_base_ohm = 0     # the session's baseline (0 = not yet captured)

    def reset_counts(self):
        """Forget the consecutive-sample counters (not the charge window)."""
        self._over = 0
        self._dense = 0
        self._open = 0
        self._idle_i = 0
        self._sense_bad_ms = -1

    # ---- environment: checked on every tick, session or not ----
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

    # ---- output: checked on every tick of a session ----
    def sample(self, now_ms, bridge, pair, meas_ua, meas_mv, cmd_ua):
        """bridge: 0 off, 1 POL_A, 2 POL_B, -1 unknown (the sample fell on an edge).

        pair: the pulse back-end's count of biphasic pairs started (it changes
        when a new pair begins), so charge is accounted in whole pairs.
        """
        # over_current and high_density: any sample, bridge on or not
        if meas_ua > self.over_current_ua:
            self._over += 1
            if self._over >= limits.OVER_CURRENT_SAMPLES:
                return OVER_CURRENT
        else:
            self._over = 0
        if meas_ua > self.density_ua:
            self._dense += 1
            if self._dense >= limits.OVER_CURRENT_SAMPLES:
                return HIGH_DENSITY
        else:
            self._dense = 0
        if bridge < 0:            # at an edge: only magnitude checks apply
            return None
        if not bridge:
            # no current path: what the sense reads must be ~0
            if meas_ua > limits.SENSE_IDLE_UA:
                self._idle_i += 1
                if self._idle_i >= 10:
                    return SENSE_FAULT
            else:
                self._idle_i = 0
            return self._charge(now_ms, 0, pair, 0)
        self._idle_i = 0
        if cmd_ua < limits.PROGRAM_MIN_UA:
            return self._charge(now_ms, 0, pair, 0)
        # contact_lost: open electrode, or compliance reached below the setpoint
        open_circuit = meas_mv >= self.compliance_mv and meas_ua * 10 < cmd_ua * 9
        if meas_ua > 0:
            z = meas_mv * 1000 // meas_ua
            if z > self.open_ohm:
                open_circuit = True
            if meas_ua >= limits.PROGRAM_MIN_UA:
                self.z_ohm = z if self.z_ohm == 0 else self.z_ohm + ((z - self.z_ohm) >> 3)
        if open_circuit:
            self._open += 1
            if self._open >= limits.CONTACT_SAMPLES:
                return CONTACT_LOST
        else:
            self._open = 0
        # sense_fault: commanded >= 50 uA, measured < 20 % of it, contact good
        if (cmd_ua >= limits.SENSE_FAULT_MIN_UA and meas_ua * 100 < cmd_ua * limits.SENSE_FAULT_PERCENT
                and not open_circuit):
            if self._sense_bad_ms < 0:
                self._sense_bad_ms = now_ms
            elif ((now_ms - self._sense_bad_ms) & 0x3FFFFFFF) >= limits.SENSE_FAULT_MS:
                return SENSE_FAULT
        else:
            self._sense_bad_ms = -1
        return self._charge(now_ms, bridge, pair, meas_ua)

    def _charge(self, now_ms, bridge, pair, meas_ua):
        """charge_imbalance: per-polarity mean current over a sliding 10 s window.

        Both phases of a pair last the same time by construction (pulse.py),
        so net / moved charge = (I+ - I-) / (I+ + I-). Each pair gives its two
        means (a pair counts once, however many samples fell in each phase),
        and the window averages pairs: during a ramp the phases of a pair
        may get 1 and 2 samples, and counting samples would weigh the
        polarities at different amplitudes -- a false imbalance.
        """
        if pair != self._pair:                    # the last pair is complete: commit it
            self._pair = pair
            if self._npp and self._npn:           # both phases sampled
                b = self._b
                self._pos[b] += (self._pp << 6) // self._npp
                self._neg[b] += (self._pn << 6) // self._npn
                self._pairs[b] += 1
            self._pp = self._npp = self._pn = self._npn = 0
        if bridge == 1:
            self._pp += meas_ua
            self._npp += 1
        elif bridge == 2:
            self._pn += meas_ua
            self._npn += 1
        b = self._b
        if ((now_ms - self._b_ms) & 0x3FFFFFFF) < limits.CHARGE_BUCKET_MS:
            return None
        self._b_ms = now_ms
        self._wpos += self._pos[b]
        self._wneg += self._neg[b]
        self._wpairs += self._pairs[b]
        b = (b + 1) % _BUCKETS                    # the oldest bucket leaves the window
        self._wpos -= self._pos[b]
        self._wneg -= self._neg[b]
        self._wpairs -= self._pairs[b]
        self._pos[b] = self._neg[b] = self._pairs[b] = 0
        self._b = b
        if self._wpairs < 10:
            return None
        mp = self._wpos // self._wpairs           # means in 1/64 uA: no truncation bias
        mn = self._wneg // self._wpairs
        if mp + mn < (2 * self.judge_ua) << 6:    # too little current to judge
            return None
        if abs(mp - mn) * 1000 > limits.CHARGE_IMBALANCE_PERMILLE * (mp + mn):
            return CHARGE_IMBALANCE
        return None

    # ---- impedance-adaptive output ----
    def capture_baseline(self):
        self.z_base_ohm = self.z_ohm

    def scale(self, target_ua):
        """Above 2 x the baseline impedance, current falls as baseline x 2 / Z."""
        zb2 = self.z_base_ohm * limits.IMPEDANCE_ADAPT_RATIO
        if zb2 == 0 or self.z_ohm <= zb2:
            return target_ua
        return target_ua * (zb2 * 100 // self.z_ohm) // 100

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
# Monitor._bk: per bucket k, [4k] the POL_A phases' means summed (1/16 uA), [4k + 1] how many
# POL_A phases, [4k + 2], [4k + 3] the same for POL_B
# Monitor._w: the numbers track() and charge() keep, read by viper (one lookup a call, not ~20)
_W_B = const(0)          # the bucket being filled
_W_B_MS = const(1)       # when it began (ticks_ms)
_W_POS = const(2)        # the window's sums: POL_A's means (1/16 uA) and count, POL_B's
_W_POSK = const(3)
_W_NEG = const(4)
_W_NEGK = const(5)
_W_JUDGE16 = const(6)    # (2 x judge_ua) << 4: the least pair sum 2 % is taken of, in 1/16 uA
_W_BUCKET_MS = const(7)  # limits.CHARGE_BUCKET_MS
_W_PERMILLE = const(8)   # limits.CHARGE_IMBALANCE_PERMILLE
_W_MIN_UA = const(9)     # limits.PROGRAM_MIN_UA: the least mean current an impedance is read at
_W_ADAPT = const(10)     # limits.IMPEDANCE_ADAPT_RATIO
_W_LINEAR16 = const(11)  # (4 x sense_floor_ua) << 4: the least pair sum the sense reads linearly
_W_SIZE = const(12)


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
        # charge balance: a window's net is judged against 2 % of the charge moved, or of what
        # two phases at judge_ua would move where less flowed: the sense's resolution. Below
        # judge_ua it reads a pair's two phases less finely than 2 % of them (whole-uA readings:
        # CHARGE_JUDGE_MIN_UA; ESP32: whole-mV readings at 1 kHz, sense.charge_judge_ua = 94),
        # so there the least net it judges is 2 % of 2 x judge_ua in mean current (docs/safety.md)
        self.judge_ua = max(limits.CHARGE_JUDGE_MIN_UA, 2 * sense_floor_ua,
                            board.get("sense", {}).get("charge_judge_ua", 0))
        # sense_fault's low reading means something only where the sense reads at all: from
        # SENSE_FAULT_MIN_UA, and from twice the ADC's floor (ESP32: ~47 uA reads 0, ~59 uA on a
        # unit whose sense reads 10 uA low; a ramp crossing them was a false sense_fault)
        self.sense_min_ua = max(limits.SENSE_FAULT_MIN_UA, 2 * sense_floor_ua)
        self._bk = array("i", [0] * (4 * _BUCKETS))
        w = self._w = array("i", [0] * _W_SIZE)
        w[_W_JUDGE16] = (2 * self.judge_ua) << 4
        w[_W_BUCKET_MS] = limits.CHARGE_BUCKET_MS
        w[_W_PERMILLE] = limits.CHARGE_IMBALANCE_PERMILLE
        w[_W_MIN_UA] = limits.PROGRAM_MIN_UA
        w[_W_ADAPT] = limits.IMPEDANCE_ADAPT_RATIO
        # charge balance counts only pairs the sense reads linearly: each phase above twice the
        # ADC's floor, for a sense without a bias (near its floor it reads 0 or the floor by noise)
        w[_W_LINEAR16] = (4 * sense_floor_ua) << 4
        self._hot = 0
        self.begin(limits.ABS_CEILING_UA)

    def begin(self, density_peak_ua):
        """A new session: forget everything about the last one."""
        self.density_ua = density_peak_ua * 11 // 10 + limits.OVER_CURRENT_MARGIN_UA
        bk = self._bk
        for i in range(4 * _BUCKETS):
            bk[i] = 0
        w = self._w
        for i in range(_W_B, _W_NEGK + 1):
            w[i] = 0
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
    @micropython.viper
    def track(self, n_on: int, zua: int, mv: int):
        """Impedance from the settled on-samples since the last call (their sums)."""
        w = ptr32(self._w)
        if n_on and zua >= w[_W_MIN_UA] * n_on:
            z = mv // zua * 1000 + mv % zua * 1000 // zua     # mv x 1000 // zua, within 32 bits
            last = int(self.z_ohm)
            if last:
                z = last + ((z - last) >> 3)
            self.z_ohm = z
            zb2 = int(self.z_base_ohm) * w[_W_ADAPT]
            self.scale_pct = 100 if zb2 == 0 or z <= zb2 else zb2 * 100 // z

    @micropython.viper
    def charge(self, now_ms: int, pos_m: int, pos_k: int, neg_m: int, neg_k: int):
        """charge_imbalance: per-polarity mean current over a sliding 10 s window.

        Both phases of a pair last the same time by construction (pulse.py),
        so net / moved charge = (I+ - I-) / (I+ + I-). The fast path gives each
        phase's mean current (polarity read from the bridge pins), summed per
        polarity with their count since the last call: a phase counts once,
        however many samples fell in it (counting samples would weigh the
        polarities at different amplitudes during a ramp -- a false imbalance),
        and a pair's two phases have the same amplitude (it changes only
        between pairs). (viper over _w and _bk: every sum stays under 2**31 -- 10 s of
        1000 phases a second at 1100 uA is 1.8e8 in 1/16 uA.)
        """
        w = ptr32(self._w)
        bk = ptr32(self._bk)
        i = w[_W_B] * 4
        # every pair the sense reads linearly is in the window, numerator and denominator (the
        # soft start's pairs included: a 20 % asymmetry under judge_ua at 0.2-0.8 Hz had run to
        # the session's end, its phases kept out of the window)
        if pos_k and neg_k and (w[_W_LINEAR16] == 0 or pos_m // pos_k + neg_m // neg_k >= w[_W_LINEAR16]):
            bk[i] = bk[i] + pos_m
            bk[i + 1] = bk[i + 1] + pos_k
            bk[i + 2] = bk[i + 2] + neg_m
            bk[i + 3] = bk[i + 3] + neg_k
        if ((now_ms - w[_W_B_MS]) & 0x3FFFFFFF) < w[_W_BUCKET_MS]:
            return None
        w[_W_B_MS] = now_ms
        w[_W_POS] = w[_W_POS] + bk[i]
        w[_W_POSK] = w[_W_POSK] + bk[i + 1]
        w[_W_NEG] = w[_W_NEG] + bk[i + 2]
        w[_W_NEGK] = w[_W_NEGK] + bk[i + 3]
        b = (w[_W_B] + 1) % _BUCKETS              # the oldest bucket leaves the window
        i = b * 4
        w[_W_POS] = w[_W_POS] - bk[i]
        w[_W_POSK] = w[_W_POSK] - bk[i + 1]
        w[_W_NEG] = w[_W_NEG] - bk[i + 2]
        w[_W_NEGK] = w[_W_NEGK] - bk[i + 3]
        bk[i] = 0
        bk[i + 1] = 0
        bk[i + 2] = 0
        bk[i + 3] = 0
        w[_W_B] = b
        if w[_W_POSK] == 0 or w[_W_NEGK] == 0:    # a whole pair is enough to judge: at 0.5 Hz a
            return None                            # 10 s window holds 5 (waiting for 10: never)
        mp = w[_W_POS] // w[_W_POSK]              # means in 1/16 uA: no truncation bias
        mn = w[_W_NEG] // w[_W_NEGK]
        moved = mp + mn
        if moved < w[_W_JUDGE16]:                 # under the sense's resolution: 2 % of 2 x judge_ua
            moved = w[_W_JUDGE16]
        d = mp - mn
        if d < 0:
            d = -d
        if d * 1000 > w[_W_PERMILLE] * moved:
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

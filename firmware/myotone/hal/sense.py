# Current and electrode-voltage sense through the ADC. All arithmetic is in
# small integers (fixed point), so a supervisor tick reading it never
# allocates: raw (0..65535) x scale stays below 2**30.
#
# `calibrated=True` (ESP32): read the port's calibrated microvolts
# (`read_uv()`) instead of assuming a linear 0..adc_vref_mv ADC -- the
# ESP32's ADC has an offset (its code 0 means "below ~140 mV") and a bent
# top. The floor, what read_uv() returns with nothing on the pin, is read
# once at construction (output off) and reads as 0. With `biased` (the
# board's sense.bias_mv: U3B lifts the current channel by ~200 mV, above
# the dead zone) that reading is the zero, subtracted from every reading,
# so the sense reads from 0 uA instead of from ~47 uA.
#
# The current channel also takes this unit's calibration (calib.py, set by
# `calibrate()`): true uA = gain x reading + offset, the gain folded into
# the scale (or into R_sense on the microvolt path), never below 0 -- but
# only where it RAISES a reading (gain >= 1, offset >= 0). A calibration is
# a claim the firmware cannot check: if it wrongly said the sense reads high
# (gain < 1, offset < 0), taking it would make every trip level sit higher
# in true current (0.85 and -10 uA let a stuck DAC run 600 uA untripped).
# So no calibration makes a current read lower than the design would; one
# that says the sense reads high is left out (a reading that is too high
# trips early: safe), one that says it reads low is applied.
import micropython
from array import array
from micropython import const

# the transfer, slots of Sense._k (read_ua / read_mv are viper: a slot is one load)
_K_RAW_I = const(0)      # the last conversion of each channel, as the port gave it (read_u16 or
_K_RAW_V = const(1)      # read_uv): the fast path's frozen-ADC rule (Sense.conversions)
_K_CAL = const(2)        # 1: the microvolt path (ESP32)
_K_FLOOR_I = const(3)    # read_uv() with nothing on the pin, per channel
_K_FLOOR_V = const(4)
_K_R16 = const(5)        # R_sense x 16 / gain (1/16 ohm)
_K_I_SCALE = const(6)    # linear path: full scale << 14 / 65535
_K_I_OFF = const(7)      # this unit's offset (uA, >= 0)
_K_V_SCALE = const(8)
_K_DIVIDER = const(9)
_K_BIASED = const(10)    # 1: the current channel has a bias: _K_FLOOR_I is its zero
_K_SLOTS = const(11)
_ZERO_READS = const(16)  # readings averaged for the bias's zero (at construction, output off)


def _scale(full_scale, shift):
    scale = (full_scale << shift) // 65535
    if 65535 * scale >= 1 << 30:
        raise ValueError("sense scale overflows small ints")
    return scale


class Sense:
    def __init__(self, adc_current, adc_voltage, r_sense_ohm, divider, adc_vref_mv, calibrated=False,
                 biased=False):
        # the conversions read_ua / read_mv take, bound once (a method lookup on every sample else)
        self._conv_i = adc_current.read_uv if calibrated else adc_current.read_u16
        self._conv_v = adc_voltage.read_uv if calibrated else adc_voltage.read_u16
        self._r_sense = r_sense_ohm
        k = self._k = array("i", [0] * _K_SLOTS)
        self.conversions = k        # slots 0, 1: the last raw conversion of current and voltage
        k[_K_CAL] = 1 if calibrated else 0
        k[_K_DIVIDER] = divider
        # current: V_sense / R_sense; full scale in uA
        self._i_fs_ua = adc_vref_mv * 1000 // r_sense_ohm
        if calibrated:
            if biased:
                k[_K_BIASED] = 1
                k[_K_FLOOR_I] = sum(adc_current.read_uv() for _ in range(_ZERO_READS)) // _ZERO_READS
            else:
                k[_K_FLOOR_I] = adc_current.read_uv()
            k[_K_FLOOR_V] = adc_voltage.read_uv()
        self.calibrate(1.0, 0)
        # electrode voltage: ADC volts x divider; full scale in mV
        k[_K_V_SCALE] = _scale(adc_vref_mv * divider, 14)

    def calibrate(self, gain, offset_ua):
        """This unit's sense: true uA = gain x reading + offset (floats here, never in the tick),
        each taken only where it raises the reading (see the top of this file)."""
        if gain < 1:
            gain = 1.0
        if offset_ua < 0:
            offset_ua = 0
        k = self._k
        k[_K_I_SCALE] = _scale(int(self._i_fs_ua * gain + 0.5), 14)
        # microvolt path: uA = uV x 16 / (R_sense x 16 / gain), in 1/16 ohm (uV x 16 < 2**30)
        r16 = k[_K_R16] = max(1, int(self._r_sense * 16 / gain + 0.5))
        k[_K_I_OFF] = int(offset_ua + 0.5)
        # the smallest current read as more than 0 (0 on a linear ADC, or with a bias)
        self.floor_ua = (k[_K_FLOOR_I] * 16 + (r16 >> 1)) // r16 if k[_K_CAL] and not k[_K_BIASED] else 0

    @micropython.viper
    def read_ua(self) -> int:
        k = ptr32(self._k)
        if k[_K_CAL]:
            uv = int(self._conv_i())
            k[_K_RAW_I] = uv
            ua = 0
            if uv > k[_K_FLOOR_I]:              # the floor: a dead zone, or (biased) the zero
                uv -= k[_K_FLOOR_I] * k[_K_BIASED]
                ua = (uv * 16 + (k[_K_R16] >> 1)) // k[_K_R16]
        else:
            raw = int(self._conv_i())
            k[_K_RAW_I] = raw
            ua = (raw * k[_K_I_SCALE] + 8192) >> 14
        ua += k[_K_I_OFF]
        return ua if ua > 0 else 0

    @micropython.viper
    def read_mv(self) -> int:
        k = ptr32(self._k)
        if k[_K_CAL]:
            uv = int(self._conv_v())
            k[_K_RAW_V] = uv
            return 0 if uv <= k[_K_FLOOR_V] else uv * k[_K_DIVIDER] // 1000
        raw = int(self._conv_v())
        k[_K_RAW_V] = raw
        return (raw * k[_K_V_SCALE] + 8192) >> 14

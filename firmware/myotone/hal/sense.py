# Current and electrode-voltage sense through the ADC. All arithmetic is in
# small integers (fixed point), so a supervisor tick reading it never
# allocates: raw (0..65535) x scale stays below 2**30. The current channel
# takes the unit calibration (calib.py): gain folded into the scale, offset
# added, never below 0.
def _scale(full_scale, shift):
    scale = (full_scale << shift) // 65535
    if 65535 * scale >= 1 << 30:
        raise ValueError("sense scale overflows small ints")
    return scale


class Sense:
    def __init__(self, adc_current, adc_voltage, r_sense_ohm, divider, adc_vref_mv):
        self._adc_i = adc_current
        self._adc_v = adc_voltage
        # current: V_sense / R_sense; full scale in uA
        self._i_fs_ua = adc_vref_mv * 1000 // r_sense_ohm
        self.calibrate(1.0, 0)
        # electrode voltage: ADC volts x divider; full scale in mV
        self._v_scale = _scale(adc_vref_mv * divider, 14)

    def calibrate(self, gain, offset_ua):
        """true uA = gain x nominal uA + offset (floats here, never in the tick)."""
        self._i_scale = _scale(int(self._i_fs_ua * gain + 0.5), 14)
        self._i_off = int(offset_ua + 0.5) if offset_ua >= 0 else -int(-offset_ua + 0.5)

    def read_ua(self):
        ua = ((self._adc_i.read_u16() * self._i_scale + 8192) >> 14) + self._i_off
        return ua if ua > 0 else 0

    def read_mv(self):
        return (self._adc_v.read_u16() * self._v_scale + 8192) >> 14

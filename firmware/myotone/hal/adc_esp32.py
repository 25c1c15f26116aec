# ESP32 ADC channels, built from their pins. The port starts every channel at
# 0 dB (about 1 V full scale): the sense circuits need 11 dB (to ~3.1 V). The
# raw code has an offset (0 below ~140 mV) and a bent top, so readings go
# through the port's calibration, read_uv(). Only the ESP32 has these, so this
# file is type-checked for the esp32 port only (tools/firmware_ports.json).
import machine


def make(pin):
    return machine.ADC(pin, atten=machine.ADC.ATTN_11DB)


_TOP_UV = 3050000     # 11 dB tops out at ~3.1-3.2 V, chip to chip


class RatiometricCode:
    """read_u16() as a ratiometric 3.3 V ADC would give it (thermal.py's scale),
    from calibrated microvolts; small ints only (uV x 20 < 2**30).

    A reading at the top of the 11 dB range is full scale: the pin is above what
    the ADC measures. An open thermistor (the pull-up alone, 3.3 V) read ~3.13 V,
    i.e. -29 C, and temp_sensor_fault (below -30 C) never tripped on the ESP32;
    3.05 V is -21 C on the reference divider, colder than any skin."""

    def __init__(self, adc):
        self._adc = adc

    def read_u16(self):
        uv = self._adc.read_uv()
        if uv >= _TOP_UV:
            return 65535
        return uv * 20 // 1007      # 65535 / 3300000 uV

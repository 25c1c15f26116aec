# ESP32 ADC channels, built from their pins. The port starts every channel at
# 0 dB (about 1 V full scale): the sense circuits need 11 dB (to ~3.1 V). The
# raw code has an offset (0 below ~140 mV) and a bent top, so readings go
# through the port's calibration, read_uv(). Only the ESP32 has these, so this
# file is type-checked for the esp32 port only (tools/firmware_ports.json).
import machine


def make(pin):
    return machine.ADC(pin, atten=machine.ADC.ATTN_11DB)


class RatiometricCode:
    """read_u16() as a ratiometric 3.3 V ADC would give it (thermal.py's scale),
    from calibrated microvolts; small ints only (uV x 20 < 2**30)."""

    def __init__(self, adc):
        self._adc = adc

    def read_u16(self):
        code = self._adc.read_uv() * 20 // 1007      # 65535 / 3300000 uV
        return code if code < 65535 else 65535

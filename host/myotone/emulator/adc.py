"""ADC transfer functions of the ports: volts in, raw codes out, as the chips convert.

* RP2040: 12-bit SAR over ADC_VREF (3.3 V on a Pico; the board file's
  `sense.adc_vref_mv`); `read_u16()` is ``raw << 4 | raw >> 8``
  (ports/rp2/machine_adc.c).
* ESP32 (ADC1): 12 bits by default, attenuation 0 dB unless the code asks
  for another (ports/esp32/machine_adc.c). The transfer of a typical chip
  is the inverse of ESP-IDF's own calibration with the default 1100 mV
  reference (esp_adc_cal_esp32.c: per-attenuation gain and offset, and the
  look-up table of the non-linear top of 11 dB), so a pin below the offset
  (142 mV at 11 dB) reads 0 and 11 dB saturates near 3.13 V. `read_uv()`
  returns what the port computes from the raw code through that same
  calibration. `read_u16()` scales as the port does.

Noise is Gaussian, in LSB, from the plant's seeded generator.
"""
from __future__ import annotations

import bisect

ESP32_VREF_MV = 1100                      # esp_adc_cal default Vref (MicroPython passes 1100)
_ATTEN_SCALE = (57431, 76236, 105481, 196602)   # adc1_vref_atten_scale (x 65536)
_ATTEN_OFFSET_MV = (75, 78, 107, 142)           # adc1_vref_atten_offset
_LUT_LOW = (2240, 2297, 2352, 2405, 2457, 2512, 2564, 2616, 2664, 2709,
            2754, 2795, 2832, 2868, 2903, 2937, 2969, 3000, 3030, 3060)
_LUT_HIGH = (2667, 2706, 2745, 2780, 2813, 2844, 2873, 2901, 2928, 2956,
             2982, 3006, 3032, 3059, 3084, 3110, 3135, 3160, 3184, 3209)
_LUT_THRESH, _LUT_STEP = 2880, 64


def u16_from_raw(raw: int, bits: int) -> int:
    """MicroPython's read_u16() scaling of a `bits`-bit raw code (rp2 and esp32 alike)."""
    return (raw << (16 - bits)) | (raw >> (2 * bits - 16))


def esp32_raw_to_mv(raw12: int, atten: int) -> int:
    """esp_adc_cal_raw_to_voltage() for ADC1 with the default Vref (integer, as in C)."""
    coeff_a = ESP32_VREF_MV * _ATTEN_SCALE[atten] // 4096
    linear = (coeff_a * raw12 + 32768) // 65536 + _ATTEN_OFFSET_MV[atten]
    if atten != 3 or raw12 < _LUT_THRESH:
        return linear
    i = min((raw12 - _LUT_THRESH) // _LUT_STEP, len(_LUT_LOW) - 2)
    y2 = (i + 1) * _LUT_STEP + _LUT_THRESH - raw12
    y1 = raw12 - (i * _LUT_STEP + _LUT_THRESH)
    q11, q12, q21, q22 = _LUT_LOW[i], _LUT_LOW[i + 1], _LUT_HIGH[i], _LUT_HIGH[i + 1]
    x2, x1 = 1200 - ESP32_VREF_MV, ESP32_VREF_MV - 1000      # bilinear in (vref, raw)
    lut = (q11 * x2 * y2 + q21 * x1 * y2 + q12 * x2 * y1 + q22 * x1 * y1 + 200 * _LUT_STEP // 2) // (200 * _LUT_STEP)
    if raw12 <= _LUT_THRESH + _LUT_STEP:          # blend from the linear part into the table
        d = raw12 - _LUT_THRESH
        return (linear * _LUT_STEP + lut * d - linear * d + _LUT_STEP // 2) // _LUT_STEP
    return lut


class Esp32Transfer:
    """Volts -> fractional 12-bit code for one attenuation, by inverting the calibration."""

    _STEP_V = 1e-4            # the fast look-up's step: 0.1 mV (an LSB is 0.24..0.8 mV)
    _TABLES: dict = {}        # atten -> (codes' volts, fast inverse): constants, built once

    def __init__(self, atten: int):
        self.atten = atten
        self._lsb_v = ESP32_VREF_MV * _ATTEN_SCALE[atten] / 4096 / 65536 / 1000
        if atten not in self._TABLES:
            v = [esp32_raw_to_mv(r, atten) / 1000.0 for r in range(4096)]
            self._v = v
            self._TABLES[atten] = (v, self._invert(v))
        self._v, self._fast = self._TABLES[atten]

    def _invert(self, v):
        """raw_f() at every 0.1 mV step, walking the codes once (steps of equal mV shared out)."""
        first = [0] * 4096                 # first code of each run of equal mV
        for r in range(1, 4096):
            first[r] = first[r - 1] if v[r] == v[r - 1] else r
        fast, k, n = [], 0, int(3.4 / self._STEP_V)
        for j in range(n):
            volts = j * self._STEP_V
            if volts < v[0]:                  # below the offset: further below, never a 1
                fast.append((volts - v[0]) / self._lsb_v - 0.5)
                continue
            if volts >= v[4095]:
                fast.append(4095.0)
                continue
            while v[k + 1] <= volts:
                k += 1
            lo = first[k]
            fast.append(lo + (k - lo + 1) * (volts - v[k]) / (v[k + 1] - v[k]) - 0.5)
        return fast

    def code_f(self, volts: float) -> float:
        """raw_f() from the 0.1 mV table (what the plant uses on every conversion)."""
        k = int(volts / self._STEP_V)
        if k < 0:
            return (volts - self._v[0]) / self._lsb_v - 0.5
        return self._fast[k] if k < len(self._fast) else 4095.0

    def raw_f(self, volts: float) -> float:
        """The code `volts` converts to before rounding (below 0 / above 4095 saturate)."""
        v = self._v
        if volts < v[0]:
            return (volts - v[0]) / self._lsb_v - 0.5
        if volts >= v[4095]:
            return 4095.0
        k = bisect.bisect_right(v, volts) - 1      # v[k] <= volts < v[k + 1]
        j = bisect.bisect_right(v, v[k]) - 1       # the last code of a step of equal mV
        lo = bisect.bisect_left(v, v[k])           # the first code of that step
        # integer-mV steps: spread the codes of one step evenly over its interval
        return lo + (j - lo + 1) * (volts - v[k]) / (v[j + 1] - v[k]) - 0.5


class AdcModel:
    """One port's ADC: `raw(volts, noise_lsb, atten, bits)` -> raw code at that width."""

    def __init__(self, port: str, vref_mv: int):
        self.port = port
        self.vref_v = vref_mv / 1000.0
        self.full = 4095
        self._esp32 = [None] * 4

    def raw(self, volts: float, noise_lsb: float, atten: int = 0, bits: int = 12) -> int:
        if self.port == "esp32":
            tr = self._esp32[atten] or self._set(atten)
            raw_f = tr.code_f(volts)
        else:
            raw_f = volts / self.vref_v * self.full
        raw = int(raw_f + noise_lsb + 0.5)
        raw = 0 if raw < 0 else (self.full if raw > self.full else raw)
        return raw >> (12 - bits)

    def _set(self, atten: int) -> Esp32Transfer:
        tr = self._esp32[atten] = Esp32Transfer(atten)
        return tr

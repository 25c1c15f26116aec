# Skin-side NTC thermistor: NTC from the ADC pin to ground, pull-up to the
# ADC reference. Conversions use floats and run at boot / in the main loop;
# the tick only compares raw ADC codes against thresholds computed here.
import math

_KELVIN = 273.15


def _ntc_ohm(t_c, r25_ohm, beta):
    return r25_ohm * math.exp(beta * (1 / (t_c + _KELVIN) - 1 / (25 + _KELVIN)))


def raw_for_c(therm, t_c):
    """read_u16() code at temperature t_c (it falls as the skin warms)."""
    r = _ntc_ohm(t_c, therm["r25_ohm"], therm["beta"])
    return int(65535 * r / (r + therm["r_pullup_ohm"]))


def c_for_raw(therm, raw):
    if raw <= 0:
        return 999.0
    if raw >= 65535:
        return -99.0
    r = therm["r_pullup_ohm"] * raw / (65535 - raw)
    inv = 1 / (25 + _KELVIN) + math.log(r / therm["r25_ohm"]) / therm["beta"]
    return 1 / inv - _KELVIN

# Board file: load boards/<name>.json (copied to /board.json on the device),
# check every field, and clamp the current limit to the firmware's absolute
# ceiling. A board file may lower the limit; nothing can raise it.
import json
from myotone.limits import LED_PWM_MIN_HZ, LED_IRRADIANCE_MAX_MW_CM2, ABS_CEILING_UA, WATCHDOG_MAX_MS

BOARD_PATH = "board.json"

_MCUS = ("rp2040", "esp32")
_DAC_KINDS = ("mcp4725", "esp32", "pwm")
_PULSE_BACKENDS = ("timer", "pio", "rmt")


class BoardError(Exception):
    pass


def load(path=BOARD_PATH):
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        raise BoardError("no board file at " + path)
    except ValueError:
        raise BoardError("board file is not valid JSON")
    return check(raw)


def _need(d, key, kind, where):
    if not isinstance(d, dict) or key not in d:
        raise BoardError("board: missing " + where + key)
    v = d[key]
    if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
        raise BoardError("board: " + where + key + " must be an integer")
    if kind is float and (not isinstance(v, (int, float)) or isinstance(v, bool)):
        raise BoardError("board: " + where + key + " must be a number")
    if kind is str and not isinstance(v, str):
        raise BoardError("board: " + where + key + " must be a string")
    if kind is dict and not isinstance(v, dict):
        raise BoardError("board: " + where + key + " must be an object")
    return v


def _positive(d, key, where):
    v = _need(d, key, int, where)
    if v <= 0:
        raise BoardError("board: " + where + key + " must be > 0")
    return v


def check(raw):
    """Return the board dict with limits clamped; raise BoardError if unusable."""
    if not isinstance(raw, dict):
        raise BoardError("board file must be a JSON object")
    _need(raw, "name", str, "")
    if _need(raw, "mcu", str, "") not in _MCUS:
        raise BoardError("board: mcu must be one of " + ", ".join(_MCUS))
    limit_ua = _positive(raw, "limit_ua", "")
    raw["limit_ua"] = min(limit_ua, ABS_CEILING_UA)
    _positive(raw, "hw_limit_ua", "")
    _positive(raw, "compliance_v", "")
    if _need(raw, "electrode_area_cm2", float, "") <= 0:
        raise BoardError("board: electrode_area_cm2 must be > 0")
    dac = _need(raw, "dac", dict, "")
    if _need(dac, "kind", str, "dac.") not in _DAC_KINDS:
        raise BoardError("board: dac.kind must be one of " + ", ".join(_DAC_KINDS))
    if dac["kind"] == "esp32" and raw["mcu"] != "esp32":
        raise BoardError("board: dac.kind esp32 (machine.DAC) exists on esp32 only")
    bits = _positive(dac, "bits", "dac.")
    if bits > 16:
        raise BoardError("board: dac.bits must be <= 16")
    _positive(dac, "vref_mv", "dac.")
    _positive(_need(raw, "v_to_i", dict, ""), "r_set_ohm", "v_to_i.")
    bridge = _need(raw, "bridge", dict, "")
    if _need(bridge, "pol_a", int, "bridge.") == _need(bridge, "pol_b", int, "bridge."):
        raise BoardError("board: bridge.pol_a and pol_b must differ")
    _need(raw, "hv_enable", int, "")
    sense = _need(raw, "sense", dict, "")
    for key in ("current_adc", "voltage_adc"):
        _need(sense, key, int, "sense.")
    for key in ("r_sense_ohm", "divider", "adc_vref_mv"):
        _positive(sense, key, "sense.")
    pulse = _need(raw, "pulse", dict, "")
    if _need(pulse, "backend", str, "pulse.") not in _PULSE_BACKENDS:
        raise BoardError("board: pulse.backend must be one of " + ", ".join(_PULSE_BACKENDS))
    if pulse["backend"] == "pio" and bridge["pol_b"] != bridge["pol_a"] + 1:
        raise BoardError("board: the pio back-end needs bridge.pol_b == pol_a + 1 (one OUT group)")
    if pulse["backend"] == "pio" and raw["mcu"] != "rp2040":
        raise BoardError("board: the pio back-end exists on rp2040 only")
    if pulse["backend"] == "rmt" and raw["mcu"] != "esp32":
        raise BoardError("board: the rmt back-end exists on esp32 only")
    if pulse["backend"] == "timer":
        _positive(pulse, "tick_us", "pulse.")
        if raw["pulse"].get("hard") and raw["mcu"] == "esp32":
            raise BoardError("board: esp32 timer callbacks are soft: pulse.hard must be false")
    sup = _need(raw, "supervisor", dict, "")
    _need(sup, "timer_id", int, "supervisor.")
    hz = _positive(sup, "hz", "supervisor.")
    if hz < 500 or hz > 2000:
        raise BoardError("board: supervisor.hz must be 500..2000")
    _positive(raw, "open_ohm", "")
    therm = _need(raw, "thermistor", dict, "")
    _need(therm, "adc", int, "thermistor.")
    for key in ("r_pullup_ohm", "r25_ohm", "beta"):
        _positive(therm, key, "thermistor.")
    _need(raw, "vbus_pin", int, "")
    _check_led(_need(raw, "led", dict, ""))
    for key in ("button_pin", "status_led_pin"):    # optional: a board may have neither
        if key in raw:
            _need(raw, key, int, "")
    wdt_ms = _positive(raw, "watchdog_ms", "")
    if wdt_ms > WATCHDOG_MAX_MS:
        raise BoardError("board: watchdog_ms must be <= %d (SAFETY.md)" % WATCHDOG_MAX_MS)
    return raw


def _irradiance(led, key):
    v = _need(led, key, float, "led.")
    if not 0 < v <= LED_IRRADIANCE_MAX_MW_CM2:
        raise BoardError("board: led.%s must be > 0 and <= %d mW/cm2" % (key, LED_IRRADIANCE_MAX_MW_CM2))


def _check_led(led):
    """Red 630 nm channel; optional 830 nm NIR channel, usable only with eye shields."""
    _need(led, "red_pin", int, "led.")
    hz = _positive(led, "pwm_hz", "led.")
    if hz < LED_PWM_MIN_HZ:
        raise BoardError("board: led.pwm_hz must be >= %d (no visible flicker)" % LED_PWM_MIN_HZ)
    _irradiance(led, "red_mw_cm2_at_100")
    shields = led.get("eye_shields", False)
    if not isinstance(shields, bool):
        raise BoardError("board: led.eye_shields must be true or false")
    led["eye_shields"] = shields
    if "nir_pin" in led:
        if _need(led, "nir_pin", int, "led.") == led["red_pin"]:
            raise BoardError("board: led.nir_pin and red_pin must differ")
        _irradiance(led, "nir_mw_cm2_at_100")


def nir_enabled(board):
    """NIR light only on a board that has the channel and declares eye shields."""
    led = board["led"]
    return "nir_pin" in led and led.get("eye_shields") is True


def full_scale_ua(board):
    """Current at DAC full scale: Vref / R_set, in µA."""
    return board["dac"]["vref_mv"] * 1000 // board["v_to_i"]["r_set_ohm"]

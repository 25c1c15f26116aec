# Board file: load boards/<name>.json (copied to /board.json on the device),
# check every field, and clamp the current limit to the firmware's absolute
# ceiling. A board file may lower the limit; nothing can raise it.
#
# A board file that would break a bound of SAFETY.md is refused here, with
# the reason (boot.py keeps the safe state and prints it): a supervisor too
# slow for the over_current bound, a sense that cannot read the trip level,
# a DAC whose step is larger than the soft start, two roles on one pin (the
# polarity comparators' inputs included), no polarity comparators (a DC fault
# would be invisible), a watchdog that could not outlast a flash write, ... (docs/boards.md has
# each range and why).
import json
from micropython import const
from myotone.limits import (LED_PWM_MIN_HZ, LED_IRRADIANCE_MAX_MW_CM2, ABS_CEILING_UA, WATCHDOG_MAX_MS,
                            OVER_CURRENT_PERMILLE, OVER_CURRENT_MARGIN_UA,
                            OVER_CURRENT_STOP_MS, SOFT_START_PERCENT)

BOARD_PATH = "board.json"

_MCUS = ("rp2040", "esp32")
_DAC_KINDS = ("mcp4725", "esp32", "pwm")
_DAC_BITS = (12, 8, 16)          # what each driver (hal/dac.py) writes: its max_code is 2**bits - 1
_PULSE_BACKENDS = ("timer", "pio", "rmt")
_SUPERVISOR_MAX_HZ = const(2000)  # the tick's cost on the chip (docs/performance.md)
# The smallest electrode of a face mask, in cm2: below 0.1 or above 25 (5 x 5 cm) the value is
# a slip of units (mm2, m2), and an area too large switches the density cap off unseen.
_AREA_MIN_CM2 = 0.1
_AREA_MAX_CM2 = 25
# The watchdog must outlast the longest main-loop pass once it is armed: a flash sector erase
# (a session log written after a session) takes up to ~400 ms on the boards' flash chips.
_WATCHDOG_MIN_MS = const(500)
# rmt: the two channels start one after the other (two write_pulses calls, tens of us apart on a
# 240 MHz ESP32): less off-time than this between opposite phases risks both pins high.
_RMT_DEAD_MIN_US = const(100)
# The current sense must read past the over_current trip level by this much (ADC reference
# tolerance, the ESP32's bent top, noise): a trip level at or above full scale is never seen.
_SENSE_HEADROOM_PERMILLE = const(1100)
# ... and resolve 1 uA per 12-bit ADC step, so a 10 uA program current is read to 10 %.
_SENSE_MAX_FS_UA = const(4096)
# The hardware limiter must cap above the over_current trip level over 0..45 C and its part
# tolerance (SAFETY.md: the firmware trips first, the hardware caps second), with 5 % to spare:
# a sense reading 5 % low (the most the sense calibration corrects) still sees the trip level.
_LIMITER_T_MIN_C = const(0)
_LIMITER_MARGIN_PERMILLE = const(1050)
# The ESP32's ADC reads 0 below ~142 mV at 11 dB (~47 uA on a 3 kOhm sense): sense_fault's 50 uA
# and charge balance need the current channel lifted above that dead zone by a bias (U3B,
# docs/hardware.md), with room for its tolerance and the ADC's offset spread between chips.
_ESP32_BIAS_MIN_MV = const(180)
_BIAS_MAX_MV = const(500)
# A sense that reads a pair's phases too coarsely for 2 % below some current names it
# (sense.charge_judge_ua); above this, charge balance would be judged on too little of a session.
_CHARGE_JUDGE_MAX_UA = const(150)
# The over-current latch (docs/hardware.md, U10-U13) gates the bridge off within microseconds of a
# current above its threshold, wherever in a phase it begins. At both ends of its tolerance that
# threshold lies above the limit with this margin (a current at the limit never sets it) and at or
# under the over_current trip level (every current the firmware would trip on is cut in hardware).
_OC_LATCH_LOW_PERMILLE = const(1020)
_OC_LATCH_TOL_MAX_PCT = const(10)
# Every role that takes a GPIO: (where, key) -- no two may share a pin.
_PIN_ROLES = (("", "hv_enable"), ("", "vbus_pin"), ("", "button_pin"), ("", "status_led_pin"),
              ("bridge.", "pol_a"), ("bridge.", "pol_b"), ("dac.", "pin"), ("dac.", "sda"), ("dac.", "scl"),
              ("sense.", "current_adc"), ("sense.", "voltage_adc"), ("sense.", "flow_a_pin"),
              ("sense.", "flow_b_pin"), ("oc_latch.", "q_pin"), ("oc_latch.", "clear_pin"), ("oc_latch.", "test_pin"),
              ("thermistor.", "adc"), ("led.", "red_pin"), ("led.", "nir_pin"))


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



def _check_console(raw):
    """A console whose writes block in C (the ESP32's REPL UART) is paced by the firmware
    (console.py): its TX FIFO and drain rate are the board's. Where the fast path is a soft
    callback (not rp2) that pacing is required: an unpaced reply held it ~30 ms."""
    con = raw.get("console")
    if con is None:
        if raw["mcu"] != "rp2040":
            raise BoardError("board: missing console (tx_fifo_b, tx_bytes_per_s): the %s's console"
                             " writes block the fast path unless paced" % raw["mcu"])
        return
    if not isinstance(con, dict):
        raise BoardError("board: console must be an object")
    fifo = _need(con, "tx_fifo_b", int, "console.")
    rate = _need(con, "tx_bytes_per_s", int, "console.")
    if not 32 <= fifo <= 4096 or not 1000 <= rate <= 1000000:
        raise BoardError("board: console.tx_fifo_b must be 32..4096 and console.tx_bytes_per_s 1000..1000000")

def check(raw):
    """Return the board dict with limits clamped; raise BoardError if unusable."""
    if not isinstance(raw, dict):
        raise BoardError("board file must be a JSON object")
    _need(raw, "name", str, "")
    if _need(raw, "mcu", str, "") not in _MCUS:
        raise BoardError("board: mcu must be one of " + ", ".join(_MCUS))
    limit_ua = _positive(raw, "limit_ua", "")
    raw["limit_ua"] = min(limit_ua, ABS_CEILING_UA)
    _check_limiter(raw)
    _positive(raw, "compliance_v", "")
    if not _AREA_MIN_CM2 <= _need(raw, "electrode_area_cm2", float, "") <= _AREA_MAX_CM2:
        raise BoardError("board: electrode_area_cm2 must be %s..%s (the smallest electrode, in cm2)"
                         % (_AREA_MIN_CM2, _AREA_MAX_CM2))
    dac = _need(raw, "dac", dict, "")
    if _need(dac, "kind", str, "dac.") not in _DAC_KINDS:
        raise BoardError("board: dac.kind must be one of " + ", ".join(_DAC_KINDS))
    if dac["kind"] == "esp32" and raw["mcu"] != "esp32":
        raise BoardError("board: dac.kind esp32 (machine.DAC) exists on esp32 only")
    bits = _DAC_BITS[_DAC_KINDS.index(dac["kind"])]
    if _need(dac, "bits", int, "dac.") != bits:
        raise BoardError("board: dac.bits must be %d: the %s driver writes %d-bit codes" % (bits, dac["kind"], bits))
    _positive(dac, "vref_mv", "dac.")
    _positive(_need(raw, "v_to_i", dict, ""), "r_set_ohm", "v_to_i.")
    _check_v_to_i(raw, (1 << bits) - 1)
    bridge = _need(raw, "bridge", dict, "")
    if _need(bridge, "pol_a", int, "bridge.") == _need(bridge, "pol_b", int, "bridge."):
        raise BoardError("board: bridge.pol_a and pol_b must differ")
    _need(raw, "hv_enable", int, "")
    sense = _need(raw, "sense", dict, "")
    # the polarity comparators (docs/hardware.md): no board runs without a measured polarity
    for key in ("current_adc", "voltage_adc", "flow_a_pin", "flow_b_pin"):
        _need(sense, key, int, "sense.")
    for key in ("r_sense_ohm", "divider", "adc_vref_mv"):
        _positive(sense, key, "sense.")
    bias = raw["sense"].get("bias_mv", 0)
    if type(bias) is not int or not 0 <= bias <= _BIAS_MAX_MV:
        raise BoardError("board: sense.bias_mv must be an integer 0..%d" % _BIAS_MAX_MV)
    judge = raw["sense"].get("charge_judge_ua", 0)
    if type(judge) is not int or not 0 <= judge <= _CHARGE_JUDGE_MAX_UA:
        raise BoardError("board: sense.charge_judge_ua must be an integer 0..%d" % _CHARGE_JUDGE_MAX_UA)
    _check_sense(raw)
    _check_oc_latch(raw)
    pulse = _need(raw, "pulse", dict, "")
    if _need(pulse, "backend", str, "pulse.") not in _PULSE_BACKENDS:
        raise BoardError("board: pulse.backend must be one of " + ", ".join(_PULSE_BACKENDS))
    if pulse["backend"] == "pio" and bridge["pol_b"] != bridge["pol_a"] + 1:
        raise BoardError("board: the pio back-end needs bridge.pol_b == pol_a + 1 (one OUT group)")
    if pulse["backend"] == "pio" and raw["mcu"] != "rp2040":
        raise BoardError("board: the pio back-end exists on rp2040 only")
    if pulse["backend"] == "rmt" and raw["mcu"] != "esp32":
        raise BoardError("board: the rmt back-end exists on esp32 only")
    if pulse["backend"] == "rmt":
        dead = raw["pulse"].get("dead_us", 200)
        if not isinstance(dead, int) or isinstance(dead, bool) or dead < _RMT_DEAD_MIN_US:
            raise BoardError("board: pulse.dead_us must be an integer >= %d (the two rmt channels start"
                             " apart: less risks both bridge pins high)" % _RMT_DEAD_MIN_US)
        raw["pulse"]["dead_us"] = dead
    if pulse["backend"] == "timer":
        _positive(pulse, "tick_us", "pulse.")
        if raw["pulse"].get("hard") and raw["mcu"] == "esp32":
            raise BoardError("board: esp32 timer callbacks are soft: pulse.hard must be false")
    sup = _need(raw, "supervisor", dict, "")
    _need(sup, "timer_id", int, "supervisor.")
    hz = _positive(sup, "hz", "supervisor.")
    # over_current: a sample within half its bound of an onset (its confirming conversion is taken in
    # the same pass); the other half is the margin for the path's own time and its hold-offs
    min_hz = 2 * 1000 // OVER_CURRENT_STOP_MS
    if hz < min_hz or hz > _SUPERVISOR_MAX_HZ:
        raise BoardError("board: supervisor.hz must be %d..%d (over_current: a sample within %d ms of an"
                         " onset, half its %d ms bound)" % (min_hz, _SUPERVISOR_MAX_HZ, 1000 // min_hz,
                                                            OVER_CURRENT_STOP_MS))
    # garbage collection (heap.py): "output_off" collects only with the output stage off; "auto"
    # leaves it to MicroPython, which only a hard-interrupt fast path (rp2) rides through
    gc_mode = raw["supervisor"].get("gc", "auto" if raw["mcu"] == "rp2040" else "output_off")
    if gc_mode not in ("auto", "output_off") or (gc_mode == "auto" and raw["mcu"] != "rp2040"):
        raise BoardError("board: supervisor.gc must be \"output_off\"%s (a collection holds a soft-timer"
                         " fast path off for ~20 ms)" % (" or \"auto\"" if raw["mcu"] == "rp2040" else ""))
    raw["supervisor"]["gc"] = gc_mode
    _check_console(raw)
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
    if wdt_ms < _WATCHDOG_MIN_MS:
        raise BoardError("board: watchdog_ms must be >= %d (a flash write must not reset the board)"
                         % _WATCHDOG_MIN_MS)
    _check_pins(raw)
    if raw["mcu"] == "esp32" and bias < _ESP32_BIAS_MIN_MV:
        raise BoardError("board: the ESP32's ADC reads 0 below ~142 mV: sense.bias_mv must be >= %d (the"
                         " current sense's bias, docs/hardware.md), or sense_fault cannot see 50 uA"
                         % _ESP32_BIAS_MIN_MV)
    return raw


def trip_ua(limit_ua):
    """The over_current trip level of a board limit (SAFETY.md: limit x 1.10 + 10 uA)."""
    return limit_ua * OVER_CURRENT_PERMILLE // 1000 + OVER_CURRENT_MARGIN_UA


def limiter_min_ua(board):
    """The hardware limiter's lowest cap over 0..45 C: at 0 C and its tolerance's low end.
    hw_limit_ua is its cap at 25 C; it changes by hw_limit_ppm_per_c per C (an LM234 is
    proportional to absolute temperature: 1e6 / 298.15 = 3354 ppm/C) and by
    +-hw_limit_tol_pct (3 for an LM234-3)."""
    hw = board["hw_limit_ua"]
    ppm = board.get("hw_limit_ppm_per_c", 3354)
    tol = board.get("hw_limit_tol_pct", 3)
    return hw * (1 + ppm * (_LIMITER_T_MIN_C - 25) / 1e6) * (100 - tol) / 100


def _check_oc_latch(raw):
    ol = _need(raw, "oc_latch", dict, "")
    _need(ol, "q_pin", int, "oc_latch.")
    _need(ol, "clear_pin", int, "oc_latch.")
    _need(ol, "test_pin", int, "oc_latch.")      # every switch-on tests the latch (stage.py)
    at = _need(ol, "trip_ua", float, "oc_latch.")
    tol = _need(ol, "tol_pct", float, "oc_latch.")
    if not 0 <= tol <= _OC_LATCH_TOL_MAX_PCT:
        raise BoardError("board: oc_latch.tol_pct must be 0..%d" % _OC_LATCH_TOL_MAX_PCT)
    limit, trip = raw["limit_ua"], trip_ua(raw["limit_ua"])
    low, high = at * (100 - tol) / 100, at * (100 + tol) / 100
    if low * 1000 < limit * _OC_LATCH_LOW_PERMILLE or high > trip:
        raise BoardError("board: the over-current latch sets at %d..%d uA (oc_latch.trip_ua +-tol_pct); it must"
                         " lie within %d..%d uA: above the limit by 2 %% and at or under the over_current"
                         " trip level" % (int(low), int(high + 0.999), (limit * _OC_LATCH_LOW_PERMILLE + 999) // 1000,
                                          trip))


def _check_limiter(raw):
    _positive(raw, "hw_limit_ua", "")
    for key in ("hw_limit_tol_pct", "hw_limit_ppm_per_c"):
        if key in raw:
            v = _need(raw, key, int, "")
            if v < 0:
                raise BoardError("board: " + key + " must be >= 0")
    if raw.get("hw_limit_tol_pct", 0) >= 100:
        raise BoardError("board: hw_limit_tol_pct must be < 100")
    low = limiter_min_ua(raw)
    trip = trip_ua(raw["limit_ua"])
    if low * 1000 < trip * _LIMITER_MARGIN_PERMILLE:
        raise BoardError("board: the hardware limiter caps at %d uA at 0 C and -%d %%, not 5 %% above the"
                         " over_current trip level %d uA: the firmware must trip first (raise hw_limit_ua)"
                         % (int(low), raw.get("hw_limit_tol_pct", 3), trip))


def _check_v_to_i(raw, max_code):
    """The DAC must reach the limit, and one DAC step must not exceed the soft start (or the
    minimum setting could not be delivered: the first step above 0 would already be more)."""
    fs = full_scale_ua(raw)
    limit = raw["limit_ua"]
    if fs < limit:
        raise BoardError("board: dac.vref_mv / v_to_i.r_set_ohm gives %d uA at full scale, below limit_ua %d"
                         % (fs, limit))
    if fs * 100 > limit * SOFT_START_PERCENT * max_code:
        raise BoardError("board: one DAC step (%d uA / %d) is more than the soft start, %d %% of limit_ua %d:"
                         " raise v_to_i.r_set_ohm" % (fs, max_code, SOFT_START_PERCENT, limit))


def sense_full_scale_ua(board):
    """Current at the current ADC's full scale: (Vref - the sense's bias) / R_sense, in uA."""
    s = board["sense"]
    return (s["adc_vref_mv"] - s.get("bias_mv", 0)) * 1000 // s["r_sense_ohm"]


def _check_sense(raw):
    fs = sense_full_scale_ua(raw)
    trip = trip_ua(raw["limit_ua"])
    if fs * 1000 < trip * _SENSE_HEADROOM_PERMILLE:
        raise BoardError("board: the current sense reads up to %d uA, not %d %% above the over_current trip"
                         " level %d uA: lower sense.r_sense_ohm or limit_ua"
                         % (fs, _SENSE_HEADROOM_PERMILLE // 10 - 100, trip))
    if fs > _SENSE_MAX_FS_UA:
        raise BoardError("board: the current sense full scale %d uA is above %d uA (too coarse)"
                         % (fs, _SENSE_MAX_FS_UA))


def _check_pins(raw):
    """No pin may serve two roles (a VBUS sense on a bridge pin would drive it, ...)."""
    seen = {}
    for where, key in _PIN_ROLES:
        d = raw if not where else raw[where[:-1]]
        if key not in d:
            continue
        pin = _need(d, key, int, where)
        if pin < 0:
            raise BoardError("board: " + where + key + " must be >= 0")
        if pin in seen:
            raise BoardError("board: %s%s and %s are both pin %d" % (where, key, seen[pin], pin))
        seen[pin] = where + key


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

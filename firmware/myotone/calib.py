# Per-unit calibration: the DAC code <-> uA and ADC <-> uA transfers of
# this board, fitted by the host (`myotone calibrate`) on a reference load
# and kept in /calib.json, written atomically by store.write_atomic (the one
# file writer: a .tmp file, then rename).
#
# A calibration is four numbers: true uA = gain x nominal uA + offset, for
# the output (nominal: the board file's Vref / R_set transfer) and for the
# current sense (nominal: Vref / R_sense). Every value is bounded here, and
# Output computes its limit code from the calibrated transfer but never
# above the nominal one: a calibration can lower the most the DAC may
# command, never raise it (output.py).
import json
from myotone import store
from myotone.protocol import type_ok

PATH = "/calib.json"

GAIN_MIN = 0.85              # gains: a unit within +-15 % of its design
GAIN_MAX = 1.15
DAC_OFFSET_MAX_UA = 20       # |output offset|
ADC_OFFSET_MAX_UA = 10       # |sense offset|: below SENSE_IDLE_UA, so an idle
                             # sense still reads under the sense_fault threshold

FIELDS = ("dac_gain", "dac_offset_ua", "adc_gain", "adc_offset_ua")
_BOUNDS = ((GAIN_MIN, GAIN_MAX), (-DAC_OFFSET_MAX_UA, DAC_OFFSET_MAX_UA),
           (GAIN_MIN, GAIN_MAX), (-ADC_OFFSET_MAX_UA, ADC_OFFSET_MAX_UA))

# the schema of calib_set (protocol.check_args)
SCHEMA = {"dac_gain": ("num", True), "dac_offset_ua": ("num", True), "adc_gain": ("num", True),
          "adc_offset_ua": ("num", True), "note": ("str", False)}


class CalibError(Exception):
    pass


def identity():
    return {"dac_gain": 1.0, "dac_offset_ua": 0.0, "adc_gain": 1.0, "adc_offset_ua": 0.0, "note": ""}


def check(raw):
    """A validated calibration dict from `raw`; CalibError names the bad value."""
    if not isinstance(raw, dict):
        raise CalibError("calibration must be an object")
    cal = {}
    for i in range(len(FIELDS)):
        name = FIELDS[i]
        v = raw.get(name)
        if v is None or not type_ok("num", v):
            raise CalibError(name + " must be a number")
        lo, hi = _BOUNDS[i]
        if not lo <= v <= hi:
            raise CalibError("%s must be %s..%s" % (name, lo, hi))
        cal[name] = float(v)
    note = raw.get("note", "")
    if not type_ok("str", note):
        raise CalibError("note must be a string of at most 32 characters")
    cal["note"] = note
    return cal


def load(path=PATH):
    """(calibration, source): source is "file", "default" (no file) or "invalid"."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        return identity(), "default"
    except ValueError:
        return identity(), "invalid"
    try:
        return check(raw), "file"
    except CalibError:
        return identity(), "invalid"


def save(cal, path=PATH):
    """Write atomically (store.write_atomic, the one file writer): a power cut leaves
    the old file or the new one."""
    store.write_json(path, cal)

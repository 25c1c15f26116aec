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
#
# SAFETY.md: no calibration the firmware accepts moves a trip level, the soft
# start or a ramp beyond its numbers, at any corner of these bounds -- whether
# the calibration is true or the unit is in fact as designed (a calibration is
# a claim the firmware cannot check). How each holds (docs/safety.md):
# * trips: the sense takes a calibration only where it raises a reading
#   (hal/sense.py), so no calibration makes a current read lower than the
#   design would;
# * soft start and ramps: the session ramps through what the output delivers
#   on both transfers (Output.soft_start_ua / ceiling_ua / ramp_permille);
# * the output offset is bounded to half the soft start (1 % of the limit):
#   a unit whose current at the first codes is more than that cannot start at
#   <= 2 % of the limit, and a claim of a larger negative offset would make
#   the first codes of a nominal unit exceed it.
import json
from micropython import const
from myotone import store
from myotone.limits import ABS_CEILING_UA
from myotone.protocol import type_ok

PATH = "/calib.json"

GAIN_MIN = 0.85              # output gain: a unit within +-15 % of its design
GAIN_MAX = 1.15
# The sense's gain: within +-5 %. Trips never move up with it (the sense takes it only
# where it raises a reading), but beyond 5 % a unit would read more than the trip level
# at its own limit (500 x 1.05 + 10 = 535 < 560 uA; 1.15 gave 585): an over_current
# while running normally, whether the calibration is true or the unit is as designed.
ADC_GAIN_MIN = 0.95
ADC_GAIN_MAX = 1.05
DAC_OFFSET_MAX_PERMILLE = const(10)  # |output offset| <= 1 % of the board's limit (half the soft start)
ADC_OFFSET_MAX_UA = 10       # |sense offset|: below SENSE_IDLE_UA, so an idle
                             # sense still reads under the sense_fault threshold

FIELDS = ("dac_gain", "dac_offset_ua", "adc_gain", "adc_offset_ua")


def dac_offset_max_ua(limit_ua):
    return limit_ua * DAC_OFFSET_MAX_PERMILLE / 1000


def bounds(limit_ua):
    """(lo, hi) of each of FIELDS on a board with this limit."""
    d = dac_offset_max_ua(limit_ua)
    return ((GAIN_MIN, GAIN_MAX), (-d, d), (ADC_GAIN_MIN, ADC_GAIN_MAX), (-ADC_OFFSET_MAX_UA, ADC_OFFSET_MAX_UA))

# the schema of calib_set (protocol.check_args)
SCHEMA = {"dac_gain": ("num", True), "dac_offset_ua": ("num", True), "adc_gain": ("num", True),
          "adc_offset_ua": ("num", True), "note": ("str", False)}


class CalibError(Exception):
    pass


def identity():
    return {"dac_gain": 1.0, "dac_offset_ua": 0.0, "adc_gain": 1.0, "adc_offset_ua": 0.0, "note": ""}


def check(raw, limit_ua=ABS_CEILING_UA):
    """A validated calibration dict from `raw` for a board limited to `limit_ua`;
    CalibError names the bad value."""
    if not isinstance(raw, dict):
        raise CalibError("calibration must be an object")
    cal = {}
    b = bounds(limit_ua)
    for i in range(len(FIELDS)):
        name = FIELDS[i]
        v = raw.get(name)
        if v is None or not type_ok("num", v):
            raise CalibError(name + " must be a number")
        lo, hi = b[i]
        if not lo <= v <= hi:
            raise CalibError("%s must be %s..%s" % (name, lo, hi))
        cal[name] = float(v)
    note = raw.get("note", "")
    if not type_ok("str", note):
        raise CalibError("note must be a string of at most 32 characters")
    cal["note"] = note
    return cal


def load(path=PATH, limit_ua=ABS_CEILING_UA):
    """(calibration, source): source is "file", "default" (no file) or "invalid"."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        return identity(), "default"
    except ValueError:
        return identity(), "invalid"
    try:
        return check(raw, limit_ua), "file"
    except CalibError:
        return identity(), "invalid"


def save(cal, path=PATH):
    """Write atomically (store.write_atomic, the one file writer): a power cut leaves
    the old file or the new one."""
    store.write_json(path, cal)

# Programs: the built-in library and the validation of user programs.
#
# A program is a list of phases (zones). Each phase lasts `duration_s` and
# sets the microcurrent (a waveform and `current_pct`, a percentage of the
# session's setpoint; 0 = none) and the LED (`red_pct`, `nir_pct`). User
# programs are JSON files under /programs/ (store.py) in exactly this shape;
# they are validated here on every write and on every load, so a file put
# on the flash by other means is never trusted either. The board-dependent
# checks (NIR, dose cap, timing, density) are in runner.plan().
from myotone import limits
from myotone.pulse import Waveform, WaveformError

MAX_PHASES = 8
MAX_NAME = 16
MAX_TEXT = 64
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"

# key: (kind, default); kind "int", "num", "bool" or "str"; default None = required
_PHASE = {
    "duration_s": ("int", None), "label": ("str", ""),
    "current_pct": ("int", 0), "hz": ("num", 0), "phase_us": ("int", 0), "gap_us": ("int", 0),
    "alternate": ("bool", True), "burst_on_ms": ("int", 0), "burst_off_ms": ("int", 0),
    "red_pct": ("int", 0), "nir_pct": ("int", 0),
}
_PERCENT = ("current_pct", "red_pct", "nir_pct")

# the waveforms of the original single-phase programs
_LIFT = {"hz": 10, "phase_us": 40000, "gap_us": 200}
_CONTOUR = {"hz": 100, "phase_us": 2000, "gap_us": 500, "burst_on_ms": 500, "burst_off_ms": 500}
_GENTLE = {"hz": 0.5, "phase_us": 500000, "gap_us": 1000}


def _phase(seconds, wave, current_pct, red_pct=0, nir_pct=0, label=""):
    p = {"duration_s": seconds, "current_pct": current_pct, "red_pct": red_pct, "nir_pct": nir_pct, "label": label}
    if wave is not None:
        p.update(wave)
    return p


_BUILTIN = {
    "lift": ("microcurrent, 10 Hz, 40 ms phases", [_phase(600, _LIFT, 100)]),
    "contour": ("microcurrent, 100 Hz in bursts, 0.5 s on / 0.5 s off", [_phase(600, _CONTOUR, 100)]),
    "gentle": ("microcurrent, 0.5 Hz, long 0.5 s phases", [_phase(600, _GENTLE, 100)]),
    "glow": ("red LED only, 10 min at 100 %", [_phase(600, None, 0, 100)]),
    "glow_nir": ("red + near-infrared LED, 8 min (boards with eye shields)", [_phase(480, None, 0, 50, 50)]),
    "sculpt": ("microcurrent in three zones with red light; move the electrodes in the pauses", [
        _phase(180, _LIFT, 100, 60, 0, "forehead"), _phase(15, None, 0, 60, 0, "move"),
        _phase(180, _CONTOUR, 100, 60, 0, "cheeks"), _phase(15, None, 0, 60, 0, "move"),
        _phase(180, _GENTLE, 80, 60, 0, "jaw")]),
    # sham for blinded studies: the same light and length as `sculpt`; the
    # current ramps to the setpoint (perceptible), holds 30 s, ramps back to
    # zero and stays there
    "sham": ("sham control for sculpt: perceptible current for 30 s, then none; same light", [
        _phase(30, _LIFT, 100, 60, 0, "sham"), _phase(540, _LIFT, 0, 60, 0, "sham")]),
}
DEFAULT = "lift"

# Blinded studies: a user program with a `study` (the study's token, which only
# the host's key file also holds) is an arm exposed under a coded name. The
# device then shows of it only what every arm shares (report.py, filecmds.py):
# never its phases, waveform, current or phase number. The token opens its
# records (log_read) to whoever has the key.
BLINDED = "blinded study arm"
STUDY_MIN = 8


class ProgramError(ValueError):
    def __init__(self, message, code="out_of_range"):
        super().__init__(message)
        self.code = code
        self.message = message


def builtin_names():
    return sorted(_BUILTIN)


def is_builtin(name):
    return name in _BUILTIN


def check_name(name):
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise ProgramError("name must be 1..%d characters" % MAX_NAME, "bad_request")
    for ch in name:
        if ch not in _NAME_CHARS:
            raise ProgramError("name may contain only a-z, 0-9, _ and -", "bad_request")
    return name


def builtin(name):
    """The validated built-in program `name`; KeyError if unknown."""
    text, phases = _BUILTIN[name]
    return validate({"description": text, "phases": phases})


def _kind_ok(kind, v):
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "num":
        # a number, finite (NaN and infinities are not); its range is checked by its use
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v - v == 0
    if kind == "bool":
        return isinstance(v, bool)
    return isinstance(v, str) and len(v) <= MAX_TEXT


def _check_phase(k, raw):
    where = "phase %d: " % (k + 1)
    if not isinstance(raw, dict):
        raise ProgramError(where + "must be an object", "bad_request")
    p = {}
    for key in raw:
        if key not in _PHASE:
            raise ProgramError(where + "unknown field " + str(key)[:32], "bad_request")
    for key in _PHASE:
        kind, default = _PHASE[key]
        if key not in raw:
            if default is None:
                raise ProgramError(where + "missing field " + key, "bad_request")
            p[key] = default
            continue
        if not _kind_ok(kind, raw[key]):
            raise ProgramError(where + key + " must be " + kind, "bad_request")
        p[key] = raw[key]
    if len(p["label"]) > MAX_NAME:
        raise ProgramError(where + "label longer than %d characters" % MAX_NAME)
    if not 1 <= p["duration_s"] <= limits.SESSION_MAX_MS // 1000:
        raise ProgramError(where + "duration_s must be 1..%d" % (limits.SESSION_MAX_MS // 1000))
    for key in _PERCENT:
        if not 0 <= p[key] <= 100:
            raise ProgramError(where + key + " must be 0..100")
    if p["current_pct"] or p["hz"] or p["phase_us"]:
        try:
            waveform(p)
        except WaveformError as e:
            raise ProgramError(where + str(e))
    return p


def validate(raw):
    """Check a program object; return it normalised (defaults filled in)."""
    if not isinstance(raw, dict):
        raise ProgramError("a program must be a JSON object", "bad_request")
    for key in raw:
        if key not in ("description", "phases", "study"):
            raise ProgramError("unknown field " + str(key)[:32], "bad_request")
    text = raw.get("description", "")
    if not isinstance(text, str) or len(text) > 2 * MAX_TEXT:
        raise ProgramError("description must be a string of at most %d characters" % (2 * MAX_TEXT), "bad_request")
    phases = raw.get("phases")
    if not isinstance(phases, list) or not 1 <= len(phases) <= MAX_PHASES:
        raise ProgramError("phases must be a list of 1..%d phases" % MAX_PHASES, "bad_request")
    out = [_check_phase(k, p) for k, p in enumerate(phases)]
    total_s = sum(p["duration_s"] for p in out)
    if total_s * 1000 > limits.SESSION_MAX_MS:
        raise ProgramError("program lasts %d s; at most %d s" % (total_s, limits.SESSION_MAX_MS // 1000))
    led_s = sum(p["duration_s"] for p in out if p["red_pct"] or p["nir_pct"])
    if led_s * 1000 > limits.LED_MAX_MS:
        raise ProgramError("LED on for %d s; at most %d s" % (led_s, limits.LED_MAX_MS // 1000))
    if not any(p["current_pct"] or p["red_pct"] or p["nir_pct"] for p in out):
        raise ProgramError("program has no output in any phase")
    if "study" in raw:
        study = raw["study"]
        if not isinstance(study, str) or len(study) < STUDY_MIN:
            raise ProgramError("study must be a token of %d..%d characters" % (STUDY_MIN, MAX_NAME), "bad_request")
        check_name(study)
        return {"description": text, "phases": out, "study": study}
    return {"description": text, "phases": out}


def is_blinded(prog):
    return "study" in prog


OVERRIDES = ("duration_s", "hz", "phase_us", "gap_us", "alternate", "burst_on_ms", "burst_off_ms",
             "red_pct", "nir_pct")


def with_overrides(name, prog, args):
    """`start` may change the one phase of a single-phase program (checked again)."""
    over = {}
    for key in OVERRIDES:
        if key in args:
            over[key] = args[key]
    if not over:
        return prog
    if is_blinded(prog):
        raise ProgramError("%s is a blinded study arm: it runs as written" % name, "bad_request")
    if len(prog["phases"]) != 1:
        raise ProgramError("%s has phases: only single-phase programs take overrides" % name, "bad_request")
    phase = prog["phases"][0]
    phase.update(over)
    return validate({"description": prog["description"], "phases": [phase]})


def waveform(p):
    """The Waveform of a phase (WaveformError if outside the envelope)."""
    hz = p["hz"]
    # range first: a huge float x 1000 is inf, and int(inf) raises OverflowError
    if not limits.FREQ_MIN_MHZ / 1000 <= hz <= limits.FREQ_MAX_MHZ / 1000:
        raise WaveformError("hz must be 0.1..1000 Hz")
    return Waveform(int(hz * 1000 + 0.5), p["phase_us"], p["gap_us"], p["alternate"],
                    p["burst_on_ms"], p["burst_off_ms"])


def duration_s(prog):
    return sum(p["duration_s"] for p in prog["phases"])


def summary(name, prog, builtin_flag):
    """One line of the `programs` list. The waveform fields (hz, phase_us, gap_us,
    alternate, burst_*) are those of the first phase with current, 0 without any."""
    ph = prog["phases"]
    d = duration_s(prog)
    if is_blinded(prog):
        return blinded(name, prog)
    out = {"name": name, "builtin": builtin_flag, "description": prog["description"],
           "duration_s": d, "minutes": d // 60 if d % 60 == 0 else round(d / 60, 1), "phases": len(ph),
           "microcurrent": any(p["current_pct"] for p in ph),
           "led": any(p["red_pct"] or p["nir_pct"] for p in ph), "nir": any(p["nir_pct"] for p in ph)}
    first = [p for p in ph if p["current_pct"]]
    for key in ("hz", "phase_us", "gap_us", "alternate", "burst_on_ms", "burst_off_ms"):
        out[key] = first[0][key] if first else _PHASE[key][1]
    return out


def blinded(name, prog):
    """What the device says of a blinded arm: its code, its length and its light (which
    the wearer sees anyway, and a study matches across arms); nothing about current."""
    d = duration_s(prog)
    ph = prog["phases"]
    out = {"name": name, "builtin": False, "blinded": True, "description": BLINDED, "duration_s": d,
           "minutes": d // 60 if d % 60 == 0 else round(d / 60, 1), "phases": None, "microcurrent": None,
           "led": any(p["red_pct"] or p["nir_pct"] for p in ph), "nir": any(p["nir_pct"] for p in ph)}
    for key in ("hz", "phase_us", "gap_us", "alternate", "burst_on_ms", "burst_off_ms"):
        out[key] = None
    return out

# Built-in programs. A program names a waveform and a default length; the
# host (or the button) picks the current. Frequencies are in mHz so that
# everything stays integer.
from myotone.pulse import Waveform

# name: (freq_mhz, phase_us, gap_us, alternate, burst_on_ms, burst_off_ms, minutes, what)
_BUILTIN = {
    "lift": (10000, 40000, 200, True, 0, 0, 10, "microcurrent, 10 Hz, 40 ms phases"),
    "contour": (100000, 2000, 500, True, 500, 500, 10, "microcurrent, 100 Hz in bursts, 0.5 s on / 0.5 s off"),
    "gentle": (500, 500000, 1000, True, 0, 0, 10, "microcurrent, 0.5 Hz, long 0.5 s phases"),
}


def names():
    return sorted(_BUILTIN)


def get(name):
    """(Waveform, default_minutes, description); KeyError if unknown."""
    p = _BUILTIN[name]
    return Waveform(p[0], p[1], p[2], p[3], p[4], p[5]), p[6], p[7]


def describe(name):
    p = _BUILTIN[name]
    return {"name": name, "hz": p[0] / 1000, "phase_us": p[1], "gap_us": p[2],
            "alternate": p[3], "burst_on_ms": p[4], "burst_off_ms": p[5],
            "minutes": p[6], "description": p[7]}

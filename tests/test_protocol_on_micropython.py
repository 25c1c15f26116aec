"""protocol.parse behaves on real MicroPython as on CPython, where their json differs.

The firmware runs on MicroPython, whose json module is not CPython's:
it refuses NaN/Infinity, takes lax syntax (`[1 2]`, trailing commas,
`{1: 2}`, `01`), its UTF-8 decoder takes surrogates and overlong forms, and
its json.dumps writes non-ASCII as raw bytes. The same probe runs each line
through parse() and check_args() on both interpreters; nothing may crash,
and where the two differ it is only in the documented ways below.
"""
import json

import pytest

from protocol_fuzz import Mutator, corpus

PROBE = '''
def outcome(line):
    try:
        rid, cmd, args = P.parse(line)
        P.check_args(args, SV._START if cmd == "start" else SV._NONE)
        return ["ok", rid, P.shown(cmd), sorted(args)]
    except P.ProtocolError as e:
        return ["error", e.code, P.request_id(line)]
    except Exception as e:
        return ["crash", type(e).__name__, str(e)]
'''

START = b'"cmd": "start", "program": "lift", "ua": 200'

# Lines on which the two json modules agree: both must give the same outcome.
SAME = [
    b'{"id": 1, "cmd": "hello"}',
    b'{"id": 123456789012345678901234567890123, "cmd": "hello"}',          # huge integers
    b'{"id": 2, ' + START + b', "duration_s": 123456789012345678901234567890}',
    b'{"id": 3, ' + START + b', "hz": 1e400}',                             # inf in both
    b'{"id": 4, ' + START + b', "hz": -1e400}',
    b'{"id": 5, "cmd": "hello", "cmd": "start"}',                          # duplicate keys: last wins
    b'{"id": 6, "id": 7, "cmd": "hello"}',
    b'{"id": 8, "cmd": "hello", "x": [[[1]]]}',                           # depth 4: allowed, unknown field
    b'{"id": 9, "cmd": "hello", "x": [[[[1]]]]}',                         # depth 5: too deep
    b'{"id": 10, "cmd": "hello", "x": "' + b"[" * 60 + b'"}',            # brackets in a string
    b'[' * 200 + b']' * 200,
    b'{"id": 11, "cmd": 5}', b'{"id": true, "cmd": "hello"}', b'{"id": 1.5, "cmd": "hello"}',
    b'{"id": "' + b"a" * 33 + b'", "cmd": "hello"}',
    b'{"id": "\\ud800", "cmd": "hello"}',                                  # a lone surrogate, escaped
    b'{"id": 12, "cmd": "\\u00e9"}',
    b'{"id": 13, ' + START + b', "ua": "200"}',
    b'{"id": 14, ' + START + b', "alternate": 1}',
    b'"just a string"', b'42', b'null', b'', b'   ', b'{', b'}', b'{"id": 15, "cmd": "hello"} trailing',
    b'\xff\xfe{"cmd": "hello"}', b'{"cmd": "hello", "x": "\xc3"}',       # not UTF-8 for either
    b'{"id": 16, ' + START + b', "hz": 0.1}',
]

# Where they differ, and how. (CPython's outcome kind/code, MicroPython's.)
DIFFERENT = {
    # NaN/Infinity: CPython's json takes them, the checks refuse them; MicroPython's json refuses
    b'{"id": 20, ' + START + b', "hz": NaN}': (("error", "bad_request"), ("error", "bad_json")),
    b'{"id": 21, ' + START + b', "hz": Infinity}': (("error", "bad_request"), ("error", "bad_json")),
    b'{"id": 22, ' + START + b', "hz": -Infinity}': (("error", "bad_request"), ("error", "bad_json")),
    b'{"id": 23, "cmd": "hello", "x": NaN}': (("error", "bad_request"), ("error", "bad_json")),
    # MicroPython's lax syntax: a request CPython refuses as bad_json may be served
    b'{"id": 24, "cmd": "hello",}': (("error", "bad_json"), ("ok", "hello")),
    b'{"id": 25 "cmd": "hello"}': (("error", "bad_json"), ("ok", "hello")),
    b'{"id": 026, "cmd": "hello"}': (("error", "bad_json"), ("ok", "hello")),
    # ... but never with a key that is not a string
    b'{"id": 27, "cmd": "hello", 5: 6}': (("error", "bad_json"), ("error", "bad_json")),
    # MicroPython's decoder takes encoded surrogates and overlong forms; the checks refuse them
    # (an unknown command), and nothing that is not printable ASCII is echoed
    b'{"id": 28, "cmd": "hello", "x": "\xed\xa0\x80"}': (("error", "bad_json"), ("error", "bad_request")),
    b'{"id": 29, "cmd": "hel\xc0\x80lo"}': (("error", "bad_json"), ("ok", "(not printable)")),
}


def run_on_micropython(mpvm, lines):
    code = "import json\nfrom myotone import protocol as P\nfrom myotone import supervisor as SV\n" + PROBE
    code += "for line in %r:\n    print(json.dumps(outcome(line)))\n" % (lines,)
    return [json.loads(x) for x in mpvm.run(code).splitlines()]


def run_on_cpython(fw, lines):
    ns = {"P": fw("myotone.protocol"), "SV": fw("myotone.supervisor")}
    exec(PROBE, ns)
    return [json.loads(json.dumps(ns["outcome"](line))) for line in lines]


@pytest.fixture
def both(mpvm, fw):
    mpvm.reset()
    return lambda lines: (run_on_cpython(fw, lines), run_on_micropython(mpvm, lines))


def kind(outcome):
    return (outcome[0], outcome[1] if outcome[0] == "error" else outcome[2])


def test_lines_both_json_modules_read_alike_get_the_same_outcome(both):
    cp, mp = both(SAME)
    for line, a, b in zip(SAME, cp, mp):
        assert a[0] != "crash" and b[0] != "crash", (line, a, b)
        assert a == b, f"{line!r}: CPython {a}, MicroPython {b}"
    assert cp[SAME.index(b'{"id": 5, "cmd": "hello", "cmd": "start"}')][:3] == ["error", "bad_request", 5]


def test_where_the_json_modules_differ_it_is_only_as_documented(both):
    lines = list(DIFFERENT)
    cp, mp = both(lines)
    for line, a, b in zip(lines, cp, mp):
        want_cp, want_mp = DIFFERENT[line]
        assert (kind(a), kind(b)) == (want_cp, want_mp), f"{line!r}: CPython {a}, MicroPython {b}"


def test_mutated_requests_never_crash_either_interpreter_and_agree_on_what_they_accept(both):
    """Mutations of valid requests: CPython accepting a line implies MicroPython accepts it alike."""
    mut = Mutator(corpus(), seed=23)
    lines = [mut.one() for _ in range(1500)]
    cp, mp = both(lines)
    lax = 0
    for line, a, b in zip(lines, cp, mp):
        assert a[0] != "crash" and b[0] != "crash", (line, a, b)
        if a[0] == "ok":
            assert a == b, f"{line!r}: CPython {a}, MicroPython {b}"
        elif b[0] == "ok":
            lax += 1                  # MicroPython's lax syntax served what CPython refused
    assert sum(o[0] == "ok" for o in cp) > 50, "too few valid lines to compare acceptance"
    assert lax < len(lines) // 10


ENCODED = [
    {"state": "run", "setpoint_ua": 300, "measured_ua": -3, "impedance_ohm": 12345678901234567890,
     "led_dose_j_cm2": 0.0, "temp_c": 31.25, "fault": None, "blinded": False, "ok": True},
    {"led": {"red_nm": 630, "nir_nm": None}, "limits": {"hz": [0.1, 1000.0], "phase_us": [20, 5000000]},
     "empty": {}, "list": [], "nested": {"a": {"b": {"c": "d"}}}},
    {"message": 'quote " backslash \\ newline \n tab \t cr \r bell \x07 end', "id": "abc"},
    {},
]


def test_replies_and_events_are_the_text_json_dumps_writes_and_bytes_on_micropython(mpvm, fw):
    """protocol.dumps writes a value at a time (json.dumps of a whole reply is one C call that holds
    every soft callback off: docs/safety.md "What else holds soft callbacks off"): the same text as
    json.dumps on both interpreters, and on MicroPython bytes, never a new str (MicroPython looks
    each new str up among the interned strings first, ~0.2 ms on the RP2040)."""
    mpvm.reset()
    code = "import json\nfrom myotone import protocol as P\n"
    code += "for d in %r:\n    t = P.dumps(d)\n    print(type(t).__name__, t == json.dumps(d).encode())\n" % (ENCODED,)
    code += "print(type(P.reply(1, a=2)).__name__, type(P.event('x', a=2)).__name__)\n"
    out = mpvm.run(code).split("\n")
    assert out[:len(ENCODED)] == ["bytes True"] * len(ENCODED)
    assert out[len(ENCODED)] == "bytes bytes"
    P = fw("myotone.protocol")
    for d in ENCODED:
        assert P.dumps(d) == json.dumps(d)
    assert json.loads(P.reply(7, a=1)) == {"a": 1, "id": 7, "ok": True}

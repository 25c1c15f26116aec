"""Protocol fuzzing: bad inputs, and what every answer to them must look like.

Shared by the fuzz tests (tests/test_fuzz_*.py) and benchmarks/fuzz.py.

* `requests()` / `lines()` -- hypothesis strategies: request-shaped objects
  with wrong types, huge numbers, NaN/Infinity, unknown and duplicate keys,
  deep nesting, invalid UTF-8, over-long lines.
* `Mutator` -- a seeded raw-bytes mutation fuzzer over a corpus of valid
  requests (bit flips, splices, truncation, interesting bytes and numbers).
* `Target` -- the firmware's own Supervisor inside an emulator, driven either
  in-process (`handle`, thousands of lines a second) or end to end through
  the console (`serve`), with the checks of every reply and of the plant.
"""
from __future__ import annotations

import bisect
import functools
import json
import random
import re

from hypothesis import strategies as st

from myotone.emulator import Emulator
from emu_lines import json_messages

CTRL_C = 3

# ---- hypothesis strategies -------------------------------------------------------

_FIELDS = ("program", "ua", "duration_s", "hz", "phase_us", "gap_us", "alternate", "burst_on_ms",
           "burst_off_ms", "heartbeat", "telemetry_ms")
_INTERESTING_NUMBERS = [0, -1, 1, 9, 10, 11, 499, 500, 501, 1000, 1001, 2 ** 29, 2 ** 30, 2 ** 31,
                        2 ** 32, 2 ** 63, 2 ** 64, 10 ** 40, -10 ** 40, 1e308, -1e308, 1e39, 3.4e38,
                        5e-324, 0.1, 0.09999, 1000.0001, -0.0, 0.5, 1e-9]
_INTERESTING_TEXT = ["", "lift", "contour", "gentle", "hello", "start", "\ud800", "\x00", "\u00e9",
                     "a" * 33, "../../main.py", "/board.json", "%s%d", "\\", '"', "\x03"]


@functools.cache
def scalars():
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2 ** 40), max_value=2 ** 40),
        st.integers(min_value=-(10 ** 80), max_value=10 ** 80),
        st.sampled_from(_INTERESTING_NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40), st.sampled_from(_INTERESTING_TEXT))


@functools.cache
def values(max_leaves=8):
    return st.recursive(scalars(), lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=max_leaves)


@functools.cache
def requests(commands: tuple, fields: tuple = _FIELDS):
    """Request-shaped objects: a command (known or not), an id, fields right and wrong."""
    ids = st.one_of(st.integers(min_value=-(10 ** 30), max_value=10 ** 30), st.text(max_size=40),
                    st.sampled_from([None, True, 1.5, [], {}, "x" * 33, "\ud800"]))
    cmd = st.one_of(st.sampled_from(list(commands)), st.text(max_size=20), scalars())
    field_value = st.one_of(scalars(), values(4))
    anything = st.builds(
        lambda c, i, has_id, known, extra: {**({"id": i} if has_id else {}), "cmd": c, **known, **extra},
        cmd, ids, st.booleans(),
        st.dictionaries(st.sampled_from(fields), field_value, max_size=5),
        st.dictionaries(st.text(max_size=12), field_value, max_size=2))
    # a valid start with one or two fields changed: reaches the checks deep in start
    near_start = st.builds(lambda i, changed: {"id": i, **_GOOD_START, **changed}, ids,
                           st.dictionaries(st.sampled_from(fields), st.one_of(_EXTREMES, field_value),
                                           min_size=1, max_size=2))
    return st.one_of(anything, near_start)


_GOOD_START = {"cmd": "start", "program": "lift", "ua": 200, "duration_s": 60}
EXTREME_VALUES = [1e308, -1e308, 1.7976931348623157e308, 3.5e38, 1e39, 2 ** 31, 2 ** 63, 10 ** 40,
                             -10 ** 40, 0, -1, 0.5, 1e-9, 5e-324, float("nan"), float("inf"), -float("inf"),
                             True, "1", None, [], {}, "", "x" * 40, [1, 2], {"a": 1}, -0.0, 1.5, 1000.0, 0.1]
_EXTREMES = st.sampled_from(EXTREME_VALUES)


def field_sweep(fields=_FIELDS, base=None):
    """A valid start with each field in turn set to each extreme value (deterministic)."""
    base = base or _GOOD_START
    for name in fields:
        for v in EXTREME_VALUES:
            yield _encode({"id": 77, **base, name: v}, True)


def _encode(obj, ensure_ascii):
    return json.dumps(obj, ensure_ascii=ensure_ascii, allow_nan=True).encode("utf-8", "surrogatepass")


_HOW = st.sampled_from(["plain", "plain", "duplicate", "nest", "long", "utf8", "truncate", "splice", "ctrl",
                        "raw", "value"])
_BAD_UTF8 = st.sampled_from([b"\xff", b"\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
                             b"\xfe\xfe", b"\xe2\x82"])
_CTRL = st.sampled_from([0, 1, 2, 4, 5, 7, 8, 9, 11, 12, 27, 127])
_DUP_KEYS = st.sampled_from(["cmd", "id", "ua", "program"])
_FRACTION = st.floats(min_value=0.0, max_value=1.0)


def lines(commands, max_line=512, fields=_FIELDS):
    """One input line (no terminator): a request, encoded and maybe damaged."""
    return _lines(tuple(commands), max_line, tuple(fields))


@functools.cache
def _lines(commands, max_line, fields):
    return _line(requests(commands, fields), max_line)


@st.composite
def _line(draw, reqs, max_line):
    def at(n):                      # a position in 0..n
        return int(draw(_FRACTION) * n)
    msg = draw(reqs)
    data = _encode(msg, draw(st.booleans()))
    how = draw(_HOW)
    if how == "duplicate":          # a key twice: JSON parsers keep the last
        key = draw(_DUP_KEYS)
        pair = b'"' + key.encode() + b'": ' + _encode(draw(scalars()), True)
        data = (b"{" + pair + b", " + data[1:]) if draw(st.booleans()) else (data[:-1] + b", " + pair + b"}")
    elif how == "nest":             # depth around the limit
        depth = 1 + at(40)
        data = data[:-1] + b', "deep": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
    elif how == "long":             # over the line limit, or just under it
        n = max_line - 40 + at(2 * max_line + 40)
        data = data[:-1] + b', "pad": "' + b"x" * max(0, n - len(data) - 12) + b'"}'
    elif how == "utf8":             # bytes that are not UTF-8, or only MicroPython's lax UTF-8
        k = at(len(data))
        data = data[:k] + draw(_BAD_UTF8) + data[k:]
    elif how == "truncate":
        data = data[:at(len(data))]
    elif how == "splice":
        other = _encode(draw(reqs), True)
        data = data[:at(len(data))] + other[at(len(other)):]
    elif how == "ctrl":             # control bytes inside the line (not Ctrl-C: see the REPL tests)
        k = at(len(data))
        data = data[:k] + bytes([draw(_CTRL)]) + data[k:]
    elif how == "raw":
        data = draw(st.binary(max_size=80))
    elif how == "value":            # a bare JSON value, not an object
        data = _encode(draw(values()), draw(st.booleans()))
    return data.replace(b"\n", b" ").replace(b"\r", b" ").replace(bytes([CTRL_C]), b" ")


# ---- raw-bytes mutation fuzzer ------------------------------------------------------

_INTERESTING_BYTES = b'\x00\x80\xff"{}[],:\\\t 0-.eE\xc0\xed'
_NUMBERS = [b"1e999", b"-1e999", b"1e308", b"-1.7976931348623157e308", b"3.5e38", b"NaN", b"Infinity", b"-Infinity", b"1" * 60, b"-0", b"0.0000001",
            b"2147483648", b"1073741824", b"9" * 400, b"1e39", b"-1", b"true", b"null", b'"1"', b"[]", b"{}"]



class Mutator:
    """Seeded mutations of valid requests: the inputs stay close to what parses."""

    def __init__(self, corpus: list[bytes], seed: int = 0):
        self.corpus = corpus
        self.rng = random.Random(seed)

    def one(self) -> bytes:
        rng = self.rng
        data = bytearray(rng.choice(self.corpus))
        for _ in range(rng.choice((1, 1, 1, 2, 3, 6))):
            op = rng.randrange(9)
            k = rng.randrange(len(data) + 1)
            if op == 0 and data:                       # flip a bit
                data[k % len(data)] ^= 1 << rng.randrange(8)
            elif op == 1 and data:                     # an interesting byte
                data[k % len(data)] = rng.choice(_INTERESTING_BYTES)
            elif op == 2:                              # insert bytes
                data[k:k] = bytes(rng.choice(_INTERESTING_BYTES) for _ in range(rng.randrange(1, 4)))
            elif op == 3 and data:                     # delete a run
                del data[k:k + rng.randrange(1, 8)]
            elif op == 4:                              # splice another request in
                other = rng.choice(self.corpus)
                data[k:] = other[rng.randrange(len(other) + 1):]
            elif op == 5:                              # a number becomes a strange one
                m = list(re.finditer(rb"-?\d+(\.\d+)?", bytes(data)))
                if m:
                    x = rng.choice(m)
                    data[x.start():x.end()] = rng.choice(_NUMBERS)
            elif op == 6:                              # repeat a chunk (long lines, deep nesting)
                chunk = data[k:k + rng.randrange(1, 16)] or b"["
                data[k:k] = chunk * rng.randrange(2, 80)
            elif op == 7:                              # truncate
                del data[k:]
            elif op == 8 and len(data) > 1:            # duplicate a key-value pair
                m = list(re.finditer(rb'"\w+": ?[^,}]+', bytes(data)))
                if m:
                    x = rng.choice(m)
                    pair = bytes(data[x.start():x.end()])
                    data[1:1] = pair + b", "
        return bytes(data).replace(b"\n", b" ").replace(b"\r", b" ").replace(bytes([CTRL_C]), b" ")


def corpus(programs=("lift", "contour", "gentle"), commands=()) -> list[bytes]:
    """Requests of every command, the seeds of the mutations.

    Most `start` seeds are wrong in exactly one field, so that mutations
    probe each check from both sides; two are valid (a session that starts
    is stopped properly by the Target, which takes virtual seconds).
    """
    msgs = [{"id": 1, "cmd": "hello"}, {"id": 2, "cmd": "status"}, {"id": 3, "cmd": "programs"},
            {"id": 4, "cmd": "stop"}, {"id": 5, "cmd": "heartbeat"}, {"id": 6, "cmd": "fault_clear"},
            {"id": "a-7", "cmd": "hello"}]
    good = {"cmd": "start", "program": programs[0], "ua": 200, "duration_s": 60}
    wrong = [{"ua": 501}, {"ua": 9}, {"ua": "200"}, {"duration_s": 0}, {"duration_s": 1201},
             {"hz": 1000.5}, {"hz": 0.05}, {"phase_us": 10}, {"gap_us": -1}, {"burst_on_ms": 400},
             {"telemetry_ms": 50}, {"program": programs[0] + "s"}, {"heartbeat": "yes"},
             {"alternate": 1}, {"program": programs[-1], "hz": 900.0}, {"ua": 2 ** 31}]
    for k, change in enumerate(wrong):
        msgs.append({"id": 20 + k, **good, **change})
    known = {m["cmd"] for m in msgs} | {"start"}
    for k, cmd in enumerate(c for c in commands if c not in known):   # whatever else the firmware serves
        msgs.append({"id": 40 + k, "cmd": cmd})
    if "calib_set" in commands:
        msgs.append({"id": 60, "cmd": "calib_set", "dac_gain": 1.2, "dac_offset_ua": 0, "adc_gain": 1.0,
                     "adc_offset_ua": 0.0, "note": "fuzz"})
    if "measure" in commands:
        msgs.append({"id": 61, "cmd": "measure", "ua": 900})
    msgs.append({"id": 10, **good})
    msgs.append({"id": 11, "cmd": "start", "program": programs[-1], "ua": 100, "hz": 20.5, "phase_us": 2000,
                 "gap_us": 100, "alternate": False, "heartbeat": True, "telemetry_ms": 500})
    return [json.dumps(m).encode() for m in msgs]


# ---- the reference: what the firmware must answer ---------------------------------------

def split_lines(data: bytes, max_line: int) -> list[bytes | None]:
    """The lines the device gets from `data`, as its line reader cuts them.

    None stands for an over-long line (answered with line_too_long). A
    trailing unfinished line is not included.
    """
    out: list[bytes | None] = []
    cur = bytearray()
    over = False
    for b in data:
        if b in (10, 13):
            if over:
                out.append(None)
            elif cur:
                out.append(bytes(cur))
            cur.clear()
            over = False
        elif not over:
            if len(cur) >= max_line:
                over = True
            else:
                cur.append(b)
    return out


def good_id(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, str) and len(v) <= 32 and all(" " <= c <= "~" for c in v)


def quick_scan_id(line: bytes):
    """The id of a line refused unparsed (protocol.quick_id's rule): the value of the first
    "id" key, when it ends at "," or "}" within 40 bytes and is a usable id."""
    m = re.search(rb'"id" *:([^,}]{0,38})[,}]', line)
    if m is None or re.search(rb'"id" *:', line).start() != m.start():
        return None
    try:
        rid = json.loads(m.group(1))
    except ValueError:
        return None
    return rid if good_id(rid) else None


def expected_id(line: bytes | None, unparsed: bool = False):
    """The id a reply to `line` must carry: the request's, when it has a usable one (`unparsed`:
    a line refused before parsing, for its length while the output is on)."""
    if line is None:
        return None
    if unparsed:
        return quick_scan_id(line)
    try:
        msg = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if isinstance(msg, dict) and good_id(msg.get("id")):
        return msg["id"]
    return None


class FuzzFailure(AssertionError):
    pass


def max_abs_ua_since(trace, t0_ns: int) -> float:
    """The largest |I| the plant drove from t0_ns on (an upper bound on RC segments)."""
    k = max(bisect.bisect_right(trace.t_ns, t0_ns) - 1, 0)
    peak = 0.0
    for j in range(k, len(trace.t_ns)):
        i_inf = trace.exp.get(j, (0.0, 0.0))[0]
        peak = max(peak, abs(trace.i_ua[j]), abs(i_inf))
    return peak


def check_reply(line, reply: dict, codes: set[str]) -> None:
    """One reply to one line: structured, a known error code, the right id."""
    unparsed = reply.get("error") == "busy" and "longer than" in reply.get("message", "")
    if unparsed and len(line) <= 256:
        raise FuzzFailure(f"a {len(line)}-byte line refused for its length: {line!r} -> {reply}")
    want = expected_id(line, unparsed)
    if reply.get("id") != want or type(reply.get("id")) is not type(want):
        raise FuzzFailure(f"reply id {reply.get('id')!r}, expected {want!r}, for {line!r}: {reply}")
    if reply.get("ok") is True:
        return
    if reply.get("ok") is not False or not isinstance(reply.get("message"), str):
        raise FuzzFailure(f"unstructured reply to {line!r}: {reply}")
    if reply.get("error") not in codes:
        raise FuzzFailure(f"error {reply.get('error')!r} is not a declared code, for {line!r}: {reply}")
    if line is None and reply["error"] != "line_too_long":
        raise FuzzFailure(f"an over-long line got {reply}")


def declared_codes(runtime) -> set[str]:
    """Error codes the firmware declares: lower-case string constants of its modules.

    internal_error is left out on purpose: it means a firmware bug was
    caught, which a fuzzer must report.
    """
    codes = set()
    for name, mod in list(runtime.modules.items()):
        if not name.startswith("myotone"):
            continue
        for key, val in vars(mod).items():
            if key.lstrip("_").isupper() and isinstance(val, str) and re.fullmatch(r"[a-z][a-z_]+", val):
                codes.add(val)
    codes.discard("internal_error")
    return codes


# ---- the target: the firmware in an emulator -------------------------------------------------

class Target:
    """The firmware's Supervisor on an emulated board, with the checks of the fuzz."""

    def __init__(self, board: str = "pico-mcp4725", seed: int = 1):
        self.emu = Emulator(board, seed=seed).start()
        self.emu.run_for(0.2)
        self.boot_out = self.emu.read()
        self.P = self.emu.runtime.modules["myotone.protocol"]
        self.max_line = self.P.MAX_LINE
        self.codes = declared_codes(self.emu.runtime)
        self.commands = sorted(n[4:] for n in dir(self.sup) if n.startswith("cmd_"))
        files = getattr(self.sup, "files", None)      # file commands, where the firmware has them
        if files is not None:
            self.commands += sorted(n[4:] for n in dir(files) if n.startswith("cmd_"))
        self.files_at_start = self.flash_files()
        self.inputs = 0
        self.sessions = 0            # inputs that started a session (valid starts)
        self.events: list[dict] = []

    @property
    def app(self):
        """The firmware's app module (a new one after every reset)."""
        return self.emu.runtime.modules["myotone.app"]

    @property
    def sup(self):
        return self.app.supervisor

    def close(self) -> None:
        self.emu.close()

    # ---- truth ----
    def output_off(self) -> bool:
        p = self.emu.plant
        return p.dac_code == 0 and not p.bridge_a and not p.bridge_b and not p.hv_on

    def flash_files(self) -> set[str]:
        return {f"{d.rstrip('/')}/{n}" for d, _, names in self.emu.fs.walk("/") for n in names}

    def check_files(self, allowed=re.compile(r"^/(log/\d+\.json|log/seq|programs/[\w-]+\.json|calib\.json|"
                                            r"settings\.json)$")) -> None:
        """No input wrote a file other than those the firmware keeps (log, programs, settings)."""
        new = self.flash_files() - self.files_at_start
        bad = sorted(f for f in new if not allowed.match(f))
        if bad:
            raise FuzzFailure(f"inputs created files {bad}")

    # ---- in-process: lines straight into Supervisor.handle ----
    def handle(self, line: bytes) -> dict:
        """One line through the firmware's handle(), with every check; returns the reply."""
        self.inputs += 1
        # this thread runs handle() while the emulator's CPU thread is parked: a wait in it (the
        # over-current latch's test in fault_clear, 2 x 50 us) passes as a busy-wait, as it does
        # in an interrupt, instead of waiting for a CPU thread that is not running
        clock = self.emu.clock
        clock.in_interrupt = True
        try:
            text = self.sup.handle(line)
        finally:
            clock.in_interrupt = False
        try:
            reply = json.loads(text)
        except ValueError:
            raise FuzzFailure(f"reply to {line!r} is not JSON: {text!r}") from None
        check_reply(line, reply, self.codes)
        if self.sup.session.active():     # a valid start got through
            self.sessions += 1
            self.end_session()
        elif not self.output_off():
            raise FuzzFailure(f"output is on after {line!r} (reply {reply})")
        return reply

    def end_session(self) -> None:
        """A valid start got through: stop it the proper way and check the limit held."""
        self._t_session = self.emu.clock.now_ns - 50_000_000
        # the ramp-down lasts 1.5 s, or two pair intervals at a low frequency (20 s at 0.1 Hz),
        # then the pair under way ends (up to a period)
        pair_s = self.app.supervisor.session.pair_ms / 1000
        bound_s = max(1.5, 2 * pair_s) + pair_s + 0.5
        self.emu.send({"cmd": "stop"})
        waited_s = 0.0
        while waited_s < bound_s and (waited_s == 0 or not self.output_off()):
            self.emu.run_for(0.5)
            waited_s += 0.5
        self.drain()
        if not self.output_off():
            raise FuzzFailure(f"output still on {waited_s:g} s after stop")
        limit = self.app._hw.board["limit_ua"]
        peak = max_abs_ua_since(self.emu.plant.trace, self._t_session)
        if peak > limit:
            raise FuzzFailure(f"current {peak} uA above the limit {limit}")

    def drain(self) -> list[dict]:
        out = json_messages(self.emu)
        self.events += [m for m in out if "ev" in m]
        return out

    # ---- end to end: bytes into the console ----
    def serve(self, data: bytes, dt_s: float = 0.005) -> list[dict]:
        """Write `data` (no Ctrl-C) to the console; check one good reply per line, in order."""
        lines = split_lines(data, self.max_line)
        self.inputs += len(lines)
        t0 = self.emu.clock.now_ns
        self.emu.write(data)
        self.emu.run_for(dt_s)
        out = self.drain()
        for _ in range(20):         # a garbage collection may hold the replies up (~20 ms: heap.py)
            if len([m for m in out if "ev" not in m]) >= len(lines):
                break
            self.emu.run_for(dt_s)
            out += self.drain()
        replies = [m for m in out if "ev" not in m]
        if len(replies) != len(lines):
            raise FuzzFailure(f"{len(lines)} lines got {len(replies)} replies: {data!r} -> {replies}")
        for line, reply in zip(lines, replies):
            check_reply(line, reply, self.codes)

        def started():
            return any(m.get("ev") == "state" and m.get("state") not in ("idle", "done", "fault") for m in out)
        for _ in range(40):         # a start's state event comes in its reply's pass, or a collection later
            if started() or self.output_off():
                break
            self.emu.run_for(dt_s)
            out += self.drain()
        if started():
            # a valid start got through
            self.sessions += 1
            self.end_session()
        elif max_abs_ua_since(self.emu.plant.trace, t0) or not self.output_off():
            raise FuzzFailure(f"output turned on by {data!r}")
        return replies

    def hello(self) -> dict:
        self.emu.send({"id": "still-there", "cmd": "hello"})
        got: list = []
        for _ in range(50):         # the reply takes ~0.1 s at the ESP32 UART's rate (console.py)
            self.emu.run_for(0.01)
            got += [m for m in self.drain() if m.get("id") == "still-there"]
            if got:
                break
        if not (got and got[0].get("ok") and got[0].get("protocol")):
            raise FuzzFailure(f"hello no longer answers: {got}")
        return got[0]

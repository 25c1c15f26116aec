"""Protocol fuzzing, the fast subset (the long run is benchmarks/fuzz.py).

Every input gets a structured reply with a declared error code and the
request's id (or null), or is dropped with an event; `hello` keeps
answering; output is never turned on by bad input (the plant says so); no
input writes a file. In-process lines go straight into the firmware's
`Supervisor.handle()`; end-to-end bytes go through the emulated console.
Interleaved Ctrl-C breaks into the REPL by design: there the property is
"output safe, and after a soft reset the device serves again".
"""
import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from protocol_fuzz import CTRL_C, Mutator, Target, corpus, field_sweep, lines, max_abs_ua_since, split_lines

EXAMPLES = int(os.environ.get("MYOTONE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def target():
    t = Target()
    yield t
    t.close()


# ---- the line reader ---------------------------------------------------------------

def test_line_reader_cuts_lines_like_the_reference(target):
    P = target.P

    @FUZZ
    @given(data=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\n", b"\r\n", b"\r", b"x" * 600])),
                         max_size=30).map(b"".join))
    def prop(data):
        reader = P.LineReader()
        got = []
        for b in data:
            line = reader.feed(b)
            if line is P.LINE_TOO_LONG:
                got.append(None)
            elif line is not None:
                assert 0 < len(line) <= P.MAX_LINE and b"\n" not in line and b"\r" not in line
                got.append(line)
        assert got == split_lines(data, P.MAX_LINE)
        tail = data.replace(b"\r", b"\n").rpartition(b"\n")[2]
        assert reader.pending() == min(len(tail), P.MAX_LINE)
    prop()


# ---- in-process: the firmware's handle() ---------------------------------------------

def test_hypothesis_lines_into_handle(target):
    n0 = target.inputs

    @FUZZ
    @given(batch=st.lists(lines(target.commands, target.max_line), min_size=1, max_size=16))
    def prop(batch):
        for line in batch:
            target.handle(line)
    prop()
    target.hello()
    target.check_files()
    assert target.inputs - n0 >= EXAMPLES


def test_every_field_of_start_at_every_extreme_value(target):
    n = 0
    for line in field_sweep():
        target.handle(line)
        n += 1
    assert n >= 11 * 30
    target.hello()


def test_mutated_requests_into_handle(target):
    mut = Mutator(corpus(commands=target.commands), seed=7)
    for _ in range(3000):
        target.handle(mut.one())
    target.hello()
    target.check_files()
    assert target.sessions > 0, "no mutation was a valid start: the property about sessions went untested"


# ---- end to end: bytes through the console ------------------------------------------------

def test_fuzz_end_to_end_through_the_console(target):
    mut = Mutator(corpus(commands=target.commands), seed=11)
    rng = random.Random(11)
    n0 = target.inputs
    for _ in range(120):
        parts = [mut.one() for _ in range(rng.randrange(1, 12))]
        data = b"".join(p + rng.choice((b"\n", b"\r\n", b"\r", b"\n\n")) for p in parts)
        target.serve(data)
    target.hello()
    target.check_files()
    assert target.inputs - n0 >= 500


def test_hypothesis_lines_end_to_end(target):
    @FUZZ
    @given(batch=st.lists(lines(target.commands, target.max_line), min_size=1, max_size=8))
    def prop(batch):
        target.serve(b"".join(line + b"\n" for line in batch))
    prop()
    target.hello()
    target.check_files()


@pytest.mark.parametrize("board,seed", [("pico-mcp4725", s) for s in range(6)] + [("esp32-devkit", 1), ("esp32-devkit", 2)])
def test_interleaved_ctrl_c_leaves_output_safe_and_a_soft_reset_serves_again(board, seed):
    """Ctrl-C must break into the REPL (mpremote needs it): the bytes after it are
    typed at the REPL. Output is safe from then on; Ctrl-D brings the firmware back.
    (An ESP32 whose watchdog ran may reset meanwhile, into the safe state: also fine.)"""
    t = Target(board, seed=seed)
    try:
        rng = random.Random(seed)
        mut = Mutator(corpus(), seed=seed)
        for trial in range(4):
            if rng.random() < 0.5:                   # sometimes with a session running
                t.emu.send({"cmd": "start", "program": "lift", "ua": 300, "duration_s": 60})
                t.emu.run_for(rng.uniform(0.5, 4.0))
            data = b"".join(mut.one() + b"\n" for _ in range(rng.randrange(1, 6)))
            for _ in range(rng.randrange(1, 3)):
                k = rng.randrange(len(data) + 1)
                data = data[:k] + bytes([CTRL_C]) + data[k:]
            t.emu.write(data)
            t.emu.run_for(0.05)
            assert t.output_off(), f"output on after {data!r}"
            t0 = t.emu.clock.now_ns
            t.emu.run_for(1.0)
            assert max_abs_ua_since(t.emu.plant.trace, t0) == 0, "output came back at the REPL"
            t.emu.write(b"\x03\x02\x03\x04")         # interrupt, leave raw REPL, clear the line, soft reset
            t.emu.run_for(0.5)
            assert [m for m in t.drain() if m.get("ev") == "ready"], "no soft reset into the firmware"
            assert t.hello()["ok"]
            assert t.sup.session.state == 0           # idle: a reset never resumes a session
    finally:
        t.close()


# ---- regressions: bugs the fuzzers found --------------------------------------------------

def test_huge_hz_is_out_of_range_not_a_crash(target):
    # hz * 1000 was inf and int(inf) raised OverflowError: the firmware fell into the REPL
    for hz in (1e308, 3.5e38, -1e308, 1000.0001):
        r = target.handle(json.dumps({"id": 1, "cmd": "start", "program": "lift", "ua": 100, "hz": hz}).encode())
        assert r["error"] in ("out_of_range", "bad_request"), r
        assert "hz" in r["message"] or "frequency" in r["message"], r
    r = target.handle(b'{"id": 1, "cmd": "start", "program": "lift", "ua": 100, "hz": 0.7, "duration_s": 5}')
    assert r["ok"], r


def test_an_id_that_cannot_be_echoed_safely_is_refused(target):
    # MicroPython's json.dumps writes a lone surrogate as raw bytes: not UTF-8 on the wire
    r = target.handle(b'{"id": "\\ud800", "cmd": "hello"}')
    assert r == {"id": None, "ok": False, "error": "bad_request", "message": r["message"]}
    r = target.handle(b'{"id": 5, "cmd": "\\ud800x", "\\u00e9": 1}')
    assert r["id"] == 5 and r["error"] == "unknown_cmd" and r["message"].isascii()
    r = target.handle(b'{"id": 6, "cmd": "hello", "' + b"k" * 300 + b'": 1}')
    assert r["error"] == "bad_request" and len(r["message"]) < 64


def test_a_bug_in_a_command_is_an_internal_error_with_output_safe(target):
    """Defence in depth: an exception a command did not expect is answered, not fatal."""
    sup = target.sup
    cls = type(sup)

    def broken(self, args):
        self.output.enable()                     # as if it failed half-way through a start
        raise ZeroDivisionError("boom")
    cls.cmd_broken = broken
    try:
        r = json.loads(sup.handle(b'{"id": 3, "cmd": "broken"}'))
        assert r == {"id": 3, "ok": False, "error": "internal_error", "message": "ZeroDivisionError: boom"}
        assert target.output_off()
    finally:
        del cls.cmd_broken
    target.hello()


def test_an_unfinished_line_is_dropped_with_an_event_and_the_next_request_is_answered(target):
    target.drain()
    target.emu.write(b'{"id": 1, "cmd": "sta')     # a host that died mid-line, or noise
    target.emu.run_for(1.0)
    target.emu.write(b'rt"')                        # still one line while bytes keep coming
    target.emu.run_for(1.9)
    assert not [m for m in target.drain() if m.get("ev") == "dropped"]
    target.emu.run_for(0.2)
    dropped = [m for m in target.drain() if m.get("ev") == "dropped"]
    assert dropped == [{"ev": "dropped", "reason": "partial_line", "bytes": 24}]
    assert target.hello()["ok"]                     # not swallowed by the stale bytes
    target.emu.write(b"x" * 2000)                   # an unfinished over-long line too
    target.emu.run_for(2.5)
    assert [m["bytes"] for m in target.drain() if m.get("ev") == "dropped"] == [target.max_line]
    assert target.hello()["ok"]


class _FakeConsole:
    def __init__(self, data):
        self.rx = list(data)
        self.out = []
        self.lines = self.bytes = 0      # what heap.py counts (console.py)

    def wait(self, ms):
        return bool(self.rx)

    def has_input(self):
        return bool(self.rx)

    def read_byte(self):
        return self.rx.pop(0)

    def write_line(self, text):
        self.out.append(json.loads(text))


def test_a_flood_of_input_cannot_hold_up_events_or_the_watchdog(target):
    """The main loop reads a bounded share of input per pass, then emits events and feeds."""
    sup_mod = target.emu.runtime.modules["myotone.supervisor"]
    hw = target.app._hw
    con = _FakeConsole(b'{"cmd": "hello"}\n' * 100)
    sup = sup_mod.Supervisor(hw.board, hw, con)
    fed = []
    sup.hw = type("Hw", (), {"feed_watchdog": lambda self: fed.append(1), "reset_cause": "x", "unit_id": "x",
                             "read_temp_raw": hw.read_temp_raw})()
    sup.ticks = 1
    sup.poll(0)
    replies = [m for m in con.out if "ev" not in m]
    assert len(replies) == sup_mod._POLL_LINES and [m["ev"] for m in con.out if "ev" in m] == ["state"]
    assert fed == [1]
    for _ in range(100):
        sup.poll(0)
    assert len([m for m in con.out if "ev" not in m]) == 100

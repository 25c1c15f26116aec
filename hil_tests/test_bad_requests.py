"""Out-of-range and malformed requests are refused, the device keeps serving,
and nothing bad input does turns the output on (SAFETY.md "Bad input")."""
import json

import pytest


def start_line(**fields):
    return {"cmd": "start", "program": "lift", "ua": 100, **fields}


def unplayable(lim, board):
    """A waveform inside SAFETY.md's envelope that this board's pulse back-end cannot time."""
    p = board["pulse"]
    if p["backend"] == "timer":           # off its tick grid
        return start_line(phase_us=p["tick_us"] * 5 // 2, hz=100, gap_us=0)
    if p["backend"] == "rmt":             # less dead time between opposite phases than it needs
        return start_line(gap_us=p.get("dead_us", 200) // 2)
    return start_line(gap_us=p.get("min_phase_us", 20) // 2)   # pio: shorter than its shortest segment


# (what, line or a function of (hello's limits, board file) giving the request, accepted error codes)
BAD = [
    ("not json", b"hello", {"bad_json"}),
    ("a json array", b"[1, 2]", {"bad_json"}),
    ("not utf-8", b'{"cmd": "hello\xff\xfe"}', {"bad_json"}),
    ("nested too deep", b'{"cmd": "hello", "x": [[[[[[1]]]]]]}', {"bad_json"}),
    ("too long", b'{"cmd": "hello", "pad": "' + b"x" * 2000 + b'"}', {"line_too_long"}),
    ("unknown command", {"cmd": "launch"}, {"unknown_cmd"}),
    ("cmd not a string", {"cmd": 7}, {"bad_request"}),
    ("id not int or str", {"id": [1], "cmd": "hello"}, {"bad_request"}),
    ("unknown field", start_line(evil=1), {"bad_request"}),
    ("missing ua", {"cmd": "start", "program": "lift"}, {"bad_request"}),
    ("ua as a string", start_line(ua="100"), {"bad_request"}),
    ("ua as a bool", start_line(ua=True), {"bad_request"}),
    ("ua as a float", start_line(ua=100.5), {"bad_request"}),
    ("ua not a number", b'{"cmd": "start", "program": "lift", "ua": NaN}', {"bad_json", "bad_request"}),
    ("ua above the limit", lambda lim, _: start_line(ua=lim["max_ua"] + 1), {"out_of_range"}),
    ("ua above the ceiling", lambda lim, _: start_line(ua=lim["ceiling_ua"] + 1), {"out_of_range"}),
    ("ua below the minimum", lambda lim, _: start_line(ua=lim["min_ua"] - 1), {"out_of_range"}),
    ("negative ua", start_line(ua=-100), {"out_of_range"}),
    ("too long a session", lambda lim, _: start_line(duration_s=lim["session_max_s"] + 1), {"out_of_range"}),
    ("zero duration", start_line(duration_s=0), {"out_of_range"}),
    ("unknown program", start_line(program="nope"), {"out_of_range"}),
    ("frequency too high", start_line(hz=1000.5), {"out_of_range"}),
    ("frequency too low", start_line(hz=0.05), {"out_of_range"}),
    ("phase too short", start_line(phase_us=19, hz=100), {"out_of_range", "timing_unsupported"}),
    ("timing the back-end cannot play", unplayable, {"timing_unsupported"}),
    ("telemetry too fast", start_line(telemetry_ms=1), {"out_of_range"}),
    ("hello with an argument", {"cmd": "hello", "x": 1}, {"bad_request"}),
]


def as_line(item, dut, lim):
    if callable(item):
        item = item(lim, dut.board)
    return item if isinstance(item, bytes) else json.dumps(item).encode()


def reply_to(dut, line, timeout_s=2.0):
    """Send a raw line and return the first reply (a message with "ok") to it."""
    since = dut.mark()
    dut.console.write(line + b"\n")
    end = dut.now_s() + timeout_s
    while True:
        past = dut.now_s() >= end
        if past:
            dut.drain()       # past the deadline, what had already come (a served board's time
        else:                 # runs on while this process is held up: dut.Dut.expect)
            dut.wait(0.02)
        replies = [m for m in dut.log[since:] if "ok" in m]
        if replies:
            return replies[0]
        if past:
            raise AssertionError(f"no reply to {line[:60]!r} within {timeout_s:g} s")


@pytest.mark.parametrize("what,item,codes", BAD, ids=[b[0].replace(" ", "_") for b in BAD])
def test_bad_request_is_refused_and_output_stays_off(dut, what, item, codes):
    lim = dut.request("hello")["limits"]
    since = dut.mark()
    r = reply_to(dut, as_line(item, dut, lim))
    assert r["ok"] is False and r["error"] in codes, r
    assert isinstance(r.get("message"), str) and r["message"]
    if r["error"] == "out_of_range" and what.startswith("ua"):
        assert f"{lim['min_ua']}..{lim['max_ua']}" in r["message"]       # names the allowed range
    assert dut.events("state", since) == [], "a refused request changed the session state"
    st = dut.status()                                                    # still serving
    assert st["state"] in ("idle", "done") and st["target_ua"] == 0 and st["fault"] is None


@pytest.mark.rig
def test_no_bad_request_turns_output_on_or_changes_a_running_session(dut):
    lim = dut.request("hello")["limits"]
    t0 = dut.now_s()
    for _, item, _ in BAD:
        assert reply_to(dut, as_line(item, dut, lim))["ok"] is False
    assert dut.rig.capture(t0).max_abs_ua == 0 and dut.rig.output_safe()
    dut.run_to_setpoint(200)
    t1 = dut.now_s()
    for _, item, _ in BAD:
        assert reply_to(dut, as_line(item, dut, lim))["ok"] is False
    assert dut.refusal("start", ua=lim["max_ua"], **dut.session_args())["error"] == "busy"
    dut.wait(0.5)
    st = dut.status()
    assert st["state"] == "run" and st["setpoint_ua"] == 200
    assert dut.rig.capture(t1).max_abs_ua <= 200 * 1.05 + 5

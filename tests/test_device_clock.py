"""The device's calendar clock (firmware/myotone/clock.py, the `clock_set` command):
it says whether it was ever set, the host sets it when it connects and it was not,
and a session record keeps one clock's start and end even when it is set mid-session."""
import json
import time

import pytest

from cli_helpers import Served, cli
from myotone.link import Link, set_clock_if_unset
from safety_helpers import Bench

RP2_POWER_ON_S = 1_609_459_200        # 2021-01-01: MicroPython's rp2 RTC when nothing set it
ESP32_POWER_ON_S = 946_684_800        # 2000-01-01: an ESP32's
VALID_FROM_S = 1_767_225_600          # clock.VALID_FROM_S
SET_S = 1_800_000_000                 # 2027-01-15T08:00:00Z


@pytest.mark.parametrize("board, power_on_s", [("pico-mcp4725", RP2_POWER_ON_S),
                                               ("esp32-devkit", ESP32_POWER_ON_S)])
def test_hello_says_the_clock_was_never_set_until_clock_set_sets_it(board, power_on_s):
    bench = Bench(board)
    try:
        h = bench.request("hello")
        assert h["clock_set"] is False and power_on_s <= h["time_s"] < power_on_s + 5, h
        r = bench.request("clock_set", time_s=SET_S)
        assert r["ok"] and r["time_s"] == SET_S and r["clock_set"] is True, r
        assert power_on_s <= r["was_s"] < power_on_s + 5
        bench.run(10)
        h = bench.request("hello")
        assert h["clock_set"] is True and SET_S + 10 <= h["time_s"] <= SET_S + 11, h
    finally:
        bench.close()


def test_clock_set_refuses_what_is_not_a_time_and_never_touches_the_output(bench):
    for value, code in ((VALID_FROM_S - 1, "out_of_range"), (4_102_444_801, "out_of_range"),
                        ("2027-01-15", "bad_request"), (1.8e9, "bad_request"), (None, "bad_request")):
        r = bench.request("clock_set", time_s=value)
        assert r["ok"] is False and r["error"] == code, (value, r)
    assert bench.request("clock_set")["error"] == "bad_request"
    assert bench.request("clock_set", time_s=SET_S, extra=1)["error"] == "bad_request"
    assert bench.request("hello")["clock_set"] is False          # nothing refused moved it
    assert bench.request("clock_set", time_s=SET_S)["ok"]
    assert bench.emu.plant.trace.max_abs_ua == 0 and bench.output_is_safe()


def test_a_clock_set_during_a_session_moves_its_record_start_with_it(bench):
    bench.start(ua=200, duration_s=20)
    bench.run(5)
    assert bench.request("clock_set", time_s=SET_S)["ok"]       # 5 s in, on the power-on clock
    bench.run(20)
    assert bench.events("log") == [{"ev": "log", "n": 1}]
    rec = bench.record()
    # one clock: the end on the new clock, the start moved as far, so the length is the session's
    assert SET_S - 6 <= rec["start_s"] <= SET_S - 4, rec["start_s"]
    assert 21 <= rec["end_s"] - rec["start_s"] <= 22                 # 20 s + the 1.5 s ramp-down


def test_a_port_whose_epoch_is_2000_still_speaks_unix_time(fw):
    """ESP32 MicroPython counts from 2000-01-01 (time.gmtime(0) says so): the protocol and
    the records use Unix time on every port, and the RTC gets the calendar date."""
    import calendar
    t = fw("time")
    unix_now = [SET_S]
    t.gmtime = lambda secs=None: time.gmtime((unix_now[0] - ESP32_POWER_ON_S if secs is None else secs)
                                             + ESP32_POWER_ON_S)[:8]
    t.time = lambda: unix_now[0] - ESP32_POWER_ON_S
    clock = fw("myotone.clock")
    assert clock.EPOCH_UNIX_S == ESP32_POWER_ON_S
    assert clock.now_s() == SET_S and clock.is_set()
    y, mo, d, wd, h, mi, s, sub = clock.rtc_tuple(SET_S)
    assert calendar.timegm((y, mo, d, h, mi, s)) == SET_S and wd == time.gmtime(SET_S).tm_wday and sub == 0
    unix_now[0] = ESP32_POWER_ON_S + 3                          # power-on: 2000-01-01
    assert clock.now_s() == ESP32_POWER_ON_S + 3 and not clock.is_set()


# ---- the host ------------------------------------------------------------------------

class _FakeLink:
    def __init__(self, hello):
        self.hello, self.sent = hello, []

    def request(self, cmd, **args):
        self.sent.append(cmd)
        return self.hello if cmd == "hello" else {"time_s": args["time_s"], "was_s": 0}


def test_the_host_sets_only_a_clock_the_device_says_is_unset():
    for hello, sent in (({"clock_set": True}, ["hello"]), ({}, ["hello"]),     # set; a firmware that does not say
                        ({"clock_set": False}, ["hello", "clock_set"])):
        link = _FakeLink(hello)
        r = set_clock_if_unset(link)
        assert link.sent == sent and (r is None) == (sent == ["hello"])


def test_the_first_command_that_connects_sets_an_unset_clock_and_records_carry_real_time():
    served = Served(speed=10)
    try:
        with Link.open(served.url) as link:
            assert link.request("hello", timeout_s=5)["clock_set"] is False
        before = int(time.time())
        r = cli("status", "--port", served.url)
        assert r.exit_code == 0 and "device clock set to" in r.stderr and "it was unset: 2021-01-01" in r.stderr, \
            r.output
        assert r.stdout.startswith("idle")                              # stdout stays the command's
        with Link.open(served.url) as link:
            h = link.request("hello", timeout_s=5)
        assert h["clock_set"] is True and h["time_s"] >= before
        r = cli("session", "start", "--port", served.url, "--program", "glow", "--duration-s", "1", "--json")
        assert r.exit_code == 0 and "device clock" not in r.stderr, r.output     # set already: left alone
        assert json.loads(r.stdout)["ok"]
        from test_cli_session import wait_state
        wait_state(served.url, ("done",))
        with Link.open(served.url) as link:
            newest = link.request("log_list", timeout_s=5)["records"][-1]
        assert newest["start_s"] >= h["time_s"]
    finally:
        served.close()

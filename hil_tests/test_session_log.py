"""The session log: one consistent record per session, kept across resets.

Protocol (docs/protocol.md): `log_list` -> {"records": [{"n", "start_s",
"end_s", "program", "faults"}]}, `log_read` {"n"} -> {"record": {...,
"charge_uc", "avg_ua", ...}}. On firmware without these commands the tests
skip ("firmware lacks log_list"), found out at run time.
"""
import pytest


RAMP_DOWN_S = 1.5


def records(dut):
    return dut.request("log_list")["records"]


def newest(recs):
    return max(recs, key=lambda r: r["n"]) if recs else None


def run_session(dut, ua, duration_s, **args):
    before = records(dut)
    since = dut.mark()
    dut.start(ua, duration_s=duration_s, **args)
    return before, since


def test_a_session_leaves_one_consistent_record(dut):
    dut.require_cmd("log_list", "log_read")
    before, since = run_session(dut, 200, 4)
    dut.expect("state", 12, since=since, state="done")
    after = records(dut)
    rec = newest(after)
    assert rec is not None and (not before or rec["n"] > newest(before)["n"]), (before, after)
    assert [r for r in after if r not in before] == [rec], "one session, one new record"
    assert rec["program"] == "lift" and rec["faults"] == []
    assert 4 <= rec["end_s"] - rec["start_s"] <= 4 + RAMP_DOWN_S + 1
    full = dut.request("log_read", timeout_s=15, n=rec["n"])["record"]
    for key in ("start_s", "end_s", "program", "faults"):
        assert full[key] == rec[key], key
    assert full["charge_uc"] > 0
    assert 0 < full["avg_ua"] <= 200 * 1.05 + 5


def test_a_faulted_session_records_its_fault(dut):
    dut.require_cmd("log_list", "log_read")
    _, since = run_session(dut, 200, 60, heartbeat=True)    # and never beat: heartbeat_lost
    dut.expect("fault", 12, since=since, reason="heartbeat_lost")
    dut.wait(0.5)
    assert newest(records(dut))["faults"] == ["heartbeat_lost"]


def test_every_record_reads_back_and_survives_a_reset(dut):
    dut.require_cmd("log_list", "log_read")
    _, since = run_session(dut, 100, 2)
    dut.expect("state", 10, since=since, state="done")
    listed = records(dut)
    assert listed
    for rec in listed:
        full = dut.request("log_read", timeout_s=15, n=rec["n"])["record"]
        assert full["start_s"] <= full["end_s"] and full["program"] == rec["program"]
    assert len({r["n"] for r in listed}) == len(listed), "record numbers repeat"
    dut.interrupt()
    dut.soft_reset()
    dut.wait(1.5)
    assert records(dut) == listed
    assert dut.refusal("log_read", n=newest(listed)["n"] + 1000)["error"] in ("out_of_range", "not_found")


@pytest.mark.rig
def test_recorded_charge_matches_the_rig(dut):
    dut.require_cmd("log_list", "log_read")
    t0 = dut.now_s()
    _, since = run_session(dut, 300, 5)
    dut.expect("state", 12, since=since, state="done")
    moved_uc = dut.rig.capture(t0).charge_uc()
    rec = newest(records(dut))
    full = dut.request("log_read", timeout_s=15, n=rec["n"])["record"]
    on_s = rec["end_s"] - rec["start_s"]
    assert abs(full["charge_uc"] - moved_uc) <= 0.05 * moved_uc + 5 * on_s, (full["charge_uc"], moved_uc)

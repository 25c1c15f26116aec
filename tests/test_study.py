"""Blinded study arms on the device (programs.py `study`, report.py, filecmds.py): a sham
and an active arm show the same in every output of the protocol, event for event, and
their records open only with the study's token."""
import pytest

from safety_helpers import Bench

TOKEN = "k3y0f7h1s5tudy"
LIGHT = {"red_pct": 50}
WAVE = {"hz": 10, "phase_us": 40000, "gap_us": 200}
# the same length and light; the active arm has current throughout (and ramps down at
# its end), the sham for 8 s only, then none: the pairing of the built-in sham and sculpt
ACTIVE = {"phases": [{"duration_s": 20, "current_pct": 100, **WAVE, **LIGHT},
                     {"duration_s": 20, "current_pct": 80, "hz": 100, "phase_us": 2000, "gap_us": 500, **LIGHT}]}
SHAM = {"phases": [{"duration_s": 8, "current_pct": 100, **WAVE, **LIGHT},
                   {"duration_s": 32, **LIGHT}]}


def blinded(prog):
    return {"description": "blinded study arm", **prog, "study": TOKEN}


def run_arm(code, prog, ua=200):
    """Everything the protocol says about one session of `prog` stored as `code`."""
    b = Bench()
    try:
        assert b.request("program_write", name=code, program=blinded(prog))["ok"]
        seen = {"programs": [p for p in b.request("programs")["programs"] if p["name"] == code],
                "read": b.request("program_read", name=code), "start": b.request("start", program=code, ua=ua)}
        seen["status"] = []
        for _ in range(7):                       # every 5 s, across the sham's end of current at 8 s
            b.run(5)
            seen["status"].append(b.request("status"))
        # not in the last 1.5 s + a pair: the active arm ramps down there, the sham is done
        # (the limit docs/guide.md#blinded-studies states)
        b.run(10)
        seen["status"].append(b.request("status"))
        seen["events"] = [m for _, m in b.log if "ev" in m and m["ev"] != "ready"]
        seen["list"] = b.request("log_list")["records"]
        seen["record"] = b.request("log_read", n=1)
        seen["wrong_key"] = b.request("log_read", n=1, study="not-the-key")
        seen["unblinded"] = b.request("log_read", n=1, study=TOKEN)
        seen["truth_uc"] = b.emu.plant.trace.abs_charge_nc / 1000
        return seen
    finally:
        b.close()


def shown(value):
    """What a user may compare: the message less its request id, device time and code."""
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items() if k not in ("id", "t_ms", "name", "program")}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


@pytest.fixture(scope="module")
def arms():
    return run_arm("study-a", SHAM), run_arm("study-b", ACTIVE)


def test_sham_and_active_show_the_same_in_every_output(arms):
    sham, active = arms
    for key in ("programs", "read", "start", "status", "events", "list", "record", "wrong_key"):
        assert shown(sham[key]) == shown(active[key]), key
    # and what they show is the code, the setpoint asked for, time and light
    assert active["start"]["setpoint_ua"] == 200 and active["start"]["state"] == "run"
    assert [e["state"] for e in active["events"] if e["ev"] == "state"] == ["idle", "run", "done"]
    assert active["status"][-1]["state"] == "done"
    mid = active["status"][3]
    assert mid["program"] == "study-b" and mid["blinded"] is True and mid["led_pct"] == 50
    assert all(mid[k] is None for k in ("target_ua", "measured_ua", "impedance_ohm", "phase", "output"))
    tele = [e for e in active["events"] if e["ev"] == "telemetry"]
    assert tele and all(t["measured_ua"] is None and t["output_ua"] is None for t in tele)
    assert active["programs"][0]["phases"] is None and active["read"]["program"]["hz"] is None
    head = active["record"]["record"]
    assert head["blinded"] is True and "samples" not in head and "charge_uc" not in head
    assert head["end_s"] - head["start_s"] == 40                # the session's time in both arms


def test_the_study_token_opens_the_record_and_it_tells_the_arms_apart(arms):
    sham, active = arms
    assert shown(sham["wrong_key"]) == shown(sham["record"])       # a wrong token: the head alone
    for arm in arms:
        rec = arm["unblinded"]["record"]
        assert rec["study"] == TOKEN and rec["charge_uc"] == pytest.approx(arm["truth_uc"], rel=0.02)
        assert rec["off_s"] >= rec["end_s"]
    assert sham["unblinded"]["record"]["charge_uc"] < 0.4 * active["unblinded"]["record"]["charge_uc"]


def test_a_blinded_arm_refuses_without_naming_its_phases(bench):
    prog = blinded(ACTIVE)
    assert bench.request("program_write", name="study-b", program=prog)["ok"]
    r = bench.request("start", program="study-b")
    assert r["error"] == "bad_request" and "blinded study arm always takes one" in r["message"]
    r = bench.request("start", program="study-b", ua=11)           # 80 % of 11 µA is under the minimum
    assert r["error"] == "out_of_range" and "phase" not in r["message"] and "cannot run at 11 uA" in r["message"]
    r = bench.request("start", program="study-b", ua=200, duration_s=10)
    assert r["error"] == "bad_request" and "runs as written" in r["message"]
    r = bench.request("measure", program="study-b", ua=200)
    assert r["error"] == "bad_request" and "would unblind" in r["message"]
    assert bench.emu.plant.trace.max_abs_ua == 0


@pytest.mark.parametrize("study", ["short", "UPPERCASE1", "has space1", 12345678, "x" * 17])
def test_a_study_token_is_a_name_of_8_to_16_characters(bench, study):
    r = bench.request("program_write", name="study-b", program={**ACTIVE, "study": study})
    assert r["ok"] is False and r["error"] == "bad_request", r

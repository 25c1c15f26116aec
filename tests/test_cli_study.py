"""`myotone study create|unblind` (host/myotone/study.py): arms under coded names from the
command line, a key file that alone unblinds, and arms that would be told apart refused."""
import json

import pytest

from cli_helpers import Served, cli, one_line_error
from myotone.link import Link
from myotone.study import mismatches, perceived
from test_cli_session import wait_state


@pytest.fixture(scope="module")
def served():
    s = Served(speed=10)
    yield s
    s.close()


def test_the_builtin_sham_matches_sculpt_and_not_lift():
    with Link.open("emu") as link:
        prog = {n: link.request("program_read", name=n)["program"] for n in ("sham", "sculpt", "lift")}
    assert perceived(prog["sham"]) == perceived(prog["sculpt"]) == {"duration_s": 570, "light": [[570, 60, 0]]}
    assert mismatches({"A": prog["sham"], "B": prog["sculpt"]}) == []
    differ = mismatches({"A": prog["sham"], "B": prog["lift"]})
    assert len(differ) == 2 and "lasts 600 s" in differ[0] and "light" in differ[1]


def test_arms_told_apart_are_refused_and_nothing_is_written(tmp_path):
    key = tmp_path / "key.json"
    one_line_error(cli("study", "create", str(key), "--arm", "A=sham", "--arm", "B=lift", "--port", "emu"),
                   "can be told apart without the key", "lasts 600 s", "--allow-mismatch")
    assert not key.exists()
    one_line_error(cli("study", "create", str(key), "--arm", "A=sham", "--port", "emu"), "at least two arms")
    one_line_error(cli("study", "create", str(key), "--arm", "sham", "--arm", "B=x", "--port", "emu"),
                   "LABEL=PROGRAM")
    one_line_error(cli("study", "create", str(key), "--arm", "A=sham", "--arm", "B=nope", "--port", "emu"),
                   "arm B", "no program 'nope'")
    assert not key.exists()
    r = cli("study", "create", str(key), "--arm", "A=sham", "--arm", "B=lift", "--allow-mismatch", "--port", "emu")
    assert r.exit_code == 0 and "warning: the arms differ" in r.stdout, r.output
    assert len(json.loads(key.read_text())["perceivable_differences"]) == 2


def test_a_study_from_create_to_unblind(served, tmp_path):
    key = tmp_path / "study-key.json"
    r = cli("study", "create", str(key), "--arm", "A=sham", "--arm", "B=sculpt", "--port", served.url)
    assert r.exit_code == 0 and "stored study-a, study-b" in r.stdout, r.output
    k = json.loads(key.read_text())
    assert [(a["arm"], a["code"], a["program"]) for a in k["arms"]] == [("A", "study-a", "sham"),
                                                                        ("B", "study-b", "sculpt")]
    one_line_error(cli("study", "create", str(key), "--arm", "A=sham", "--arm", "B=sculpt", "--port", served.url),
                   "never overwritten")
    r = cli("programs", "list", "--port", served.url)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("study-")]
    assert len(lines) == 2 and all("blinded study arm" in ln and "Hz" not in ln for ln in lines), r.stdout
    r = cli("session", "start", "--port", served.url, "--program", "study-a", "--ua", "150")
    assert r.exit_code == 0 and r.stdout.startswith("started study-a at 150 µA for 570 s"), r.output
    wait_state(served.url, ("run",))
    r = cli("status", "--port", served.url)
    assert "blinded study arm: current not shown" in r.stdout and "sham" not in r.stdout and "phase" not in r.stdout
    assert cli("session", "stop", "--port", served.url).exit_code == 0
    wait_state(served.url, ("done",))
    with Link.open(served.url) as link:
        n = link.request("log_list", timeout_s=5)["records"][-1]["n"]
    one_line_error(cli("logs", "export", str(n), "--port", served.url), "blinded study arm's record",
                   "myotone study unblind")
    out_dir = tmp_path / "unblinded"
    r = cli("study", "unblind", str(key), "--dir", str(out_dir), "--port", served.url)
    assert r.exit_code == 0 and "study-a = arm A: sham" in r.stdout and "(arm A, sham)" in r.stdout, r.output
    rec = json.loads((out_dir / f"myotone-log-{n:04d}.json").read_text())
    assert rec["arm"] == "A" and rec["arm_program"] == "sham" and rec["samples"] and rec["charge_uc"] > 0


def test_the_watch_lines_of_a_blinded_arm_say_so_and_show_no_null():
    from myotone.watch import Summary, telemetry_line
    t = {"ev": "telemetry", "state": "run", "setpoint_ua": 150, "target_ua": None, "measured_ua": None,
         "impedance_ohm": None, "baseline_ohm": None, "output_ua": None, "led_pct": 60, "elapsed_s": 12,
         "blinded": True}
    line = telemetry_line(t)
    assert "set  150 µA" in line and "current not shown" in line and "None" not in line and "LED  60 %" in line
    s = Summary(final_state="done", telemetry=[t, t, dict(t, state="done", led_pct=0)])
    assert s.as_dict()["blinded"] is True and s.as_dict()["mean_measured_ua"] is None
    assert s.text().startswith("session done, blinded study arm") and "None" not in s.text()

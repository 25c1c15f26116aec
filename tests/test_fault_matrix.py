"""Fault matrix: every emulator fault x every session phase.

For each cell the expected outcome is written out below (and in
docs/safety.md, "Fault matrix"); the test injects the fault, measures on
the plant and the MCU's pins, checks the latched reason and that the
device works again once the fault is gone. Sessions are host-driven
(`"heartbeat": true`, the host heartbeats every second) so that
`host_disconnect` has its meaning.

Phases: `idle` (fresh boot, no session yet: the watchdog is not armed),
`ramp` (1 s into the ramp), `run` (at the setpoint), `ramp_down` (0.5 s
after stop), `done` (idle after a session: the watchdog is armed),
`led_only` (an LED-only program, where the firmware has one: the LED's
light is measured instead of the current). The session log, where the
firmware has one, must hold the session's record with its fault.
"""
import pytest

from fault_cell import MS, SESSION, Cell
from myotone.emulator import Emulator


def nothing(why):
    return ("nothing", None, None, None, why)


def refused(code, why):
    return ("refused", code, None, None, why)


def trip(reason, bound_ms, onset, why):
    return ("trip", reason, bound_ms, onset, why)


def reset(bound_ms, why):
    return ("reset", None, bound_ms, "fault", why)


def ramp_down_then_latch(reason, why):
    # 5 s timeout, the 1.5 s ramp-down, then the pair under way completes (lift: one 100 ms period)
    return ("ramp_down_latch", reason, 5000 + 1500 + 100 + 20, "heartbeat", why)


_NO_SESSION = "no session: nothing to do, output stays off"
_SESSION_ENDS = "the session ramps down to its end as asked"

EXPECTED = {
    "electrode_off": {
        "idle": nothing(_NO_SESSION), "done": nothing(_NO_SESSION),
        "ramp": trip("contact_lost", 10, "bridge_on", "open electrode: stop <= 10 ms once the bridge drives it"),
        "run": trip("contact_lost", 10, "bridge_on", "as in ramp"),
        "ramp_down": trip("contact_lost", 10, "bridge_on", "as in ramp: contact is watched until the end"),
        "led_only": nothing("no microcurrent: the electrodes do not matter to the LED"),
    },
    "electrode_short": {
        "idle": nothing(_NO_SESSION), "done": nothing(_NO_SESSION),
        "ramp": nothing("constant-current source into 0 ohm: the current stays the setpoint, <= the limit"),
        "run": nothing("as in ramp"), "ramp_down": nothing(_SESSION_ENDS),
        "led_only": nothing("no microcurrent"),
    },
    "dac_stuck_high": {
        "idle": nothing("the rail and the bridge are off: a stuck DAC drives nothing"),
        "done": nothing("as idle"),
        "ramp": trip("over_current", 2, "over_limit", "> limit x 1.1 + 10 uA: the current off <= 2 ms on the plant "
                     "(the over-current latch gates the bridge off in 10 us; the firmware cuts the rail "
                     "when it reads the latch, <= 20 ms)"),
        "run": trip("over_current", 2, "over_limit", "as in ramp"),
        "ramp_down": trip("over_current", 2, "over_limit", "as in ramp"),
        "led_only": nothing("no microcurrent: rail and bridge off"),
    },
    "dac_off_bus": {
        "idle": nothing("the DAC is written only for a session: nothing to do"),
        "done": nothing("as idle"),
        "ramp": trip("dac_fault", 110, "fault", "the next DAC write (the next pair, lift: 100 ms) is NACKed: "
                     "rail and bridge off at once; the DAC keeps its code, with no current path"),
        "run": trip("dac_fault", 110, "fault", "at the setpoint the DAC is asked to answer (a read) every "
                    "100 ms (OutputStage.verify_dac): the NACK is a fault, rail and bridge off"),
        "ramp_down": trip("dac_fault", 110, "fault", "as in ramp: the ramp-down writes the DAC every pair"),
        "led_only": nothing("no microcurrent: the DAC is not written"),
    },
    "adc_stuck": {
        "idle": nothing("the sense is judged during sessions"), "done": nothing("as idle"),
        "ramp": trip("sense_fault", 100, "fault", "stuck reading: stop <= 100 ms"),
        "run": trip("sense_fault", 100, "fault", "as in ramp"),
        "ramp_down": trip("sense_fault", 100, "fault", "as in ramp"),
        "led_only": nothing("no current to sense (a stuck thermistor reading is a known limit)"),
    },
    "bridge_asymmetry": {
        "idle": nothing(_NO_SESSION), "done": nothing(_NO_SESSION),
        "ramp": trip("charge_imbalance", 1000, "window", "stop <= 1 s after the 10 s window exceeds 2 %"),
        "run": trip("charge_imbalance", 1000, "window", "as in ramp"),
        "ramp_down": nothing("the last second of a ramp-down cannot tip a 10 s window past 2 %: "
                             "the session ends as asked (a trip would be checked like ramp's)"),
        "led_only": nothing("no microcurrent"),
    },
    "bridge_leg_short": {
        "idle": nothing(_NO_SESSION), "done": nothing(_NO_SESSION),
        "ramp": trip("charge_imbalance", 1000, "fault", "a DC fault (POL_B phases bypass the electrodes while "
                     "the sense reads full): the polarity comparator disagrees with the bridge, stop <= 1 s"),
        "run": trip("charge_imbalance", 1000, "fault", "as in ramp"),
        "ramp_down": trip("charge_imbalance", 1000, "fault", "as in ramp: judged until the end"),
        "led_only": nothing("no microcurrent"),
    },
    "bridge_leg_open": {
        "idle": nothing(_NO_SESSION), "done": nothing(_NO_SESSION),
        "ramp": trip("contact_lost", 10, "pol_b_on", "unipolar pulses (POL_B's diagonal has no path): the source "
                     "sits at its rail in POL_B phases, as with an open electrode: stop <= 10 ms once it is driven"),
        "run": trip("contact_lost", 10, "pol_b_on", "as in ramp"),
        "ramp_down": trip("contact_lost", 10, "pol_b_on", "as in ramp: contact is watched until the end"),
        "led_only": nothing("no microcurrent"),
    },
    "firmware_hang": {
        "idle": ("hang_unarmed", None, None, None,
                 "the watchdog is armed with the first session (mpremote keeps its REPL before): "
                 "output is off and stays off; the device answers again after a reset"),
        "done": reset(1000, "watchdog reset <= 1 s; boots into the safe state"),
        "ramp": reset(1000, "watchdog reset <= 1 s (the tick keeps trips alive meanwhile); never resumed"),
        "run": reset(1000, "as in ramp"), "ramp_down": reset(1000, "as in ramp"),
        "led_only": reset(1000, "as in ramp: the LED is off from the reset on"),
    },
    "brownout": {p: reset(0, "the MCU resets at once: safe state, reset cause reported (ESP32), never resumed")
                 for p in ("idle", "done", "ramp", "run", "ramp_down", "led_only")},
    "over_temp": {
        "idle": refused("over_temp", "start refused while >= 41 C; nothing latched"),
        "done": refused("over_temp", "as idle"),
        "ramp": trip("over_temp", 1000, "fault", "skin side >= 41 C: stop <= 1 s"),
        "run": trip("over_temp", 1000, "fault", "as in ramp"),
        "ramp_down": trip("over_temp", 1000, "fault", "as in ramp"),
        "led_only": trip("over_temp", 1000, "fault", "the LED stops too"),
    },
    "thermistor_open": {
        "idle": refused("temp_sensor_fault", "start refused while the skin temperature is unknown; nothing latched"),
        "done": refused("temp_sensor_fault", "as idle"),
        "ramp": trip("temp_sensor_fault", 1000, "fault", "temperature unknown, over_temp could not trip: stop <= 1 s"),
        "run": trip("temp_sensor_fault", 1000, "fault", "as in ramp"),
        "ramp_down": trip("temp_sensor_fault", 1000, "fault", "as in ramp"),
        "led_only": trip("temp_sensor_fault", 1000, "fault", "the LED stops too"),
    },
    "vbus": {
        "idle": refused("charging", "start refused while charging; nothing latched"),
        "done": refused("charging", "as idle"),
        "ramp": trip("charging", 2, "fault", "charger present: output off at the next tick"),
        "run": trip("charging", 2, "fault", "as in ramp"),
        "ramp_down": trip("charging", 2, "fault", "as in ramp"),
        "led_only": trip("charging", 2, "fault", "as in ramp"),
    },
    "host_disconnect": {
        "idle": nothing("no session"), "done": nothing("no session"),
        "ramp": ramp_down_then_latch("heartbeat_lost", "5 s without heartbeat: ramp-down, then latched"),
        "run": ramp_down_then_latch("heartbeat_lost", "as in ramp"),
        "ramp_down": nothing("the ramp-down (1.5 s) ends before the 5 s heartbeat timeout"),
        "led_only": ramp_down_then_latch("heartbeat_lost", "as in ramp"),
    },
    "flow_stuck_high": {
        "idle": nothing("the rail (the comparators' supply) is off: a stuck comparator reads low"),
        "done": nothing("as idle"),
        "ramp": trip("sense_fault", 100, "fault", "FLOW_A reads high with the bridge off (it would hide a DC "
                     "fault the POL_A way): 10 such samples in the off times"),
        "run": trip("sense_fault", 100, "fault", "as in ramp"),
        "ramp_down": trip("sense_fault", 100, "fault", "as in ramp: judged until the end"),
        "led_only": nothing("no microcurrent: the rail is off"),
    },
    "oc_latch_dead": {p: nothing("found at the next switch-on's latch test (oc_latch_fault, test_oc_latch); "
                                 "until then the firmware's own over_current is all there is (test_safety's "
                                 "stuck-DAC tests run that way)")
                      for p in ("idle", "done", "ramp", "run", "ramp_down", "led_only")},
    "oc_latch_stuck": {
        "idle": nothing("no session: the latch is read at the next switch-on (oc_latch_fault: test_oc_latch)"),
        "done": nothing("as idle"),
        "ramp": trip("over_current", 20, "fault", "the bridge gated off: the firmware reads the latch set "
                     "(100 Hz bookkeeping) and cuts; it cannot tell a stuck latch from an over-current"),
        "run": trip("over_current", 20, "fault", "as in ramp"),
        "ramp_down": trip("over_current", 20, "fault", "as in ramp"),
        "led_only": nothing("no microcurrent: the bridge is not driven"),
    },
    "power_loss": {p: reset(0, "output dead at the cut; power-on boots into the safe state, never resumed")
                   for p in ("idle", "done", "ramp", "run", "ramp_down", "led_only")},
}
PHASES = ("idle", "ramp", "run", "ramp_down", "done", "led_only")
LIMIT_UA = 500
OVER_CURRENT_UA = LIMIT_UA * 1.1 + 10


def test_the_table_covers_every_fault_and_phase():
    assert set(EXPECTED) == set(Emulator.FAULTS)
    for fault, row in EXPECTED.items():
        assert set(row) == set(PHASES), fault


def _observe_s(kind):
    return {"ramp_down_latch": 8.0, "hang_unarmed": 3.0}.get(kind, 2.0)


def _onset_ns(cell, onset):
    if onset == "fault":
        return cell.t_fault
    if onset == "bridge_on":
        return cell.t_fault if cell.bridge_on_at(cell.t_fault) else cell.first_bridge_on_ns()
    if onset == "pol_b_on":                    # POL_B driven: the polarity whose path is open
        return cell.t_fault if cell.bridge_on_at(cell.t_fault, "pol_b") else cell.first_bridge_on_ns("pol_b")
    if onset == "over_limit":
        return cell.onset_over_ns(OVER_CURRENT_UA)
    if onset == "window":                      # the plant's 10 s window first above 2 %
        t = cell.t_fault
        while cell.window_ratio_ns(t) <= 0.02:
            t += 10 * MS
            assert t < cell.emu.clock.now_ns, "the window never exceeded 2 % before the cut"
        return t
    if onset == "heartbeat":                  # the last heartbeat the device got, before the cut-off
        return cell.last_heartbeat_ns
    raise AssertionError(onset)


def check_session_log(cell, fault, phase, kind, code):
    """The session log (where the firmware has one): the session's record, with its fault.

    Read as the host would (`log_list`); skipped on firmware without a log.
    A session cut short by a reset (watchdog, brown-out, power loss) has no
    record: the record is written from the main loop when a session ends.
    """
    if fault in ("host_disconnect", "power_loss", "brownout") and cell.request("hello") is None:
        cell.emu.set_fault(fault, False)
        cell.run(0.3)
    r = cell.request("log_list")
    if r is None or r.get("error") == "unknown_cmd":
        return
    assert r["ok"], r
    records = r["records"]
    assert all("error" not in rec for rec in records), records
    had_session = phase != "idle"
    if not had_session or kind in ("reset", "hang_unarmed"):
        return
    if kind in ("nothing", "refused") and phase in ("ramp", "run", "led_only"):
        return                                      # still running: its record comes at its end
    assert records, f"no session log record after {fault} in {phase}"
    last = records[-1]
    if kind in ("trip", "ramp_down_latch"):
        assert code in last["faults"], (code, last)
    else:
        assert last["faults"] == [], last


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("fault", Emulator.FAULTS)
def test_fault_in_phase(fault, phase):
    kind, code, bound_ms, onset, why = EXPECTED[fault][phase]
    cell = Cell()
    try:
        if phase == "led_only" and not cell.led_only_program():
            pytest.skip("this firmware has no LED-only program (the LED channel is issue #8)")
        cell.enter(phase)
        cell.inject(fault)
        cell.run(_observe_s(kind), heartbeat=True)
        t_end = cell.emu.clock.now_ns
        faults = [m["reason"] for m in cell.events("fault", cell.t_fault)]
        resets = [(t, c) for t, c in cell.emu.mcu.resets if t >= cell.t_fault]

        if kind in ("nothing", "refused"):
            assert faults == [] and resets == [], why
            if fault == "host_disconnect":                # back, to ask (what was said meanwhile is lost)
                cell.emu.set_fault(fault, False)
            if phase in ("ramp", "run"):               # the session goes on, within the limit
                assert cell.emu.plant.hv_on and cell.max_ua_after_fault() <= SESSION["ua"] + 1, why
            elif phase == "led_only":                  # the light goes on, no current
                assert cell.led_on() and cell.max_ua_after_fault() == 0, why
            elif phase == "ramp_down":
                assert cell.request("status")["state"] == "done" and cell.output_safe(), why
            else:
                assert cell.max_ua_after_fault() == 0 and cell.output_safe(), why
            if kind == "refused":
                r = cell.request("start", **SESSION)
                assert r["ok"] is False and r["error"] == code, why
                assert cell.request("status")["fault"] is None, "a refused start latches nothing"

        elif kind == "trip":
            assert faults[:1] == [code], (faults, why)
            cut = cell.led_off_since_ns() if phase == "led_only" else cell.cut_ns()
            t_onset = _onset_ns(cell, onset)
            assert cut is not None and t_onset is not None
            if fault == "dac_stuck_high":          # the current is off before the firmware's rail cut
                assert cut - t_onset <= 20 * MS, f"the rail cut {(cut - t_onset) / MS:.2f} ms after onset"
                cut = cell.off_since_ns()
            assert cut - t_onset <= bound_ms * MS, f"cut {(cut - t_onset) / MS:.2f} ms after onset: {why}"
            if fault == "dac_off_bus":            # the DAC cannot be zeroed: no current path instead
                assert cell.rail_and_bridge_off() and cell.off_since_ns() <= cut
                assert cell.request("fault_clear")["error"] == "condition_present", "the DAC still does not answer"
            else:
                assert cell.output_safe() and cell.off_since_ns() <= cut
            if fault == "dac_stuck_high":
                assert cell.max_ua_after_fault() <= cell.board["hw_limit_ua"]
            status = cell.request("status")
            assert status["state"] == "fault" and status["fault"] == code
            assert cell.request("start", **SESSION)["error"] == "faulted"      # latched

        elif kind == "reset":
            if fault == "power_loss":
                cuts = cell.emu.faults.cuts
                assert cuts and cuts[0] - cell.t_fault <= bound_ms * MS
                assert cell.current_ua() == 0 and not cell.emu.mcu.powered
                cell.emu.set_fault("power_loss", False)           # power back
                cell.run(0.5)
                t_cut = cuts[0]
            else:
                assert resets, why
                t_cut = resets[0][0]
                assert t_cut - cell.t_fault <= bound_ms * MS, f"reset {(t_cut - cell.t_fault) / MS:.0f} ms after"
            assert cell.off_since_ns() <= max(t_cut, cell.t_fault) + 1 * MS, why
            assert cell.led_off_since_ns() <= max(t_cut, cell.t_fault) + 1 * MS, "the LED outlived the reset"
            assert cell.output_safe()
            ready = cell.events("ready", cell.t_fault)
            assert ready, "no boot after the reset"
            want = {"firmware_hang": "watchdog", "brownout": "power_on", "power_loss": "power_on"}[fault]
            assert ready[-1]["reset_cause"] == want
            status = cell.request("status")
            assert status["state"] == "idle" and status["reset_cause"] == want, "a reset never resumes a session"

        elif kind == "hang_unarmed":
            assert resets == [] and cell.request("hello") is None, "hung, and no watchdog armed yet"
            assert cell.max_ua_after_fault() == 0 and cell.output_safe(), why

        elif kind == "ramp_down_latch":
            cut = cell.led_off_since_ns() if phase == "led_only" else cell.cut_ns()
            t_hb = _onset_ns(cell, onset)
            assert cut is not None and 5000 * MS < cut - t_hb <= bound_ms * MS, why
            if phase != "led_only":
                early = cell.peak_ua_between(cut - 1300 * MS, cut - 900 * MS)
                late = cell.peak_ua_between(cut - 500 * MS, cut - 100 * MS)
                assert SESSION["ua"] > early > late > 0, f"a ramp-down, not a cut: {early} then {late} uA"
            assert cell.output_safe()
            cell.emu.set_fault(fault, False)                      # the host comes back and asks
            status = cell.request("status")
            assert status["fault"] == code and status["state"] == "fault"

        check_session_log(cell, fault, phase, kind, code)

        # whatever happened, the device works again once the fault is gone
        if fault != "power_loss" and fault != "brownout":
            cell.emu.set_fault(fault, False)
        if kind == "hang_unarmed":                        # no watchdog yet: it takes a power cycle
            cell.emu.set_fault("power_loss")
            cell.emu.set_fault("power_loss", False)
        cell.run(0.2)
        assert cell.request("hello")["ok"]
        status = cell.request("status")
        if status["state"] in ("ramp", "run", "ramp_down"):
            cell.request("stop")
            cell.run(2.0, heartbeat=True)
        if status["fault"] is not None:
            assert cell.request("fault_clear")["ok"]
        r = cell.request("start", **SESSION)
        assert r["ok"], r
        cell.run(0.5, heartbeat=True)
        assert cell.states(t_end)[-1] == "ramp" and cell.emu.plant.hv_on
    finally:
        cell.close()

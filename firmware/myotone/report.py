# What the device says about itself: the `hello` and `status` replies and
# the telemetry event (main loop only; floats and allocation are fine here).
#
# A blinded study arm (programs.py) running, or the last to run, shows only
# what its arms share: the code, the setpoint asked for, time, light,
# temperature, faults. Its phase, the current's target and measurement, the
# impedance, the output stage and every state between the start and the end
# (a sham's current ramps down mid-session) are not shown: the state reads
# `run` throughout. The supervisor, the monitor and the log see everything.
from myotone import VERSION, PROTOCOL, clock, limits, thermal
from myotone import protocol as P
from myotone import session as S
from myotone import stage as ST

_ADC_FULL = 65535


def blinded(sup):
    """The running (or last) session is a blinded study arm's (until the next begins)."""
    return sup.blind_ua is not None


def state_shown(sup, code):
    """The name of session state `code` as the host may see it."""
    if (code == S.RAMP or code == S.RAMP_DOWN) and blinded(sup):
        return "run"
    return S.NAMES[code]


def setpoint_shown(sup):
    """The phase's setpoint; for a blinded arm the session's, the same in every phase."""
    if sup.blind_ua is not None:
        return sup.blind_ua
    return sup.session.setpoint_ua


def _temp_c(sup):
    """The skin-side temperature, or None when there is none to give: no reading yet
    (the supervisor starts at full scale) or the ADC at either end (an open or a
    shorted thermistor, a `condition` of its own), which no skin temperature reads."""
    raw = sup.temp_raw
    if raw <= 0 or raw >= _ADC_FULL:
        return None
    return round(thermal.c_for_raw(sup.board["thermistor"], raw), 1)


def _measured(sup):
    """(measured_ua, impedance_ohm): the last period's means while the output stage is
    not off; 0, 0 once it is (after a cut or the end, no current flows, whatever the
    last period measured before it)."""
    if sup.stage.state == ST.OFF:
        return 0, 0
    return sup.last_ua, sup.last_ohm


def hello(sup):
    b = sup.board
    led = b["led"]
    nir = sup.led.has_nir
    return {"protocol": PROTOCOL, "firmware": VERSION, "board": b["name"], "mcu": b["mcu"],
            "pulse_backend": b["pulse"]["backend"], "unit_id": sup.hw.unit_id, "reset_cause": sup.hw.reset_cause,
            "clock_set": clock.is_set(), "time_s": clock.now_s(),
            "led": {"red_nm": 630, "nir_nm": 830 if nir else None, "pwm_hz": led["pwm_hz"],
                    "red_mw_cm2": led["red_mw_cm2_at_100"],
                    "nir_mw_cm2": led.get("nir_mw_cm2_at_100") if nir else None},
            "standalone": {"button": sup.hw.button is not None, "status_led": sup.hw.status_led is not None},
            "limits": {"max_ua": sup.limit_ua, "min_ua": limits.PROGRAM_MIN_UA,
                       "soft_start_ua": sup.session.min_ua, "ceiling_ua": limits.ABS_CEILING_UA,
                       "session_max_s": limits.SESSION_MAX_MS // 1000, "led_max_s": limits.LED_MAX_MS // 1000,
                       "led_dose_max_j_cm2": limits.LED_DOSE_MAX_MJ_CM2 / 1000,
                       "hz": [limits.FREQ_MIN_MHZ / 1000, limits.FREQ_MAX_MHZ / 1000],
                       "phase_us": [limits.PHASE_MIN_US, limits.PHASE_MAX_US]}}


def status(sup):
    s = sup.session
    plan = sup.runner.plan
    led = sup.led
    ua, ohm = _measured(sup)
    out = {"state": sup.state_name(), "setpoint_ua": setpoint_shown(sup), "target_ua": s.target_na // 1000,
           "measured_ua": ua, "impedance_ohm": ohm,
           "elapsed_s": s.elapsed_ms // 1000, "duration_s": s.duration_ms // 1000,
           "program": plan.name if plan else None, "phase": sup.runner.k + 1 if plan else None,
           "led_pct": led.percent_now(), "led_dose_j_cm2": round(led.dose_uj / 1e6, 3),
           "led_derate_pct": led.derate_permille // 10, "level": sup.panel.level(s.active()),
           "fault": sup.fault, "output": sup.stage.name(), "reset_cause": sup.hw.reset_cause,
           "condition": sup.env,
           "temp_c": _temp_c(sup), "blinded": blinded(sup)}
    if out["blinded"]:
        out["target_ua"] = out["measured_ua"] = out["impedance_ohm"] = out["phase"] = out["output"] = None
    return out


def telemetry(sup, now):
    s = sup.session
    ua, ohm = _measured(sup)
    target, base, out_ua = s.target_na // 1000, sup.monitor.z_base_ohm, sup.output.ua_for_code(sup.output.code)
    hide = blinded(sup)
    if hide:
        target = ua = ohm = base = out_ua = None
    return P.event(
        "telemetry", t_ms=now, state=sup.state_name(), setpoint_ua=setpoint_shown(sup),
        target_ua=target, measured_ua=ua, impedance_ohm=ohm, baseline_ohm=base, output_ua=out_ua,
        led_pct=sup.led.percent_now(), led_dose_j_cm2=round(sup.led.dose_uj / 1e6, 3),
        temp_c=_temp_c(sup), elapsed_s=s.elapsed_ms // 1000, blinded=hide)

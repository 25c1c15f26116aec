# What the device says about itself: the `hello` and `status` replies, the
# telemetry event and the session state as the host sees it (main loop
# only; floats and allocation are fine here).
#
# A blinded study arm (programs.py) running, or the last to run, shows only
# what its arms share: the code, the setpoint asked for, time, light,
# temperature, faults. Its phase, the current's target and measurement, the
# impedance, the output stage and every state between the start and the end
# (a sham's current ramps down mid-session) are not shown: the state reads
# `run` throughout. The supervisor, the monitor and the log see everything.
from array import array
from myotone import VERSION, PROTOCOL, clock, limits, thermal
from myotone import protocol as P
from myotone import session as S
from myotone import stage as ST

_ADC_FULL = 65535


def temp_c(thermistor, raw):
    """The skin-side temperature for thermistor reading `raw`, or None when there is
    none to give: no reading yet (the supervisor starts at full scale) or the ADC at
    either end (an open or a shorted thermistor, a `condition` of its own), which no
    skin temperature reads."""
    if raw <= 0 or raw >= _ADC_FULL:
        return None
    return round(thermal.c_for_raw(thermistor, raw), 1)


class Report:
    """The host's view, built once with what it reads: the board file, the unit's
    identity (`hw`: read here, once), the session, the output stage (its state and
    latched fault), the runner (program, phase), the LED, the monitor (the impedance
    baseline), the output (the code on the DAC), the panel (the level), the session
    log (telemetry's means) and `environment()` (the bookkeeping tick's last
    thermistor reading and condition: (temp_raw, condition or None)).

    It keeps what only the host's view needs: the blinded arm's setpoint and the
    last telemetry period's means."""

    def __init__(self, board, hw, session, stage, runner, led, monitor, output, panel, log, environment):
        self._board = board
        self._unit_id = hw.unit_id
        self._reset_cause = hw.reset_cause
        self._has_button = hw.button is not None
        self._has_status_led = hw.status_led is not None
        self._session = session
        self._stage = stage
        self._runner = runner
        self._led = led
        self._monitor = monitor
        self._output = output
        self._panel = panel
        self._log = log
        self._environment = environment
        self.blind_ua = None         # a blinded study arm's session: the setpoint asked for
        self.last_ua = 0             # the last telemetry period's means (measured current, impedance)
        self.last_ohm = 0
        self._tel_last = array("i", [0] * 3)   # the log's on-sample sums at the last telemetry

    def begin(self, blind_ua):
        """A session begins: `blind_ua` is a blinded arm's setpoint, else None."""
        self.blind_ua = blind_ua

    def blinded(self):
        """The running (or last) session is a blinded study arm's (until the next begins)."""
        return self.blind_ua is not None

    def state_code(self):
        """The session state as the host sees it: a session (or a pause) whose last pair
        still plays is still ramping down, and says `done` (`paused`) only once the output is off."""
        st = self._session.state
        if self._stage.state == ST.CLOSING:
            if st == S.DONE:
                return S.RAMP_DOWN
            if st == S.PAUSED:
                return S.PAUSING
        return st

    def state_shown(self, code):
        """The name of session state `code` as the host may see it (a blinded arm's is `run` between)."""
        if (code == S.RAMP or code == S.RAMP_DOWN) and self.blinded():
            return "run"
        return S.NAMES[code]

    def state_name(self):
        """The state as the host sees it now."""
        return self.state_shown(self.state_code())

    def setpoint_shown(self):
        """The phase's setpoint; for a blinded arm the session's, the same in every phase."""
        if self.blind_ua is not None:
            return self.blind_ua
        return self._session.setpoint_ua

    def _temp_c(self):
        return temp_c(self._board["thermistor"], self._environment()[0])

    def _measured(self):
        """(measured_ua, impedance_ohm): the last period's means while the output stage is
        not off; 0, 0 once it is (after a cut or the end, no current flows, whatever the
        last period measured before it)."""
        if self._stage.state == ST.OFF:
            return 0, 0
        return self.last_ua, self.last_ohm

    def hello(self):
        b = self._board
        led = b["led"]
        nir = self._led.has_nir
        return {"protocol": PROTOCOL, "firmware": VERSION, "board": b["name"], "mcu": b["mcu"],
                "unit_id": self._unit_id,
                "pulse_backend": b["pulse"]["backend"], "reset_cause": self._reset_cause,
                "clock_set": clock.is_set(), "time_s": clock.now_s(),
                "led": {"red_nm": 630, "nir_nm": 830 if nir else None, "pwm_hz": led["pwm_hz"],
                        "red_mw_cm2": led["red_mw_cm2_at_100"],
                        "nir_mw_cm2": led.get("nir_mw_cm2_at_100") if nir else None},
                "standalone": {"button": self._has_button, "status_led": self._has_status_led},
                "limits": {"max_ua": b["limit_ua"], "min_ua": limits.PROGRAM_MIN_UA,
                           "soft_start_ua": self._session.min_ua, "ceiling_ua": limits.ABS_CEILING_UA,
                           "session_max_s": limits.SESSION_MAX_MS // 1000, "led_max_s": limits.LED_MAX_MS // 1000,
                           "led_dose_max_j_cm2": limits.LED_DOSE_MAX_MJ_CM2 / 1000,
                           "hz": [limits.FREQ_MIN_MHZ / 1000, limits.FREQ_MAX_MHZ / 1000],
                           "phase_us": [limits.PHASE_MIN_US, limits.PHASE_MAX_US]}}

    def status(self):
        s = self._session
        runner = self._runner
        plan = runner.plan
        led = self._led
        ua, ohm = self._measured()
        out = {"state": self.state_name(), "setpoint_ua": self.setpoint_shown(), "target_ua": s.target_na // 1000,
               "measured_ua": ua, "impedance_ohm": ohm,
               "elapsed_s": s.elapsed_ms() // 1000, "duration_s": s.duration_ms() // 1000,
               "program": plan.name if plan else None, "phase": runner.k + 1 if plan else None,
               "led_pct": led.percent_now(), "led_dose_j_cm2": round(led.dose_uj / 1e6, 3),
               "led_derate_pct": led.derate_permille // 10, "level": self._panel.level(s.active()),
               "fault": self._stage.fault, "output": self._stage.name(), "reset_cause": self._reset_cause,
               "condition": self._environment()[1],
               "temp_c": self._temp_c(), "blinded": self.blinded()}
        if out["blinded"]:
            out["target_ua"] = out["measured_ua"] = out["impedance_ohm"] = out["phase"] = out["output"] = None
        return out

    def telemetry(self, now):
        """The telemetry event at `now`: the means of the period since the last one."""
        n, sum_ua, sum_mv = self._log.on_sums(self._tel_last)
        if n:
            self.last_ua = sum_ua // n
            self.last_ohm = sum_mv * 1000 // sum_ua if sum_ua else 0
        else:
            self.last_ua = 0
        s = self._session
        out = self._output
        ua, ohm = self._measured()
        target, base, out_ua = s.target_na // 1000, self._monitor.z_base_ohm, out.ua_for_code(out.code)
        hide = self.blinded()
        if hide:
            target = ua = ohm = base = out_ua = None
        led = self._led
        return P.event(
            "telemetry", t_ms=now, state=self.state_name(), setpoint_ua=self.setpoint_shown(),
            target_ua=target, measured_ua=ua, impedance_ohm=ohm, baseline_ohm=base, output_ua=out_ua,
            led_pct=led.percent_now(), led_dose_j_cm2=round(led.dose_uj / 1e6, 3),
            temp_c=self._temp_c(), elapsed_s=s.elapsed_ms() // 1000, blinded=hide)

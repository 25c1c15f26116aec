# Service commands: pause / resume, the board file and the unit calibration
# (board, calib_get / calib_set), `measure` (a short measured session for
# `myotone calibrate` and `myotone selftest`) and clock_set. Each part is
# built once with the few collaborators it needs; the supervisor's `handle`
# finds their `cmd_*` as it finds its own and the file commands'. Nothing
# here reaches the output: `measure` starts through the supervisor's `start`
# and its checks, `resume` through the runner, which asks the output stage.
from myotone import calib, clock, programs
from myotone import protocol as P
from myotone import runner as R
from myotone import session as S

_STORAGE = "storage_error"
_NOT_RUNNING = "not_running"
_NONE = {}
_CLOCK_SET = {"time_s": ("int", True)}


class PauseResume:
    """pause / resume, with the session, the output stage (its latched fault), the
    runner (resume restarts the pulse through it), the report (the state as the host
    sees it) and `check_output_allowed(verb)` (the one start/resume refusal check)."""

    def __init__(self, session, stage, runner, report, check_output_allowed):
        self._session = session
        self._stage = stage
        self._runner = runner
        self._report = report
        self._check_output_allowed = check_output_allowed

    def cmd_pause(self, args):
        """Ramp down to zero as on stop and hold there (the tick stops the pulse once at zero)."""
        P.check_args(args, _NONE)
        if not self._session.pause():
            raise P.ProtocolError(_NOT_RUNNING, "no session ramping or running to pause")
        return {"state": self._report.state_name()}

    def cmd_resume(self, args):
        """A new ramp from the minimum, the pulse table restarted so the first pair is at it.

        Refused (busy) while the pause's last pair still plays: the output stage
        switches on again only from off, never in the middle of a pair."""
        P.check_args(args, _NONE)
        s = self._session
        rep = self._report
        if rep.state_code() == S.PAUSING:
            raise P.ProtocolError(P.BUSY, "still ramping down to pause: resume once paused")
        if s.state != S.PAUSED and self._stage.fault is None:
            raise P.ProtocolError(_NOT_RUNNING, "no paused session to resume")
        self._check_output_allowed("resume")     # a fault, a condition, the stage not yet off
        if s.state != S.PAUSED:
            raise P.ProtocolError(_NOT_RUNNING, "no paused session to resume")
        self._runner.resume()
        return {"state": rep.state_name(), "setpoint_ua": rep.setpoint_shown()}


class Unit:
    """board / calib_get / calib_set: the unit's board file and calibration, with the
    hardware that holds the calibration in force (`hw.calib`, `hw.calib_source`,
    `hw.set_calibration()`), the output (its limit codes) and `check_output_off()`
    (busy unless the output stage is off)."""

    def __init__(self, board, hw, output, check_output_off):
        self._board = board
        self._hw = hw
        self._output = output
        self._check_output_off = check_output_off

    def cmd_board(self, args):
        P.check_args(args, _NONE)
        return {"board": self._board}

    def cmd_calib_get(self, args):
        P.check_args(args, _NONE)
        out = self._output
        return {"calibration": self._hw.calib, "source": self._hw.calib_source,
                "limit_code": out.limit_code, "nominal_limit_code": out.nominal_limit_code,
                "limit_ua": out.ua_for_code(out.limit_code)}

    def cmd_calib_set(self, args):
        P.check_args(args, calib.SCHEMA)
        self._check_output_off()
        try:
            cal = calib.check(args, self._board["limit_ua"])
        except calib.CalibError as e:
            raise P.ProtocolError(P.OUT_OF_RANGE, str(e))
        try:
            calib.save(cal)
        except OSError as e:
            raise P.ProtocolError(_STORAGE, "cannot write the calibration: %s" % e)
        self._hw.set_calibration(cal, "file")
        return self.cmd_calib_get(_NONE)


class Measuring:
    """`measure` and its end, with the fast path's run-phase sums (`measure`, a
    measure.Measure), the session, the output (codes to current), the output stage
    (its latched fault), the report (the state shown), `say(line)` (the console),
    `load_program(name)`, `start(args)` (the `start` command, all its checks), the
    board limit and the request's schema (start's arguments less the two it sets, plus
    the hold time)."""

    def __init__(self, measure, session, output, stage, report, say, load_program, start, limit_ua, schema):
        self._measure = measure
        self._session = session
        self._output = output
        self._stage = stage
        self._report = report
        self._say = say
        self._load_program = load_program
        self._start = start
        self._limit_ua = limit_ua
        self._schema = schema

    def cmd_measure(self, args):
        """A short host-driven session whose run phase is measured (`ev: measure` at the end)."""
        P.check_args(args, self._schema)           # types and unknown fields: the one checker
        args = dict(args)
        hold_s = P.in_range("hold_s", args.pop("hold_s", 2), 1, 10, " s")
        args.setdefault("program", "lift")
        prog = self._load_program(args["program"])
        if programs.is_blinded(prog):
            raise P.ProtocolError(P.BAD_REQUEST, "%s is a blinded study arm: measuring it would unblind it"
                                  % args["program"])
        try:        # the ramp is timed to the waveform's pairs: at a low frequency it lasts longer
            pair_ms = R.pair_ms(R.first_wave(programs.with_overrides(args["program"], prog, args)))
        except ValueError:
            pair_ms = 0                       # the start command says what is wrong with the program
        ua = args.get("ua")
        ramp_ms = self._session.ramp_ms(ua, pair_ms) if isinstance(ua, int) and 0 < ua <= self._limit_ua else 0
        args["duration_s"] = (ramp_ms + 999) // 1000 + hold_s
        args["heartbeat"] = True
        r = self._start(args)
        self._measure.begin()
        r["hold_s"] = hold_s
        return r

    def done(self):
        """The measured session ended: send its `measure` event."""
        m = self._measure
        m.active = False
        r = m.result()
        out = self._output
        r["output_ua"] = out.ua_for_code(m.code)
        r["nominal_ua"] = out.nominal_ua_for_code(m.code)
        self._say(P.event("measure", state=self._report.state_name(), fault=self._stage.fault,
                          setpoint_ua=self._session.setpoint_ua, **r))


class ClockSet:
    """clock_set, with the hardware (its RTC: `hw.set_rtc(datetime)`) and the session log."""

    def __init__(self, hw, log):
        self._hw = hw
        self._log = log

    def cmd_clock_set(self, args):
        """Set the RTC to `time_s` (Unix seconds, UTC; the host's clock). Allowed during a
        session: it writes no flash and touches no output, and an open session record
        moves its start by as much, so that its start and end stay one clock's."""
        P.check_args(args, _CLOCK_SET)
        unix_s = P.in_range("time_s", args["time_s"], clock.VALID_FROM_S, clock.VALID_UNTIL_S, " s")
        was_s = clock.now_s()
        self._hw.set_rtc(clock.rtc_tuple(unix_s))
        now_s = clock.now_s()
        self._log.clock_moved(now_s - was_s)
        return {"time_s": now_s, "was_s": was_s, "clock_set": clock.is_set()}

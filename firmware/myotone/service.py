# Service commands of the supervisor: pause / resume, the board file, the
# unit calibration (calib_get / calib_set) and `measure`, a short measured
# session for `myotone calibrate` and `myotone selftest`. Each takes the supervisor
# (`sup`) and the request's args; Supervisor.cmd_* delegate here. Nothing
# here reaches the output: `measure` starts through sup.cmd_start and its
# checks, `resume` through the runner, which asks the output stage.
from myotone import calib, clock, programs, report
from myotone import protocol as P
from myotone import runner as R
from myotone import session as S

_STORAGE = "storage_error"
_NOT_RUNNING = "not_running"
_NONE = {}
_CLOCK_SET = {"time_s": ("int", True)}


def pause(sup, args):
    """Ramp down to zero as on stop and hold there (the tick stops the pulse once at zero)."""
    P.check_args(args, _NONE)
    if not sup.session.pause():
        raise P.ProtocolError(_NOT_RUNNING, "no session ramping or running to pause")
    return {"state": sup.state_name()}


def resume(sup, args):
    """A new ramp from the minimum, the pulse table restarted so the first pair is at it.

    Refused (busy) while the pause's last pair still plays: the output stage
    switches on again only from off, never in the middle of a pair."""
    P.check_args(args, _NONE)
    s = sup.session
    if sup.state_code() == S.PAUSING:
        raise P.ProtocolError(P.BUSY, "still ramping down to pause: resume once paused")
    if s.state != S.PAUSED and sup.fault is None:
        raise P.ProtocolError(_NOT_RUNNING, "no paused session to resume")
    sup.check_output_allowed("resume")          # a fault, a condition, the stage not yet off
    if s.state != S.PAUSED:
        raise P.ProtocolError(_NOT_RUNNING, "no paused session to resume")
    sup.runner.resume()
    return {"state": sup.state_name(), "setpoint_ua": report.setpoint_shown(sup)}


def board(sup, args):
    P.check_args(args, _NONE)
    return {"board": sup.board}


def calib_get(sup, args):
    P.check_args(args, _NONE)
    out = sup.output
    return {"calibration": sup.hw.calib, "source": sup.hw.calib_source,
            "limit_code": out.limit_code, "nominal_limit_code": out.nominal_limit_code,
            "limit_ua": out.ua_for_code(out.limit_code)}


def calib_set(sup, args):
    P.check_args(args, calib.SCHEMA)
    sup.check_output_off()
    try:
        cal = calib.check(args, sup.limit_ua)
    except calib.CalibError as e:
        raise P.ProtocolError(P.OUT_OF_RANGE, str(e))
    try:
        calib.save(cal)
    except OSError as e:
        raise P.ProtocolError(_STORAGE, "cannot write the calibration: %s" % e)
    sup.hw.set_calibration(cal, "file")
    return calib_get(sup, _NONE)


def measure(sup, args, schema):
    """A short host-driven session whose run phase is measured (`ev: measure` at the end)."""
    P.check_args(args, schema)            # types and unknown fields: the one checker
    args = dict(args)
    hold_s = P.in_range("hold_s", args.pop("hold_s", 2), 1, 10, " s")
    args.setdefault("program", "lift")
    prog = sup.files.load_program(args["program"])
    if programs.is_blinded(prog):
        raise P.ProtocolError(P.BAD_REQUEST, "%s is a blinded study arm: measuring it would unblind it"
                              % args["program"])
    try:        # the ramp is timed to the waveform's pairs: at a low frequency it lasts longer
        pair_ms = R.pair_ms(R.first_wave(programs.with_overrides(args["program"], prog, args)))
    except ValueError:
        pair_ms = 0                       # cmd_start says what is wrong with the program
    ua = args.get("ua")
    ramp_ms = sup.session.ramp_ms(ua, pair_ms) if isinstance(ua, int) and 0 < ua <= sup.limit_ua else 0
    args["duration_s"] = (ramp_ms + 999) // 1000 + hold_s
    args["heartbeat"] = True
    r = sup.cmd_start(args)
    sup.measure.begin()
    r["hold_s"] = hold_s
    return r


def measure_done(sup):
    m = sup.measure
    m.active = False
    r = m.result()
    r["output_ua"] = sup.output.ua_for_code(m.code)
    r["nominal_ua"] = sup.output.nominal_ua_for_code(m.code)
    sup.console.write_line(P.event("measure", state=sup.state_name(), fault=sup.fault,
                                   setpoint_ua=sup.session.setpoint_ua, **r))


def clock_set(sup, args):
    """Set the RTC to `time_s` (Unix seconds, UTC; the host's clock). Allowed during a
    session: it writes no flash and touches no output, and an open session record
    moves its start by as much, so that its start and end stay one clock's."""
    P.check_args(args, _CLOCK_SET)
    unix_s = P.in_range("time_s", args["time_s"], clock.VALID_FROM_S, clock.VALID_UNTIL_S, " s")
    was_s = clock.now_s()
    sup.hw.set_rtc(clock.rtc_tuple(unix_s))
    now_s = clock.now_s()
    sup.log.clock_moved(now_s - was_s)
    return {"time_s": now_s, "was_s": was_s, "clock_set": clock.is_set()}

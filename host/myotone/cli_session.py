"""The `myotone` session commands: session start|stop|pause|resume and monitor
(registered on cli.main)."""
from __future__ import annotations

import json
import sys

import click

from . import fwlimits
from .cli import EXIT_FAILED, connect, device_errors, emit, json_option, main, note, port_option


# ---- sessions ------------------------------------------------------------------------
def start_args(program, ua, duration_s, hz, phase_us, gap_us, alternate, burst_on_ms, burst_off_ms) -> dict:
    if program is None and (hz is None or phase_us is None):
        raise click.UsageError("give --program, or an explicit waveform with at least --hz and --phase-us")
    args = {"program": program or "lift"}
    if ua is not None:
        args["ua"] = ua
    if program is None:          # explicit waveform: every field given, on top of lift's defaults
        args.update(gap_us=0, alternate=True, burst_on_ms=0, burst_off_ms=0)
    for key, value in (("duration_s", duration_s), ("hz", hz), ("phase_us", phase_us), ("gap_us", gap_us),
                       ("alternate", alternate), ("burst_on_ms", burst_on_ms), ("burst_off_ms", burst_off_ms)):
        if value is not None:
            args[key] = value
    return args


def session_options(f):
    for opt in reversed([
        click.option("--program", default=None, help="Program name (`myotone programs list`)."),
        click.option("--ua", type=click.IntRange(1, fwlimits.ceiling_ua()), default=None,
                     help="Setpoint in µA (programs with microcurrent; not for LED-only ones)."),
        click.option("--duration-s", type=click.IntRange(1, fwlimits.session_max_s()), default=None,
                     help="Session length (s)."),
        click.option("--hz", type=float, default=None, help="Explicit waveform: pulse frequency (Hz)."),
        click.option("--phase-us", type=int, default=None, help="Explicit waveform: phase width (µs)."),
        click.option("--gap-us", type=int, default=None, help="Inter-phase gap (µs)."),
        click.option("--alternate/--no-alternate", default=None, help="Alternate the leading polarity."),
        click.option("--burst-on-ms", type=int, default=None, help="Burst envelope: on time (ms)."),
        click.option("--burst-off-ms", type=int, default=None, help="Burst envelope: off time (ms)."),
    ]):
        f = opt(f)
    return f


@main.group()
def session():
    """Start, stop, pause and resume sessions."""


@session.command("start")
@port_option
@session_options
@click.option("--watch", is_flag=True, help="Host-driven: send the heartbeat and show telemetry until the "
                                            "session ends; Ctrl-C stops it.")
@json_option
@device_errors
def session_start(port, program, ua, duration_s, hz, phase_us, gap_us, alternate, burst_on_ms, burst_off_ms,
                  watch, as_json):
    """Start a session (it ramps up from the minimum).

    Without --watch the device runs it on its own and ends it at its duration.
    """
    args = start_args(program, ua, duration_s, hz, phase_us, gap_us, alternate, burst_on_ms, burst_off_ms)
    with connect(port) as link:
        if not watch:
            r = link.request("start", **args)
            what = args["program"] if program else "explicit waveform"
            at = f"at {r['setpoint_ua']} µA" if r.get("setpoint_ua") else "(LED only, no microcurrent)"
            emit(r, as_json, f"started {what} {at} for {r['duration_s']} s")
            return
        from . import monitor as m
        mon, interrupted = m.run(link, _printer(as_json), start_args=args, until_done=True, notice=note)
    _finish(mon, as_json, interrupted)
    if mon.summary.fault or mon.summary.final_state != "done":
        sys.exit(EXIT_FAILED)


def _simple(cmd: str, help_text: str):
    @session.command(cmd, help=help_text)
    @port_option
    @json_option
    @device_errors
    def command(port, as_json):
        with connect(port) as link:
            r = link.request(cmd)
        emit(r, as_json, f"state: {r['state']}")
    return command


_simple("stop", "Stop the running session (ramps down over 1.5 s).")
_simple("pause", "Pause: ramp down to zero and hold; session time stops (the heartbeat does not).")
_simple("resume", "Resume a paused session: a new ramp from the minimum.")


@main.command()
@port_option
@click.option("--program", default=None, help="Also start a host-driven session of this program …")
@click.option("--ua", type=click.IntRange(1, fwlimits.ceiling_ua()), default=None, help="… at this setpoint (µA).")
@click.option("--duration-s", type=click.IntRange(1, fwlimits.session_max_s()), default=None, help="… for this long (s).")
@click.option("--seconds", type=click.FloatRange(0.1, None), default=None, help="Stop monitoring after this long.")
@click.option("--leave-running", is_flag=True, help="On Ctrl-C, leave a session this monitor did not start running.")
@json_option
@device_errors
def monitor(port, program, ua, duration_s, seconds, leave_running, as_json):
    """Show live telemetry, state changes and faults until Ctrl-C (or, with
    --program, until the session it starts ends).

    Ctrl-C, SIGTERM, SIGHUP or a closed stdout pipe leave the device safe: a
    running session is stopped (ramp-down) and the monitor waits until the
    output is off, then says so in one line (exit 130, 143, 129, 141). Exit
    code 0, or 1 if a session this monitor started ended with a fault.
    """
    from . import monitor as m
    if program is None and (ua is not None or duration_s is not None):
        raise click.UsageError("--ua and --duration-s need --program (the session to start)")
    args = start_args(program, ua, duration_s, None, None, None, None, None, None) if program else None
    with connect(port) as link:
        hello_r = link.request("hello")
        if not as_json:
            note(f"monitoring {hello_r['board']} on {port} (Ctrl-C to stop)")
        mon, interrupted = m.run(link, _printer(as_json), start_args=args, until_done=args is not None,
                                 max_s=seconds, leave_running=leave_running, notice=note)
    _finish(mon, as_json, interrupted)
    if mon.started and mon.summary.fault:
        sys.exit(EXIT_FAILED)


def _printer(as_json: bool):
    from .watch import telemetry_line

    def show(msg: dict) -> None:
        if as_json:
            click.echo(json.dumps(msg))
            return
        ev = msg.get("ev")
        if ev == "telemetry":
            click.echo(telemetry_line(msg))
        elif ev == "state":
            click.echo(f"-> {msg['state']}")
        elif ev == "fault":
            click.echo(f"FAULT: {msg.get('reason')}")
        elif ev == "ready":
            click.echo(f"device restarted (reset cause: {msg.get('reset_cause')})")
    return show


def _finish(mon, as_json: bool, interrupted: BaseException | None = None) -> None:
    """The summary on stdout; then an interruption goes on to the top level (its one
    line and exit code, cli.MyotoneGroup) -- the device is already safe."""
    s = mon.summary.as_dict()
    try:
        emit(s, as_json, mon.summary.text())
    except (OSError, ValueError):       # stdout gone (a closed pipe, a closed terminal)
        if interrupted is None:
            raise
    if interrupted is not None:
        raise interrupted

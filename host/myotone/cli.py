"""The `myotone` command."""
from __future__ import annotations

import functools
import json
import sys

import click

from .link import DeviceError, Link, LinkError

PORT_HELP = "Device path, pyserial URL (socket://…) or emu[:BOARD]. Default: $MYOTONE_PORT."


def port_option(f):
    return click.option("--port", "-p", envvar="MYOTONE_PORT", default=None, help=PORT_HELP)(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)


def device_errors(f):
    """User-facing failures become one clear line and a non-zero exit code."""
    @functools.wraps(f)
    def wrapper(*args, **kw):
        try:
            return f(*args, **kw)
        except DeviceError as exc:
            raise click.ClickException(f"device refused: {exc.code}: {exc.message}") from exc
        except LinkError as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def emit(data: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="myotone")
def main():
    """Myotone: microcurrent + red-LED face mask toolkit (not a medical device)."""


@main.command()
@port_option
@json_option
@device_errors
def hello(port, as_json):
    """Identify the device and show the limits in force."""
    with Link.open(port) as link:
        r = link.request("hello")
    lim = r["limits"]
    emit(r, as_json, f"{r['board']} ({r['mcu']}), firmware {r['firmware']}, protocol {r['protocol']}\n"
                     f"current {lim['min_ua']}..{lim['max_ua']} µA (ceiling {lim['ceiling_ua']} µA), "
                     f"soft start {lim['soft_start_ua']} µA, sessions ≤ {lim['session_max_s'] // 60} min, "
                     f"pulse back-end {r['pulse_backend']}, last reset: {r['reset_cause']}")


@main.command()
@port_option
@json_option
@device_errors
def status(port, as_json):
    """Show the session state, currents and any latched fault."""
    with Link.open(port) as link:
        r = link.request("status")
    fault = f", fault {r['fault']}" if r.get("fault") else ""
    emit(r, as_json, f"{r['state']}: set {r['setpoint_ua']} µA, target {r['target_ua']} µA, "
                     f"measured {r['measured_ua']} µA, impedance {r['impedance_ohm']} Ω, "
                     f"{r['elapsed_s']}/{r['duration_s']} s{fault}")


@main.group()
def session():
    """Start and stop sessions."""


@session.command("start")
@port_option
@click.option("--program", required=True, help="Program name (see `myotone programs`).")
@click.option("--ua", type=click.IntRange(1, 1000), required=True, help="Setpoint in µA.")
@click.option("--duration-s", type=click.IntRange(1, 1200), default=None, help="Session length in seconds.")
@click.option("--watch", is_flag=True, help="Follow telemetry until the session ends (host-driven, with heartbeat).")
@json_option
@device_errors
def session_start(port, program, ua, duration_s, watch, as_json):
    """Start a session (it ramps up from the minimum)."""
    from . import watch as w
    args = {"program": program, "ua": ua}
    if duration_s is not None:
        args["duration_s"] = duration_s
    if watch:
        args["heartbeat"] = True
    with Link.open(port) as link:
        r = link.request("start", **args)
        emit(r, as_json, f"started {program} at {ua} µA for {r['duration_s']} s")
        if watch:
            summary = w.follow(link, on_message=lambda m: click.echo(
                json.dumps(m) if as_json else w.telemetry_line(m)) if m.get("ev") == "telemetry" else None)
            emit(summary.as_dict(), as_json, f"session {summary.final_state}"
                 + (f" (fault: {summary.fault})" if summary.fault else ""))
            if summary.fault or summary.final_state != "done":
                sys.exit(1)


@session.command("stop")
@port_option
@json_option
@device_errors
def session_stop(port, as_json):
    """Stop the running session (ramps down over 1.5 s)."""
    with Link.open(port) as link:
        r = link.request("stop")
    emit(r, as_json, f"state: {r['state']}")


@main.group()
def emu():
    """The emulated board."""


@emu.command("serve")
@click.option("--board", default="pico-mcp4725", show_default=True, help="Board file name or path.")
@click.option("--tcp", "tcp_port", type=int, default=None, help="Serve on 127.0.0.1:PORT (0 picks a free port).")
@click.option("--pty", "use_pty", is_flag=True, help="Serve on a pseudo-terminal.")
@click.option("--speed", type=click.FloatRange(0.01, 1000), default=1.0, show_default=True,
              help="Virtual seconds per wall second.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the plant's noise.")
@click.option("--flash", "flash_path", type=click.Path(dir_okay=False), default=None,
              help="Keep the littlefs flash image in FILE (made and flashed with the firmware when new).")
def emu_serve(board, tcp_port, use_pty, speed, seed, flash_path):
    """Run an emulated board behind a serial endpoint until stopped.

    The first output line is `serving <url>`, where <url> is what pyserial opens.
    """
    from .emulator import Emulator, EmulatorError
    from .emulator.flash import FlashCorrupt
    from .emulator.serve import serve_pty, serve_tcp
    if (tcp_port is None) == (not use_pty):
        raise click.UsageError("give exactly one of --tcp PORT or --pty")
    try:
        emu_ = Emulator(board, seed=seed, flash_path=flash_path)
    except (EmulatorError, FlashCorrupt, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc

    def ready(url):
        click.echo(f"serving {url}")
        sys.stdout.flush()
    emu_.serve_realtime(speed)
    try:
        if use_pty:
            serve_pty(emu_, on_ready=ready)
        else:
            serve_tcp(emu_, tcp_port, on_ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        emu_.close()


def _run_scenario(path, **kw):
    from .emulator.scenario import ScenarioError, run
    try:
        return run(path, **kw)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc


@emu.command("run")
@click.argument("scenario_path", metavar="SCENARIO.json", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.option("--vcd", type=click.Path(dir_okay=False), help="Also write the trace as VCD.")
@click.option("--trace-json", type=click.Path(dir_okay=False), help="Also write the trace as JSON.")
@click.option("--flash", "flash_path", type=click.Path(dir_okay=False), default=None,
              help="Run on the flash image kept in FILE.")
def emu_run(scenario_path, as_json, vcd, trace_json, flash_path):
    """Run a scenario in lockstep (as fast as the CPU allows) and print its report.

    The format of SCENARIO.json and of the report: docs/emulator.md.
    """
    from .emulator import scenario, trace_export
    res = _run_scenario(scenario_path, flash_path=flash_path)
    if vcd:
        trace_export.write_vcd(res.emu, res.end_ns, vcd)
    if trace_json:
        trace_export.write_json(res.emu, res.end_ns, trace_json)
    emit(res.report, as_json, scenario.summary(res.report))


@emu.command("scope")
@click.argument("scenario_path", metavar="SCENARIO.json", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG (or PDF, SVG) to write.")
@click.option("--from-s", "t0_s", type=float, default=0.0, show_default=True, help="Window start (virtual s).")
@click.option("--to-s", "t1_s", type=float, default=None, help="Window end (default: the scenario's end).")
def emu_scope(scenario_path, out, t0_s, t1_s):
    """Run a scenario and draw the electrode current and bridge state (matplotlib)."""
    from .emulator import trace_export
    res = _run_scenario(scenario_path)
    trace_export.plot_scope(res.emu, res.end_ns, out, t0_s, t1_s)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--board", default="pico-mcp4725", show_default=True)
@click.option("--speed", type=click.FloatRange(1, 100), default=10.0, show_default=True)
@click.option("--ua", type=int, default=200, show_default=True)
@click.option("--duration-s", type=int, default=20, show_default=True)
def demo(board, speed, ua, duration_s):
    """Start an emulator, run a session on it, and print what happens."""
    from .demo import run_demo
    sys.exit(run_demo(board, speed, ua, duration_s))


if __name__ == "__main__":
    main()

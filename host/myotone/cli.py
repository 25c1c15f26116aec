"""The `myotone` command: thin click wrappers over one module per job.

Common to every command: `--port` (a device path, a pyserial URL, or
emu[:BOARD]; after the command or before it) defaulting to $MYOTONE_PORT,
else the one board plugged in; `--json`; exit code 0 only on success, 128 +
the signal when interrupted (interrupt.py); user mistakes as one line
(docs/cli.md), usage mistakes too (exit code 2, cli_usage.py).
"""
from __future__ import annotations

import functools
import json
import os
import sys

import click

from .cli_paths import ImageFile, InFile, OutFile, PathProblem, file_errors, written_whole
from .cli_usage import OneLineUsageGroup
from .link import DeviceError, Link, LinkError

PORT_HELP = ("Device path, pyserial URL (socket://…) or emu[:BOARD]; also before the command. "
             "Default: $MYOTONE_PORT, else the one Myotone board plugged in.")
EXIT_FAILED = 1          # the command ran but did not succeed (a fault, a failed check)
# interrupted: 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; 141 a closed pipe), see interrupt.py


def complete_port(ctx, param, incomplete):
    from .ports import list_ports
    try:
        found = [p["device"] for p in list_ports()]
    except Exception:       # noqa: BLE001 - completion must never fail
        found = []
    return [p for p in found + ["emu", "emu:pico-mcp4725", "emu:esp32-devkit"] if p.startswith(incomplete)]


def complete_board(ctx, param, incomplete):
    from .paths import boards_dir
    return [b.stem for b in sorted(boards_dir().glob("*.json")) if b.stem.startswith(incomplete)]


def given_port(ctx: click.Context, value: str | None):
    """The port for this command: after the command, else before it (`myotone -p X cmd`,
    esptool-style), else $MYOTONE_PORT; each remembers its source for the errors.
    None: the command finds the one board plugged in (link.resolve), if it needs one."""
    from .link import PortName
    if value:
        return PortName(value, "--port")
    root = ctx.find_root()
    if root.params.get("global_port"):
        return PortName(root.params["global_port"], "--port")
    env = os.environ.get("MYOTONE_PORT", "").strip()
    return PortName(env, "MYOTONE_PORT") if env else None


def port_option(f):
    return click.option("--port", "-p", default=None, help=PORT_HELP, shell_complete=complete_port,
                        callback=lambda ctx, _param, value: given_port(ctx, value))(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")(f)


def user_errors() -> tuple:
    """Failures that are the user's to fix: one line, no traceback."""
    from .build import BuildError
    from .calibrate import CalibrationError
    from .flasher import FlashError
    from .logs import LogError
    from .measuring import MeasureFault
    from .plot import PlotUnavailable
    from .programfile import ProgramFileError
    from .rig import RigError
    from .study import StudyError
    return (PathProblem, LinkError, BuildError, CalibrationError, FlashError, LogError, MeasureFault, PlotUnavailable,
            ProgramFileError, RigError, StudyError)


# what to do next, for refusals whose remedy is a myotone command
HINTS = {
    "faulted": " (`myotone fault clear`, once the cause is fixed)",
}


def device_errors(f):
    """User-facing failures become one clear line and a non-zero exit code
    (with --json, also an {"ok": false, ...} object on stdout)."""
    @functools.wraps(f)
    def wrapper(*args, **kw):
        try:
            return f(*args, **kw)
        except DeviceError as exc:
            hint = HINTS.get(exc.code, "")
            _fail(kw, exc.code, f"device refused: {exc.code}: {exc.message}{hint}", exc)
        except user_errors() as exc:
            _fail(kw, type(exc).__name__, str(exc), exc)
    return wrapper


def _fail(kw: dict, code: str, message: str, exc: Exception):
    if kw.get("as_json"):
        click.echo(json.dumps({"ok": False, "error": code, "message": message}))
    raise click.ClickException(message) from exc


def emit(data: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data) if as_json else text)


def note(text: str) -> None:
    """Progress and prompts go to stderr: stdout stays the result (and valid JSON).
    A terminal that went away (SIGHUP) must not turn a clean-up into a second error."""
    try:
        click.echo(text, err=True)
    except (OSError, ValueError):
        pass


def connect(port) -> Link:
    """Open the device for a command, and set its clock from this computer's if it was
    never set (session records carry real times then). Said on stderr, except for an
    in-process `emu`, a fresh board whose clock every command would set anew."""
    from .link import set_clock_if_unset, utc
    link = Link.open(port)
    try:
        r = set_clock_if_unset(link)
    except DeviceError as exc:       # refused: the command goes on, the records keep the device's times
        note(f"the device clock is not set ({exc.code}: {exc.message}); `myotone clock set` sets it")
        return link
    except BaseException:
        link.close()
        raise
    if r is not None and not str(link.port).startswith("emu"):
        note(f"device clock set to {utc(r['time_s'])} (it was unset: {utc(r['was_s'])})")
    return link


class MyotoneGroup(OneLineUsageGroup):
    """The top level: an interruption (Ctrl-C, SIGTERM, SIGHUP, a closed pipe) that a
    command has already dealt with (device safe, port closed) ends here, in one line
    and the shell's exit code, instead of click's bare "Aborted!"; so does every usage
    error, in one line too (cli_usage.py)."""

    def invoke(self, ctx):
        from . import interrupt
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, BrokenPipeError) as exc:
            if interrupt.stdout_gone(exc):
                interrupt.silence_stdout()      # no "Exception ignored" from the exit's flush
            interrupt.say(interrupt.message(exc))
            ctx.exit(interrupt.exit_code(exc))


@click.group("myotone", cls=MyotoneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="myotone")
@click.option("--port", "-p", "global_port", default=None, metavar="PORT", shell_complete=complete_port,
              help="The port for the command that follows (as its own --port).")
def main(global_port):
    """Myotone: microcurrent + red-LED face mask toolkit (not a medical device).

    Shell completion: eval "$(_MYOTONE_COMPLETE=bash_source myotone)" (see docs/cli.md).
    """


@main.command()
@port_option
@json_option
@device_errors
def hello(port, as_json):
    """Identify the device and show the limits in force."""
    with connect(port) as link:
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
    """Show the session state, program and phase, currents, LED, temperature and any latched fault."""
    with connect(port) as link:
        r = link.request("status")
    from .watch import status_line
    emit(r, as_json, status_line(r))


# ---- programs ------------------------------------------------------------------------
def _program_line(p: dict) -> str:
    if p.get("blinded"):
        return f"{p['name']:<10} {'(blinded study arm)':<42}  {p['minutes']} min"
    if not p.get("hz") or not p.get("phase_us"):          # light only: there is no waveform to show
        return f"{p['name']:<10} {'LED only, no current':<42}  {p['minutes']} min  {p['description']}"
    burst = f", bursts {p['burst_on_ms']}/{p['burst_off_ms']} ms" if p.get("burst_on_ms") else ""
    return (f"{p['name']:<10} {p['hz']:>7g} Hz  phase {p['phase_us']:>7} µs  gap {p['gap_us']:>5} µs"
            f"{burst}  {p['minutes']} min  {p['description']}")


@main.group()
def programs():
    """The device's programs: the built-in ones and your own."""


@programs.command("list")
@port_option
@json_option
@device_errors
def programs_list(port, as_json):
    """List the programs the device has."""
    with connect(port) as link:
        progs = link.request("programs")["programs"]
    emit({"programs": progs}, as_json, "\n".join(_program_line(p) for p in progs))


@programs.command("show")
@click.argument("name")
@port_option
@json_option
@device_errors
def programs_show(name, port, as_json):
    """Show one program's waveform in full."""
    with connect(port) as link:
        progs = link.request("programs")["programs"]
    found = [p for p in progs if p["name"] == name]
    if not found:
        raise LinkError(f"no program {name!r} on the device (it has: {', '.join(p['name'] for p in progs)})")
    p = found[0]
    emit(p, as_json, "\n".join(f"{k:<13} {v}" for k, v in p.items()))


# ---- the emulator --------------------------------------------------------------------
@main.group()
def emu():
    """The emulated board."""


@emu.command("serve")
@click.option("--board", default="pico-mcp4725", show_default=True, help="Board file name or path.",
              shell_complete=complete_board)
@click.option("--tcp", "tcp_port", type=click.IntRange(0, 65535), default=None,
              help="Serve on 127.0.0.1:PORT (0 picks a free port).")
@click.option("--pty", "use_pty", is_flag=True, help="Serve on a pseudo-terminal.")
@click.option("--speed", type=click.FloatRange(0.01, 1000), default=1.0, show_default=True,
              help="Virtual seconds per wall second.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the plant's noise.")
@click.option("--flash", "flash_path", type=ImageFile(), default=None,
              help="Keep the littlefs flash image in FILE (made and flashed with the firmware when new).")
@click.option("--chip", type=click.Choice(["python", "rp2040"]), default="python", show_default=True,
              help="python: the fast tier (the firmware under CPython); rp2040: the silicon tier (the official "
                   "MicroPython UF2 on an emulated RP2040, instruction by instruction; slower than real time).")
@click.option("--uf2", type=InFile(), default=None,
              help="With --chip rp2040: the MicroPython v1.28.0 UF2 for the Pico (default: $MYOTONE_UF2, "
                   "then ../shared/firmware/).")
@file_errors
def emu_serve(board, tcp_port, use_pty, speed, seed, flash_path, chip, uf2):
    """Run an emulated board behind a serial endpoint until stopped.

    The first output line is `serving <url>`, where <url> is what pyserial opens;
    the second is `control tcp://…`, the emulator's side channel (load, faults)
    that `myotone selftest --rig` and `calibrate --rig` use.
    """
    from .emulator import Emulator, EmulatorError
    from .emulator.control import serve_control
    from .emulator.flash import FlashCorrupt
    from .emulator.serve import serve_pty, serve_tcp
    if (tcp_port is None) == (not use_pty):
        raise click.UsageError("give exactly one of --tcp PORT or --pty")
    if uf2 is not None and chip != "rp2040":
        raise click.UsageError("--uf2 goes with --chip rp2040")
    try:
        flash_file = str(flash_path) if flash_path else None
        if chip == "rp2040":
            from .silicon import SiliconBoard, SiliconUnavailable
            try:
                emu_ = SiliconBoard(board, uf2=str(uf2) if uf2 else None, flash_path=flash_file, seed=seed)
            except SiliconUnavailable as exc:
                raise click.ClickException(str(exc)) from exc
        else:
            emu_ = Emulator(board, seed=seed, flash_path=flash_file)
    except (EmulatorError, FlashCorrupt, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    control_url = serve_control(emu_)

    def ready(url):
        click.echo(f"serving {url}")
        click.echo(f"control {control_url}")
        sys.stdout.flush()
    emu_.serve_realtime(speed)
    try:
        if use_pty:
            serve_pty(emu_, on_ready=ready)
        else:
            serve_tcp(emu_, tcp_port, on_ready=ready)
    except OSError as exc:                # the TCP port is taken, no pty here
        where = "a pseudo-terminal" if use_pty else f"127.0.0.1:{tcp_port}"
        raise click.ClickException(f"cannot serve on {where}: {exc.strerror or exc}") from None
    except KeyboardInterrupt as exc:      # Ctrl-C, SIGTERM, SIGHUP: the one way it ends
        from .interrupt import tell
        raise tell(exc, "the emulated board was stopped" + (f", its flash kept in {flash_path}"
                                                              if flash_path else "")) from None
    finally:
        emu_.close()


def _run_scenario(path, **kw):
    from .emulator.scenario import ScenarioError, run
    try:
        return run(path, **kw)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc


@emu.command("run")
@click.argument("scenario_path", metavar="SCENARIO.json", type=InFile())
@json_option
@click.option("--vcd", type=OutFile(), help="Also write the trace as VCD.")
@click.option("--trace-json", type=OutFile(), help="Also write the trace as JSON.")
@click.option("--flash", "flash_path", type=ImageFile(), default=None,
              help="Run on the flash image kept in FILE.")
@file_errors
def emu_run(scenario_path, as_json, vcd, trace_json, flash_path):
    """Run a scenario in lockstep (as fast as the CPU allows) and print its report.

    The format of SCENARIO.json and of the report: docs/emulator.md.
    """
    from .emulator import scenario, trace_export
    res = _run_scenario(scenario_path, flash_path=str(flash_path) if flash_path else None)
    for out, write in ((vcd, trace_export.write_vcd), (trace_json, trace_export.write_json)):
        if out:
            with written_whole(out) as tmp:
                write(res.emu, res.end_ns, tmp)
    emit(res.report, as_json, scenario.summary(res.report))


@emu.command("scope")
@click.argument("scenario_path", metavar="SCENARIO.json", type=InFile())
@click.option("--out", required=True, type=OutFile(), help="PNG (or PDF, SVG) to write.")
@click.option("--from-s", "t0_s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Window start (virtual s).")
@click.option("--to-s", "t1_s", type=float, default=None, help="Window end (default: the scenario's end).")
@file_errors
def emu_scope(scenario_path, out, t0_s, t1_s):
    """Run a scenario and draw the electrode current and bridge state (matplotlib: the `plot` extra)."""
    from .emulator import trace_export
    from .plot import PlotUnavailable, pyplot
    if t1_s is not None and t1_s <= t0_s:
        raise click.ClickException(f"--to-s {t1_s:g} must be after --from-s {t0_s:g}")
    try:
        pyplot()                # before the run: say so at once when matplotlib is missing
    except PlotUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    res = _run_scenario(scenario_path)
    try:
        trace_export.scope_window(res.end_ns, t0_s, t1_s)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    with written_whole(out) as tmp:
        trace_export.plot_scope(res.emu, res.end_ns, tmp, t0_s, t1_s, res.report)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--board", default="pico-mcp4725", show_default=True, shell_complete=complete_board)
@click.option("--speed", type=click.FloatRange(1, 100), default=10.0, show_default=True)
@click.option("--ua", type=int, default=200, show_default=True)
@click.option("--duration-s", type=int, default=20, show_default=True)
@device_errors
def demo(board, speed, ua, duration_s):
    """Start an emulator, run a session on it, and print what happens."""
    from .demo import run_demo
    sys.exit(run_demo(board, speed, ua, duration_s))


@main.command(context_settings={"ignore_unknown_options": True})
@port_option
@click.option("--board", default=None, shell_complete=complete_board,
              help="Board file name or path (default: the emulator's, or what hello names).")
@click.option("--control", default=None, metavar="tcp://HOST:PORT",
              help="With --port on a served emulator (either tier): its `control` URL; the suite then "
                   "waits in the board's simulated time and uses it as measuring and fault rig.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def hil(port, board, control, pytest_args):
    """Run the HIL suite on a board (--port) or, without one, on the emulator.

    Arguments after `--` go to pytest: `myotone hil --port /dev/ttyACM0 --
    --junitxml=hil.xml -k trips`. See docs/hil.md for the bench and markers.
    """
    from .hil import HilError, run_suite
    try:
        sys.exit(run_suite(port, board, list(pytest_args), control))
    except HilError as exc:
        raise click.ClickException(str(exc)) from exc


from . import cli_device, cli_session, cli_study, cli_tools  # noqa: E402,F401 - register session, monitor, …

def run() -> None:
    """The `myotone` console script: SIGTERM and SIGHUP end a command as Ctrl-C does."""
    from . import interrupt
    interrupt.install()
    main()


if __name__ == "__main__":
    run()

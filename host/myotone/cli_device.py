"""The `myotone` commands that change the device's state without a session:
fault clear, reset, clock set, programs write|delete, settings (registered on cli.main)."""
from __future__ import annotations

import time

import click

from .cli import connect, device_errors, emit, json_option, main, port_option, programs
from .cli_paths import InFile
from .link import NO_PORT, DeviceError, Link, LinkError, utc


# ---- fault ---------------------------------------------------------------------------
@main.group()
def fault():
    """A latched fault (SAFETY.md trips): see it with `myotone status`."""


@fault.command("clear")
@port_option
@json_option
@device_errors
def fault_clear(port, as_json):
    """Clear a latched fault so that a new session can start (from the minimum again).

    Refused while the condition that tripped is still present (charging,
    over-temperature).
    """
    with connect(port) as link:
        before = link.request("status").get("fault")
        r = link.request("fault_clear")
    r = {**r, "cleared": before}
    emit(r, as_json, f"cleared {before}; state: {r['state']}" if before else f"no fault latched; state: {r['state']}")


# ---- reset and clock: through MicroPython's raw REPL (what mpremote does) ---------------
def _served_port(port: str | None, what: str) -> str:
    if not port:
        raise LinkError(NO_PORT)
    if port == "emu" or port.startswith("emu:"):
        raise LinkError(f"--port emu starts a fresh emulated board for each command: there is nothing to {what} "
                        f"(use the URL of `myotone emu serve` instead)")
    return port


def _raw_repl(port: str, work, soft_restart: bool = True) -> dict:
    """Stop the firmware (Ctrl-C: its `finally` makes the output safe), run work(board) in
    the raw REPL, start the firmware again (soft reset, or work's machine.reset()) and
    wait until it answers hello. Returns hello."""
    from .devicefs import Board, DeviceFsError
    from .flasher import FlashError, wait_for_hello
    from .link import SerialTransport
    try:
        dev = Board(port)
        try:
            work(dev)
            link = Link(SerialTransport.adopt(dev.restart()), port) if soft_restart else None
        except BaseException:
            dev.release()            # never leave the board at the REPL
            raise
        return wait_for_hello(port, link=link)
    except (DeviceFsError, FlashError) as exc:
        raise LinkError(str(exc)) from exc
    except OSError as exc:
        raise LinkError(f"{port}: {exc}") from exc


@main.command()
@port_option
@click.option("--soft", is_flag=True, help="Soft reset (MicroPython's Ctrl-D): runs boot.py and main.py again "
                                           "without resetting the chip or its USB.")
@json_option
@device_errors
def reset(port, soft, as_json):
    """Reset the board and wait until the firmware answers again.

    Also brings back a board left at the MicroPython prompt (>>>). The
    firmware makes the output safe first (its `finally`), as on Ctrl-C.
    """
    port = _served_port(port, "reset")
    hello = _raw_repl(port, (lambda dev: None) if soft else (lambda dev: dev.reset()), soft_restart=soft)
    emit({"ok": True, "reset": "soft" if soft else "hard", "hello": hello}, as_json,
         f"reset; {hello['board']} firmware {hello['firmware']} answers (last reset: {hello['reset_cause']})")


@main.group()
def clock():
    """The device's clock (the times in its session logs)."""


@clock.command("set")
@port_option
@json_option
@device_errors
def clock_set(port, as_json):
    """Set the device's clock to this computer's (UTC).

    Every command that talks to the device does this by itself when the
    device says its clock was never set; this sets it regardless (a clock
    that drifted). Allowed during a session: its record's start moves with
    the clock. The clock keeps time until the board loses power.
    """
    port = _served_port(port, "set")
    with Link.open(port) as link:
        try:
            r = link.request("clock_set", time_s=int(time.time()))
        except DeviceError as exc:
            if exc.code != "unknown_cmd":
                raise
            r = None                 # a firmware without clock_set: through the REPL
    if r is None:
        r = _clock_set_by_repl(port)
    emit({"ok": True, "device_time_s": r["time_s"], "was_s": r["was_s"]}, as_json,
         f"device clock set to {utc(r['time_s'])} (it said {utc(r['was_s'])})")


def _clock_set_by_repl(port) -> dict:
    """Firmware older than `clock_set`: set the RTC from the raw REPL, as `mpremote rtc
    --set` does; the firmware stops for a moment and starts again (not during a session)."""
    from .monitor import ACTIVE
    with Link.open(port) as link:
        if link.request("status")["state"] in ACTIVE:
            raise LinkError("a session is running and this firmware sets its clock only by restarting: "
                            "stop it first (`myotone session stop`), or update the firmware (`myotone flash`)")
    seen = {}

    def set_rtc(dev):
        seen["was"] = dev.t.eval("__import__('time').time()")
        now = time.gmtime()
        dev.t.exec("import machine; machine.RTC().datetime((%d, %d, %d, %d, %d, %d, %d, 0))"
                   % (now.tm_year, now.tm_mon, now.tm_mday, now.tm_wday, now.tm_hour, now.tm_min, now.tm_sec))
        seen["now"] = dev.t.eval("__import__('time').time()")
    _raw_repl(port, set_rtc)
    return {"time_s": seen["now"], "was_s": seen["was"]}


# ---- user programs -------------------------------------------------------------------
@programs.command("write")
@click.argument("path", metavar="FILE", type=InFile())
@click.option("--name", default=None, help="Store it under this name (default: the file's `name`, else its stem).")
@port_option
@json_option
@device_errors
def programs_write(path, name, port, as_json):
    """Store a user program from a JSON or YAML file on the device.

    The file has `description` and `phases` (docs/protocol.md#program_write);
    the device checks it (ranges, timing on this board, LED dose) and refuses
    what it would not run. Writing an existing name replaces it.
    """
    from . import programfile
    args = programfile.request_args(programfile.read(path), name, path)
    with connect(port) as link:
        r = link.request("program_write", **args)
    current = any(isinstance(ph, dict) and ph.get("current_pct") for ph in args["program"]["phases"])
    emit(r, as_json, f"stored {r['name']} ({r['duration_s']} s); run it with "
                     f"`myotone session start --program {r['name']}{' --ua 200' if current else ''}`")


@programs.command("delete")
@click.argument("name")
@port_option
@json_option
@device_errors
def programs_delete(name, port, as_json):
    """Delete a user program from the device (built-in ones cannot be)."""
    with connect(port) as link:
        r = link.request("program_delete", name=name)
    emit(r, as_json, f"deleted {r['name']}")


# ---- settings ------------------------------------------------------------------------
@main.command()
@click.option("--default-program", default=None, help="What a short press of the button starts.")
@click.option("--level", type=click.IntRange(1, 5), default=None,
              help="The saved intensity level (k runs the program at k/5 of the board limit).")
@port_option
@json_option
@device_errors
def settings(default_program, level, port, as_json):
    """Show or change what the button does on its own (default program, level)."""
    args = {k: v for k, v in (("default_program", default_program), ("level", level)) if v is not None}
    with connect(port) as link:
        r = link.request("settings", **args)
    levels = ", ".join(f"{k + 1}: {ua} µA" for k, ua in enumerate(r.get("level_ua", [])))
    emit(r, as_json, f"default program {r['default_program']}, level {r['level']} of {r['levels']}"
                     + (f" ({levels})" if levels else ""))

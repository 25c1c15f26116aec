"""`myotone flash`: put the firmware on one board or several in parallel.

Per board: open the port with mpremote's SerialTransport, enter the raw REPL
(Ctrl-C: the firmware's `finally` makes the output safe first), read what
the board's MicroPython can load, build the package for it (build.py), hash
what is on the board in one pass, upload only what differs, remove stale
package files, reset (a soft reset when nothing changed), and check that
`hello` answers with the new version.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import build, fwlimits, paths
from .devicefs import PACKAGE_DIR, Board, DeviceFsError
from .link import Link, LinkError, SerialTransport

DEFAULT_BOARD = {"rp2": "pico-mcp4725", "esp32": "esp32-devkit"}
PLATFORM_FOR_MCU = {"rp2040": "rp2", "esp32": "esp32"}
HELLO_WAIT_S = 15.0
HELLO_RESEND_S = 1.0     # ask hello again after this much silence
RETRY_AFTER_S = 2.0      # an ESP32 task watchdog (≤ 1 s) resets the board after Ctrl-C


class FlashError(Exception):
    pass


@dataclass
class Plan:
    upload: list = field(default_factory=list)      # remote paths, in upload order
    delete: list = field(default_factory=list)
    mkdir: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)


@dataclass
class FlashResult:
    port: str
    ok: bool = False
    dry_run: bool = False
    board: str | None = None
    firmware: str | None = None
    mpy: str | None = None
    uploaded: list = field(default_factory=list)
    deleted: list = field(default_factory=list)
    unchanged: int = 0
    bytes: int = 0
    note: str = ""
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _order(path: str) -> tuple:
    # the package first, boot.py and main.py last: a board cut off mid-flash
    # still boots the old boot.py into the safe state
    return (path in ("/boot.py", "/main.py"), path == "/main.py", path)


def make_plan(pkg: build.Package, remote: dict, remote_dirs: set) -> Plan:
    """What to change: `remote` maps device paths to sha256 hex ('-': unknown)."""
    plan = Plan()
    for path in sorted(pkg.files, key=_order):
        if remote.get(path) == pkg.digest(path):
            plan.unchanged.append(path)
        else:
            plan.upload.append(path)
            parent = path.rsplit("/", 1)[0]
            while parent and parent not in remote_dirs and parent not in plan.mkdir:
                plan.mkdir.insert(0, parent)
                parent = parent.rsplit("/", 1)[0]
    plan.mkdir.sort(key=len)
    # stale package files, and the .tmp of an interrupted flash (unless an upload reuses it)
    plan.delete = sorted(p for p in remote if p not in pkg.files
                         and (p.startswith(PACKAGE_DIR + "/") or p.endswith(".tmp"))
                         and not (p.endswith(".tmp") and p[:-4] in plan.upload))
    return plan


def board_file(name: str | None) -> Path:
    p = Path(name)
    if p.suffix == ".json":
        if not p.is_file():
            raise FlashError(f"no board file {name}")
        return p
    p = paths.boards_dir() / f"{name}.json"
    if not p.is_file():
        known = ", ".join(sorted(b.stem for b in paths.boards_dir().glob("*.json")))
        raise FlashError(f"unknown board {name!r} (known: {known})")
    return p


def check_board(bdata: dict, name: str, fw_dir: Path) -> None:
    """The firmware's own board.check() (from the firmware being flashed): a board file it would
    refuse at boot -- a limit the over-current latch does not fit, two roles on one pin -- is
    refused before anything is uploaded, with its reason, instead of a board that boots into its
    safe state and never answers hello."""
    why = fwlimits.board_error(bdata, fw_dir)
    if why is not None:
        raise FlashError(f"the firmware refuses board file {name}: {why}")


def wait_for_hello(port: str, wait_s: float = HELLO_WAIT_S, link: Link | None = None) -> dict:
    """After the reset: ask on `link` if the port is still open, else open it; the board
    may vanish and come back (USB): ask until it answers. Closes the link."""
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with link or Link.open(port) as open_link:
                return _ask_hello(open_link, deadline)
        except LinkError as exc:
            last = str(exc)
            link = None
            time.sleep(0.3)
    raise FlashError(f"after the reset the firmware did not answer hello: {last}")


def _ask_hello(link: Link, deadline: float) -> dict:
    """A hello that reaches the board before its reset is lost with it: ask again as soon
    as the firmware says `ready` (it booted after our question), and after HELLO_RESEND_S
    of silence; a reply to any of our hellos counts."""
    asked: set = set()
    while time.monotonic() < deadline:
        asked.add(len(asked) + 1)
        link.send({"id": len(asked), "cmd": "hello"})
        resend_at = min(deadline, time.monotonic() + HELLO_RESEND_S)
        while (left := resend_at - time.monotonic()) > 0:
            msg = link.read_message(timeout_s=left)
            if msg is None:
                break
            if msg.get("id") in asked and msg.get("ok"):
                return msg
            if msg.get("ev") == "ready":
                break
    raise LinkError(f"no reply to hello from {link.port} within {HELLO_WAIT_S:g} s")


def _prepare(dev: "Board", res: FlashResult, board, fw_dir: Path, packages: dict | None):
    """Choose the board file, build the package for this board, plan the changes."""
    info = dev.info()
    name = board or dev.board_name() or DEFAULT_BOARD.get(info["platform"])
    if name is None:
        raise FlashError(f"cannot tell which board this {info['platform']} is: pass --board")
    bfile = board_file(name)
    bdata = json.loads(bfile.read_text())
    if PLATFORM_FOR_MCU.get(bdata.get("mcu")) != info["platform"]:
        raise FlashError(f"board file {bfile.stem} is for {bdata.get('mcu')}, the device is {info['platform']}")
    res.board = bfile.stem
    check_board(bdata, bfile.stem, fw_dir)
    target = build.mpy_target(info["mpy"], bdata["mcu"])
    key = (str(bfile), target)
    pkg = packages.get(key) if packages is not None else None
    if pkg is None:
        try:
            pkg = build.build(fw_dir, bfile, target)
        except build.BuildError as exc:     # no compiler for that version: source still works
            pkg = build.build(fw_dir, bfile, None)
            pkg.note = f"{exc}: source files"
        if packages is not None:
            packages[key] = pkg
    res.mpy = pkg.mpy.version if pkg.mpy else None
    res.note = pkg.note
    top = tuple(p for p in pkg.files if p.count("/") == 1)
    remote, dirs = dev.hashes(top + tuple(p + ".tmp" for p in top))
    return pkg, bdata, make_plan(pkg, remote, dirs)


def flash_one(port: str, board: str | None = None, dry_run: bool = False, firmware_dir: Path | None = None,
              progress=None, packages: dict | None = None) -> FlashResult:
    """Flash one board; every failure is in the result, never raised."""
    from mpremote.transport import TransportError
    res = FlashResult(port=port, dry_run=dry_run)
    fw_dir = firmware_dir or paths.firmware_dir()
    dev = None
    done: list = []
    try:
        if port == "emu" or port.startswith("emu:"):
            raise FlashError("--port emu runs an emulator inside this command, so a flash would vanish when it "
                             "exits: run `myotone emu serve --tcp 0` and flash the socket:// URL it prints")
        for attempt in (1, 2):
            dev = Board(port)
            try:
                pkg, bdata, plan = _prepare(dev, res, board, fw_dir, packages)
                res.deleted, res.unchanged = plan.delete, len(plan.unchanged)
                if dry_run:
                    res.uploaded = plan.upload
                    res.bytes = sum(len(pkg.files[p]) for p in plan.upload)
                    res.firmware = pkg.version
                    res.ok = True
                    return res          # `finally` lets the board run its firmware again
                link = None
                if plan.upload or plan.delete or plan.mkdir:
                    dev.apply(pkg, plan, progress, done)
                    dev.reset()
                else:       # nothing to change: a soft reset runs the firmware again, spares a
                    # board's USB the re-enumeration of machine.reset(), and keeps the port open
                    link = Link(SerialTransport.adopt(dev.restart()), port)
                dev = None
                break
            except TransportError:
                if attempt == 2:
                    raise
                # e.g. an ESP32 whose task watchdog runs (a session since boot) resets about
                # 1 s after the Ctrl-C that stopped its firmware; every file is whole: again
                dev.close()
                dev = None
                time.sleep(RETRY_AFTER_S)
        if attempt == 2:
            res.note = (res.note + "; " if res.note else "") + "the board reset during the flash: resumed"
        res.uploaded = done
        res.bytes = sum(len(pkg.files[p]) for p in done)
        hello = wait_for_hello(port, link=link)
        res.firmware = hello.get("firmware")
        if hello.get("firmware") != pkg.version or hello.get("board") != bdata["name"]:
            raise FlashError(f"after flashing, hello says firmware {hello.get('firmware')} on "
                             f"{hello.get('board')}, expected {pkg.version} on {bdata['name']}")
        res.ok = True
    except (FlashError, DeviceFsError, build.BuildError, LinkError) as exc:
        res.error = str(exc)
    except TransportError as exc:
        res.error = f"{port}: {_transport_text(exc)}"
    except OSError as exc:
        res.error = f"{port}: {exc}"
    finally:
        if dev is not None:
            dev.release()
    return res


def _transport_text(exc) -> str:
    if getattr(exc, "error_output", None):
        return exc.error_output.strip().splitlines()[-1]
    return str(exc) or type(exc).__name__


def flash_many(ports: list, board: str | None = None, dry_run: bool = False, firmware_dir: Path | None = None,
               progress=None) -> list:
    """Flash every port in parallel (threads); one result per port, in order."""
    packages: dict = {}
    if len(ports) == 1:
        return [flash_one(ports[0], board, dry_run, firmware_dir,
                          (lambda path, n, total: progress(ports[0], path, n, total)) if progress else None,
                          packages)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        futures = [pool.submit(flash_one, p, board, dry_run, firmware_dir,
                               (lambda path, n, total, p=p: progress(p, path, n, total)) if progress else None,
                               packages) for p in ports]
        return [f.result() for f in futures]

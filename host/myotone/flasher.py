"""`myotone flash`: put the firmware on one board or several in parallel.

Per board: open the port with mpremote's SerialTransport, enter the raw REPL
(Ctrl-C: the firmware's `finally` makes the output safe first), read what
the board's MicroPython can load, build the package for it (build.py), hash
what is on the board in one pass, upload only what differs, remove stale
package files, reset, and check that `hello` answers with the new version.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import build, paths
from .link import Link, LinkError, open_error

DEFAULT_BOARD = {"rp2": "pico-mcp4725", "esp32": "esp32-devkit"}
PLATFORM_FOR_MCU = {"rp2040": "rp2", "esp32": "esp32"}
PACKAGE_DIR = "/myotone"
CHUNK = 512
HELLO_WAIT_S = 15.0

_HASH_SCRIPT = """\
import os
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
def _h(p):
    if hashlib is None:
        return '-'
    s = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(512)
            if not b:
                break
            s.update(b)
    return binascii.hexlify(s.digest()).decode()
def _w(d):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            print('D', p)
            _w(p)
        else:
            print('F', p, _h(p))
for p in %r:
    try:
        os.stat(p)
        print('F', p, _h(p))
    except OSError:
        pass
try:
    os.stat(%r)
    print('D', %r)
    _w(%r)
except OSError:
    pass
"""


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


def _quiet(*_args, **_kw):
    """mpremote's transport prints raw bytes when it cannot enter the raw REPL;
    that must not reach our (JSON) stdout. The exception that follows says it."""


def _transport(port: str):
    from mpremote import transport_serial
    from serial import SerialException
    transport_serial.print = _quiet
    try:
        return transport_serial.SerialTransport(port, baudrate=115200, timeout=10)
    except transport_serial.TransportError:
        # mpremote says only "failed to access": find out why, in the user's terms
        import serial
        try:
            serial.serial_for_url(port, exclusive=True).close()
        except (SerialException, OSError, ValueError) as exc:
            raise FlashError(str(open_error(port, exc))) from None
        raise FlashError(f"cannot open {port}") from None


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
    plan.delete = sorted(p for p in remote if p.startswith(PACKAGE_DIR + "/") and p not in pkg.files)
    return plan


class Board:
    """One board through mpremote's raw REPL."""

    def __init__(self, port: str):
        from mpremote.transport import TransportError
        self.port = port
        self.t = _transport(port)
        try:
            self.t.enter_raw_repl(soft_reset=True)
        except TransportError as exc:
            self.t.close()
            raise FlashError(f"{port}: the board does not answer the MicroPython REPL ({exc})") from None

    def info(self) -> dict:
        plat, mpy, ver = self.t.eval("(__import__('sys').platform, getattr(__import__('sys').implementation, "
                                     "'_mpy', 0), tuple(__import__('sys').implementation.version[:3]))")
        return {"platform": plat, "mpy": mpy, "version": ".".join(str(v) for v in ver)}

    def board_name(self) -> str | None:
        try:
            return json.loads(bytes(self.t.fs_readfile("/board.json")))["name"]
        except Exception:      # noqa: BLE001 - no or broken board file: choose by platform
            return None

    def hashes(self, top: tuple) -> tuple[dict, set]:
        out = self.t.exec(_HASH_SCRIPT % (top, PACKAGE_DIR, PACKAGE_DIR, PACKAGE_DIR)).decode()
        files, dirs = {}, set()
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == "D":
                dirs.add(parts[1])
            elif parts and parts[0] == "F":
                files[parts[1]] = parts[2]
        for path, digest in list(files.items()):
            if digest == "-":          # no hashlib on the board: mpremote hashes a read-back copy
                files[path] = self.t.fs_hashfile(path, "sha256").hex()
        return files, dirs

    def apply(self, pkg: build.Package, plan: Plan, progress=None) -> int:
        total = sum(len(pkg.files[p]) for p in plan.upload)
        done = 0
        for d in plan.mkdir:
            self.t.fs_mkdir(d)
        for path in plan.upload:
            data = pkg.files[path]
            base = done
            self.t.fs_writefile(path, data, chunk_size=CHUNK, progress_callback=(
                (lambda n, _size, b=base: progress(path, b + n, total)) if progress else None))
            done += len(data)
        for path in plan.delete:
            self.t.fs_rmfile(path)
        return done

    def reset(self) -> None:
        self.t.exec_raw_no_follow("import time, machine; time.sleep_ms(100); machine.reset()")
        self.close()

    def release(self) -> None:
        """Leave the board running its firmware again: friendly REPL, then a soft reset
        (boot.py, main.py), as after `mpremote` ends. For dry runs and failures."""
        try:
            self.t.exit_raw_repl()
            self.t.serial.write(b"\x04")
            self.t.serial.flush()
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        try:
            self.t.close()
        except OSError:
            pass


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


def wait_for_hello(port: str, wait_s: float = HELLO_WAIT_S) -> dict:
    """After the reset: the board may vanish and come back (USB); ask until it answers."""
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with Link.open(port) as link:
                return link.request("hello", timeout_s=min(3.0, max(0.5, deadline - time.monotonic())))
        except LinkError as exc:
            last = str(exc)
            time.sleep(0.3)
    raise FlashError(f"after the reset the firmware did not answer hello: {last}")


def flash_one(port: str, board: str | None = None, dry_run: bool = False, firmware_dir: Path | None = None,
              progress=None, packages: dict | None = None) -> FlashResult:
    """Flash one board; every failure is in the result, never raised."""
    from mpremote.transport import TransportError
    res = FlashResult(port=port, dry_run=dry_run)
    fw_dir = firmware_dir or paths.firmware_dir()
    dev = None
    try:
        if port == "emu" or port.startswith("emu:"):
            raise FlashError("--port emu runs an emulator inside this command, so a flash would vanish when it "
                             "exits: run `myotone emu serve --tcp 0` and flash the socket:// URL it prints")
        dev = Board(port)
        info = dev.info()
        name = board or dev.board_name() or DEFAULT_BOARD.get(info["platform"])
        if name is None:
            raise FlashError(f"cannot tell which board this {info['platform']} is: pass --board")
        bfile = board_file(name)
        bdata = json.loads(bfile.read_text())
        if PLATFORM_FOR_MCU.get(bdata.get("mcu")) != info["platform"]:
            raise FlashError(f"board file {bfile.stem} is for {bdata.get('mcu')}, the device is {info['platform']}")
        res.board = bfile.stem
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
        remote, dirs = dev.hashes(tuple(p for p in pkg.files if p.count("/") == 1))
        plan = make_plan(pkg, remote, dirs)
        res.uploaded, res.deleted, res.unchanged = plan.upload, plan.delete, len(plan.unchanged)
        res.bytes = sum(len(pkg.files[p]) for p in plan.upload)
        if dry_run:
            res.firmware = pkg.version
            res.ok = True
            return res          # `finally` lets the board run its firmware again
        dev.apply(pkg, plan, progress)
        dev.reset()
        dev = None
        hello = wait_for_hello(port)
        res.firmware = hello.get("firmware")
        if hello.get("firmware") != pkg.version or hello.get("board") != bdata["name"]:
            raise FlashError(f"after flashing, hello says firmware {hello.get('firmware')} on "
                             f"{hello.get('board')}, expected {pkg.version} on {bdata['name']}")
        res.ok = True
    except (FlashError, build.BuildError, LinkError) as exc:
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
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        futures = [pool.submit(flash_one, p, board, dry_run, firmware_dir,
                               (lambda path, n, total, p=p: progress(p, path, n, total)) if progress else None,
                               packages) for p in ports]
        return [f.result() for f in futures]

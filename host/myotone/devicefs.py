"""A board's files through mpremote's Python API (its raw-REPL SerialTransport
and fs_* functions), as `myotone flash` needs them: what is on it (hashed in
one pass), whole-file uploads, and the resets."""
from __future__ import annotations

import json

from .link import open_error

PACKAGE_DIR = "/myotone"
CHUNK = 512

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


_READ_BOARD = """\
try:
    with open('/board.json') as f:
        print(f.read())
except OSError:
    pass
"""

# littlefs renames onto an existing file atomically; FAT cannot, so remove it first there
_RENAME = """\
import os
try:
    os.rename(%r, %r)
except OSError:
    os.remove(%r)
    os.rename(%r, %r)
"""


class DeviceFsError(Exception):
    pass


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
            raise DeviceFsError(str(open_error(port, exc))) from None
        raise DeviceFsError(f"cannot open {port}") from None


class Board:
    """One board through mpremote's raw REPL."""

    def __init__(self, port: str):
        from mpremote.transport import TransportError
        self.port = port
        self.t = _transport(port)
        try:
            try:
                self.t.enter_raw_repl(soft_reset=True)
            except TransportError:
                # a Ctrl-C that lands in boot.py stops only boot.py: MicroPython then runs main.py,
                # which reads the Ctrl-A meant for the REPL as input. The second try's Ctrl-C
                # interrupts main.py (a board still booting when we connect: seen under load)
                self.t.enter_raw_repl(soft_reset=True)
        except TransportError as exc:
            self.t.close()
            raise DeviceFsError(f"{port}: the board does not answer the MicroPython REPL ({exc})") from None

    def info(self) -> dict:
        plat, mpy, ver = self.t.eval("(__import__('sys').platform, getattr(__import__('sys').implementation, "
                                     "'_mpy', 0), tuple(__import__('sys').implementation.version[:3]))")
        return {"platform": plat, "mpy": mpy, "version": ".".join(str(v) for v in ver)}

    def board_name(self) -> str | None:
        # one exec (mpremote's fs_readfile takes a round trip per 256 bytes)
        try:
            return json.loads(self.t.exec(_READ_BOARD))["name"]
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

    def apply(self, pkg, plan, progress=None, done: list | None = None) -> None:
        """Upload each file whole or not at all (.tmp, then rename): a reset or an unplugged
        cable mid-flash leaves every file old or new, and flashing again finishes the job."""
        total = sum(len(pkg.files[p]) for p in plan.upload)
        sent = 0
        for d in plan.mkdir:
            self.t.fs_mkdir(d)
        for path in plan.upload:
            data = pkg.files[path]
            base = sent
            self.t.fs_writefile(path + ".tmp", data, chunk_size=CHUNK, progress_callback=(
                (lambda n, _size, b=base: progress(path, b + n, total)) if progress else None))
            self.t.exec(_RENAME % (path + ".tmp", path, path, path + ".tmp", path))
            sent += len(data)
            if done is not None:
                done.append(path)
        for path in plan.delete:
            self.t.fs_rmfile(path)

    def reset(self) -> None:
        self.t.exec_raw_no_follow("import time, machine; time.sleep_ms(100); machine.reset()")
        self.close()

    def release(self) -> None:
        """Leave the board running its firmware again: friendly REPL, then a soft reset
        (boot.py, main.py), as after `mpremote` ends. For dry runs and failures."""
        try:
            self.restart()
        except OSError:
            pass
        self.close()

    def restart(self):
        """Friendly REPL, soft reset (boot.py, main.py); the port stays open: its pyserial object."""
        self.t.exit_raw_repl()
        self.t.serial.write(b"\x04")
        self.t.serial.flush()
        return self.t.serial

    def close(self) -> None:
        try:
            self.t.close()
        except OSError:
            pass

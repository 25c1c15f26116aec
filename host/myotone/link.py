"""The one way the host talks to a device: a board's serial port, any pyserial
URL (``socket://host:port``, ``rfc2217://…``), or an in-process emulator
(``emu`` / ``emu:BOARD``).

A Link speaks the JSON-lines protocol (docs/protocol.md): `request()` sends
a command and returns its reply, `read_message()` returns the next reply or
event. Lines that are not JSON (a REPL banner, a traceback) are kept in
`noise` for diagnostics. Time comes from `now_s()`: the wall clock for a
board, virtual time for an in-process emulator, which runs in lockstep
only while the host waits for it.
"""
from __future__ import annotations

import collections
import errno
import json
import math
import time

from . import interrupt


NO_PORT = "no port: pass --port (a device, a pyserial URL, or emu) or set MYOTONE_PORT"


class PortName(str):
    """A port as the user gave it, and where it came from (`--port`, `MYOTONE_PORT`,
    `auto-detected`), so that an error about it can say so."""

    def __new__(cls, value: str, source: str = "--port"):
        self = super().__new__(cls, value)
        self.source = source
        return self


def named(port: str) -> str:
    """`port`, with its source when that is not the command line (errors name it)."""
    source = getattr(port, "source", "--port")
    if source == "--port":
        return str(port)
    return f"{port} ({source})" if source == "auto-detected" else f"{port} (from {source})"


def resolve(port: str | None) -> PortName:
    """The port to use: the one given, else the one Myotone board plugged in (by USB ID,
    as mpremote picks its default), else a one-line reason."""
    if port:
        return port if isinstance(port, PortName) else PortName(port)
    from .ports import list_ports
    try:
        ours = [p["device"] for p in list_ports() if p["board"]]
    except Exception:       # noqa: BLE001 - no USB enumeration here: as if nothing were plugged in
        ours = []
    if len(ours) == 1:
        return PortName(ours[0], "auto-detected")
    if ours:
        raise LinkError(f"several boards are plugged in ({', '.join(ours)}): choose one with --port")
    raise LinkError(NO_PORT + " (no Myotone board found on USB: `myotone ports` lists what is there)")


class LinkError(Exception):
    """The device could not be reached or did not answer."""


class DeviceError(Exception):
    """The device answered a request with ok: false."""

    def __init__(self, reply: dict):
        self.reply = reply
        self.code = reply.get("error", "error")
        self.message = reply.get("message", "")
        super().__init__(f"{self.code}: {self.message}")


def open_error(url: str, exc: Exception) -> LinkError:
    """A one-line reason why `url` could not be opened, in the user's terms."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if isinstance(exc, ValueError):
        why = "not a port (give a device path, a pyserial URL such as socket://HOST:PORT, or emu[:BOARD])"
    elif code == errno.ENOENT or "No such file" in text:
        why = "no such port (is the board plugged in? `myotone ports` lists them)"
    elif code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in text or "busy" in text.lower():
        why = "port busy: another program has it open (mpremote, a serial monitor, another myotone?)"
    elif code == errno.EACCES or "Permission denied" in text:
        why = "permission denied (on Linux, add yourself to the dialout group)"
    elif "Connection refused" in text:
        why = "nothing is listening there (is `myotone emu serve` running?)"
    else:
        why = text
    return LinkError(f"cannot open {named(url)}: {why}")


class SerialTransport:
    def __init__(self, url: str):
        import serial
        try:
            self._ser = serial.serial_for_url(url, baudrate=115200, timeout=0.05, exclusive=True)
        except TypeError:   # URL handlers that do not take `exclusive`
            self._ser = serial.serial_for_url(url, baudrate=115200, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise open_error(url, exc) from exc
        self._buf = bytearray()
        self.url = url

    @classmethod
    def adopt(cls, ser) -> "SerialTransport":
        """Speak the protocol on a pyserial port another tool opened (the flasher's, after
        its soft reset): no close and reopen, which on socket:// costs pyserial's 0.3 s."""
        self = cls.__new__(cls)
        ser.timeout = 0.05
        self._ser, self._buf = ser, bytearray()
        self.url = getattr(ser, "portstr", None) or "the port"
        return self

    def _lost(self, what: str, exc: Exception) -> LinkError:
        return LinkError(f"lost the device on {named(self.url)} ({what}: {exc}): was it unplugged, "
                         "or its emulator stopped?")

    def write(self, data: bytes) -> None:
        import serial
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self._lost("write", exc) from exc

    def _fill(self, block: bool) -> bool:
        """Append what the port has (waiting up to its 50 ms timeout if `block`)."""
        import serial
        # shielded: a signal handled between pyserial's receiving bytes and our keeping them
        # would drop them (the rest of a line then joins the next one, and the reply to the
        # clean-up's `stop` is not seen); the signal is raised once they are kept
        with interrupt.shielded():
            try:
                waiting = self._ser.in_waiting
                if not waiting and not block:
                    return False
                chunk = self._ser.read(max(1, waiting))
            except (serial.SerialException, OSError) as exc:
                raise self._lost("read", exc) from exc
            self._buf += chunk
        return bool(chunk)

    def readline(self, timeout_s: float) -> bytes | None:
        """The next line; with timeout 0, only a line the port already holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            k = self._buf.find(b"\n")
            if k >= 0:
                line = bytes(self._buf[:k])
                del self._buf[:k + 1]
                return line
            if self._fill(block=False):
                continue
            if time.monotonic() >= deadline:
                return None
            self._fill(block=True)

    def read_bytes(self, timeout_s: float) -> bytes:
        """Raw bytes (a REPL prompt has no newline): what is there, else the first to come."""
        deadline = time.monotonic() + timeout_s
        while not self._buf and time.monotonic() < deadline:
            self._fill(block=True)
        self._fill(block=False)
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of what the port delivers next."""
        self._buf[:0] = data

    def partial(self) -> bytes:
        """What came after the last newline (a REPL prompt `>>> ` has none)."""
        return bytes(self._buf)

    def now_s(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        if type(self._ser).__module__ == "serial.urlhandler.protocol_socket" and self._ser.is_open:
            # socket:// (`myotone emu serve`): pyserial's close() then sleeps 0.3 s "in case of
            # quick reconnects", which every command would pay on exit; our server needs no
            # such pause (it reads a new client's bytes only once the old one is gone)
            import socket
            sock, self._ser._socket = self._ser._socket, None
            self._ser.is_open = False
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            return
        self._ser.close()


class EmuTransport:
    """An in-process emulator; waiting for a line runs it in lockstep."""

    step_s = 0.005

    def __init__(self, board: str = "pico-mcp4725", **kw):
        from .emulator import Emulator
        self.emulator = Emulator(board, **kw).start()
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self.emulator.write(data)

    def _run_until_data(self, timeout_s: float, have) -> None:
        """Run in steps until have() or `timeout_s` of virtual time. In integer ns:
        a deadline in float seconds can round to a time never reached. Timeout 0
        runs nothing: it only takes what the device has already said."""
        clock = self.emulator.clock
        deadline_ns = clock.now_ns + (math.ceil(timeout_s * 1e9) if timeout_s > 0 else 0)
        step_ns = int(self.step_s * 1e9)
        while True:
            with interrupt.shielded():               # as SerialTransport._fill: keep what was read
                self._buf += self.emulator.read()
            if have() or clock.now_ns >= deadline_ns:
                return
            clock.run_until(min(deadline_ns, clock.now_ns + step_ns))

    def readline(self, timeout_s: float) -> bytes | None:
        self._run_until_data(timeout_s, lambda: b"\n" in self._buf)
        k = self._buf.find(b"\n")
        if k < 0:
            return None
        line = bytes(self._buf[:k])
        del self._buf[:k + 1]
        return line

    def read_bytes(self, timeout_s: float) -> bytes:
        """Raw bytes (a REPL prompt has no newline): what is there, else the first to come."""
        self._run_until_data(timeout_s, lambda: bool(self._buf))
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def unread(self, data: bytes) -> None:
        self._buf[:0] = data

    def partial(self) -> bytes:
        return bytes(self._buf)

    def now_s(self) -> float:
        return self.emulator.now_s

    def close(self) -> None:
        self.emulator.close()


def open_transport(port: str):
    if port == "emu" or port.startswith("emu:"):
        board = port.partition(":")[2] or "pico-mcp4725"
        from .emulator import EmulatorError
        try:
            return EmuTransport(board)
        except EmulatorError as exc:
            source = getattr(port, "source", "--port")
            raise LinkError(str(exc) + ("" if source == "--port" else f" (port {port} from {source})")) from exc
    return SerialTransport(port)


class Link:
    def __init__(self, transport, port: str = "device"):
        self.transport = transport
        self.port = port
        self._next_id = 1
        self._pending: collections.deque[dict] = collections.deque()
        self.noise: collections.deque[str] = collections.deque(maxlen=200)

    @classmethod
    def open(cls, port: str | None) -> "Link":
        port = resolve(port)
        link = cls(open_transport(port), port)
        # end whatever partial line an earlier tool left in the device's buffer
        link.transport.write(b"\n")
        return link

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def now_s(self) -> float:
        return self.transport.now_s()

    def send(self, msg: dict) -> None:
        self.transport.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def _read_json(self, timeout_s: float) -> dict | None:
        deadline = self.now_s() + timeout_s
        while True:     # timeout 0 still takes a line that is already there
            raw = self.transport.readline(max(0.0, deadline - self.now_s()))
            if raw is None:
                return None
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                msg = json.loads(text)
            except ValueError:
                self.noise.append(text)
                continue
            if isinstance(msg, dict):
                return msg
            self.noise.append(text)

    def drop_pending(self) -> list:
        """Forget (and return) the events set aside so far: a status reply is newer."""
        old = list(self._pending)
        self._pending.clear()
        return old

    def read_message(self, timeout_s: float = 1.0) -> dict | None:
        """The next event or unclaimed reply, or None after `timeout_s`."""
        if self._pending:
            return self._pending.popleft()
        return self._read_json(timeout_s)

    def _silence(self, cmd: str, timeout_s: float) -> str:
        text = f"no reply to {cmd!r} from {named(self.port)} within {timeout_s:g} s"
        partial = self.transport.partial().decode("utf-8", "replace").strip() if hasattr(
            self.transport, "partial") else ""
        said = [t for t in list(self.noise)[-3:] + [partial] if t]
        # a REPL prints its prompt, or echoes our request back (no firmware does that)
        if any(t.startswith((">>>", "raw REPL")) or t.endswith(">>>") or "MicroPython v" in t
               or f'"cmd":"{cmd}"' in t for t in said):
            return (text + ": the board is at the MicroPython REPL (>>>), not running the firmware: "
                           "`myotone reset` starts it again (if it does not, `myotone flash`)")
        if said:
            return text + f" (it printed: {said[-1][:80]!r})"
        if self.port.startswith("socket://"):
            return (text + ": nothing answered on the connection; if this is `myotone emu serve`, another "
                           "client may have it (it serves one at a time: close the other myotone or mpremote), "
                           "else check that it runs the Myotone firmware")
        return text + ": the board is not answering (is the Myotone firmware flashed? `myotone flash`)"

    def request(self, cmd: str, timeout_s: float = 3.0, **args) -> dict:
        """Send `cmd` and return its reply; events that arrive meanwhile are kept."""
        req_id = self._next_id
        self._next_id += 1
        self.send({"id": req_id, "cmd": cmd, **args})
        deadline = self.now_s() + timeout_s
        while True:
            msg = self._read_json(max(0.0, deadline - self.now_s()))
            if msg is None:
                raise LinkError(self._silence(cmd, timeout_s))
            if msg.get("id") == req_id and "ok" in msg:
                if not msg["ok"]:
                    raise DeviceError(msg)
                return msg
            self._pending.append(msg)


def set_clock_if_unset(link: Link) -> dict | None:
    """Set the device's clock to this computer's (UTC) if it says it was never set (`hello`
    `clock_set` false: it still counts from its power-on date). Returns `clock_set`'s reply
    (`time_s`, `was_s`), or None if nothing was done: set already, or a firmware that does
    not say. The device takes it during a session too (a record's start moves with it)."""
    if link.request("hello").get("clock_set") is not False:
        return None
    return link.request("clock_set", time_s=int(time.time()))


def utc(seconds) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))

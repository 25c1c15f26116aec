"""The device under test: one API over a real board and the emulator.

pytest-embedded style: a test talks to `dut` only -- the protocol through
`dut.link` (or the helpers here, which use it), raw console bytes through
`dut.console`, time through `dut.now_s()` / `dut.wait()`, and the bench
through the capabilities `dut.rig` and `dut.faults` (None where the target
lacks them; the markers skip such tests before they start).

Every message the device sends while a test waits is kept in `dut.log`, in
order, so a test can look back at events (`events`, `telemetry`) or wait for
one (`expect`). The log starts empty in each test.
"""
from __future__ import annotations

import contextlib
import time

import pytest

from myotone.link import DeviceError, Link, LinkError

ACTIVE_STATES = ("ramp", "run", "ramp_down")
RESTING_STATES = ("idle", "done", "fault")


def ms_between(t0_ms: int, t1_ms: int) -> int:
    """t1 - t0 for the device's ticks_ms, which wrap at 2**30."""
    d = (t1_ms - t0_ms) & 0x3FFFFFFF
    return d - 0x40000000 if d & 0x20000000 else d


class RawConsole:
    """The device's serial console as bytes: Ctrl-C, Ctrl-D, the REPL prompt."""

    def __init__(self, dut: "Dut"):
        self._dut = dut

    def write(self, data: bytes) -> None:
        self._dut.link.transport.write(data)

    def ctrl_c(self) -> None:
        self.write(b"\x03")

    def ctrl_d(self) -> None:
        self.write(b"\x04")

    def read_until(self, marker: bytes, timeout_s: float = 3.0) -> bytes:
        """Bytes up to and including `marker`; what follows stays for the Link."""
        transport, got = self._dut.link.transport, bytearray()
        deadline = self._dut.now_s() + timeout_s
        past = False
        while True:
            k = got.find(marker)
            if k >= 0:
                transport.unread(bytes(got[k + len(marker):]))
                return bytes(got[:k + len(marker)])
            if past:
                transport.unread(bytes(got))
                raise AssertionError(f"console: no {marker!r} within {timeout_s:g} s; it said {bytes(got)[-300:]!r}")
            left = deadline - self._dut.now_s()
            past = left <= 0                  # then once more what had already come (Dut.expect)
            got += transport.read_bytes(max(0.0, min(left, 0.1)))


class Dut:
    """What every target shares; `wait` and `released` differ per target."""

    target = "?"

    def __init__(self, link: Link, board: dict, *, port: str | None = None, rig=None, faults=None):
        self.link = link
        self.board = board
        self.port = port          # what mpremote can open; None for the in-process emulator
        self.rig = rig
        self.faults = faults
        self.console = RawConsole(self)
        self.log: list[dict] = []
        self._has_cmd: dict[str, bool] = {}
        self._programs: dict | None = None

    # ---- time and messages ----
    def now_s(self) -> float:
        return self.link.now_s()

    def wait(self, seconds: float) -> None:
        raise NotImplementedError

    def _take(self, timeout_s: float) -> dict | None:
        msg = self.link.read_message(timeout_s)
        if msg is not None:
            self.log.append(msg)
        return msg

    def drain(self) -> None:
        """Log what has already arrived (replies set aside by `request`, events)."""
        while self._take(0.0) is not None:
            pass

    def mark(self) -> int:
        """A position in the log: pass it as `since` to look only at what came after."""
        self.drain()
        return len(self.log)

    def events(self, ev: str, since: int = 0) -> list[dict]:
        self.drain()
        return [m for m in self.log[since:] if m.get("ev") == ev]

    def telemetry(self, since: int = 0) -> list[dict]:
        return self.events("telemetry", since)

    def faults_seen(self, since: int = 0) -> list[str]:
        return [m["reason"] for m in self.events("fault", since)]

    def expect(self, ev: str, timeout_s: float = 5.0, since: int = 0, **fields) -> dict:
        """The first event `ev` (with these field values) after `since`, waiting up to `timeout_s`."""
        def matches(m):
            return m.get("ev") == ev and all(m.get(k) == v for k, v in fields.items())
        self.drain()
        for m in self.log[since:]:
            if matches(m):
                return m
        deadline = self.now_s() + timeout_s
        while (left := deadline - self.now_s()) > 0:
            m = self._take(left)
            if m is not None and matches(m):
                return m
        # past the deadline, what had already arrived: a served board's time runs on while this
        # process is held up (a loaded host), its messages waiting unread in the link
        while (m := self._take(0.0)) is not None:
            if matches(m):
                return m
        tail = [m for m in self.log[since:]][-6:]
        raise AssertionError(f"no {ev!r} event with {fields} within {timeout_s:g} s; last messages: {tail}")

    # ---- requests ----
    def request(self, cmd: str, timeout_s: float = 3.0, **args) -> dict:
        """The reply to `cmd`; a refusal raises DeviceError."""
        return self.link.request(cmd, timeout_s=timeout_s, **args)

    def refusal(self, cmd: str, **args) -> dict:
        """The error reply to a request that must be refused."""
        try:
            reply = self.link.request(cmd, **args)
        except DeviceError as exc:
            return exc.reply
        raise AssertionError(f"{cmd} {args} was accepted: {reply}")

    def has_cmd(self, cmd: str) -> bool:
        """Whether the firmware knows `cmd`, asked with an unknown field (refused either way)."""
        if cmd not in self._has_cmd:
            try:
                self.link.request(cmd, hil_probe=1)
                self._has_cmd[cmd] = True
            except DeviceError as exc:
                self._has_cmd[cmd] = exc.code != "unknown_cmd"
        return self._has_cmd[cmd]

    def require_cmd(self, *cmds: str) -> None:
        for cmd in cmds:
            if not self.has_cmd(cmd):
                pytest.skip(f"firmware lacks {cmd}")

    # ---- sessions ----
    def program(self, name: str) -> dict:
        if self._programs is None:
            self._programs = {p["name"]: p for p in self.request("programs")["programs"]}
        return self._programs[name]

    def session_args(self, **args) -> dict:
        """start arguments: `lift` by default, its gap rounded to what the pulse back-end plays."""
        args.setdefault("program", "lift")
        pulse = self.board["pulse"]
        if "gap_us" not in args and pulse["backend"] == "timer":
            gap_us = self.program(args["program"])["gap_us"]
            tick_us = pulse["tick_us"]
            if gap_us % tick_us:
                args["gap_us"] = gap_us // tick_us * tick_us
        return args

    def start(self, ua: int, **args) -> dict:
        args.setdefault("duration_s", 60)
        return self.request("start", ua=ua, **self.session_args(**args))

    def run_to_setpoint(self, ua: int, timeout_s: float = 10.0, **args) -> dict:
        """Start a session and wait until it runs at the setpoint; returns the start reply."""
        since = self.mark()
        reply = self.start(ua, **args)
        self.expect("state", timeout_s, since=since, state="run")
        return reply

    def status(self) -> dict:
        return self.request("status")

    def dac_step_ua(self) -> float:
        """One DAC code in µA: the finest current the device can set (board file)."""
        d = self.board["dac"]
        return d["vref_mv"] * 1000 / self.board["v_to_i"]["r_set_ohm"] / ((1 << d["bits"]) - 1)

    # ---- between tests ----
    def settle(self) -> None:
        """Bring the device to rest: faults removed, no session, nothing latched."""
        if self.faults is not None:
            self.faults.clear_all()
        if self.rig is not None:
            self.rig.connect_load(self.rig.default_load_ohm)
        try:
            st = self.request("status", timeout_s=2.0)
        except LinkError:
            self.recover()
            st = self.request("status", timeout_s=2.0)
        if st["state"] not in RESTING_STATES:
            if st["state"] != "ramp_down":
                self.request("stop")
            deadline = self.now_s() + 5.0
            while self.status()["state"] not in RESTING_STATES:
                assert self.now_s() < deadline, "the session did not stop within 5 s"
                self.wait(0.2)
        for _ in range(20):
            if self.status()["fault"] is None:
                break
            try:
                self.request("fault_clear")
            except DeviceError:
                self.wait(0.1)          # the condition is still going away
        self.drain()
        self.log.clear()

    def interrupt(self) -> bytes:
        """Ctrl-C, as mpremote sends it: main.py's `finally` makes the output safe, then the REPL."""
        self.console.ctrl_c()
        said = self.console.read_until(b">>> ", timeout_s=3.0)
        assert b"KeyboardInterrupt" in said, said[-300:]
        return said

    def soft_reset(self) -> dict:
        """Ctrl-D at the REPL: boot.py and main.py run again; returns the `ready` event."""
        since = self.mark()
        self.console.ctrl_d()
        return self.expect("ready", timeout_s=5.0, since=since)

    def recover(self) -> None:
        """The protocol is silent (a test left the REPL): Ctrl-C, soft reset, wait for `ready`."""
        self.console.ctrl_c()
        self.console.ctrl_c()
        self.wait(0.2)
        self.console.ctrl_d()
        self.expect("ready", timeout_s=10.0, since=len(self.log))

    @contextlib.contextmanager
    def released(self):
        """Close the port for another tool (mpremote), reopen it afterwards."""
        raise NotImplementedError(f"the {self.target} target has no port another tool can open")
        yield

    def close(self) -> None:
        for thing in (self.rig, self.faults):
            if thing is not None:
                thing.close()
        self.link.close()


class EmuDut(Dut):
    """The in-process emulator: `wait` runs it in lockstep (virtual time)."""

    target = "emulator"

    @property
    def emulator(self):
        return self.link.transport.emulator

    def wait(self, seconds: float) -> None:
        clock = self.emulator.clock
        end_ns = clock.now_ns + int(seconds * 1e9)
        while clock.now_ns < end_ns:       # in pieces: each lockstep call has a wall-clock limit
            clock.run_until(min(end_ns, clock.now_ns + 5_000_000_000))
            self.drain()


class SerialDut(Dut):
    """A board (or a served emulator) behind a serial port: `wait` is real time."""

    target = "board"

    def wait(self, seconds: float) -> None:
        deadline = self.now_s() + seconds
        while (left := deadline - self.now_s()) > 0:
            self._take(left)           # keep reading: a full USB buffer would stall the device

    @contextlib.contextmanager
    def released(self):
        self.link.close()
        try:
            yield self.port
        finally:
            self.link = reopen(self.port)


class ServedDut(SerialDut):
    """A served emulator (either tier) with its control port: time is the board's simulated
    time, so a slower-than-real-time chip or a faster emulator waits as long as a board would."""

    target = "served"

    def __init__(self, link: Link, board: dict, *, control, **kw):
        super().__init__(link, board, **kw)
        self.control = control

    def now_s(self) -> float:
        return self.control.now_s()

    def _take(self, timeout_s: float) -> dict | None:
        return super()._take(min(timeout_s, 0.05))     # wall-clock reads, simulated deadlines


def reopen(port: str, timeout_s: float = 15.0) -> Link:
    """Open `port` again once the device is back (USB re-enumerates after a reset).

    A tool that leaves the board at the REPL (mpremote without `reset`) gets a
    soft reset (Ctrl-C, Ctrl-D), which runs main.py again.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            link = Link.open(port)
            break
        except LinkError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        link.request("hello", timeout_s=3.0)
    except LinkError:
        link.transport.write(b"\x03\x03\x04")
        try:
            link.request("hello", timeout_s=max(1.0, deadline - time.monotonic()))
        except LinkError:
            link.close()
            raise
    return link

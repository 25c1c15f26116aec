"""`myotone monitor` (and `session start --watch`): live telemetry, state
changes and faults until Ctrl-C or, if asked, until the session ends.

Ctrl-C (and SIGTERM, SIGHUP, a closed stdout pipe: interrupt.py) leaves the device safe: a running session is stopped (ramp-down of
SAFETY.md) and the monitor waits until the output is off before it exits,
unless `leave_running` was asked for (then only a session started by this
monitor is stopped: nobody would send its heartbeat any more). A second
Ctrl-C exits at once; the stop has already been sent. Nothing here changes
terminal modes, so the terminal is left as it was.
"""
from __future__ import annotations

from .link import Link, LinkError
from .watch import HEARTBEAT_EVERY_S, Summary

ACTIVE = ("ramp", "run", "ramp_down", "pausing", "paused")
ENDED = ("done", "fault", "idle")


class Monitor:
    def __init__(self, link: Link, emit):
        self.link = link
        self.emit = emit                 # emit(message dict): the CLI prints it
        self.summary = Summary()
        self.heartbeat = False           # only for a session this monitor started
        self.started = False
        self.state = "unknown"
        self._next_beat = 0.0

    def begin(self) -> dict:
        st = self.link.request("status")
        self.link.drop_pending()         # boot events and the like: the status is newer
        self.state = st["state"]
        self.summary.final_state = st["state"]
        return st

    def start_session(self, args: dict) -> dict:
        """Start a host-driven session (heartbeat) that this monitor owns."""
        r = self.link.request("start", **{**args, "heartbeat": True})
        self.link.drop_pending()         # events that came before the reply are older than it
        self.heartbeat = self.started = True
        self.state = r["state"]
        self._next_beat = self.link.now_s() + HEARTBEAT_EVERY_S
        return r

    def _beat(self, force: bool = False) -> None:
        if self.heartbeat and self.state in ACTIVE and (force or self.link.now_s() >= self._next_beat):
            self.link.send({"cmd": "heartbeat"})
            self._next_beat = self.link.now_s() + HEARTBEAT_EVERY_S

    def step(self, timeout_s: float = 0.25) -> dict | None:
        """Read one message (or time out), keep the summary and the heartbeat."""
        self._beat()
        msg = self.link.read_message(timeout_s=timeout_s)
        if msg is None:
            return None
        ev = msg.get("ev")
        if ev == "telemetry":
            self.summary.telemetry.append(msg)
            self._beat(force=True)       # device time: right even for a fast emulator
        elif ev == "fault":
            self.summary.fault = msg.get("reason")
        elif ev == "state":
            self.state = self.summary.final_state = msg["state"]
        elif "ok" in msg:                # our heartbeats' replies: not news
            return None
        self.emit(msg)
        return msg

    def loop(self, until_done: bool = False, max_s: float | None = None) -> None:
        start = self.link.now_s()
        while max_s is None or self.link.now_s() - start < max_s:
            msg = self.step()
            if until_done and msg is not None and msg.get("ev") == "state" and msg["state"] in ENDED:
                tail = self.link.read_message(timeout_s=0.5)    # the final telemetry follows
                if tail is not None and tail.get("ev") == "telemetry":
                    self.summary.telemetry.append(tail)
                    self.emit(tail)
                return

    def stop_and_wait(self, timeout_s: float = 5.0) -> bool:
        """Stop a running session and wait for its output to be off; True if it is."""
        if self.state not in ACTIVE:
            return True
        self.link.request("stop")
        deadline = self.link.now_s() + timeout_s
        while self.link.now_s() < deadline:
            self.step()
            if self.state in ENDED:
                return True
        return self.link.request("status")["state"] in ENDED


def _quiet(emit):
    """While making the device safe, output that cannot be written (nobody reads the pipe,
    the terminal is gone after SIGHUP) must not stop the clean-up: it is dropped."""
    def show(msg):
        nonlocal emit
        if emit is not None:
            try:
                emit(msg)
            except (OSError, ValueError):
                emit = None
    return show


def run(link: Link, emit, start_args: dict | None = None, until_done: bool = False,
        max_s: float | None = None, leave_running: bool = False, notice=None) -> tuple[Monitor, BaseException | None]:
    """Monitor until the end (of the session if `until_done`, of `max_s`) or an interruption.

    Returns (monitor, None), or (monitor, the interruption) once the device is safe:
    Ctrl-C, SIGTERM, SIGHUP (Interrupted) or a reader that went away (BrokenPipeError),
    with what was done about it attached (interrupt.tell) for the one line the CLI prints.
    """
    from . import interrupt
    mon = Monitor(link, emit)
    mon.begin()
    if start_args is not None:
        mon.start_session(start_args)
    try:
        mon.loop(until_done=until_done, max_s=max_s)
        stop = mon.started          # a session it started needs its heartbeat: it ends with it
        interrupted = None
    except LinkError as exc:        # the device went away: say what becomes of the session
        if mon.heartbeat and mon.state in ACTIVE:
            raise LinkError(f"{exc} Its session gets no heartbeat now: the device ramps it down within 5 s "
                            "(fault heartbeat_lost)") from exc
        raise
    except (KeyboardInterrupt, BrokenPipeError) as exc:
        interrupted = exc
        stop = mon.state in ACTIVE and (mon.started or not leave_running)
        mon.emit = _quiet(None if isinstance(exc, BrokenPipeError) else mon.emit)
    if stop and mon.state in ACTIVE:
        if notice:
            notice("stopping the session (ramp-down); Ctrl-C again to exit at once")
        try:
            if not mon.stop_and_wait():
                raise LinkError("the session did not end after stop: check the device with `myotone status`")
            what = "the session was stopped (ramp-down), the output is off"
        except KeyboardInterrupt as again:
            interrupted = interrupted or again
            what = "the stop was sent; the device ramps down on its own"
    elif interrupted is not None and mon.state in ACTIVE:
        what = "the session was left running (--leave-running); it ends at its duration"
    else:
        what = "no session was running"
    if interrupted is not None:
        interrupt.tell(interrupted, what)
    return mon, interrupted

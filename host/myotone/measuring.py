"""The device's `measure` command from the host: a short host-driven session
(every safety check active, SAFETY.md ramps) whose run phase the firmware
averages; the result arrives as an `ev: measure` event when it has ramped
down. Used by `calibrate` and `selftest`."""
from __future__ import annotations

from .link import DeviceError, Link, LinkError
from .watch import HEARTBEAT_EVERY_S


class MeasureFault(Exception):
    """The measuring session ended with a fault (the output is already off)."""

    def __init__(self, result: dict):
        self.result = result
        super().__init__(f"the device stopped with a fault: {result.get('fault')}")


def measure(link: Link, ua: int, hold_s: int = 2, on_message=None, **waveform) -> dict:
    """Drive `ua` for `hold_s` at the setpoint and return the `measure` event.

    Interrupted (Ctrl-C, SIGTERM, a closed pipe) or failing on the way, it stops its
    session and waits until the output is off before it lets the exception go on:
    a measuring session left to run would end in a latched heartbeat_lost."""
    try:            # interrupted while asking, the session may have started: stopped all the same
        r = link.request("measure", ua=ua, hold_s=hold_s, **waveform)
        return _follow(link, ua, hold_s, r, on_message)
    except BaseException as exc:
        if not isinstance(exc, (MeasureFault, DeviceError)):   # a fault cut the output; a refusal started nothing
            stop_and_wait(link)
            from . import interrupt
            if interrupt.is_interruption(exc):
                interrupt.tell(exc, "the measuring session was stopped, the output is off")
        raise


def stop_and_wait(link: Link, wait_s: float = 10.0) -> None:
    """Stop the device's session and wait until its output is off; whole, even on a second
    signal (interrupt.shielded); quiet if the device is gone."""
    from . import interrupt
    with interrupt.shielded():
        try:
            link.request("stop")
            deadline = link.now_s() + wait_s
            while link.request("status")["state"] in ACTIVE and link.now_s() < deadline:
                link.read_message(timeout_s=0.25)
            link.drop_pending()
        except (LinkError, DeviceError):
            pass


ACTIVE = ("ramp", "run", "ramp_down", "pausing", "paused")


def _follow(link: Link, ua: int, hold_s: int, r: dict, on_message) -> dict:
    # the session the device planned (its ramp, timed to the waveform's pairs, + hold), then
    # the ramp-down (1.5 s) and the last pair, with margin
    limit_s = r.get("duration_s", hold_s + 4) + 15.0
    start = link.now_s()
    next_beat = start
    while link.now_s() - start < limit_s:
        if link.now_s() >= next_beat:
            link.send({"cmd": "heartbeat"})
            next_beat = link.now_s() + HEARTBEAT_EVERY_S
        msg = link.read_message(timeout_s=0.25)
        if msg is None or "ok" in msg:
            continue
        if on_message:
            on_message(msg)
        if msg.get("ev") == "telemetry":       # device time: right even for a fast emulator
            link.send({"cmd": "heartbeat"})
            next_beat = link.now_s() + HEARTBEAT_EVERY_S
        if msg.get("ev") == "measure":
            msg["requested_ua"] = ua
            msg["density_limited"] = r.get("density_limited", False)
            if msg.get("fault") or msg.get("state") != "done":
                raise MeasureFault(msg)
            return msg
    raise LinkError(f"no measurement result within {limit_s:g} s (the device was told to stop)")

"""What the peripheral shims (rp2 PIO, esp32 RMT) need from the emulator core.

The emulator's clock and pin model are written elsewhere; these Protocols are
the whole contract.  Times are integer nanoseconds of virtual time.
"""
from typing import Callable, Protocol


class Handle(Protocol):
    def cancel(self) -> None:
        """Forget the callback (no-op if it already ran)."""
        ...


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current virtual time."""
        ...

    def schedule(self, t_ns: int, callback: Callable[[], None]) -> Handle:
        """Run ``callback()`` when virtual time reaches *t_ns* (as soon as
        possible if *t_ns* is not in the future).  Callbacks at equal times
        run in scheduling order."""
        ...

    def sleep_until(self, t_ns: int) -> None:
        """Block the calling firmware code until *t_ns*, running everything
        scheduled up to then (what ``time.sleep`` does in the emulator)."""
        ...

    def quiet_until(self) -> int:
        """Inside a callback: the time before which nothing else runs (no other
        callback, no firmware code), so a peripheral may play its own events up
        to it without scheduling each one. ``now_ns()`` when unknown."""
        ...


class Pins(Protocol):
    def drive(self, pin_id: int, level: int, t_ns: int) -> None:
        """A peripheral sets output *pin_id* to *level* (0/1) at *t_ns*."""
        ...

    def level(self, pin_id: int) -> int:
        """Current level seen at *pin_id* (0/1)."""
        ...


def pin_id(pin):
    """GPIO number of an int or a ``machine.Pin``-like object with ``.id``.

    ``.id`` may be an int attribute or a method returning one."""
    if pin is None or isinstance(pin, int):
        return pin
    value = pin.id
    return int(value() if callable(value) else value)

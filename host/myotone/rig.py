"""Who connects the dummy / reference loads for `selftest` and `calibrate`.

* an in-process emulator (`--port emu`) is its own rig: its plant's load is set directly;
* a served emulator is reached through its side channel (`--rig tcp://…`, the
  `control` line that `myotone emu serve` prints);
* a real board needs a person (or a relay rig, docs/hil.md): the prompt asks
  them to connect each load in turn.

A rig never talks to the device: no device command changes physics.

A rig that can also see the electrode current (`scope` names how) has
`now_s()` and `capture(since_s)` (bench.Capture, in the rig's time base):
`selftest` reads the pulse timing from its edges. One that cannot says why
in `no_scope`.
"""
from __future__ import annotations


class RigError(Exception):
    pass


class EmuRig:
    name = "emulator (in-process)"
    scope = "the emulator's plant trace"
    no_scope = None

    def __init__(self, emulator):
        self.emulator = emulator

    def now_s(self) -> float:
        return self.emulator.now_s

    def capture(self, since_s: float):
        from .emulator.bench import PlantRig
        return PlantRig(self.emulator).capture(since_s)

    def connect_load(self, ohm: float) -> None:
        self.emulator.set_load(r_series_ohm=float(ohm), r_parallel_ohm=0.0, contact="good")

    def close(self) -> None:
        pass


class ControlRig:
    name = "emulator (side channel)"
    scope = "the served emulator's plant trace (control port)"
    no_scope = None

    def __init__(self, url: str):
        from .emulator.control import ControlClient
        try:
            self.client = ControlClient(url)
        except (OSError, ValueError) as exc:
            raise RigError(f"cannot reach the rig at {url}: {exc}") from exc

    def connect_load(self, ohm: float) -> None:
        try:
            self.client.set_load(r_series_ohm=float(ohm), r_parallel_ohm=0.0, contact="good")
        except (OSError, ValueError) as exc:
            raise RigError(f"rig: {exc}") from exc

    def now_s(self) -> float:
        try:
            return self.client.now_s()
        except (OSError, ValueError) as exc:
            raise RigError(f"rig: {exc}") from exc

    def capture(self, since_s: float):
        from .bench import Capture
        try:
            r = self.client.request("capture", since_s=since_s)
        except (OSError, ValueError) as exc:
            raise RigError(f"rig: {exc}") from exc
        return Capture(r["t_s"], r["i_ua"], r["end_s"])

    def close(self) -> None:
        self.client.close()


class PromptRig:
    """A person connects each load; `ask(text)` returns when they have (raises to abort)."""
    name = "by hand"
    scope = None
    no_scope = "loads connected by hand: this rig has no scope to see the edges"

    def __init__(self, ask):
        self.ask = ask

    def connect_load(self, ohm: float) -> None:
        self.ask(f"Connect the {format_ohm(ohm)} load across the electrodes (nothing else on them), then press Enter")

    def close(self) -> None:
        pass


def format_ohm(ohm: float) -> str:
    return f"{ohm / 1000:g} kΩ" if ohm >= 1000 else f"{ohm:g} Ω"


def rig_for(link, rig_url: str | None, ask) -> object:
    """The rig for this link: the in-process emulator, a side channel, or a person."""
    if rig_url:
        return ControlRig(rig_url)
    emulator = getattr(link.transport, "emulator", None)
    if emulator is not None:
        return EmuRig(emulator)
    return PromptRig(ask)

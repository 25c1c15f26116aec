"""The plant's truth as a bench: what a measuring rig and a fault rig would see.

The safety tests (tests/safety_helpers.py) and the HIL suite (hil_tests/)
both measure here: the electrode current from `plant.trace`, the moment the
output was cut from the high-voltage enable pin's falling edge in
`emu.edges`, and faults switched with `Emulator.set_fault`.
"""
from __future__ import annotations

import bisect

from ..bench import DUMMY_LOADS_OHM, Capture, FaultRig, MeasuringRig

NS = 1_000_000_000


def cut_ns(emu, after_ns: int) -> int | None:
    """When the output was cut: the HV rail enable falling at or after `after_ns`."""
    hv = emu.board["hv_enable"]
    for t, pin, level in emu.edges:
        if pin == hv and level == 0 and t >= after_ns:
            return t
    return None


def onset_ns(emu, after_ns: int, above_ua: float) -> int | None:
    """When |electrode current| first exceeded `above_ua` at or after `after_ns`.

    A fault that starts at `after_ns` exactly when a zero-time fast path samples (the fast tier
    without chip time) is cut in the same instant: the plant's trace keeps no segment of zero
    length, so the onset is that instant, the cut's."""
    tr = emu.plant.trace
    for t, i in zip(tr.t_ns, tr.i_ua):
        if t >= after_ns and abs(i) > above_ua:
            return t
    return after_ns if cut_ns(emu, after_ns) == after_ns else None


def last_above_ns(emu, after_ns: int, above_ua: float) -> int | None:
    """The end of the last stretch of |electrode current| above `above_ua` after `after_ns`
    (now if it still is; None if there was none)."""
    tr = emu.plant.trace
    last = None
    pts = list(zip(tr.t_ns, tr.i_ua))
    for (_t0, i), (t1, _) in zip(pts, pts[1:]):
        if t1 > after_ns and abs(i) > above_ua:
            last = t1
    if pts and abs(pts[-1][1]) > above_ua:
        last = emu.clock.now_ns
    return last


def peak_ua(emu, t0_ns: int, t1_ns: int | None = None) -> float:
    """The largest |electrode current| in [t0_ns, t1_ns) (to now by default)."""
    end = emu.clock.now_ns if t1_ns is None else t1_ns
    return max((abs(i0) for a, b, i0, _inf, _tau in emu.plant.trace.segments(emu.clock.now_ns)
                if b > t0_ns and a < end), default=0.0)


def drive_ns(emu, after_ns: int) -> int | None:
    """When the bridge drives the electrodes at or after `after_ns` (a phase under way: `after_ns`)."""
    pins = (emu.board["bridge"]["pol_a"], emu.board["bridge"]["pol_b"])
    level = dict.fromkeys(pins, 0)
    for t, pin, lv in emu.edges:
        if pin not in level:
            continue
        if t > after_ns and sum(level.values()) == 1:
            return after_ns
        level[pin] = lv
        if t >= after_ns and sum(level.values()) == 1:
            return t
    return after_ns if sum(level.values()) == 1 else None


def output_is_safe(emu) -> bool:
    """SAFETY.md safe state on the plant and the LED pins: DAC 0, bridge off, HV rail off, dark."""
    p = emu.plant
    dark = all(ch is None or ch.duty == 0 for ch in (emu.led_red, emu.led_nir))
    return p.dac_code == 0 and not p.bridge_a and not p.bridge_b and not p.hv_on and dark


def run_until_bridge_on(emu, limit_s: float = 1.0) -> None:
    """Run in 0.5 ms steps until a pulse phase begins."""
    t_end = emu.now_s + limit_s
    while not (emu.plant.bridge_a or emu.plant.bridge_b):
        if emu.now_s >= t_end:
            raise AssertionError("bridge never turned on")
        emu.run_for(0.0005)


class PlantRig(MeasuringRig):
    """The plant as the measuring rig: dummy loads are pure resistances."""

    loads_ohm = DUMMY_LOADS_OHM
    resolution_s = 1e-9                # the plant's trace is in integer ns

    def __init__(self, emu):
        self.emu = emu

    def connect_load(self, ohm: float) -> None:
        self.emu.set_load(r_series_ohm=float(ohm), r_parallel_ohm=0.0, c_parallel_nf=0.0, contact="good")

    def current_ua(self) -> float:
        return self.emu.plant.current_ua()

    def capture(self, since_s: float) -> Capture:
        tr = self.emu.plant.trace
        start = max(0, bisect.bisect_right(tr.t_ns, int(since_s * NS)) - 1)   # the piece under way at since_s
        return Capture([t / NS for t in tr.t_ns[start:]], tr.i_ua[start:], self.emu.now_s)

    def cut_s(self, after_s: float) -> float | None:
        t = cut_ns(self.emu, int(after_s * NS))
        return None if t is None else t / NS

    def drive_s(self, after_s: float) -> float | None:
        t = drive_ns(self.emu, int(after_s * NS))
        return None if t is None else t / NS

    def output_safe(self) -> bool:
        return output_is_safe(self.emu) and self.emu.plant.current_ua() == 0


class PlantFaults(FaultRig):
    """Emulator.set_fault, for the faults that act on the plant or the MCU."""

    names = frozenset(("electrode_off", "electrode_short", "dac_stuck_high", "dac_off_bus", "adc_stuck",
                       "bridge_asymmetry", "bridge_leg_short", "bridge_leg_open", "firmware_hang", "brownout",
                       "over_temp", "thermistor_open", "vbus"))
    _momentary = frozenset(("brownout",))     # a dip: nothing to clear afterwards

    def __init__(self, emu):
        self.emu = emu

    def inject(self, name: str) -> float:
        if name not in self.names:
            raise ValueError(f"the emulator cannot inject {name!r}")
        self.emu.set_fault(name)
        return self.emu.now_s

    def clear(self, name: str) -> float:
        if name not in self._momentary:
            self.emu.set_fault(name, False)
        return self.emu.now_s


class ServedRig(MeasuringRig):
    """A served board's control port (`myotone emu serve` prints `control tcp://…`) as the
    measuring rig, in the board's simulated time: either tier."""

    loads_ohm = DUMMY_LOADS_OHM
    resolution_s = 1e-9

    def __init__(self, client):
        self.client = client

    def connect_load(self, ohm: float) -> None:
        self.client.set_load(r_series_ohm=float(ohm), r_parallel_ohm=0.0, c_parallel_nf=0.0, contact="good")

    def current_ua(self) -> float:
        return self.client.plant()["current_ua"]

    def capture(self, since_s: float) -> Capture:
        r = self.client.request("capture", since_s=since_s)
        return Capture(r["t_s"], r["i_ua"], r["end_s"])

    def cut_s(self, after_s: float) -> float | None:
        return self.client.request("cut", after_s=after_s)["t_s"]

    def drive_s(self, after_s: float) -> float | None:
        return self.client.request("drive", after_s=after_s)["t_s"]

    def output_safe(self) -> bool:
        return self.client.request("output_safe")["safe"] and self.current_ua() == 0


class ServedFaults(FaultRig):
    """A served board's control port as the fault rig (the faults both tiers inject)."""

    names = frozenset(("electrode_off", "electrode_short", "dac_stuck_high", "adc_stuck", "bridge_asymmetry",
                       "bridge_leg_short", "bridge_leg_open", "firmware_hang", "over_temp", "thermistor_open",
                       "vbus"))

    def __init__(self, client):
        self.client = client

    def inject(self, name: str) -> float:
        if name not in self.names:
            raise ValueError(f"the served board cannot inject {name!r}")
        return self.client.set_fault(name)

    def clear(self, name: str) -> float:
        return self.client.set_fault(name, False)

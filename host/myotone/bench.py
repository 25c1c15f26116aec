"""The bench around a device under test: a measuring rig and a fault rig.

The HIL suite (hil_tests/, docs/hil.md) measures through these two
interfaces, so the same test runs on the emulator, where the analog plant is
the rig, and on a real board wired to a bench. A maker's rig driver is a
class with the methods below, named on the command line as `module:Class`
(`myotone hil -- --rig`, `--fault-rig`); its constructor takes the board file
(a dict). `connect_load` is the same call as the load rigs of `selftest` and
`calibrate` (rig.py), so one relay driver can serve both.

Times are seconds in the device-under-test's time base (`dut.now_s()`): the
host's monotonic clock for a board, virtual time for the emulator.
"""
from __future__ import annotations

import bisect
import importlib

DUMMY_LOADS_OHM = (500, 2000, 10000)


class Capture:
    """Electrode current as the rig saw it: piecewise constant from each t_s."""

    def __init__(self, t_s: list, i_ua: list, end_s: float):
        self.t_s = list(t_s)
        self.i_ua = list(i_ua)
        self.end_s = end_s

    def segments(self, t0_s: float | None = None, t1_s: float | None = None):
        """(start_s, stop_s, i_ua) for each constant piece, clipped to [t0_s, t1_s]."""
        lo = float("-inf") if t0_s is None else t0_s
        hi = self.end_s if t1_s is None else min(t1_s, self.end_s)
        ends = self.t_s[1:] + [self.end_s]
        for a, b, i in zip(self.t_s, ends, self.i_ua):
            a, b = max(a, lo), min(b, hi)
            if b > a:
                yield a, b, i

    @property
    def max_abs_ua(self) -> float:
        return max((abs(i) for _, _, i in self.segments()), default=0.0)

    def at(self, t_s: float) -> float:
        k = bisect.bisect_right(self.t_s, t_s) - 1
        return self.i_ua[k] if k >= 0 else 0.0

    def first_above(self, ua: float, after_s: float | None = None) -> float | None:
        """When |I| first exceeded `ua` (the onset of a pulse or of a fault)."""
        for a, _, i in self.segments(after_s):
            if abs(i) > ua:
                return a
        return None

    def last_above(self, ua: float) -> float | None:
        """When |I| last stopped exceeding `ua` (`end_s` if it still does, None if it never did)."""
        last = None
        for _, b, i in self.segments():
            if abs(i) > ua:
                last = b
        return last

    def on_levels_ua(self, t0_s: float | None = None, t1_s: float | None = None) -> list:
        """|I| of every piece with current flowing: the pulse amplitudes."""
        return [abs(i) for _, _, i in self.segments(t0_s, t1_s) if abs(i) > 0.5]

    def amplitude_ua(self, t0_s: float | None = None, t1_s: float | None = None) -> float:
        """The pulse amplitude: the median |I| while current flows, weighted by time."""
        pieces = sorted((abs(i), b - a) for a, b, i in self.segments(t0_s, t1_s) if abs(i) > 0.5)
        if not pieces:
            return 0.0
        half, acc = sum(d for _, d in pieces) / 2, 0.0
        for level, d in pieces:
            acc += d
            if acc >= half:
                return level
        return pieces[-1][0]

    def charge_uc(self, t0_s: float | None = None, t1_s: float | None = None) -> float:
        """Charge moved (∫|I| dt), µC."""
        return sum(abs(i) * (b - a) for a, b, i in self.segments(t0_s, t1_s))

    def net_charge_uc(self, t0_s: float | None = None, t1_s: float | None = None) -> float:
        return sum(i * (b - a) for a, b, i in self.segments(t0_s, t1_s))

    def rms_ua(self, t0_s: float, t1_s: float) -> float:
        return (sum(i * i * (b - a) for a, b, i in self.segments(t0_s, t1_s)) / (t1_s - t0_s)) ** 0.5

    def imbalance(self, t_end_s: float, window_s: float = 10.0) -> float:
        """|net| / moved charge over the window ending at `t_end_s` (SAFETY.md charge_imbalance)."""
        moved = self.charge_uc(t_end_s - window_s, t_end_s)
        return abs(self.net_charge_uc(t_end_s - window_s, t_end_s)) / moved if moved else 0.0


class MeasuringRig:
    """The measuring rig of docs/hil.md: switchable dummy loads and a current probe."""

    loads_ohm: tuple = DUMMY_LOADS_OHM
    default_load_ohm: int = 10000
    resolution_s: float = 1e-6        # the probe's time resolution: bounds are checked to it

    def connect_load(self, ohm: float) -> None:
        """Connect dummy load `ohm` (one of `loads_ohm`) across the electrodes."""
        raise NotImplementedError

    def current_ua(self) -> float:
        """The electrode current now (signed)."""
        raise NotImplementedError

    def capture(self, since_s: float) -> Capture:
        """The electrode current from `since_s` until now."""
        raise NotImplementedError

    def cut_s(self, after_s: float) -> float | None:
        """When the output stage was switched off after `after_s` (HV enable falling)."""
        raise NotImplementedError

    def drive_s(self, after_s: float) -> float | None:
        """When the bridge drove the electrodes at or after `after_s` (`after_s` if a phase was
        under way; a probe on the bridge pins): the onset of a fault that needs current to be
        seen, such as an electrode coming off in a waveform's off time."""
        raise NotImplementedError

    def output_safe(self) -> bool:
        """No current flows and the high-voltage rail is disabled, now."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class FaultRig:
    """Injects faults by name (`names`); returns when it took effect, in dut time."""

    names: frozenset = frozenset()

    def inject(self, name: str) -> float:
        raise NotImplementedError

    def clear(self, name: str) -> float:
        raise NotImplementedError

    def clear_all(self) -> None:
        for name in self.names:
            self.clear(name)

    def close(self) -> None:
        pass


def load_driver(spec: str, board: dict):
    """Build a rig driver from `module:Class` (a maker's own bench)."""
    module, _, cls = spec.partition(":")
    if not module or not cls:
        raise ValueError(f"rig driver {spec!r}: expected module:Class")
    return getattr(importlib.import_module(module), cls)(board)

"""The MicroPython heap as the firmware meets it through `gc`, in virtual time.

Host memory is not the board's, so the heap is a model, calibrated on the silicon tier
(the official MicroPython v1.28.0 on the RP2040, docs/performance.md):

* the firmware's live data after a collection in a session leaves ``free_b`` free
  (114 544 bytes measured on the Pico; the ESP32 is taken as the same, not measured);
* the main loop makes garbage as it talks: every line written ``line_b`` plus ``byte_b``
  per byte (a `status` round trip allocated ~1.3 kB, a telemetry event ~0.7 kB), and
  ``extra_b_per_s`` more that a test may set (garbage the firmware's own estimate does not
  see);
* with automatic collection on, an allocation that does not fit collects first; with it off
  (``gc.disable()``) it raises MemoryError, as py/gc.c does;
* a collection takes ``pause_ns`` (20.4 ms measured) during which no soft callback runs
  (MicroPython runs them between bytecodes); hard interrupts go on. The soft callbacks due
  meanwhile run once it ends, as many as the scheduler queue holds.

Every collection is recorded with the output as the plant had it (``collections``), so a
test can judge on the plant when the firmware collected.
"""
from __future__ import annotations

import types
from dataclasses import dataclass

FREE_B = 114_544          # free after gc.collect() in a session, silicon tier
LIVE_B = 131_000          # the firmware's live data then
LINE_B = 300              # garbage per line written (silicon: status ~1.3 kB / ~520 B of traffic)
BYTE_B = 2                # ... and per byte
PAUSE_NS = 20_400_000     # one collection, the firmware's session heap, RP2040 at 125 MHz
SCHEDULER_DEPTH = 8       # soft callbacks queued while a collection runs (MICROPY_SCHEDULER_DEPTH)


@dataclass
class Collection:
    t_ns: int
    pause_ns: int
    hv_on: bool
    current_ua: float
    automatic: bool


class Heap:
    def __init__(self, clock, plant_of, free_b: int = FREE_B, pause_ns: int = PAUSE_NS):
        self.clock = clock
        self._plant_of = plant_of         # () -> the plant now (it is rebuilt at a power cycle)
        self.total_b = LIVE_B + free_b
        self.live_b = LIVE_B
        self.garbage_b = 0
        self.line_b = LINE_B
        self.byte_b = BYTE_B
        self.extra_b_per_s = 0
        self.pause_ns = pause_ns
        self.auto = True
        self.collections: list[Collection] = []
        self._at_ns = 0

    def _accrue(self) -> None:
        now = self.clock.now_ns
        if self.extra_b_per_s:
            self.garbage_b += (now - self._at_ns) * self.extra_b_per_s // 1_000_000_000
        self._at_ns = now

    def free_b(self) -> int:
        self._accrue()
        return self.total_b - self.live_b - self.garbage_b

    def wrote(self, text) -> None:
        """The firmware wrote `text` (str or bytes) to the console: the garbage it made doing so."""
        if not len(text):
            return
        end = text[-1:]
        self.allocate(self.byte_b * len(text) + (self.line_b if end in ("\n", b"\n") else 0))

    def allocate(self, n_b: int) -> None:
        if self.free_b() >= n_b:
            self.garbage_b += n_b
            return
        if not self.auto:
            raise MemoryError(f"memory allocation failed, allocating {n_b} bytes")
        self.collect(automatic=True)
        if self.free_b() < n_b:
            raise MemoryError(f"memory allocation failed, allocating {n_b} bytes")
        self.garbage_b += n_b

    def collect(self, automatic: bool = False) -> None:
        clock = self.clock
        plant = self._plant_of()
        self.collections.append(Collection(clock.now_ns, self.pause_ns, bool(plant.hv_on),
                                           plant.current_ua(), automatic))
        self._accrue()
        self.garbage_b = 0
        clock.hold_soft(self.pause_ns)    # hard interrupts run meanwhile; soft ones wait (machine_shim)

    def module(self) -> types.ModuleType:
        g = types.ModuleType("gc")
        g.collect = self.collect
        g.enable = lambda: setattr(self, "auto", True)
        g.disable = lambda: setattr(self, "auto", False)
        g.isenabled = lambda: self.auto
        g.mem_free = self.free_b
        g.mem_alloc = lambda: self.total_b - self.free_b()
        g.threshold = lambda *a: -1
        return g

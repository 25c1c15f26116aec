"""The chip's execution time, charged to the fast tier's firmware (issue 15).

Under CPython the firmware runs in zero virtual time, as if the MCU were infinitely
fast. With a cost model the emulator charges each supervisor tick the time the same
tick path takes on the RP2040 at 125 MHz, as measured on the silicon tier
(`python benchmarks/bench_silicon.py --calibrate` writes cost_rp2040.json):

* the tick path is chosen by whether the output stage is on at the tick (the idle path
  and the session path differ by 3.6x on the chip; the ADC reads do not: every tick
  reads three channels);
* each tick's cost is drawn, with a generator seeded like the plant's, from the measured
  distribution of that path (its quantiles), so the fast tier sees the chip's spread,
  not only its mean;
* a tick starts at its deadline, or when the tick before it ends if that one still runs;
  a deadline that comes while a tick already waits is lost (MicroPython's scheduler, as
  measured: about 1 / mean tick time ticks per second when a tick outlasts its period);
  it reads the ADC when it does on the chip (its first read: ~0.17 ms into an idle tick,
  ~0.30 ms into a session tick) and its outputs (GPIO, DAC) take effect at its end, so a
  fault or a load change in between is seen as the chip would see it;

Only the supervisor tick is charged (the timer at the board's supervisor rate); the
main loop still runs in zero time and is not held off while a tick runs, so request
round trips are not modelled. The model
is for RP2040 boards; an ESP32 board runs uncharged (no chip emulator to calibrate on).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("cost_rp2040.json")


class CostModel:
    def __init__(self, table: dict, tick_period_ns: int, pick):
        self.table = table
        self.tick_period_ns = tick_period_ns
        self._off = [int(us * 1000) for us in table["tick_us"]["output_off"]]
        self._on = [int(us * 1000) for us in table["tick_us"]["output_on"]]
        self.sample_ns = {False: int(table["sample_us"]["output_off"] * 1000),
                          True: int(table["sample_us"]["output_on"] * 1000)}
        self._pick = pick                       # a seeded random.Random's randrange
        self.busy_ns = 0                        # every tick's charge, in total

    @classmethod
    def for_board(cls, board: dict, seed: int, path: Path = DEFAULT_PATH) -> "CostModel | None":
        if board.get("mcu") != "rp2040":
            return None
        table = json.loads(Path(path).read_text())
        rng = random.Random(f"cost/{seed}")     # its own draws: the plant's noise stays as without it
        return cls(table, round(1e9 / board["supervisor"]["hz"]), rng.randrange)

    def tick_ns(self, output_on: bool) -> int:
        q = self._on if output_on else self._off
        ns = q[self._pick(len(q))]
        self.busy_ns += ns
        return ns

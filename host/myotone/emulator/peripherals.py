"""The mask's small peripherals: LED channels, the button and the status LED.

Truth for the tests, as the plant is for the current:

* `LedChannel` follows what drives an LED pin -- a PWM's duty when a PWM
  owns the pin, else the GPIO level -- and turns it into optical power with
  the board's irradiance calibration (irradiance = duty x mW/cm2 at 100 %).
  `dose_j_cm2()` integrates it; `history` is every change with its time and
  PWM frequency.
* `ButtonModel` is a push button to ground with the MCU's pull-up: the pin
  reads 0 while pressed. Presses are time intervals, so a press can be
  scheduled at any virtual time without touching the CPU thread.
* `StatusLed` records the level of the status LED pin over time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FULL = 65535


@dataclass
class LedChannel:
    name: str
    pin: int
    mw_cm2_at_100: float
    history: list = field(default_factory=lambda: [(0, 0.0, 0)])   # (t_ns, duty 0..1, pwm_hz or 0)
    gpio: int = 0
    pwm: object = None

    def _record(self, t_ns: int) -> None:
        if self.pwm is not None:
            duty, hz = self.pwm._duty / FULL, self.pwm._freq
        else:
            duty, hz = float(self.gpio), 0
        last = self.history[-1]
        if (duty, hz) != last[1:]:
            if last[0] == t_ns:
                self.history[-1] = (t_ns, duty, hz)
            else:
                self.history.append((t_ns, duty, hz))

    def gpio_driven(self, t_ns: int, level: int) -> None:
        self.gpio = level
        self._record(t_ns)

    def pwm_changed(self, t_ns: int, pwm, attached: bool) -> None:
        if attached:
            self.pwm = pwm
        elif self.pwm is pwm:
            self.pwm = None
        self._record(t_ns)

    # ---- what a test reads ----
    @property
    def duty(self) -> float:
        return self.history[-1][1]

    @property
    def irradiance_mw_cm2(self) -> float:
        return self.duty * self.mw_cm2_at_100

    def dose_j_cm2(self, t_end_ns: int, t_start_ns: int = 0) -> float:
        """Energy per area delivered between the two times (mW/cm2 x s = mJ/cm2)."""
        total = 0.0
        for (t, duty, _), nxt in zip(self.history, self.history[1:] + [(t_end_ns, 0, 0)]):
            a, b = max(t, t_start_ns), min(nxt[0], t_end_ns)
            if b > a:
                total += duty * self.mw_cm2_at_100 * (b - a) / 1e9
        return total / 1000.0

    def on_ns(self, t_end_ns: int) -> int:
        """How long the channel gave any light."""
        return sum(max(0, min(nxt[0], t_end_ns) - t) for (t, duty, _), nxt
                   in zip(self.history, self.history[1:] + [(t_end_ns, 0, 0)]) if duty > 0)

    def lit_frequencies(self) -> set:
        """PWM frequencies (0 = steady GPIO) seen whenever the channel gave light."""
        return {hz for _, duty, hz in self.history if duty > 0}


@dataclass
class ButtonModel:
    presses: list = field(default_factory=list)     # (t_down_ns, t_up_ns)

    def press(self, t_ns: int, hold_ns: int) -> None:
        self.presses.append((t_ns, t_ns + hold_ns))

    def level(self, now_ns: int) -> int:
        return 0 if any(a <= now_ns < b for a, b in self.presses) else 1


@dataclass
class StatusLed:
    pin: int
    edges: list = field(default_factory=lambda: [(0, 0)])   # (t_ns, level)

    def driven(self, t_ns: int, level: int) -> None:
        if level != self.edges[-1][1]:
            self.edges.append((t_ns, level))

    def level_at(self, t_ns: int) -> int:
        return [lv for t, lv in self.edges if t <= t_ns][-1]

    def on_fraction(self, t0_ns: int, t1_ns: int) -> float:
        on = 0
        for (t, lv), nxt in zip(self.edges, self.edges[1:] + [(t1_ns, 0)]):
            a, b = max(t, t0_ns), min(nxt[0], t1_ns)
            if lv and b > a:
                on += b - a
        return on / (t1_ns - t0_ns)

    def rising_edges(self, t0_ns: int, t1_ns: int) -> int:
        return sum(1 for t, lv in self.edges if lv and t0_ns <= t < t1_ns)


class Peripherals:
    """Wires the models to the MCU's pins and PWMs (see Mcu.watch / inputs / pwm_watch)."""

    def __init__(self, board: dict, mcu):
        led = board["led"]
        self.red = LedChannel("red", led["red_pin"], led.get("red_mw_cm2_at_100", 0.0))
        self.nir = (LedChannel("nir", led["nir_pin"], led.get("nir_mw_cm2_at_100", 0.0))
                    if "nir_pin" in led else None)
        for ch in (self.red, self.nir):
            if ch is not None:
                mcu.watch[ch.pin] = ch.gpio_driven
                mcu.pwm_watch[ch.pin] = ch.pwm_changed
        self.button = ButtonModel()
        if "button_pin" in board:
            mcu.inputs[board["button_pin"]] = lambda: self.button.level(mcu.clock.now_ns)
        self.status = StatusLed(board["status_led_pin"]) if "status_led_pin" in board else None
        if self.status is not None:
            mcu.watch[self.status.pin] = self.status.driven

    def led_dose_j_cm2(self, t_end_ns: int, t_start_ns: int = 0) -> float:
        return sum(ch.dose_j_cm2(t_end_ns, t_start_ns) for ch in (self.red, self.nir) if ch is not None)

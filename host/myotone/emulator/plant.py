"""The analog plant: DAC -> V->I stage -> H-bridge -> electrodes and skin -> sense.

These values are the truth that reports use, not what the firmware
believes. The model (docs/emulator.md):

* V->I stage: I_set = V_dac / R_set, limited by the compliance voltage of the
  high-voltage rail (0 V when the rail is disabled) and by the hardware
  current limiter, which works even when the firmware does not.
* Bridge: POL_A high -> +I, POL_B high -> -I, both low -> no path; both high
  is a shoot-through, recorded as a violation (and no electrode current).
* Load: series R plus a parallel R||C (DC: R_series + R_parallel).
* Sense: |I| x R_sense into the ADC; electrode voltage through a divider.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Load:
    r_series_ohm: float = 2000.0
    r_parallel_ohm: float = 8000.0
    c_parallel_nf: float = 100.0
    contact: str = "good"      # good | off | short

    def dc_ohm(self) -> float:
        if self.contact == "short":
            return 0.0
        if self.contact == "off":
            return float("inf")
        return self.r_series_ohm + self.r_parallel_ohm


@dataclass
class Trace:
    """Electrode current as a piecewise-constant function of virtual time."""
    t_ns: list = field(default_factory=list)
    i_ua: list = field(default_factory=list)
    net_charge_nc: float = 0.0
    abs_charge_nc: float = 0.0
    max_abs_ua: float = 0.0
    output_on_ns: int = 0
    shoot_through: int = 0

    def record(self, t_ns: int, i_ua: float) -> None:
        if self.t_ns:
            last_t, last_i = self.t_ns[-1], self.i_ua[-1]
            if i_ua == last_i:
                return
            self._integrate(t_ns - last_t, last_i)
        self.t_ns.append(t_ns)
        self.i_ua.append(i_ua)
        self.max_abs_ua = max(self.max_abs_ua, abs(i_ua))

    def _integrate(self, dt_ns: int, i_ua: float) -> None:
        q = i_ua * dt_ns / 1e6          # uA x ns = 1e-15 C = 1e-6 nC
        self.net_charge_nc += q
        self.abs_charge_nc += abs(q)
        if abs(i_ua) >= 10.0:
            self.output_on_ns += dt_ns

    def close(self, t_ns: int) -> None:
        """Integrate up to t_ns (call before reading the totals)."""
        if self.t_ns and t_ns > self.t_ns[-1]:
            self._integrate(t_ns - self.t_ns[-1], self.i_ua[-1])
            self.t_ns.append(t_ns)
            self.i_ua.append(self.i_ua[-1])

    def current_at(self, t_ns: int) -> float:
        import bisect
        k = bisect.bisect_right(self.t_ns, t_ns) - 1
        return self.i_ua[k] if k >= 0 else 0.0


class Plant:
    def __init__(self, board: dict, load: Load | None = None, seed: int = 1, adc_bits: int = 12):
        self.board = board
        self.load = load or Load()
        self.rng = random.Random(seed)
        self.adc_bits = adc_bits
        self.adc_noise_lsb = 1.0
        self.dac_code = 0
        self.dac_max = (1 << board["dac"]["bits"]) - 1
        self.bridge_a = 0
        self.bridge_b = 0
        self.hv_on = 0
        self.faults: set[str] = set()
        self.trace = Trace()
        self.skin_temp_c = 33.0
        self.vbus = 0
        self.asymmetry = 0.8          # bridge_asymmetry: the negative half delivers 80 %
        # this unit's component tolerances (what `myotone calibrate` measures):
        self.dac_gain = 1.0           # DAC Vref and R_set: true set point / nominal
        self.sense_gain = 1.0         # R_sense: true sense voltage / nominal
        self._stuck: dict[str, int] = {}

    # ---- what the hardware does ----
    def set_point_ua(self) -> float:
        code = self.dac_max if "dac_stuck_high" in self.faults else self.dac_code
        v_mv = code / self.dac_max * self.board["dac"]["vref_mv"]
        return v_mv * 1000.0 / self.board["v_to_i"]["r_set_ohm"] * self.dac_gain

    def current_ua(self) -> float:
        """Signed electrode current now."""
        if self.bridge_a and self.bridge_b:
            return 0.0
        if not (self.bridge_a or self.bridge_b) or not self.hv_on:
            return 0.0
        r_ohm = self.load.dc_ohm() + self.board["sense"]["r_sense_ohm"]
        i_ua = min(self.set_point_ua(), self.board["compliance_v"] * 1e6 / r_ohm,
                   self.board["hw_limit_ua"])
        if self.bridge_b and "bridge_asymmetry" in self.faults:
            i_ua *= self.asymmetry
        return i_ua if self.bridge_a else -i_ua

    def electrode_mv(self) -> float:
        i_ua = abs(self.current_ua())
        if self.load.contact == "off":
            # open circuit: the source sits at its compliance voltage when driven
            return self.board["compliance_v"] * 1000.0 if (self.hv_on and (self.bridge_a or self.bridge_b)) else 0.0
        return i_ua * self.load.dc_ohm() / 1000.0

    def changed(self, t_ns: int) -> None:
        """Call after any change of DAC, bridge, rail, load or faults."""
        if self.bridge_a and self.bridge_b:
            self.trace.shoot_through += 1
        self.trace.record(t_ns, self.current_ua())

    # ---- what the ADC sees ----
    def _adc_u16(self, volts: float) -> int:
        vref = self.board["sense"]["adc_vref_mv"] / 1000.0
        full = (1 << self.adc_bits) - 1
        raw = round(volts / vref * full + self.rng.gauss(0.0, self.adc_noise_lsb))
        raw = max(0, min(full, raw))
        shift = 16 - self.adc_bits        # scale to read_u16 as the ports do
        return (raw << shift) | (raw >> (self.adc_bits - shift)) if shift else raw

    def _stuck_or(self, channel: str, value: int) -> int:
        """adc_stuck: the ADC keeps returning what it read when the fault began."""
        if "adc_stuck" not in self.faults:
            self._stuck.pop(channel, None)
            return value
        return self._stuck.setdefault(channel, value)

    def sense_current_u16(self) -> int:
        return self._stuck_or("i", self._adc_u16(abs(self.current_ua()) * 1e-6 * self.board["sense"]["r_sense_ohm"]
                                                 * self.sense_gain))

    def sense_voltage_u16(self) -> int:
        return self._stuck_or("v", self._adc_u16(self.electrode_mv() / 1000.0 / self.board["sense"]["divider"]))

    def thermistor_u16(self) -> int:
        import math
        th = self.board["thermistor"]
        t_c = 42.0 if "over_temp" in self.faults else self.skin_temp_c
        r = th["r25_ohm"] * math.exp(th["beta"] * (1 / (t_c + 273.15) - 1 / 298.15))
        volts = self.board["sense"]["adc_vref_mv"] / 1000.0 * r / (r + th["r_pullup_ohm"])
        return self._stuck_or("t", self._adc_u16(volts))

"""The analog plant: DAC -> V->I stage -> H-bridge -> electrodes and skin -> sense.

These values are the truth that reports use, not what the firmware
believes. The model (docs/emulator.md):

* V->I stage: a current source, I_set = V_dac / R_set, capped by the
  hardware limiter (which works even when the firmware does not) and by the
  compliance voltage of the high-voltage rail. Rail off = no source.
* Bridge: POL_A high -> +I, POL_B high -> -I, both low -> no path; both high
  is a shoot-through, counted (and no electrode current).
* Load: R_series + (R_parallel || C), then R_sense back to the source.
  With a constant drive the capacitor charges, V_c(t) = I R_p + (V_c0 -
  I R_p) e^(-t / R_p C), so the electrode voltage rises during a phase and
  the source can reach compliance mid-phase; from then on it holds the rail
  and the current relaxes exponentially. Each constant-drive interval is
  solved in closed form: the mode switch time is computed, not searched for,
  and nothing is stepped. Contact: good | off (open) | short (0 Ω).
* Sense: |I| x R_sense into the current ADC (the source's current, which is
  the electrode current unless a bridge leg bypasses the electrodes);
  |electrode voltage| (0 with no drive, the rail when driving an open
  electrode) through the divider; the NTC thermistor with its pull-up on the
  3.3 V rail; VBUS as a pin.
* Polarity: two comparators across R_POL in the E1 lead (docs/hardware.md,
  U8/U9): FLOW_A reads 1 while the electrode current flows E1 -> E2 (the
  POL_A way) above `FLOW_THRESHOLD_UA`, FLOW_B while it flows E2 -> E1; both
  read 0 with no current (`flow()`). Fault `flow_stuck_high`: the one of
  `flow_stuck_sign` reads 1 whenever the rail (its supply) is up.
* Bridge leg fault (`bridge_leg_short`): a high-side switch of the E1 leg
  (Q3) fails short. In POL_B phases the source's current then returns through
  the E1 leg (Q3 -> Q5) and bypasses the electrodes: +I in POL_A phases,
  nothing in POL_B phases, 100 % DC, while the sense still reads I in both.
  With `leg_short_reverse` the POL_B phases drive +I instead (a gate drive
  that turns the POL_A diagonal on for POL_B: both phases the same way).
  `bridge_leg_open`: a switch of the POL_B diagonal (Q4 or Q5) fails open, so
  POL_B phases have no current path: +I in POL_A phases, nothing in POL_B
  phases (unipolar pulses, 100 % DC); the source, which cannot pass its
  current, sits at its rail as with an open electrode.
* Over-current latch (docs/hardware.md, U10-U13): a comparator on V_SENSE
  sets a latch once the source's current exceeds `oc_latch_ua()` (the board's
  `oc_latch.trip_ua`, this unit's tolerance `oc_latch_tol`); its Q gates both
  bridge inputs off `OC_LATCH_DELAY_NS` later, whatever the MCU drives, until
  the MCU's OC_CLEAR pin (`oc_clear`, active high) clears it; an over-current
  sets it whatever OC_CLEAR does. The crossing is solved in closed form like
  the mode switches. OC_TEST (`oc_test`, the MCU's pin) drives the
  comparator's input over its threshold with no current: the comparator
  asserts while it is high and `OC_LATCH_DELAY_NS` after it falls (a clear
  meanwhile loses to the preset, as on U11). Faults: `oc_latch_dead` (the comparator never sets it),
  `oc_latch_stuck` (Q stuck set: the bridge gated off, OC_Q reads 1).
* ADC: the port's transfer (`adc.py`) with seeded Gaussian noise.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .adc import AdcModel
from .trace import Trace  # noqa: F401  (re-exported)

RAIL_V = 3.3          # logic supply: thermistor pull-up
CONTACTS = ("good", "off", "short")
_OPEN, _CC, _CV = 0, 1, 2     # no drive, constant current, at compliance


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

_NOISE_BITS = 12
# the polarity comparators' switching point (docs/hardware.md, "Polarity sense"): the
# reference design switches high between 1.2 and 2.3 uA over its tolerances; the model at 1.7 uA
FLOW_THRESHOLD_UA = 1.7
# the over-current latch's comparator (~6 us at small overdrive), flip-flop and gates (ns), and the
# bridge's slowest switch turning off (the high sides, ~3 us): docs/hardware.md, "Over-current latch"
OC_LATCH_DELAY_NS = 10_000
# OC_TEST high: R37 / D6 lift U10's input to ~1.9 V and return ~60 uA through R34 into R_SENSE, which
# then reads 0.18 V with no current (docs/hardware.md, "Its test")
OC_TEST_SENSE_V = 0.184
_TEST_HELD = 1 << 62          # OC_TEST high: the comparator asserts until it falls


def driven_pins(board: dict) -> dict[int, str]:
    """The MCU's output pins the plant follows, each with the attribute it sets: the bridge, the
    HV rail's enable and the over-current latch's OC_CLEAR and OC_TEST (both tiers wire them so)."""
    b = board["bridge"]
    pins = {b["pol_a"]: "bridge_a", b["pol_b"]: "bridge_b", board["hv_enable"]: "hv_on"}
    if board.get("oc_latch"):
        pins[board["oc_latch"]["clear_pin"]] = "oc_clear"
        pins[board["oc_latch"]["test_pin"]] = "oc_test"
    return pins


def oc_q_pin(board: dict) -> int | None:
    """The pin the over-current latch's Q drives (None: the board has no latch)."""
    return board["oc_latch"]["q_pin"] if board.get("oc_latch") else None


class Plant:
    def __init__(self, board: dict, load: Load | None = None, seed: int = 1):
        self.board = board
        self.load = load or Load()
        self.port = "rp2" if board["mcu"] == "rp2040" else "esp32"
        self.rng = random.Random(seed)
        self.adc = AdcModel(self.port, board["sense"]["adc_vref_mv"])
        self.adc_noise_lsb = 1.0
        self.dac_code = 0
        self.dac_max = (1 << board["dac"]["bits"]) - 1
        self.bridge_a = 0
        self.bridge_b = 0
        self.hv_on = 0
        self.powered = True
        self.faults: set[str] = set()
        self.trace = Trace()
        self.skin_temp_c = 33.0
        self.vbus = 0
        self.asymmetry = 0.8          # bridge_asymmetry: the negative half delivers 80 %
        self.leg_short_reverse = False  # bridge_leg_short: POL_B bypasses the electrodes (False)
        #                                 or drives them the POL_A way (True)
        self._bypass_ua = 0.0         # the source's current while it bypasses the electrodes
        self.flow_threshold_ua = FLOW_THRESHOLD_UA   # the polarity comparators' switching point
        self.flow_stuck_sign = 1      # flow_stuck_high: FLOW_A (+1) or FLOW_B (-1) reads 1 with the rail up
        # the over-current latch (U10-U13): Q set gates the bridge off; OC_CLEAR (the MCU's pin)
        self.oc_q = False
        self.oc_clear = 0
        self.oc_test = 0              # OC_TEST (the MCU's pin): the comparator asserts while high ...
        self._test_until_ns = None    # ... and until this after it falls (None: not asserting)
        self.oc_latch_tol = 0.0       # this unit's threshold error (a fraction, within oc_latch.tol_pct)
        self._gated = False           # Q set or stuck: the bridge inputs are held off
        self._t_latch = None          # when the latch sets (the comparator asserts, plus the delay)
        self.oc_latch_log: list[tuple[int, int]] = []    # (t_ns, 1 set / 0 cleared): the truth a judge reads
        # this unit's component tolerances (what `myotone calibrate` measures):
        self.dac_gain = 1.0           # DAC Vref and R_set: true set point / nominal
        self.dac_offset_ua = 0.0      # ... plus this at any code above 0 (a DAC's zero error)
        self.sense_gain = 1.0         # R_sense: true sense voltage / nominal
        self.sense_offset_ua = 0.0    # ... plus this many uA's worth at the ADC (never below 0 V)
        # the hardware limiter (U2): hw_limit_ua at 25 C, hw_limit_ppm_per_c per C, and this
        # unit's part tolerance (a fraction: -0.03..+0.03 for an LM234-3)
        self.limiter_temp_c = 25.0
        self.limiter_tol = 0.0
        self._stuck: dict[str, int] = {}
        self._therm = (None, 0.0)
        # ADC noise: unit normal draws made once per seed, picked at random per conversion
        # (random.gauss per conversion was a tenth of the emulator's time)
        self._unit_noise = [self.rng.gauss(0.0, 1.0) for _ in range(1 << _NOISE_BITS)]
        self._pick = self.rng.getrandbits
        # the thermistor draws from its own stream: its readings then follow its own conversions,
        # not how many current and voltage conversions the firmware made before (a sham and an
        # active arm of a blinded study read the same skin the same way)
        self._pick_t = random.Random(seed * 1_000_003 + 17).getrandbits
        self.now_ns = lambda: 0       # the emulator wires its clock here
        self._r_sense = float(board["sense"]["r_sense_ohm"])
        self._bias_v = board["sense"].get("bias_mv", 0) / 1000.0    # U3B's lift of the current channel (the ESP32)
        self._v_comp = float(board["compliance_v"])
        # the present constant-drive interval, solved in closed form
        self._t0 = 0
        self._v0 = 0.0                # capacitor voltage at _t0 (V, + in the POL_A direction)
        self._mode = _OPEN
        self._s = 0                   # drive sign
        self._v_inf = 0.0
        self._tau_ns = 0.0
        self._i_a = 0.0               # _CC: |I| (A)
        self._r_ser = 1.0
        self._t_switch = None
        self._begin(0, 0.0)

    # ---- the source ----
    def set_point_ua(self) -> float:
        code = self.dac_max if "dac_stuck_high" in self.faults else self.dac_code
        if code <= 0:
            return 0.0
        v_mv = code / self.dac_max * self.board["dac"]["vref_mv"]
        return max(0.0, v_mv * 1000.0 / self.board["v_to_i"]["r_set_ohm"] * self.dac_gain + self.dac_offset_ua)

    def hw_limit_ua(self) -> float:
        """The hardware limiter's cap now: its temperature and this unit's tolerance."""
        b = self.board
        ppm = b.get("hw_limit_ppm_per_c", 3354)
        return b["hw_limit_ua"] * (1 + ppm * 1e-6 * (self.limiter_temp_c - 25.0)) * (1 + self.limiter_tol)

    def oc_latch_ua(self) -> float | None:
        """The latch comparator's threshold for this unit (None: no latch, or it is dead)."""
        ol = self.board.get("oc_latch")
        if not ol or "oc_latch_dead" in self.faults:
            return None
        return ol["trip_ua"] * (1 + self.oc_latch_tol)

    def oc_latch_sets_at(self) -> int | None:
        """When the latch is due to set (the comparator asserted), None if it is not."""
        return self._t_latch

    def oc_q_level(self) -> int:
        """The OC_Q pin: 1 while the latch holds the bridge off."""
        return 1 if self.powered and self._gated else 0

    def _drive_sign(self) -> int:
        if not self.powered or not self.hv_on or self.bridge_a == self.bridge_b or self._gated:
            return 0
        return 1 if self.bridge_a else -1

    def _test_asserts(self, t_ns: int) -> bool:
        """OC_TEST holds the comparator asserted at t_ns (a live comparator: `oc_latch_dead` never asserts)."""
        return (self._test_until_ns is not None and t_ns < self._test_until_ns
                and self.oc_latch_ua() is not None)

    def _schedule_latch(self, t_ns: int, t_cross: int | None) -> None:
        """The comparator asserts from t_cross in the interval beginning at t_ns (None: not in it)."""
        if not self._gated and self._test_asserts(t_ns):
            t_cross = t_ns                               # OC_TEST: whatever the current
        prev = self._t_latch
        if t_cross is None:
            self._t_latch = None
        elif prev is not None and t_cross == t_ns:       # it kept asserting across the interval's start
            self._t_latch = min(prev, t_ns + OC_LATCH_DELAY_NS)
        else:
            self._t_latch = t_cross + OC_LATCH_DELAY_NS

    # ---- the interval solution ----
    def _v_at(self, t_ns: int) -> float:
        if self._tau_ns <= 0:
            return self._v_inf
        return self._v_inf + (self._v0 - self._v_inf) * math.exp(-(t_ns - self._t0) / self._tau_ns)

    def _begin(self, t_ns: int, v0: float) -> None:
        """Solve the interval starting at t_ns with capacitor voltage v0; record it."""
        load = self.load
        s = self._drive_sign()
        c_f = load.c_parallel_nf * 1e-9
        r_p = 0.0 if load.contact == "short" else load.r_parallel_ohm
        r_s = 0.0 if load.contact == "short" else load.r_series_ohm
        self._bypass_ua = 0.0
        leg_short = s < 0 and "bridge_leg_short" in self.faults
        if leg_short and self.leg_short_reverse:
            s = 1                                         # the POL_A diagonal conducts
        self._t0, self._v0, self._s, self._t_switch = t_ns, v0, s, None
        if leg_short and s < 0:       # the source's current returns through Q3 -> Q5: no electrode current
            self._bypass_ua = min(self.set_point_ua(), self.hw_limit_ua())
            s = self._s = 0
        thr = self.oc_latch_ua() if not self._gated else None
        if s == 0 or self._path_open(s):
            self._mode, self._v_inf = _OPEN, 0.0          # the skin's own R_p discharges C
            self._tau_ns = r_p * c_f * 1e9 if r_p > 0 else 0.0
            self._schedule_latch(t_ns, t_ns if thr is not None and self._bypass_ua > thr else None)
            self.trace.record(t_ns, 0.0)
            return
        i_a = min(self.set_point_ua(), self.hw_limit_ua()) * 1e-6
        if s < 0 and "bridge_asymmetry" in self.faults:
            i_a *= self.asymmetry
        r_ser = r_s + self._r_sense
        tau_s = r_p * c_f
        u0 = s * v0 if tau_s > 0 else i_a * r_p     # capacitor voltage along the drive
        u_max = self._v_comp - i_a * r_ser          # beyond this the rail cannot hold I
        self._r_ser = r_ser
        if u0 <= u_max:
            self._mode, self._i_a = _CC, i_a
            u_inf = i_a * r_p
            self._v_inf, self._tau_ns = s * u_inf, tau_s * 1e9
            if u_inf > u_max and tau_s > 0:         # compliance will be reached mid-phase
                self._t_switch = t_ns + max(1, int(math.ceil(
                    self._tau_ns * math.log((u_inf - u0) / (u_inf - u_max)))))
            self._schedule_latch(t_ns, t_ns if thr is not None and i_a * 1e6 > thr else None)
            self.trace.record(t_ns, s * i_a * 1e6)
            return
        # at compliance: the rail drives R_ser into R_p || C
        self._mode = _CV
        u_inf = self._v_comp * r_p / (r_p + r_ser)
        tau_s = c_f * r_ser * r_p / (r_ser + r_p) if r_p > 0 else 0.0
        self._v_inf, self._tau_ns = s * u_inf, tau_s * 1e9
        if u_inf < u_max and tau_s > 0:            # the current will come back up to I_set
            self._t_switch = t_ns + max(1, int(math.ceil(
                self._tau_ns * math.log((u0 - u_inf) / (u_max - u_inf)))))
        i0 = max(0.0, self._v_comp - (u0 if tau_s > 0 else u_inf)) / r_ser
        i_inf = (self._v_comp - u_inf) / r_ser
        t_cross = None
        if thr is not None:
            if i0 * 1e6 > thr:
                t_cross = t_ns
            elif tau_s > 0 and u0 > u_inf:                # the current rises toward i_inf or I_set
                u_star = self._v_comp - thr * 1e-6 * r_ser   # where it reaches the threshold
                if u_inf < u_star < u0:
                    t_cross = t_ns + max(1, int(math.ceil(self._tau_ns * math.log((u0 - u_inf) / (u_star - u_inf)))))
        self._schedule_latch(t_ns, t_cross)
        self.trace.record(t_ns, s * i0 * 1e6, s * i_inf * 1e6, self._tau_ns)

    def _advance(self, t_ns: int) -> None:
        """Carry the solution to t_ns, through any mode switch or latch on the way."""
        while True:
            ts, tl = self._t_switch, self._t_latch
            if tl is not None and tl <= t_ns and (ts is None or tl <= ts):
                self.oc_q = self._gated = True            # Q set: the bridge inputs are gated off
                self._t_latch = None
                self.oc_latch_log.append((tl, 1))
                self._begin(tl, self._v_at(tl))
            elif ts is not None and ts <= t_ns:
                self._begin(ts, self._v_at(ts))
            else:
                return

    def changed(self, t_ns: int) -> None:
        """Call after any change of DAC, bridge, rail, load, power, faults or OC_CLEAR."""
        if self.bridge_a and self.bridge_b:
            self.trace.shoot_through += 1
        self._advance(t_ns)
        if self.oc_test:
            self._test_until_ns = _TEST_HELD
        elif self._test_until_ns == _TEST_HELD:          # it fell now: the comparator follows 10 us on
            self._test_until_ns = t_ns + OC_LATCH_DELAY_NS
        if self.oc_clear and self.oc_q and not self._test_asserts(t_ns):
            # cleared; an over-current sets it again, and a comparator OC_TEST holds keeps it (preset wins)
            self.oc_q = False
            self.oc_latch_log.append((t_ns, 0))
        self._gated = self.oc_q or "oc_latch_stuck" in self.faults
        self._begin(t_ns, self._v_at(t_ns))

    # ---- the truth at an instant ----
    def current_ua(self, t_ns: int | None = None) -> float:
        """Signed electrode current at t_ns (default: now)."""
        if t_ns is None:
            t_ns = self.now_ns()
        self._advance(t_ns)
        if self._mode == _CC:
            return self._s * self._i_a * 1e6
        if self._mode == _OPEN:
            return 0.0
        u = self._s * self._v_at(t_ns)
        return self._s * max(0.0, self._v_comp - u) / self._r_ser * 1e6

    def _path_open(self, s: int) -> bool:
        """Driving polarity `s`, no current path: an open electrode, or POL_B's diagonal open."""
        return self.load.contact == "off" or (s < 0 and "bridge_leg_open" in self.faults)

    def electrode_mv(self, t_ns: int | None = None) -> float:
        """|Electrode voltage| at t_ns (default: now), as the divider sees it."""
        if t_ns is None:
            t_ns = self.now_ns()
        s = self._drive_sign()
        if s == 0:
            return 0.0
        if self._path_open(s):
            return self._v_comp * 1000.0            # the source sits at its rail
        i_a = self.current_ua(t_ns) * 1e-6
        r_s = 0.0 if self.load.contact == "short" else self.load.r_series_ohm
        return abs(i_a * r_s + self._v_at(t_ns)) * 1000.0

    def flow(self, sign: int, t_ns: int | None = None) -> int:
        """A polarity comparator's output: FLOW_A (sign +1) is 1 while the electrode current
        flows E1 -> E2 above the threshold, FLOW_B (sign -1) while it flows E2 -> E1."""
        if not self.powered:
            return 0
        if sign == self.flow_stuck_sign and self.hv_on and "flow_stuck_high" in self.faults:
            return 1                                  # supplied from VHV: stuck high once the rail is up
        return 1 if sign * self.current_ua(t_ns) >= self.flow_threshold_ua else 0

    def thermistor_v(self) -> float:
        if "thermistor_open" in self.faults:        # the pull-up alone
            return RAIL_V
        t_c = 42.0 if "over_temp" in self.faults else self.skin_temp_c
        if self._therm[0] != t_c:
            th = self.board["thermistor"]
            r = th["r25_ohm"] * math.exp(th["beta"] * (1 / (t_c + 273.15) - 1 / 298.15))
            self._therm = (t_c, RAIL_V * r / (r + th["r_pullup_ohm"]))
        return self._therm[1]

    def vbus_present(self) -> bool:
        return bool(self.vbus or "vbus" in self.faults)

    def channel_volts(self, channel: str, t_ns: int) -> float:
        """What an ADC pin sees: "i" current sense, "v" electrode divider, "t" thermistor."""
        if not self.powered:
            return 0.0
        if channel == "i":
            i_ua = self._bypass_ua if self._bypass_ua else abs(self.current_ua(t_ns))
            ua = i_ua * self.sense_gain + self.sense_offset_ua
            test_v = OC_TEST_SENSE_V if self.oc_test else 0.0     # (a pin only boards with the latch wire)
            return max(0.0, ua) * 1e-6 * self._r_sense + test_v + self._bias_v
        if channel == "v":
            return self.electrode_mv(t_ns) / 1000.0 / self.board["sense"]["divider"]
        return self.thermistor_v()

    # ---- what the ADC returns ----
    def adc_raw(self, channel: str, t_ns: int, atten: int = 0, bits: int = 12) -> int:
        """The raw code of one conversion (noise included; adc_stuck freezes it)."""
        stuck = "adc_stuck" in self.faults
        if stuck and channel in self._stuck:
            return self._stuck[channel] >> (12 - bits)
        pick = self._pick_t if channel == "t" else self._pick
        noise_lsb = self._unit_noise[pick(_NOISE_BITS)] * self.adc_noise_lsb
        raw = self.adc.raw(self.channel_volts(channel, t_ns), noise_lsb, atten)
        if stuck:
            self._stuck[channel] = raw               # it keeps returning what it read first
        elif self._stuck:
            self._stuck.clear()
        return raw >> (12 - bits) if bits != 12 else raw

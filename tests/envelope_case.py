"""One case of the envelope property: a waveform the device may accept, a board, a fault at a moment, a
stop or a pause/resume at a moment; the session run on the emulator and judged on the plant.

The cases are drawn by `draw_case` from one distribution, whatever draws the numbers: hypothesis in
tests/test_envelope_property.py (a modest, derandomized budget in `make test`), a seeded
`random.Random` in benchmarks/bench_envelope.py (the long run in `make bench`).

Simulated time is capped per case: sessions of 3-6 s (plus a pause of up to 3 s), observed up to the
last bound plus 0.2 s. A low frequency therefore shows only its first pair or two (at 0.1 Hz a 6 s
session holds one period): the ramp, trip and end bounds are still judged on what it delivers.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import envelope_judge as J
import envelope_ramps as R
from safety_helpers import Bench, board_for

BACKENDS = ("pio", "rmt", "timer")
# the faults judged, with the trip each must cause (None: no trip, only the general invariants) and
# how its onset is found (docstring of `trip_onset_ns`)
FAULTS = {
    "dac_stuck_high": ("over_current", 2 * J.MS, "over_level"),
    "electrode_off": ("contact_lost", 10 * J.MS, "drive"),
    "electrode_short": (None, None, None),
    "adc_stuck": ("sense_fault", 100 * J.MS, "flow_50ua"),
    "bridge_asymmetry": ("charge_imbalance", 1000 * J.MS, "window"),
    # a DC fault (SAFETY.md "Polarity is measured"): a bridge leg fails short, so POL_B phases bypass
    # the electrodes (the sense still reads the source's current) or drive them the POL_A way
    "bridge_leg_short": ("charge_imbalance", 1000 * J.MS, "window"),
    "bridge_leg_reversed": ("charge_imbalance", 1000 * J.MS, "window"),
    # ... or fails open: POL_B phases have no path (unipolar pulses), the source sits at its rail in
    # them. The hazard is the DC: judged as a DC fault (cut <= 1 s after the plant's window passes 2 %);
    # the firmware sees the open path as contact_lost, in the first POL_B phase that carries 3 samples
    # of it (a fault in a phase's last two waits for the next POL_B phase: docs/safety.md, Known limits)
    "bridge_leg_open": ("contact_lost", 1000 * J.MS, "window"),
    "over_temp": ("over_temp", 1000 * J.MS, "fault"),
    "thermistor_open": ("temp_sensor_fault", 1000 * J.MS, "fault"),
    "vbus": ("charging", 2 * J.MS, "fault"),
    "dac_off_bus": (None, None, None),          # dac_fault at the next DAC write: SAFETY.md names no bound
    "firmware_hang": ("watchdog", 1000 * J.MS, "fault"),
}
# a fault that is the emulator's under another name with plant settings: (its fault, the plant's attributes)
PLANT_VARIANTS = {"bridge_leg_reversed": ("bridge_leg_short", {"leg_short_reverse": True})}
CONTROLS = ("none", "stop", "pause")
RAMP_DOWN_NS = 1500 * J.MS                  # the firmware's ramp-down (limits.RAMP_DOWN_MS; twice that where
                                            # the off time after a pair is under a 10 ms output slice), or
                                            # two pair intervals when longer (Case.ramp_down_ns)
SLICE_NS = 10 * J.MS
END_MARGIN_NS = 50 * J.MS                   # the last pair's deadline: one period + 10 ms (CLOSE_MARGIN_MS)
SESSION_S = (3, 6)
HOLD_US = (100_000, 3_000_000)


@dataclass
class Case:
    backend: str
    ua: int
    duration_s: int
    wave: dict
    fault: str | None
    fault_at_us: int
    control: str
    control_at_us: int
    hold_us: int

    def period_ns(self) -> int:
        return int(round(1e9 / self.wave["hz"]))

    def pair_ns(self) -> int:
        """The longest time between two pairs: the period plus a burst's off time."""
        return self.period_ns() + self.wave["burst_off_ms"] * J.MS

    def ramp_down_ns(self) -> int:
        """The documented ramp-down (session.ramp_down_ms): 1.5 s, 3 s where the off time after a
        pair is shorter than an output slice, or two pair intervals when longer."""
        w = self.wave
        period_us = 10**9 // int(w["hz"] * 1000 + 0.5)              # as the firmware rounds it (pulse.py)
        off_ns = (period_us - 2 * w["phase_us"] - w["gap_us"]) * 1000
        base = 2 * RAMP_DOWN_NS if off_ns < SLICE_NS else RAMP_DOWN_NS
        return max(base, 2 * self.pair_ns())

    def off_after_ns(self) -> int:
        """From a stop (or pause, or the session's end) to output off, by the documented rule:
        the ramp-down (1.5 s, or two pair intervals when longer), then the pair under way
        (one period; its deadline) and the margin."""
        return self.ramp_down_ns() + self.period_ns() + END_MARGIN_NS

    def short(self) -> str:
        w = self.wave
        burst = f", burst {w['burst_on_ms']}/{w['burst_off_ms']} ms" if w["burst_on_ms"] else ""
        ctl = "" if self.control == "none" else (
            f"; {self.control} at {self.control_at_us / 1e6:.3f} s"
            + (f", resume {self.hold_us / 1e6:.3f} s later" if self.control == "pause" else ""))
        flt = f"; {self.fault} at {self.fault_at_us / 1e6:.6f} s" if self.fault else "; no fault"
        return (f"{self.backend}: {w['hz']} Hz, phase {w['phase_us']} us, gap {w['gap_us']} us, "
                f"alternate {w['alternate']}{burst}; {self.ua} uA for {self.duration_s} s{flt}{ctl}")


@dataclass
class Outcome:
    case: Case
    refused: str | None = None
    message: str = ""
    violations: list = field(default_factory=list)
    latched: list = field(default_factory=list)
    sim_s: float = 0.0
    wall_s: float = 0.0


# ---- drawing ---------------------------------------------------------------------------------------

def log_int(draw_int, lo: int, hi: int) -> int:
    """An integer in lo..hi, spread evenly on a log scale (both ends reachable)."""
    k = draw_int(0, 1000)
    return min(hi, max(lo, round(lo * (hi / lo) ** (k / 1000))))


def draw_case(draw_int, choice) -> Case:
    """A case from the whole envelope the device may accept: 0.1-1000 Hz, phases 20 us-5 s,
    2 x phase + gap <= period, alternation, bursts; `draw_int(lo, hi)` and `choice(seq)` draw."""
    backend = choice(BACKENDS)
    mhz = log_int(draw_int, 100, 1_000_000)
    period_us = 1_000_000_000 // mhz
    phase_us = log_int(draw_int, 20, min(5_000_000, period_us // 2))
    spare = period_us - 2 * phase_us
    gap_us = 0 if draw_int(0, 2) == 0 else log_int(draw_int, 1, spare) if spare >= 1 else 0
    alternate = bool(draw_int(0, 1))
    burst_on = burst_off = 0
    if draw_int(0, 2) == 0:
        unit_ms = math.ceil(period_us * (2 if alternate else 1) / 1000)
        burst_on = draw_int(unit_ms, max(unit_ms, 3000))
        burst_off = draw_int(1, 3000)
    if draw_int(0, 2):              # two draws in three on the back-end's own grid, so fewer are refused
        mhz, phase_us, gap_us = _on_grid(backend, mhz, phase_us, gap_us)
    hz = mhz // 1000 if mhz % 1000 == 0 else mhz / 1000
    wave = {"hz": hz, "phase_us": phase_us, "gap_us": gap_us, "alternate": alternate,
            "burst_on_ms": burst_on, "burst_off_ms": burst_off}
    duration_s = draw_int(*SESSION_S)
    fault = choice((None,) + tuple(FAULTS))
    return Case(backend, draw_int(10, 500), duration_s, wave, fault,
                draw_int(0, (duration_s + 2) * 1_000_000), choice(CONTROLS),
                draw_int(0, duration_s * 1_000_000), draw_int(*HOLD_US))


def _on_grid(backend, mhz, phase_us, gap_us):
    """The nearest waveform the back-end can play: the timer's 100 us step, the RMT's >= 200 us off
    times (between opposite phases and before the next pair)."""
    period_us = 1_000_000_000 // mhz
    if backend == "timer":
        p = max(1000, period_us // 100 * 100)
        if 1_000_000_000 // (1_000_000_000 // p) == p:
            mhz, period_us = 1_000_000_000 // p, p
        phase_us = max(100, phase_us // 100 * 100)
        gap_us = gap_us // 100 * 100
    elif backend == "rmt":
        gap_us = max(gap_us, 200)
    while 2 * phase_us + gap_us + (200 if backend == "rmt" else 0) > period_us and phase_us > 100:
        phase_us -= 100
    if 2 * phase_us + gap_us > period_us:
        gap_us = max(0, period_us - 2 * phase_us)
    return mhz, phase_us, gap_us


# ---- running ----------------------------------------------------------------------------------------

def run_case(case: Case, seed: int = 1) -> Outcome:
    wall = time.perf_counter()
    b = Bench(board_for(case.backend), seed=seed)
    try:
        out = _run(b, case)
        out.latched = b.faults()
        out.sim_s = b.emu.clock.now_ns / 1e9
    finally:
        b.close()
    out.wall_s = time.perf_counter() - wall
    return out


def _ask(b: Bench, cmd: str) -> dict:
    """A request and its reply; {"ok": False, "error": "no_reply"} from a hung or resetting board."""
    rid = len(b.log) + 5000
    b.emu.send({"id": rid, "cmd": cmd})
    b.run(0.005)
    return next((m for _, m in b.log if m.get("id") == rid), {"ok": False, "error": "no_reply"})


def _run(b: Bench, case: Case) -> Outcome:
    emu = b.emu
    t_start = emu.clock.now_ns
    r = b.request("start", program="lift", ua=case.ua, duration_s=case.duration_s, **case.wave)
    if not r["ok"]:
        return Outcome(case, refused=r["error"], message=r.get("message", ""))
    setpoint = r.get("setpoint_ua", case.ua)
    period = case.period_ns()
    at = {"fault": None, "stop": None, "pause": None, "resume": None}
    queue = []
    if case.fault:
        heapq.heappush(queue, (t_start + case.fault_at_us * 1000, "fault"))
    if case.control != "none":
        heapq.heappush(queue, (t_start + case.control_at_us * 1000, case.control))
    resume_until = None
    while queue:
        t, kind = heapq.heappop(queue)
        if t > emu.clock.now_ns:
            b.run((t - emu.clock.now_ns) / 1e9)
        now = emu.clock.now_ns
        if kind == "fault":
            at["fault"] = now
            name, plant_attrs = PLANT_VARIANTS.get(case.fault, (case.fault, {}))
            for attr, value in plant_attrs.items():
                setattr(emu.plant, attr, value)
            emu.set_fault(name)
        elif kind == "stop":
            if _ask(b, "stop")["ok"]:
                at["stop"] = now
        elif kind == "pause":
            if _ask(b, "pause")["ok"]:
                at["pause"] = now
                resume_until = now + case.hold_us * 1000 + period + 3 * J.S
                heapq.heappush(queue, (now + case.hold_us * 1000, "resume"))
        elif kind == "resume":
            rr = _ask(b, "resume")
            if rr["ok"]:
                at["resume"] = now
            elif rr.get("error") == "busy" and now < resume_until:      # the pause's last pair still plays
                heapq.heappush(queue, (now + 50 * J.MS, "resume"))
    paused = (at["resume"] - at["pause"]) if at["resume"] else 0
    end_bound = t_start + case.duration_s * J.S + paused + case.off_after_ns()
    bounds = [end_bound]
    if at["stop"]:
        bounds.append(at["stop"] + case.off_after_ns())
    t_obs = max(max(bounds), emu.clock.now_ns) + 200 * J.MS
    b.run((t_obs - emu.clock.now_ns) / 1e9)
    return Outcome(case, violations=judge(b, case, t_start, setpoint, at, bounds))


# ---- judging --------------------------------------------------------------------------------------

def dac_step_ua(board: dict) -> float:
    dac = board["dac"]
    return dac["vref_mv"] / ((1 << dac["bits"]) - 1) * 1000.0 / board["v_to_i"]["r_set_ohm"]


def judge(b: Bench, case: Case, t_start: int, setpoint: float, at: dict, bounds: list) -> list:
    emu, board = b.emu, b.emu.board
    t_end = emu.clock.now_ns
    segs = list(emu.plant.trace.segments(t_end))
    edges = list(emu.mcu.edges)
    hv, bridge = board["hv_enable"], (board["bridge"]["pol_a"], board["bridge"]["pol_b"])
    limit = float(board["limit_ua"])
    level = limit * 1.1 + 10
    step = dac_step_ua(board)
    out = []

    latch_log = emu.plant.oc_latch_log

    def off_since(end_ns):
        """Output off: the rail low and no current -- or, from the moment the over-current latch
        gates the bridge off (docs/hardware.md), that latch held until the rail went low."""
        rail = J.pin_low_since(edges, hv, end_ns)
        if rail is None:
            return None
        for (t_set, on), nxt in zip(latch_log, latch_log[1:] + [(None, None)]):
            if on and t_set < rail and (nxt[0] is None or nxt[0] >= rail):
                rail = t_set
        return max(rail, J.zero_since(segs, end_ns))

    v = J.over_limit(segs, level, at["fault"])
    if v:
        out.append(v)
    if emu.plant.trace.shoot_through:
        out.append(J.Violation("shoot_through", t_end, f"{emu.plant.trace.shoot_through} shoot-through(s)"))

    off = off_since(t_end)
    for bound in bounds:
        if off is None or off > bound:
            what = "the session's end" if bound == bounds[0] else "the stop"
            until = "the end of the run" if off is None else f"{off / J.S:.3f} s"
            out.append(J.Violation("not_off", bound, f"output on until {until} (bound {bound / J.S:.3f} s, "
                                                     f"after {what})"))
            break
    if at["pause"]:
        bound = at["pause"] + case.off_after_ns()
        until = at["resume"] - 1 if at["resume"] else t_end      # up to the instant before the resume
        if until > bound:
            p_off = off_since(until)
            if p_off is None or p_off > bound:
                out.append(J.Violation("not_off", bound, f"paused at {at['pause'] / J.S:.3f} s, output on until "
                                                         f"{'resume' if p_off is None else f'{p_off / J.S:.3f} s'}"))

    # the trip the fault must cause, judged by when the plant's output went off
    onset = None
    split = case.wave["alternate"] and 2 * case.wave["phase_us"] + case.wave["gap_us"] == 1e6 / case.wave["hz"]
    phase_list = J.phases(segs, case.wave["phase_us"] * 1000 if split else None)
    all_pairs = J.pairs(phase_list, case.wave["gap_us"] * 1000)
    if case.fault and at["fault"] is not None:
        reason, bound_ns, how = FAULTS[case.fault]
        if reason is not None:
            onset = trip_onset_ns(how, segs, edges, hv, bridge, level, all_pairs, at["fault"],
                                  J.judge_level_ua(board))
            if onset is not None and (off is None or off > onset + bound_ns):
                late = "never" if off is None else f"{(off - onset) / J.MS:.1f} ms after the onset"
                out.append(J.Violation("trip_late", onset, f"{case.fault}: output off {late} (bound "
                                                            f"{bound_ns / J.MS:.0f} ms, {reason}); "
                                                            f"latched {b.faults()}"))

    # ramp rules and charge balance on what came before any fault
    cut = at["fault"] if at["fault"] is not None else t_end + 1
    # a pair ending at the fault's instant was ended by it (an electrode lifted mid-phase): the
    # plant's, not the firmware's, imbalance
    clean = [p for p in all_pairs if p.t1 < cut]
    if at["fault"] is not None and clean and not clean[-1].whole and \
            clean[-1].t1 + case.wave["gap_us"] * 1000 + J.MS >= cut:
        clean.pop()                                 # its partner phase would have come after the fault
    trains = [clean] if not at["resume"] else [[p for p in clean if p.t0 < at["resume"]],
                                                [p for p in clean if p.t0 >= at["resume"]]]
    asked = [at["pause"] if at["pause"] else at["stop"]] + ([at["stop"]] if at["resume"] else [])
    for train, req in zip(trains, asked):
        up = [p for p in train if req is None or p.t0 <= req]
        out += R.ramp_up(up, limit, setpoint, step)[:1]
        if req is not None and req < cut:
            ended = at["fault"] is None or at["fault"] > req + case.off_after_ns()
            out += R.ramp_down(train, req, limit, step, ended)
    v = J.charge_balance(clean)
    if v:
        out.append(v)
    return out


def trip_onset_ns(how, segs, edges, hv, bridge, level, pair_list, t_fault, judge_ua=0.0):
    """The onset of a fault's trip, on the plant: `fault` the injection itself; `over_level` the first
    instant after it with |I| above limit x 1.1 + 10 uA (see envelope_judge.over_limit); `drive` the
    first instant from it on at which the rail is on and the bridge drives the electrodes; `flow_50ua`
    the first instant from it on with |I| >= 50 uA (sense_fault judges commands >= 50 uA); `window`
    the first instant a pair's charge is known (its end; a lone phase's partner due) at which the
    plant's 10 s window of whole pairs exceeds 2 % (of the charge moved, or of what its phases would
    move at the sense's `judge_ua`: envelope_judge.judge_level_ua)."""
    if how == "fault":
        return t_fault
    if how == "over_level":
        return J.first_at_least(segs, level + 1e-6, t_fault)
    if how == "drive":
        return J.driving_from(edges, hv, bridge, t_fault)
    if how == "flow_50ua":
        return J.first_at_least(segs, 50.0, t_fault)
    if how == "window":
        return J.imbalance_onset(pair_list, t_fault, judge_ua)
    raise ValueError(how)

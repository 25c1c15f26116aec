"""Trip latency per SAFETY.md trip: median and worst over seeded runs on the emulated plant.

Each run boots a board (plant noise seeded), brings a `lift` session (10 Hz,
40 ms phases) to its setpoint, injects the fault at a seeded moment of the
100 ms pulse cycle and times, in lockstep virtual time, from the onset
SAFETY.md names to the output cut (HV enable falling) or the stated reaction.
It measures with the safety tests' own tools (tests/safety_helpers.Bench,
myotone.emulator.bench, the rig's Capture); the bounds are read from the
firmware's limits module. Figures do not depend on the machine.
"""
from __future__ import annotations

import random
import statistics

import report
from myotone.emulator import Emulator
from myotone.emulator import bench as truth
from myotone.emulator.board import load_board
from myotone.emulator.mcu import WDT_RESET
from safety_helpers import MS, Bench

SEEDS, QUICK_SEEDS = 20, 2
BOARDS, QUICK_BOARDS = ("pico-mcp4725", "esp32-devkit"), ("pico-mcp4725",)
SESSION_UA = 300
AT_SETPOINT_S = 4.0            # the ramp to 300 uA ends after ~2.2 s
CYCLE_S = 0.1                  # lift's pulse cycle: the fault lands anywhere in it
BALANCED_S = 12.0              # a full, balanced 10 s charge window before bridge_asymmetry
SMALL_AREA_CM2 = 0.25          # an electrode on which 300 uA of lift exceeds 0.5 mA/cm2 rms
SMALL_HW_LIMIT_UA = 300        # ... with a limiter below over_current, so the density trip acts
                               # (a limiter out of its tolerance, on the plant: board.check refuses a
                               # board file whose limiter caps under the trip level)


class Missed(Exception):
    """A run where the expected reaction did not happen (reported, never hidden)."""


def _inject(b, rng, fault, settle_s=AT_SETPOINT_S, **start):
    """Start a session, wait until `settle_s` plus a seeded part of a cycle, switch `fault` on
    (a name, or several at the same instant)."""
    reply = b.start(ua=SESSION_UA, **start)
    b.run(settle_s + rng.uniform(0, CYCLE_S))
    t_ns = b.emu.clock.now_ns
    for name in (fault,) if isinstance(fault, str) else fault:
        b.emu.set_fault(name)
    return t_ns, reply


def _latched(b, reason):
    if b.faults() != [reason]:
        raise Missed(f"faults {b.faults()}, expected [{reason}]")


def _over_level(b, t, level_ua, reason):
    """Onset: the start of the excursion above `level_ua` that the cut ended. An excursion that ended by
    itself first (the fault landed in the last < 2 samples of a phase, then the gap) is remarked on."""
    b.run(0.05)
    _latched(b, reason)
    cut = b.cut_time_ns(t)
    cap = truth.PlantRig(b.emu).capture(t / 1e9)
    runs = []
    for a, z, i in cap.segments(t / 1e9, None if cut is None else cut / 1e9):
        if abs(i) <= level_ua:
            continue
        if runs and abs(runs[-1][1] - a) < 1e-10:
            runs[-1][1] = z
        else:
            runs.append([a, z])
    if not runs:
        return None, cut
    ended = [f"{(z - a) * 1e3:.2f} ms" for a, z in runs[:-1]]
    remark = f"excursion(s) of {', '.join(ended)} ended with the phase, uncut" if ended else None
    return int(round(runs[-1][0] * 1e9)), cut, remark


def over_current(b, lim, rng):
    limit_ua = b.request("hello")["limits"]["max_ua"]
    # the firmware's own cut (the latch cuts in 10 us: test_oc_latch); it dies after the switch-on's
    # latch test, which would refuse the session
    t, _ = _inject(b, rng, ("oc_latch_dead", "dac_stuck_high"))
    return _over_level(b, t, limit_ua * lim.OVER_CURRENT_PERMILLE / 1000 + lim.OVER_CURRENT_MARGIN_UA, "over_current")


def contact_lost(b, lim, rng):
    t, _ = _inject(b, rng, "electrode_off")
    b.run(0.05)
    _latched(b, "contact_lost")
    return truth.drive_ns(b.emu, t), b.cut_time_ns(t)


def _cut_after_injection(fault, reason, run_s):
    def measure(b, lim, rng):
        t, _ = _inject(b, rng, fault)
        b.run(run_s)
        _latched(b, reason)
        return t, b.cut_time_ns(t)
    measure.__name__ = reason           # each trip its own seeded moments
    return measure


def charge_imbalance(b, lim, rng):
    t, _ = _inject(b, rng, "bridge_asymmetry", settle_s=BALANCED_S)
    b.run(6)
    _latched(b, "charge_imbalance")
    cut = b.cut_time_ns(t)
    cap = truth.PlantRig(b.emu).capture(t / 1e9 - BALANCED_S)
    window_s, limit = lim.CHARGE_WINDOW_MS / 1000, lim.CHARGE_IMBALANCE_PERMILLE / 1000
    if cap.imbalance(t / 1e9, window_s) > limit / 4:
        raise Missed("the window was imbalanced before the fault")
    exceeded = _first(lambda t_ns: cap.imbalance(t_ns / 1e9, window_s) > limit, t, cut or t)
    if exceeded is None and cut is not None:     # stopped before the plant's window reached 2 %: early
        return cut, cut, f"stopped at a plant window of {cap.imbalance(cut / 1e9, window_s):.2%} (counted 0 ms)"
    return exceeded, cut


def _first(pred, t0_ns, t1_ns):
    """The first ms in [t0_ns, t1_ns] where `pred` holds (10 ms steps, then 1 ms steps)."""
    coarse = next((t for t in range(t0_ns, t1_ns + 10 * MS, 10 * MS) if pred(t)), None)
    if coarse is None:
        return None
    return next(t for t in range(max(t0_ns, coarse - 9 * MS), coarse + MS, MS) if pred(t))


def high_density_stop(b, lim, rng):
    # a stuck DAC sets the latch first: this times the firmware's rule (the latch dead after the switch-on)
    t, reply = _inject(b, rng, ("oc_latch_dead", "dac_stuck_high"))
    level_ua = reply["setpoint_ua"] * lim.OVER_CURRENT_PERMILLE / 1000 + lim.OVER_CURRENT_MARGIN_UA
    return _over_level(b, t, level_ua, "high_density")


def high_density_reduce(b, lim, rng):
    """From the first current to the end of the last cycle whose I_rms / area exceeds the limit."""
    t0 = b.emu.clock.now_ns
    b.run(rng.uniform(0, CYCLE_S))
    b.start(ua=SESSION_UA)
    b.run(AT_SETPOINT_S)
    first = b.onset_ns(t0, 0)
    if first is None:
        raise Missed("no current")
    cap = truth.PlantRig(b.emu).capture(first / 1e9)
    area, limit = b.emu.board["electrode_area_cm2"], lim.DENSITY_MAX_UA_PER_CM2
    over = [t for t in range(first, b.emu.clock.now_ns - int(CYCLE_S * 1e9), int(CYCLE_S * 1e9))
            if cap.rms_ua(t / 1e9, t / 1e9 + CYCLE_S) / area > limit]
    return first, (over[-1] + int(CYCLE_S * 1e9) if over else first)


def heartbeat_lost(b, lim, rng):
    """From the last heartbeat to the first DAC step below the setpoint (the ramp-down)."""
    b.start(ua=SESSION_UA, heartbeat=True)
    for _ in range(int(AT_SETPOINT_S)):
        b.run(1)
        b.request("heartbeat")
    b.run(rng.uniform(0, 1))
    t_last = b.emu.clock.now_ns
    b.request("heartbeat")
    b.run((lim.HEARTBEAT_TIMEOUT_MS + lim.RAMP_DOWN_MS) / 1000 + 1)
    _latched(b, "heartbeat_lost")
    writes = b.emu.mcu.dac_writes
    held = [c for t, c in writes if t <= t_last][-1]
    falls = next((t for t, c in writes if t > t_last and c < held), None)
    if falls is not None and falls - t_last < lim.HEARTBEAT_TIMEOUT_MS * MS:
        raise Missed(f"ramp-down {(falls - t_last) / MS:.1f} ms after the last heartbeat, before the timeout")
    return t_last, falls


def watchdog(b, lim, rng):
    t, _ = _inject(b, rng, "firmware_hang")
    b.run(2)
    if not any(at >= t and cause == WDT_RESET for at, cause in b.emu.mcu.resets):
        raise Missed("no watchdog reset")
    return t, b.cut_time_ns(t)


def brownout(b, lim, rng):
    t, _ = _inject(b, rng, "brownout")
    b.run(1)
    if not any(at >= t for at, _ in b.emu.mcu.resets):
        raise Missed("no reset")
    return t, b.cut_time_ns(t)


SMALL = {"electrode_area_cm2": SMALL_AREA_CM2, "limiter_cap_ua": SMALL_HW_LIMIT_UA}
# (trip, what is timed, bound's name in limits (None: SAFETY.md gives no time), board changes, measure)
TRIPS = (
    ("over_current", "|I| > limit x 1.1 + 10 uA -> HV off", "OVER_CURRENT_STOP_MS", {}, over_current),
    ("contact_lost", "bridge drives open electrode -> HV off", "CONTACT_STOP_MS", {}, contact_lost),
    ("high_density", "first current -> I_rms/area within limit", None, SMALL, high_density_reduce),
    ("high_density (stop)", "|I| > reduced peak x 1.1 + 10 uA -> HV off", None, SMALL, high_density_stop),
    ("charge_imbalance", "10 s window > 2 % -> HV off", "CHARGE_IMBALANCE_STOP_MS", {}, charge_imbalance),
    ("sense_fault", "ADC stuck -> HV off", "SENSE_FAULT_STOP_MS", {},
     _cut_after_injection("adc_stuck", "sense_fault", 0.3)),
    ("over_temp", "thermistor at 42 C -> HV off", "OVER_TEMP_STOP_MS", {},
     _cut_after_injection("over_temp", "over_temp", 1.5)),
    ("charging", "VBUS present -> HV off", None, {}, _cut_after_injection("vbus", "charging", 0.1)),
    ("heartbeat_lost", "last heartbeat -> current starts falling", None, {}, heartbeat_lost),
    ("watchdog", "firmware hangs -> reset, HV off", "WATCHDOG_MAX_MS", {}, watchdog),
    ("brownout", "supply dip -> HV off", None, {}, brownout),
)


def _one(board_name, changes, seed, measure, lim):
    """Latency in ms of one seeded run, and a remark or None."""
    board = load_board(board_name)
    changes = dict(changes)
    cap_ua = changes.pop("limiter_cap_ua", None)
    board.update(changes)
    b = Bench(board, seed=seed)
    if cap_ua is not None:                  # the plant's limiter, not the board file's
        b.emu.plant.limiter_tol = cap_ua / board["hw_limit_ua"] - 1
    try:
        onset, reaction, *remark = measure(b, lim, random.Random(f"{board_name}/{measure.__name__}/{seed}"))
    finally:
        b.close()
    if onset is None or reaction is None:
        raise Missed("no onset" if onset is None else "no reaction")
    return (reaction - onset) / MS, (remark or [None])[0]


def measure(quick: bool) -> report.Section:
    emu = Emulator("pico-mcp4725")          # not started: no firmware thread importing alongside
    try:
        lim = emu.runtime.import_module("myotone.limits")
        limits = {k: getattr(lim, k) for k in dir(lim) if k.isupper()}
    finally:
        emu.close()
    lim = type("Limits", (), limits)
    seeds = range(1, 1 + (QUICK_SEEDS if quick else SEEDS))
    rows, notes = [], []
    for board_name in (QUICK_BOARDS if quick else BOARDS):
        for name, timed, bound_name, changes, fn in TRIPS:
            bound_ms = None if bound_name is None else limits[bound_name]
            lat_ms, missed, remarks = [], [], []
            for seed in seeds:
                try:
                    ms, remark = _one(board_name, changes, seed, fn, lim)
                except Missed as exc:
                    missed.append(f"seed {seed}: {exc}")
                    continue
                lat_ms.append(ms)
                if remark:
                    remarks.append(f"seed {seed}: {remark}")
            if remarks:
                notes.append(f"{name} on {board_name}, {len(remarks)} run(s): " + "; ".join(remarks))
            if missed:
                notes.append(f"{name} on {board_name} MISSED in {len(missed)} run(s): " + "; ".join(missed))
            within = None if bound_ms is None else bool(lat_ms) and max(lat_ms) <= bound_ms
            rows.append({"trip": name, "board": board_name, "timed": timed, "bound_ms": bound_ms,
                         "runs": len(lat_ms), "median_ms": round(statistics.median(lat_ms), 3) if lat_ms else None,
                         "worst_ms": round(max(lat_ms), 3) if lat_ms else None,
                         "within_bound": False if missed else within})
    over = [f"{r['trip']} on {r['board']}" for r in rows if r["within_bound"] is False]
    if over:
        notes.insert(0, "OUT OF BOUND or missed: " + ", ".join(over))
    notes += [
        "bounds are the firmware's limits (firmware/myotone/limits.py); '-' where SAFETY.md gives no time "
        "(high_density: reduced or stop; charging: stops; heartbeat_lost: ramp-down; brownout: reported "
        "after restart)",
        "high_density: the setpoint is reduced at start, so 0 ms means no 100 ms cycle ever exceeded "
        f"0.5 mA/cm2 rms ({SMALL_AREA_CM2} cm2 board); (stop): a DAC stuck high under a "
        f"{SMALL_HW_LIMIT_UA} uA limiter, below over_current",
        f"heartbeat_lost: SAFETY.md names the {limits['HEARTBEAT_TIMEOUT_MS']} ms timeout (HEARTBEAT_TIMEOUT_MS), "
        "not a reaction time; a run whose current falls before it counts as missed. The ramp-down changes "
        "the amplitude between pulse pairs only (charge balance), so it starts after the pair under way",
        "lockstep virtual time: the figures are the same on any machine",
    ]
    met = all(r["within_bound"] is not False for r in rows)
    return report.Section("trips", "trip latency per SAFETY.md trip, seeded fault moment, on the plant", rows,
                          target="every trip within its SAFETY.md bound, worst case over seeds", met=met,
                          notes=notes)

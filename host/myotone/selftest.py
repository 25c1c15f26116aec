"""`myotone selftest`: the characterisation report of SAFETY.md (the FDA list
of 21 CFR 882.5891), measured through the device on dummy loads.

For each load the device runs a `measure` session (every safety check
active) at the test current with the program's waveform; the firmware
averages the run phase per polarity. When the rig can see the electrode
current (the emulator's plant, in process or through its control port) the
timing is read from the edges (edges.py); without one it is reported as not
measured, never as the program's nominal. The LED figures come from the
board's irradiance calibration and the program. Every figure carries its
pass limit, or says that there is none. The text and Markdown forms are in
selftest_text.py.
"""
from __future__ import annotations

import datetime
import json
import math
import re

from . import edges, paths
from .link import DeviceError, Link
from .measuring import MeasureFault, measure
from .rig import format_ohm

DENSITY_LIMIT_MA_CM2 = 0.5           # SAFETY.md high_density
ACCURACY_PCT = 5.0                   # measured mean within 5 % (+2 µA) of the setpoint
ACCURACY_UA = 2.0
NET_CHARGE_PCT = 2.0                 # SAFETY.md charge_imbalance
PEAK_PCT, PEAK_UA = 10.0, 10.0       # the peak: below the over_current trip's margin over the setpoint
IMPEDANCE_PCT = 5.0                  # the load the device reads: the one connected (wiring, sense)
TIMING_PCT = 1.0                     # frequency and widths within 1 % of nominal ...
TIMING_US = 10.0                     # ... (+10 µs for widths)
NO_LIMIT_POWER = "none: SAFETY.md sets no limit for it (reported, not judged)"
NO_LIMIT_IRRADIANCE = "none: SAFETY.md sets no limit for it (reported, not judged)"


def limit(value, lo=None, hi=None, rule="") -> dict:
    """A figure's pass limit and whether `value` is within it (ok None: no limit, or no value)."""
    judged = value is not None and (lo is not None or hi is not None)
    ok = judged and (lo is None or value >= lo) and (hi is None or value <= hi)
    return {"min": lo, "max": hi, "rule": rule, "ok": ok if judged else None}


def board_info(link: Link, hello: dict) -> dict:
    """The board file in force: from the device, or the repository's copy of that name."""
    try:
        return link.request("board")["board"]
    except DeviceError:
        p = paths.boards_dir() / f"{hello['board']}.json"
        return json.loads(p.read_text())


def program_info(link: Link, name: str) -> dict:
    progs = link.request("programs")["programs"]
    for p in progs:
        if p["name"] == name:
            return p
    raise ValueError(f"no program {name!r} on the device (it has: {', '.join(p['name'] for p in progs)})")


def duty(prog: dict) -> float:
    """Fraction of time the output is on: two phases per period, times the burst's on-fraction."""
    d = 2 * prog["phase_us"] * prog["hz"] / 1e6
    on, off = prog.get("burst_on_ms", 0), prog.get("burst_off_ms", 0)
    if on and off:
        d *= on / (on + off)
    return d


# ---- the header --------------------------------------------------------------------------
def calibration_state(link: Link) -> dict:
    """calib_get in a reader's terms: calibrated or not, and the date if the note has one."""
    try:
        c = link.request("calib_get")
    except DeviceError as exc:
        return {"state": "unknown", "why": str(exc), "date": None, "note": None}
    note = c["calibration"].get("note", "")
    state = {"file": "calibrated", "default": "not calibrated",
             "invalid": "not calibrated (the stored file failed its checks: identity in use)"}.get(c["source"],
                                                                                                c["source"])
    if c["source"] == "file" and note == "calibrating":
        state = "not calibrated (a calibration was interrupted: identity in use)"
    date = re.search(r"\d{4}-\d{2}-\d{2}", note)
    return {"state": state, "source": c["source"], "date": date.group(0) if date else None, "note": note,
            "dac_gain": c["calibration"]["dac_gain"], "adc_gain": c["calibration"]["adc_gain"]}


def header(link: Link, hello: dict, rig, now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.timezone.utc).astimezone()
    return {"date": now.isoformat(timespec="seconds"), "unit_id": hello.get("unit_id"),
            "board": hello["board"], "mcu": hello.get("mcu"), "pulse_backend": hello.get("pulse_backend"),
            "firmware": hello["firmware"], "protocol": hello.get("protocol"),
            "calibration": calibration_state(link),
            "rig": rig.name, "scope": getattr(rig, "scope", None)}


# ---- one load ------------------------------------------------------------------------------
def row_for(load_ohm: float, m: dict, prog: dict, area_cm2: float, compliance_v: float | None = None) -> dict:
    phase_s = prog["phase_us"] / 1e6
    on = duty(prog)
    mean = m["mean_ua"]
    rms_ua = mean * math.sqrt(on)
    net = (m["pos_ua"] - m["neg_ua"]) * phase_s
    setpoint = m["setpoint_ua"]
    z = m["impedance_ohm"] or None
    r_ohm = z or load_ohm                    # the power: on the measured load, else the one connected
    row = {
        "load_ohm": load_ohm, "ok": True, "problems": [],
        "setpoint_ua": setpoint, "density_limited": m.get("density_limited", False),
        "peak_current_ua": m["max_ua"], "mean_current_ua": mean,
        # None: the electrode voltage is below what this board's ADC reads (ESP32: ~140 mV at the pin)
        "peak_voltage_v": round(m["max_mv"] / 1000, 2) if m["max_mv"] > 0 else None,
        "impedance_ohm": z,
        "charge_per_phase_uc": round(mean * phase_s, 4),
        "net_charge_per_pulse_uc": round(net, 5),
        "max_current_density_ma_cm2_rms": round(rms_ua / 1000 / area_cm2, 4),
        # I_rms² × R / area: µA² × Ω = 1e-12 W, in mW
        "max_avg_power_density_mw_cm2": round(rms_ua ** 2 * r_ohm * 1e-9 / area_cm2, 5),
        "power_load_ohm": r_ohm,
        "average_current_ua": round(mean * on, 2),
        "samples": m["n"],
        "timing": None,
    }
    tol = setpoint * ACCURACY_PCT / 100 + ACCURACY_UA
    acc = f"within {ACCURACY_PCT:g} % + {ACCURACY_UA:g} µA of {setpoint} µA"
    net_max = round(NET_CHARGE_PCT / 100 * 2 * setpoint * phase_s, 5)
    row["limits"] = {
        "peak_current_ua": limit(m["max_ua"], None, round(setpoint * (1 + PEAK_PCT / 100) + PEAK_UA, 1),
                                 f"≤ setpoint + {PEAK_PCT:g} % + {PEAK_UA:g} µA"),
        "mean_current_ua": limit(mean, setpoint - tol, setpoint + tol, acc),
        "peak_voltage_v": limit(row["peak_voltage_v"], None, compliance_v,
                                f"≤ the compliance voltage, {compliance_v:g} V" if compliance_v else "none"),
        "impedance_ohm": limit(z, round(load_ohm * (1 - IMPEDANCE_PCT / 100)),
                               round(load_ohm * (1 + IMPEDANCE_PCT / 100)),
                               f"within {IMPEDANCE_PCT:g} % of the load connected"),
        "charge_per_phase_uc": limit(row["charge_per_phase_uc"], round((setpoint - tol) * phase_s, 4),
                                     round((setpoint + tol) * phase_s, 4), "the mean's limit × phase width"),
        "net_charge_per_pulse_uc": limit(row["net_charge_per_pulse_uc"], -net_max, net_max,
                                         f"|net| ≤ {NET_CHARGE_PCT:g} % of the charge moved per pulse "
                                         "(SAFETY.md charge_imbalance)"),
        "max_current_density_ma_cm2_rms": limit(row["max_current_density_ma_cm2_rms"], None, DENSITY_LIMIT_MA_CM2,
                                                f"≤ {DENSITY_LIMIT_MA_CM2:g} mA/cm² rms (SAFETY.md high_density)"),
        "max_avg_power_density_mw_cm2": limit(None, rule=NO_LIMIT_POWER),
        "average_current_ua": limit(row["average_current_ua"], round((setpoint - tol) * on, 2),
                                    round((setpoint + tol) * on, 2), "the mean's limit × duty"),
    }
    for figure, lim in row["limits"].items():
        if lim["ok"] is False:
            row["problems"].append(f"{figure.replace('_', ' ')} {row[figure]:g} is not {lim['rule']}")
    row["ok"] = not row["problems"]
    return row


# ---- timing and light ----------------------------------------------------------------------
TIMING_FIGURES = ("frequency_hz", "phase_width_us", "interphase_gap_us", "burst_on_ms", "burst_off_ms")


def timing_limits(prog: dict, measured: list, why_not: str | None) -> dict:
    """Nominal beside measured for each timing figure. `measured`: the loads' edge timings
    (None where a load had none); the figure shown is the one furthest from nominal."""
    bursts = bool(prog.get("burst_on_ms") and prog.get("burst_off_ms"))
    nominal = {"frequency_hz": prog["hz"], "phase_width_us": prog["phase_us"], "interphase_gap_us": prog["gap_us"],
               "burst_on_ms": prog.get("burst_on_ms") if bursts else None,
               "burst_off_ms": prog.get("burst_off_ms") if bursts else None}
    seen = [t for t in measured if t]
    out = {"measured_by": None if why_not else "edges (50 % crossings) of the rig's capture",
           "not_measured": why_not}
    if not why_not and not seen:
        out["not_measured"] = "fewer than two pulses above half the peak in any capture: use a longer --hold-s"
    period_ms = 1000 / prog["hz"]
    for f in TIMING_FIGURES:
        nom = nominal[f]
        values = [t[f] for t in seen if t[f] is not None]
        got = max(values, key=lambda v: abs(v - nom)) if values and nom is not None else None
        if nom is None:
            lim = limit(None, rule="no bursts in this program")
        elif f == "frequency_hz":
            d = nom * TIMING_PCT / 100
            lim = limit(got, nom - d, nom + d, f"within {TIMING_PCT:g} % of nominal")
        elif f.endswith("_us"):
            d = nom * TIMING_PCT / 100 + TIMING_US
            lim = limit(got, nom - d, nom + d, f"within {TIMING_PCT:g} % + {TIMING_US:g} µs of nominal")
        else:                          # a burst holds whole pulses: one period of resolution
            d = nom * TIMING_PCT / 100 + period_ms
            lim = limit(got, nom - d, nom + d, f"within {TIMING_PCT:g} % + one pulse period of nominal")
        out[f] = {"nominal": nom, "measured": None if got is None else round(got, 4), **lim}
    return out


def led_figures(link: Link, hello: dict, program: str) -> dict:
    """Per channel: wavelength, irradiance at 100 % (the board's calibration), the program's
    irradiance, time on and dose. A channel the board lacks: null, with why."""
    led = hello.get("led") or {}
    lim_s = hello["limits"].get("led_max_s")
    cap = hello["limits"].get("led_dose_max_j_cm2")
    out = {"source": "the board file's irradiance calibration and the program's LED levels (not measured)",
           "channels": {}, "why": None}
    try:
        phases = link.request("program_read", name=program)["program"]["phases"]
    except (DeviceError, KeyError) as exc:
        phases, out["why"] = None, f"the program's LED levels: {exc}"
    total_dose, total_s = 0.0, 0
    for ch, nm_key, mw_key in (("red", "red_nm", "red_mw_cm2"), ("nir", "nir_nm", "nir_mw_cm2")):
        nm, at_100 = led.get(nm_key), led.get(mw_key)
        if nm is None or at_100 is None:
            out["channels"][ch] = {"wavelength_nm": None, "irradiance_at_100_mw_cm2": None, "irradiance_mw_cm2": None,
                                   "on_s": None, "dose_j_cm2": None,
                                   "why": f"this board has no {ch.upper()} channel (or no eye shields)"}
            continue
        c = {"wavelength_nm": nm, "irradiance_at_100_mw_cm2": at_100, "irradiance_mw_cm2": None,
             "on_s": None, "dose_j_cm2": None, "why": out["why"]}
        if phases is not None:
            pcts = [(p[f"{ch}_pct"], p["duration_s"]) for p in phases]
            c["irradiance_mw_cm2"] = round(max(pct for pct, _ in pcts) * at_100 / 100, 3)
            c["on_s"] = sum(d for pct, d in pcts if pct)
            c["dose_j_cm2"] = round(sum(pct * at_100 / 100 * d for pct, d in pcts) / 1000, 4)
            total_dose += c["dose_j_cm2"]
        out["channels"][ch] = c
    if phases is not None:
        total_s = sum(p["duration_s"] for p in phases if p["red_pct"] or p["nir_pct"])
    have = phases is not None
    out["dose_j_cm2"] = round(total_dose, 4) if have else None
    out["on_s"] = total_s if have else None
    out["limits"] = {
        "irradiance_mw_cm2": limit(None, rule=NO_LIMIT_IRRADIANCE),
        "dose_j_cm2": limit(out["dose_j_cm2"], None, cap, f"≤ {cap:g} J/cm² per session (the firmware's cap)"),
        "on_s": limit(out["on_s"], None, lim_s, f"≤ {lim_s} s of LED per session (SAFETY.md)"),
    }
    out["ok"] = all(v["ok"] is not False for v in out["limits"].values())
    return out


# ---- the whole report ------------------------------------------------------------------------
def selftest(link: Link, loads: list, rig, ua: int | None = None, program: str = "lift",
             hold_s: int = 2, progress=None, now: datetime.datetime | None = None,
             captures: list | None = None) -> dict:
    """The report (a JSON-able dict). `captures`, if given, receives (load_ohm, Capture) per load
    the rig could see (for a waveform figure)."""
    hello = link.request("hello")
    board = board_info(link, hello)
    prog = program_info(link, program)
    ua = ua or hello["limits"]["max_ua"]
    area = float(board["electrode_area_cm2"])
    head = header(link, hello, rig, now)
    scope = getattr(rig, "scope", None)
    rows = []
    for ohm in loads:
        rig.connect_load(ohm)
        if progress:
            progress(f"{format_ohm(ohm)}: measuring at {ua} µA")
        t0 = rig.now_s() if scope else None
        try:
            m = measure(link, ua, hold_s=hold_s, program=program)
        except MeasureFault as exc:
            link.request("fault_clear")
            rows.append({"load_ohm": ohm, "ok": False, "setpoint_ua": ua, "timing": None,
                         "problems": [f"the device stopped: {exc.result.get('fault')}"]})
            continue
        row = row_for(ohm, m, prog, area, board.get("compliance_v"))
        if scope:
            cap = rig.capture(t0)
            row["timing"] = edges.timing(cap)
            if captures is not None:
                captures.append((ohm, cap))
        rows.append(row)
    timing = timing_limits(prog, [r["timing"] for r in rows], getattr(rig, "no_scope", None))
    led = led_figures(link, hello, program)
    timing_ok = all(timing[f]["ok"] is not False for f in TIMING_FIGURES)
    return {
        "ok": all(r["ok"] for r in rows) and timing_ok and led["ok"],
        "header": head,
        "board": hello["board"], "firmware": hello["firmware"], "program": program,
        "waveform": (f"biphasic, charge-balanced, rectangular; {'alternating' if prog['alternate'] else 'fixed'} "
                     f"polarity; {prog['description']}"),
        "timing": timing,
        "duty": round(duty(prog), 4), "electrode_area_cm2": area, "test_current_ua": ua, "hold_s": hold_s,
        "rig": rig.name,
        "loads": rows,
        "led": led,
    }

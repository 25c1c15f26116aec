"""`myotone selftest`: the characterisation table of SAFETY.md (the FDA list
of 21 CFR 882.5891), measured through the device on dummy loads.

For each load the device runs a `measure` session (every safety check
active) at the test current with the program's waveform; the firmware
averages the run phase per polarity. Timing (frequency, phase width) is
the program's: the pulse back-end plays it exactly or refuses it.
"""
from __future__ import annotations

import json
import math

from . import paths
from .link import DeviceError, Link
from .measuring import MeasureFault, measure
from .rig import format_ohm

DENSITY_LIMIT_MA_CM2 = 0.5           # SAFETY.md high_density
ACCURACY_PCT = 5.0                   # measured mean within 5 % (+2 µA) of the setpoint
ACCURACY_UA = 2.0
NET_CHARGE_PCT = 2.0                 # SAFETY.md charge_imbalance


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


def row_for(load_ohm: float, m: dict, prog: dict, area_cm2: float) -> dict:
    phase_s = prog["phase_us"] / 1e6
    on = duty(prog)
    mean = m["mean_ua"]
    rms_ua = mean * math.sqrt(on)
    moved = (m["pos_ua"] + m["neg_ua"]) * phase_s
    net = (m["pos_ua"] - m["neg_ua"]) * phase_s
    setpoint = m["setpoint_ua"]
    row = {
        "load_ohm": load_ohm, "ok": True, "problems": [],
        "setpoint_ua": setpoint, "density_limited": m.get("density_limited", False),
        "peak_current_ua": m["max_ua"], "mean_current_ua": mean,
        # None: the electrode voltage is below what this board's ADC reads (ESP32: ~140 mV at the pin)
        "peak_voltage_v": round(m["max_mv"] / 1000, 2) if m["max_mv"] > 0 else None,
        "impedance_ohm": m["impedance_ohm"] or None,
        "charge_per_phase_uc": round(mean * phase_s, 4),
        "net_charge_per_pulse_uc": round(net, 5),
        "max_current_density_ma_cm2_rms": round(rms_ua / 1000 / area_cm2, 4),
        "average_current_ua": round(mean * on, 2),
        "samples": m["n"],
    }
    if abs(mean - setpoint) > setpoint * ACCURACY_PCT / 100 + ACCURACY_UA:
        row["problems"].append(f"mean {mean:.1f} µA is not within {ACCURACY_PCT:g} % of {setpoint} µA")
    if moved > 0 and abs(net) / moved * 100 > NET_CHARGE_PCT:
        row["problems"].append(f"net charge {abs(net) / moved * 100:.1f} % of the charge moved")
    if row["max_current_density_ma_cm2_rms"] > DENSITY_LIMIT_MA_CM2:
        row["problems"].append("current density above 0.5 mA/cm² rms")
    row["ok"] = not row["problems"]
    return row


def selftest(link: Link, loads: list, rig, ua: int | None = None, program: str = "lift",
             hold_s: int = 2, progress=None) -> dict:
    hello = link.request("hello")
    board = board_info(link, hello)
    prog = program_info(link, program)
    ua = ua or hello["limits"]["max_ua"]
    area = float(board["electrode_area_cm2"])
    rows = []
    for ohm in loads:
        rig.connect_load(ohm)
        if progress:
            progress(f"{format_ohm(ohm)}: measuring at {ua} µA")
        try:
            m = measure(link, ua, hold_s=hold_s, program=program)
        except MeasureFault as exc:
            link.request("fault_clear")
            rows.append({"load_ohm": ohm, "ok": False, "setpoint_ua": ua,
                         "problems": [f"the device stopped: {exc.result.get('fault')}"]})
            continue
        rows.append(row_for(ohm, m, prog, area))
    return {
        "ok": all(r["ok"] for r in rows),
        "board": hello["board"], "firmware": hello["firmware"], "program": program,
        "waveform": (f"biphasic, charge-balanced, rectangular; {'alternating' if prog['alternate'] else 'fixed'} "
                     f"polarity; {prog['description']}"),
        "frequency_hz": prog["hz"], "phase_width_us": prog["phase_us"], "interphase_gap_us": prog["gap_us"],
        "burst_on_ms": prog.get("burst_on_ms", 0), "burst_off_ms": prog.get("burst_off_ms", 0),
        "duty": round(duty(prog), 4), "electrode_area_cm2": area, "test_current_ua": ua,
        "rig": rig.name,
        "loads": rows,
        "led": {"wavelength_nm": "n/a", "irradiance_mw_cm2": "n/a", "dose_j_cm2": "n/a"},
    }


def format_text(r: dict) -> str:
    lines = [f"{r['board']} firmware {r['firmware']}: program {r['program']} at {r['test_current_ua']} µA "
             f"(loads connected {r['rig']})",
             f"waveform        {r['waveform']}",
             f"frequency       {r['frequency_hz']:g} Hz, phase width {r['phase_width_us']} µs, "
             f"inter-phase gap {r['interphase_gap_us']} µs, duty {r['duty'] * 100:.1f} %",
             f"electrode area  {r['electrode_area_cm2']:g} cm²", ""]
    head = ("load", "peak µA", "peak V", "Z Ω", "µC/phase", "net µC/pulse", "mA/cm² rms", "avg µA", "")
    table = [head]
    for row in r["loads"]:
        if "peak_current_ua" not in row:
            table.append((format_ohm(row["load_ohm"]), "-", "-", "-", "-", "-", "-", "-",
                          "FAIL " + "; ".join(row["problems"])))
            continue
        volts = f"{row['peak_voltage_v']:.2f}" if row["peak_voltage_v"] is not None else "<ADC"
        ohms = str(row["impedance_ohm"]) if row["impedance_ohm"] is not None else "<ADC"
        table.append((format_ohm(row["load_ohm"]), str(row["peak_current_ua"]), volts,
                      ohms, f"{row['charge_per_phase_uc']:.3f}",
                      f"{row['net_charge_per_pulse_uc']:+.4f}", f"{row['max_current_density_ma_cm2_rms']:.3f}",
                      f"{row['average_current_ua']:.1f}", "ok" if row["ok"] else "FAIL " + "; ".join(row["problems"])))
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for t in table:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))).rstrip())
    led = r["led"]
    lines += ["", f"LED: wavelength {led['wavelength_nm']}, irradiance {led['irradiance_mw_cm2']}, "
                  f"dose {led['dose_j_cm2']} (the LED channel is not built yet)",
              "PASS" if r["ok"] else "FAIL"]
    if any(row.get("peak_voltage_v", 0) is None for row in r["loads"]):
        lines.insert(-1, "<ADC: the electrode voltage is below what this board's ADC can read")
    return "\n".join(lines)

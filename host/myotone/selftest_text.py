"""The selftest report for a person: plain text (the terminal) and Markdown (`--out x.md`).
Every figure sits beside its pass limit; a figure without one says so; a value the rig or
the board could not give is "not measured" / "<ADC", never a nominal in its place."""
from __future__ import annotations

from .rig import format_ohm
from .selftest import IMPEDANCE_PCT, TIMING_FIGURES

TIMING_LABELS = {"frequency_hz": ("frequency", "Hz"), "phase_width_us": ("phase width", "µs"),
                 "interphase_gap_us": ("inter-phase gap", "µs"), "burst_on_ms": ("burst on", "ms"),
                 "burst_off_ms": ("burst off", "ms")}
LOAD_COLUMNS = (("peak_current_ua", "peak µA", "{:g}"), ("peak_voltage_v", "peak V", "{:.2f}"),
                ("impedance_ohm", "Z Ω", "{:g}"), ("charge_per_phase_uc", "µC/phase", "{:.3f}"),
                ("net_charge_per_pulse_uc", "net µC/pulse", "{:+.4f}"),
                ("max_current_density_ma_cm2_rms", "mA/cm² rms", "{:.3f}"),
                ("max_avg_power_density_mw_cm2", "mW/cm² avg", "{:.4f}"),
                ("average_current_ua", "avg µA", "{:.1f}"))


def _num(v) -> str:
    return f"{v:.6g}"


def short_limit(figure: str, lim: dict) -> str:
    """A limit in a table cell."""
    lo, hi = lim["min"], lim["max"]
    if figure == "impedance_ohm":
        return f"±{IMPEDANCE_PCT:g} %"
    if lo is None and hi is None:
        return "none"
    if lo is not None and hi is not None:
        return f"±{_num(hi)}" if lo == -hi else f"{_num(lo)}–{_num(hi)}"
    return f"≤ {_num(hi)}" if hi is not None else f"≥ {_num(lo)}"


def _verdict(ok) -> str:
    return {True: "ok", False: "FAIL", None: ""}[ok]


def _table(rows: list) -> list:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if 0 < i < len(widths) - 1 else c.ljust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def header_lines(r: dict) -> list:
    h = r["header"]
    cal = h["calibration"]
    cal_text = cal["state"] + (f" {cal['date']}" if cal.get("date") else "")
    if cal.get("note") and cal["state"] == "calibrated":
        cal_text += f" (note \"{cal['note']}\"; DAC gain {cal['dac_gain']:g}, ADC gain {cal['adc_gain']:g})"
    elif cal.get("why"):
        cal_text += f" ({cal['why']})"
    t = r["timing"]
    scope = (f"; timing from {h['scope']}" if not t["not_measured"] else f"; timing not measured: {t['not_measured']}")
    return [f"date            {h['date']} (host clock)",
            f"unit            {h['unit_id'] or 'unknown (the firmware does not say: update it)'}",
            f"board           {h['board']} ({h['mcu']}), pulse back-end {h['pulse_backend']}",
            f"firmware        {h['firmware']}, protocol {h['protocol']}",
            f"calibration     {cal_text}",
            f"rig             {h['rig']}{scope}",
            f"program         {r['program']} at {r['test_current_ua']} µA, {r['hold_s']} s per load",
            f"waveform        {r['waveform']}",
            f"electrode area  {r['electrode_area_cm2']:g} cm², duty {r['duty'] * 100:.1f} %"]


def timing_lines(r: dict) -> list:
    t = r["timing"]
    rows = [("timing", "nominal", "measured", "limit", "")]
    for f in TIMING_FIGURES:
        label, unit = TIMING_LABELS[f]
        fig = t[f]
        nom = "-" if fig["nominal"] is None else f"{fig['nominal']:g} {unit}"
        got = "not measured" if fig["measured"] is None else f"{fig['measured']:.6g} {unit}"
        if fig["nominal"] is None:
            got = "-"
        rows.append((label, nom, got, fig["rule"], _verdict(fig["ok"])))
    return _table(rows)


def load_lines(r: dict) -> list:
    head = ("load",) + tuple(c[1] for c in LOAD_COLUMNS) + ("",)
    rows = [head]
    first = next((row for row in r["loads"] if "limits" in row), None)
    if first:
        rows.append(("limit",) + tuple(short_limit(f, first["limits"][f]) for f, _, _ in LOAD_COLUMNS) + ("",))
    for row in r["loads"]:
        if "peak_current_ua" not in row:
            rows.append((format_ohm(row["load_ohm"]),) + ("-",) * len(LOAD_COLUMNS)
                        + ("FAIL " + "; ".join(row["problems"]),))
            continue
        cells = []
        for f, _, fmt in LOAD_COLUMNS:
            v = row[f]
            cells.append("<ADC" if v is None else fmt.format(v))
        rows.append((format_ohm(row["load_ohm"]),) + tuple(cells)
                    + ("ok" if row["ok"] else "FAIL " + "; ".join(row["problems"]),))
    return _table(rows)


def led_lines(r: dict) -> list:
    led = r["led"]
    rows = [("LED", "wavelength", "at 100 %", "program", "on", "dose", "")]
    for ch, c in led["channels"].items():
        if c["wavelength_nm"] is None:
            rows.append((ch, "-", "-", "-", "-", "-", c["why"]))
            continue
        known = c["dose_j_cm2"] is not None
        rows.append((ch, f"{c['wavelength_nm']} nm", f"{c['irradiance_at_100_mw_cm2']:g} mW/cm²",
                     f"{c['irradiance_mw_cm2']:g} mW/cm²" if known else "-",
                     f"{c['on_s']} s" if known else "-",
                     f"{c['dose_j_cm2']:g} J/cm²" if known else "-", "" if known else (c["why"] or "")))
    lim = led["limits"]
    out = _table(rows)
    if led["dose_j_cm2"] is not None:
        out.append(f"LED in the program: {led['on_s']} s, dose {led['dose_j_cm2']:g} J/cm² "
                   f"(limits: {lim['on_s']['rule']}; {lim['dose_j_cm2']['rule']}) "
                   + _verdict(lim["on_s"]["ok"] is not False and lim["dose_j_cm2"]["ok"] is not False))
    out.append(f"irradiance: {led['source']}; limit {lim['irradiance_mw_cm2']['rule']}")
    return out


def format_text(r: dict) -> str:
    lines = ["Myotone characterisation report (myotone selftest)"] + header_lines(r) + [""]
    lines += timing_lines(r) + [""] + load_lines(r) + [""] + led_lines(r) + [""]
    lines.append("mW/cm² avg: maximum average power density, I_rms² × R / electrode area (R: the impedance "
                 "measured, else the load connected); limit " + _power_rule(r))
    if any("peak_current_ua" in row and row["peak_voltage_v"] is None for row in r["loads"]):
        lines.append("<ADC: the electrode voltage is below what this board's ADC can read (not judged)")
    lines.append("PASS" if r["ok"] else "FAIL")
    return "\n".join(lines)


def _power_rule(r: dict) -> str:
    row = next((row for row in r["loads"] if "limits" in row), None)
    return row["limits"]["max_avg_power_density_mw_cm2"]["rule"] if row else "none"


def format_markdown(r: dict) -> str:
    """The same report as a Markdown page (`--out report.md`)."""
    def block(lines):
        return ["```"] + lines + ["```", ""]
    out = [f"# Characterisation report: {r['header']['board']} unit {r['header']['unit_id']}", ""]
    out += block(header_lines(r))
    out += ["## Timing", ""] + block(timing_lines(r))
    out += ["## Dummy loads", ""] + block(load_lines(r))
    out += ["## LED", ""] + block(led_lines(r))
    out += [f"Maximum average power density: I_rms² × R / electrode area; limit {_power_rule(r)}.", "",
            f"**{'PASS' if r['ok'] else 'FAIL'}**", ""]
    return "\n".join(out)

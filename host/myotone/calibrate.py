"""`myotone calibrate`: fit this unit's DAC code -> µA and ADC -> µA on a
reference load and store the calibration on the device (/calib.json, which
the firmware writes atomically and uses at once and at every boot).

The true current at each level is the electrode voltage over the reference
resistor (the electrode-voltage channel is the reference: use a precision
resistor), or, with a meter, what the person reads on a multimeter in
series. With the device's calibration set to identity, each `measure` gives
the nominal µA of the DAC code it drove and the ADC's µA; two least-squares
lines map them to the truth.
"""
from __future__ import annotations

import time

from .link import DeviceError, Link, LinkError
from .measuring import measure

IDENTITY = {"dac_gain": 1.0, "dac_offset_ua": 0.0, "adc_gain": 1.0, "adc_offset_ua": 0.0}
LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)          # fractions of the board limit (below it: a unit
                                            # that over-delivers must not trip over_current)
# the firmware's bounds (firmware/myotone/calib.py) -- it checks them again
GAIN = (0.85, 1.15)           # the output's
ADC_GAIN = (0.95, 1.05)       # the sense's
DAC_OFFSET_PERMILLE = 10     # |DAC offset| <= 1 % of the board's limit (half the soft start)
ADC_OFFSET_UA = 10
MAX_RESIDUAL_UA = 5.0
MIN_POINTS = 3


class CalibrationError(Exception):
    pass


def fit_line(xs: list, ys: list) -> tuple[float, float, float]:
    """Least squares y = gain x + offset; returns (gain, offset, worst residual)."""
    n = len(xs)
    if n < 2:
        raise CalibrationError("need at least two levels to fit a line")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise CalibrationError("all levels gave the same reading: is the load connected?")
    gain = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    offset = my - gain * mx
    worst = max(abs(y - (gain * x + offset)) for x, y in zip(xs, ys))
    return gain, offset, worst


def check_bounds(cal: dict, limit_ua: int) -> None:
    problems = []
    for name, (lo, hi) in (("dac_gain", GAIN), ("adc_gain", ADC_GAIN)):
        if not lo <= cal[name] <= hi:
            problems.append(f"{name} {cal[name]:.3f} (allowed {lo}..{hi})")
    for name, bound in (("dac_offset_ua", limit_ua * DAC_OFFSET_PERMILLE / 1000), ("adc_offset_ua", ADC_OFFSET_UA)):
        if abs(cal[name]) > bound:
            problems.append(f"{name} {cal[name]:+.1f} µA (allowed ±{bound})")
    if problems:
        raise CalibrationError("fit out of bounds: " + ", ".join(problems)
                               + " -- check the reference load value and the wiring")


def true_ua_from_voltage(m: dict, load_ohm: float) -> float:
    return m["mean_mv"] * 1000.0 / load_ohm


def calibrate(link: Link, load_ohm: float, rig, meter=None, levels=LEVELS, hold_s: int = 2,
              progress=None, note: str | None = None) -> dict:
    """Measure, fit, store. `meter(setpoint_ua, m)` returns the true µA (None: voltage channel)."""
    hello = link.request("hello")
    limit_ua = hello["limits"]["max_ua"]
    min_ua = hello["limits"]["min_ua"]
    if link.request("status")["state"] in ("ramp", "run", "ramp_down", "pausing", "paused"):
        raise CalibrationError("a session is running: stop it first")
    previous = link.request("calib_get")
    rig.connect_load(load_ohm)
    try:            # from here on, any failure or interruption puts `previous` back
        link.request("calib_set", **IDENTITY, note="calibrating")
        points, skipped = [], []
        for frac in levels:
            ua = max(min_ua, int(round(limit_ua * frac)))
            if progress:
                progress(f"measuring at {ua} µA")
            m = measure(link, ua, hold_s=hold_s)
            if m["mean_ua"] <= 0 or (not meter and m["mean_mv"] <= 0):
                # below what this board's ADC reads (the ESP32's reads 0 under ~140 mV)
                skipped.append({"setpoint_ua": ua, "why": "below the ADC's range"})
                continue
            true = meter(ua, m) if meter else true_ua_from_voltage(m, load_ohm)
            points.append({"setpoint_ua": ua, "code": m["code"], "nominal_ua": m["nominal_ua"],
                           "adc_ua": m["mean_ua"], "true_ua": round(true, 2), "mean_mv": m["mean_mv"]})
            if true < 0.5 * m["nominal_ua"]:
                raise CalibrationError(f"at {ua} µA only {true:.0f} µA flowed: is the {load_ohm:g} Ω load connected, "
                                       "and below the compliance voltage?")
        if len(points) < MIN_POINTS:
            raise CalibrationError(f"only {len(points)} of {len(levels)} levels were within the ADC's range: "
                                   "use a larger reference resistor (the electrode voltage must be readable), "
                                   "or --meter")
        dg, do, dres = fit_line([p["nominal_ua"] for p in points], [p["true_ua"] for p in points])
        ag, ao, ares = fit_line([p["adc_ua"] for p in points], [p["true_ua"] for p in points])
        cal = {"dac_gain": round(dg, 4), "dac_offset_ua": round(do, 2),
               "adc_gain": round(ag, 4), "adc_offset_ua": round(ao, 2)}
        check_bounds(cal, limit_ua)
        if max(dres, ares) > MAX_RESIDUAL_UA:
            raise CalibrationError(f"the readings are not on a line (residual {max(dres, ares):.1f} µA): "
                                   "a loose contact or a load that changes?")
        stamp = note if note is not None else f"R={load_ohm:g} " + time.strftime("%Y-%m-%d")
        stored = link.request("calib_set", **cal, note=stamp[:32])
        # check: one level again, now through the stored calibration
        mid = max(min_ua, int(round(limit_ua * 0.5)))
        if progress:
            progress(f"checking at {mid} µA")
        m = measure(link, mid, hold_s=hold_s)
        true = meter(mid, m) if meter else true_ua_from_voltage(m, load_ohm)
    except BaseException as exc:
        try:
            _restore(link, previous, progress)
        except CalibrationError as failed:
            raise failed from exc
        if isinstance(exc, (KeyboardInterrupt, BrokenPipeError)):
            from . import interrupt
            interrupt.tell(exc, "the measuring was stopped and the previous calibration put back")
        raise
    return {"load_ohm": load_ohm, "reference": "meter" if meter else "electrode voltage",
            "points": points, "skipped": skipped, "calibration": stored["calibration"], "previous": previous["calibration"],
            "limit_code": stored["limit_code"], "nominal_limit_code": stored["nominal_limit_code"],
            "residual_ua": round(max(dres, ares), 2),
            "check": {"setpoint_ua": mid, "true_ua": round(true, 1), "adc_ua": m["mean_ua"],
                      "error_pct": round(100.0 * (true - mid) / mid, 2)}}


STOP_WAIT_S = 10.0          # a stop ramps down over 1.5 s; the device refuses calib_set until it is off


def _restore(link: Link, previous: dict, progress=None) -> None:
    """Put the calibration back as it was before: stop the measuring session, wait until
    the output is off (calib_set is refused with `busy` until then), store the previous
    values, and check that the device has them. Runs whole even on a second Ctrl-C or a
    SIGTERM (interrupt.shielded): they take effect after it. Raises CalibrationError if
    the previous calibration could not be put back (the user must know)."""
    from . import interrupt
    from .measuring import stop_and_wait
    cal = {k: previous["calibration"][k] for k in IDENTITY}
    with interrupt.shielded():
        if progress:
            progress("putting the previous calibration back")
        stop_and_wait(link, STOP_WAIT_S)        # calib_set is refused until the output is off
        try:
            link.request("calib_set", **cal, note=previous["calibration"].get("note", "")[:32])
            now = link.request("calib_get")["calibration"]
        except (LinkError, DeviceError) as exc:
            raise CalibrationError(f"could not put the previous calibration back ({exc}): it was {_values(cal)}; "
                                   "store it again with `myotone calibrate` or calib_set") from exc
        if any(abs(now[k] - cal[k]) > 1e-9 for k in cal):
            raise CalibrationError(f"the device kept {_values(now)} instead of the previous {_values(cal)}")


def _values(cal: dict) -> str:
    return ", ".join(f"{k} {cal[k]:g}" for k in IDENTITY)


def format_text(r: dict) -> str:
    c = r["calibration"]
    lines = [f"reference: {r['load_ohm']:g} Ω, true current from the {r['reference']}",
             "  setpoint   DAC code   nominal µA   ADC µA   true µA"]
    for p in r["points"]:
        lines.append(f"  {p['setpoint_ua']:>6} µA   {p['code']:>8}   {p['nominal_ua']:>10}   "
                     f"{p['adc_ua']:>6.1f}   {p['true_ua']:>7.1f}")
    for p in r.get("skipped", []):
        lines.append(f"  {p['setpoint_ua']:>6} µA   skipped: {p['why']}")
    lines += [f"stored: DAC µA = {c['dac_gain']:.4f} × nominal {c['dac_offset_ua']:+.2f}; "
              f"ADC µA = {c['adc_gain']:.4f} × reading {c['adc_offset_ua']:+.2f}  ({c.get('note', '')})",
              f"limit code {r['limit_code']} (nominal {r['nominal_limit_code']}); worst residual {r['residual_ua']} µA",
              f"check at {r['check']['setpoint_ua']} µA: {r['check']['true_ua']} µA flowed "
              f"({r['check']['error_pct']:+.2f} %), the device measured {r['check']['adc_ua']} µA"]
    return "\n".join(lines)

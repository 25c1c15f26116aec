"""Export what the board did: bridge edges, DAC writes and electrode current, in virtual time.

* JSON (`to_json`): exact. ``current`` holds the plant's segments
  ``[t0_ns, i0_ua, i_inf_ua, tau_ns]``: from t0 the current is
  i_inf + (i0 - i_inf) e^(-(t - t0) / tau), constant when tau is 0.
* VCD (`write_vcd`, pyvcd): bridge_a / bridge_b / hv_on wires, the DAC code,
  and the current as a real signal (exponential stretches sampled at tau / 4
  over 5 tau), for any waveform viewer (GTKWave, Surfer).
* `plot_scope` (matplotlib): current and bridge state over a time window.
"""
from __future__ import annotations

import json
import math


def _roles(board: dict) -> dict:
    return {board["bridge"]["pol_a"]: "bridge_a", board["bridge"]["pol_b"]: "bridge_b",
            board["hv_enable"]: "hv_on"}


def to_json(emu, end_ns: int) -> dict:
    roles = _roles(emu.board)
    return {
        "timescale": "ns", "board": emu.board["name"], "end_ns": end_ns,
        "edges": [[t, roles.get(pin, "gpio%d" % pin), level] for t, pin, level in emu.mcu.edges],
        "dac_writes": [[t, code] for t, code in emu.mcu.dac_writes],
        "current": [[t0, i0, i_inf, tau] for t0, _, i0, i_inf, tau in emu.plant.trace.segments(end_ns)],
        "faults": [[t, name, on] for t, name, on in emu.faults.log],
    }


def write_json(emu, end_ns: int, path) -> None:
    with open(path, "w") as f:
        json.dump(to_json(emu, end_ns), f)


def current_points(trace, end_ns: int, t0_ns: int = 0):
    """(t_ns, i_ua) points of the current from t0_ns to end_ns, steps as pairs of points."""
    pts = []
    for a, b, i0, i_inf, tau in trace.segments(end_ns):
        if b < t0_ns or a > end_ns:
            continue
        a = max(a, t0_ns)
        if tau <= 0:
            pts += [(a, i0), (b, i0)]
            continue
        t = a
        step = max(1, int(tau / 4))
        while t < b and t - a <= 5 * tau:
            pts.append((t, i_inf + (i0 - i_inf) * math.exp(-(t - a) / tau)))
            t += step
        pts.append((b, i_inf + (i0 - i_inf) * math.exp(-(b - a) / tau)))
    return pts


def write_vcd(emu, end_ns: int, path) -> None:
    from vcd import VCDWriter
    roles = _roles(emu.board)
    bits = emu.board["dac"]["bits"]
    changes = []                               # (t_ns, order, var name, value)
    for t, pin, level in emu.mcu.edges:
        if pin in roles:
            changes.append((t, 0, roles[pin], level))
    for t, code in emu.mcu.dac_writes:
        changes.append((t, 1, "dac_code", code))
    last = None
    for t, i in current_points(emu.plant.trace, end_ns):
        if i != last:
            changes.append((t, 2, "current_ua", float(i)))
            last = i
    changes.sort(key=lambda c: (c[0], c[1]))
    with open(path, "w") as f:
        w = VCDWriter(f, timescale="1 ns", date="virtual time",
                      comment="myotone emulator, board %s" % emu.board["name"])
        scope = "myotone"
        var = {name: w.register_var(scope, name, "wire", size=1, init=0)
               for name in ("bridge_a", "bridge_b", "hv_on")}
        var["dac_code"] = w.register_var(scope, "dac_code", "wire", size=bits, init=0)
        var["current_ua"] = w.register_var(scope, "current_ua", "real", init=0.0)
        for t, _, name, value in changes:
            w.change(var[name], t, value)
        w.close(max(end_ns, changes[-1][0] if changes else 0))


# the scope's time unit: the largest whose window spans at least 2 of it
_TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns"))
TRIP_COLOUR = "crimson"


def time_unit(span_ns: float) -> tuple[float, str]:
    """(ns per unit, its name) for a window of span_ns."""
    for ns, name in _TIME_UNITS:
        if span_ns >= 2 * ns:
            return ns, name
    return _TIME_UNITS[-1]


def scope_window(end_ns: int, t0_s: float = 0.0, t1_s: float | None = None) -> tuple[int, int]:
    """(t0_ns, t1_ns) inside the run; ValueError, in the options' terms, for a window that is not."""
    if t0_s < 0:
        raise ValueError(f"--from-s {t0_s:g} is before the start (0 s)")
    if t1_s is not None and t1_s <= t0_s:
        raise ValueError(f"--to-s {t1_s:g} must be after --from-s {t0_s:g}")
    t0_ns = int(round(t0_s * 1e9))
    t1_ns = end_ns if t1_s is None else min(end_ns, int(round(t1_s * 1e9)))
    if t0_ns >= end_ns:
        raise ValueError(f"--from-s {t0_s:g} is not before the scenario's end ({end_ns / 1e9:g} s)")
    if t1_ns - t0_ns < 1000:
        raise ValueError("the window is shorter than 1 µs (the trace's resolution is 1 ns)")
    return t0_ns, t1_ns


def scope_figure(emu, end_ns: int, t0_s: float = 0.0, t1_s: float | None = None, report: dict | None = None,
                 title: str = ""):
    """The electrode current and the bridge / rail state over a window, the injected faults and
    the firmware's trips marked (a matplotlib Figure). `report`: the scenario's (its `trips`
    and fault events); artists carry a gid: "current", "bridge", "rail", "inject", "trip"."""
    from ..plot import pyplot
    pyplot()                                    # Agg, or PlotUnavailable
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter
    t0_ns, t1_ns = scope_window(end_ns, t0_s, t1_s)
    unit_ns, unit = time_unit(t1_ns - t0_ns)

    def x(t_ns):
        return (t_ns - t0_ns) / unit_ns

    pts = current_points(emu.plant.trace, t1_ns, t0_ns)
    roles = _roles(emu.board)
    level = {"bridge_a": 0, "bridge_b": 0, "hv_on": 0}
    bridge = [(t0_ns, 0, 0)]
    for t, pin, lv in emu.mcu.edges:
        if pin in roles:
            level[roles[pin]] = lv
            state = level["bridge_a"] - level["bridge_b"] if level["hv_on"] else 0
            if t0_ns <= t <= t1_ns:
                bridge.append((t, state, level["hv_on"]))
            elif t < t0_ns:
                bridge[0] = (t0_ns, state, level["hv_on"])
    bridge.append((t1_ns, bridge[-1][1], bridge[-1][2]))

    fig = Figure(figsize=(11, 6), layout="constrained")
    ax_i, ax_b = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    ax_i.plot([x(t) for t, _ in pts], [i for _, i in pts], lw=0.9, color="tab:blue", gid="current")
    ax_i.axhline(0, color="0.6", lw=0.5)
    ax_i.set_ylabel("electrode current (µA)")
    lo, hi = ax_i.get_ylim()
    span = max(hi - lo, 1.0)
    ax_i.set_ylim(lo - 0.05 * span, hi + 0.2 * span)        # room for the marks' labels
    bx = [x(t) for t, _, _ in bridge]
    ax_b.step(bx, [s for _, s, _ in bridge], where="post", lw=1, color="tab:orange", gid="bridge")
    ax_b.step(bx, [2 + 0.8 * h for _, _, h in bridge], where="post", lw=1, color="tab:green", gid="rail")
    ax_b.set_yticks([-1, 0, 1, 2, 2.8], ["B (−)", "off", "A (+)", "rail off", "rail on"])
    ax_b.set_ylim(-1.5, 3.3)
    ax_b.set_ylabel("bridge, HV rail")
    ax_b.set_xlim(0 if t0_ns else x(t0_ns), x(t1_ns))
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    ax_b.xaxis.set_major_formatter(fmt)
    ax_b.set_xlabel(f"time after {t0_ns / 1e9:g} s ({unit})" if t0_ns else f"virtual time ({unit})")
    for ax in (ax_i, ax_b):
        ax.grid(True, alpha=0.3)

    def mark(t_ns, text, colour, gid, ls="--", after=False):
        """A line on both axes, its label on the current's: before it, or `after` it."""
        for ax in (ax_i, ax_b):
            ax.axvline(x(t_ns), color=colour, lw=1.1, ls=ls, gid=gid)
        ax_i.annotate(text, xy=(x(t_ns), 1), xycoords=("data", "axes fraction"), xytext=(3 if after else -3, -4),
                      textcoords="offset points", rotation=90, ha="left" if after else "right", va="top",
                      fontsize=8, color=colour, gid=gid,
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})

    for t, name, on in emu.faults.log:
        if t0_ns <= t <= t1_ns:
            mark(t, ("injected: " if on else "cleared: ") + name, "tab:red" if on else "0.4", "inject", ":")
    report = report or {}
    tripped = set()
    for trip in report.get("trips", []):
        off = trip.get("output_off_at_s")
        if off is None:
            continue
        off_ns, at_ns = int(round(off * 1e9)), int(round(trip["fault_at_s"] * 1e9))
        tripped.add(trip["reason"])
        if t0_ns <= off_ns <= t1_ns:
            ms = trip["latency_ms"]
            after = f"{ms:.3f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
            mark(off_ns, f"trip: {trip['reason']}, output off {after} after the fault", TRIP_COLOUR, "trip", "-",
                 after=True)
            for ax in (ax_i, ax_b):
                ax.axvspan(x(max(at_ns, t0_ns)), x(off_ns), color=TRIP_COLOUR, alpha=0.12, lw=0, gid="trip")
    for ev in report.get("events", []):        # faults the firmware latched that no injection explains
        t = int(round(ev.get("t_s", -1) * 1e9))
        if ev.get("ev") == "fault" and ev.get("reason") not in tripped and t0_ns <= t <= t1_ns:
            mark(t, f"fault: {ev['reason']}", TRIP_COLOUR, "trip", "-", after=True)
    ax_i.set_title(title or "%s: electrode current and bridge" % emu.board["name"])
    return fig


def plot_scope(emu, end_ns: int, path, t0_s: float = 0.0, t1_s: float | None = None, report: dict | None = None,
               title: str = "") -> None:
    scope_figure(emu, end_ns, t0_s, t1_s, report, title).savefig(path, dpi=120)

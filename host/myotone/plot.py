"""`myotone plot`: a session log as a figure -- current, impedance and LED over
one time axis; pauses shaded, phases banded and named, faults marked on all
three; a title that says which unit, board and firmware recorded it, and when.

`figure(rec)` builds the matplotlib Figure (tests inspect it); `plot(rec, out)`
saves it. Artists a reader (or a test) looks for carry a gid: "measured",
"setpoint", "pause", "phase", "fault"."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .logs import fault_events, when

CLOCK_VALID_FROM_S = 1767225600      # firmware clock.py: a device clock before 2026 was never set
HEADROOM = 1.25                      # y-limits above the highest value: no line runs on the frame ...
FOOTROOM = 0.03                      # ... nor at zero (below it, as a share of the top) ...
END_ROOM = 0.02                      # ... nor at the end (after it, as a share of the length)
NO_CURRENT_TOP_UA = 100              # the current axis of an LED-only session: a scale, not 0..1 µA
MINUTES_FROM_S = 180                 # longer sessions get a min:s time axis
FAULT_COLOUR = "crimson"


class PlotUnavailable(Exception):
    """matplotlib is an optional extra (`pip install 'myotone[plot]'`)."""


def pyplot():
    """matplotlib's pyplot on the Agg back-end (no display), or a one-line reason."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("plotting needs matplotlib, an optional extra: pip install 'myotone[plot]' "
                              "(in this checkout: .venv/bin/pip install -e '.[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@dataclass
class Timeline:
    """What happened when, in seconds since the session's start (the samples' time)."""
    end_s: float
    setpoints: list = field(default_factory=list)   # [(t_s, ua)], stepping
    phases: list = field(default_factory=list)      # [(t0_s, t1_s, number, label)]
    pauses: list = field(default_factory=list)      # [(t0_s, t1_s)]
    faults: list = field(default_factory=list)      # [(t_s, reason)]
    stop_s: float | None = None                     # the ramp-down began (stop, or the program's end)


def timeline(rec: dict) -> Timeline:
    """The record's marks (firmware that writes them), or what an older record allows: a
    constant setpoint and the faults at its end."""
    samples = rec.get("samples") or []
    marks = [m for m in rec.get("marks") or [] if isinstance(m, dict) and isinstance(m.get("t_ms"), (int, float))]
    end_s = max([s.get("t_s", 0) for s in samples] + [m["t_ms"] / 1000 for m in marks] + [0])
    if isinstance(rec.get("start_s"), (int, float)) and isinstance(rec.get("end_s"), (int, float)):
        end_s = max(end_s, min(rec["end_s"] - rec["start_s"], end_s + 2))    # end_s: whole seconds
    tl = Timeline(end_s=end_s or 1)
    tl.faults = [(tl.end_s if t is None else t, reason) for t, reason in fault_events(rec)]
    if not marks:
        if rec.get("setpoint_ua"):
            tl.setpoints = [(0, rec["setpoint_ua"])]
        return tl
    paused_at = None
    for m in marks:
        t, kind = m["t_ms"] / 1000, m.get("mark")
        if kind == "setpoint":
            tl.setpoints.append((t, m.get("ua", 0)))
        elif kind == "phase":
            if tl.phases:
                tl.phases[-1] = tl.phases[-1][:1] + (t,) + tl.phases[-1][2:]
            tl.phases.append((t, tl.end_s, m.get("phase", len(tl.phases) + 1), m.get("label") or ""))
        elif kind == "pause":
            paused_at = t
        elif kind in ("resume", "stop", "end") and paused_at is not None:
            tl.pauses.append((paused_at, t))
            paused_at = None
        if kind == "stop" and tl.stop_s is None:
            tl.stop_s = t
    if paused_at is not None:
        tl.pauses.append((paused_at, tl.end_s))
    return tl


def _sample_period_s(t: list) -> int:
    """The samples' spacing (1 s, or 2, 4 s once a long session was thinned)."""
    gaps = sorted(b - a for a, b in zip(t, t[1:]) if b > a)
    return gaps[len(gaps) // 2] if gaps else 1


def title_lines(rec: dict) -> tuple[str, str]:
    """(what and when, who recorded it): the program, the log number, the date; the board,
    the firmware and the unit."""
    start = rec.get("start_s")
    date = when(start, zone=True)
    if isinstance(start, (int, float)) and start < CLOCK_VALID_FROM_S:
        date += " (device clock not set)"
    first = f"Session #{rec.get('n', '?')}: {rec.get('program', '?')}, {date}"
    second = (f"board {rec.get('board') or 'unknown'} · firmware {rec.get('firmware') or 'unknown'} · "
              f"unit {rec.get('unit_id') or 'unknown'}")
    return first, second


def _facts(rec: dict) -> str:
    facts = []
    if rec.get("charge_uc") is not None:
        facts.append(f"charge {rec['charge_uc']:g} µC")
    if rec.get("avg_ua") is not None:
        facts.append(f"mean current {rec['avg_ua']:g} µA")
    if rec.get("led_dose_j_cm2") is not None:
        facts.append(f"LED dose {rec['led_dose_j_cm2']:g} J/cm²")
    if rec.get("marks_dropped"):
        facts.append(f"{rec['marks_dropped']} late marks not kept")
    return " · ".join(facts)


def _time_axis(ax, end_s: float) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator
    ax.set_xlim(0, end_s * (1 + END_ROOM))
    if end_s >= MINUTES_FROM_S:
        step = 60 if end_s <= 900 else 120
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.xaxis.set_minor_locator(MultipleLocator(step / 4))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v // 60)}:{int(v % 60):02d}"))
        ax.set_xlabel("time since the start (min:s)")
    else:
        ax.set_xlabel("time since the start (s)")


def _ylim(ax, top: float) -> None:
    ax.set_ylim(-top * FOOTROOM * HEADROOM, top * HEADROOM)


def figure(rec: dict):
    """The session's figure (a matplotlib Figure, not shown nor saved)."""
    pyplot()                                    # Agg, or PlotUnavailable
    from matplotlib.figure import Figure

    samples = rec.get("samples") or []
    t = [s.get("t_s", i) for i, s in enumerate(samples)]
    ua = [s.get("ua") for s in samples]
    ohm = [s.get("ohm") for s in samples]
    led = [s.get("led_pct") for s in samples]
    tl = timeline(rec)
    period = _sample_period_s(t)
    # each sample is the mean over the window that ends at its time: drawn as a step over it
    tx = [max(0, t[0] - period)] + t if t else []

    def steps(values):
        return [values[0]] + values if values else []

    fig = Figure(figsize=(11, 8), layout="constrained")
    ax_i, ax_z, ax_led = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]})
    axes = (ax_i, ax_z, ax_led)

    # current: the setpoint (the pulses' amplitude) and the logged time average
    if any(ua for _, ua in tl.setpoints):      # an LED-only session has no current to set
        sx = [p[0] for p in tl.setpoints] + [tl.stop_s if tl.stop_s is not None else tl.end_s]
        sy = [p[1] for p in tl.setpoints] + [tl.setpoints[-1][1]]
        ax_i.plot(sx, sy, drawstyle="steps-post", color="0.25", ls="--", lw=1.2,
                  label="setpoint: the pulses' amplitude", gid="setpoint")
    ax_i.plot(tx, steps(ua), drawstyle="steps-pre", color="tab:blue", lw=1.5, gid="measured",
              label=f"measured: mean |current| per {period} s sample (pulses and the gaps between them)")
    top_ua = max([v for v in ua if v is not None] + [p[1] for p in tl.setpoints] + [0])
    if not top_ua:
        ax_i.text(0.5, 0.5, "no current in this session", transform=ax_i.transAxes,
                  ha="center", va="center", color="grey")
    _ylim(ax_i, top_ua or NO_CURRENT_TOP_UA)
    ax_i.set_ylabel("current (µA)")

    # impedance: a mean over each sample's settled on-samples; 0 = no current flowed
    z_kohm = [z / 1000 if z else None for z in ohm]
    z_known = [z for z in z_kohm if z is not None]
    if z_known:
        ax_z.plot(tx, steps(z_kohm), drawstyle="steps-pre", color="tab:green", lw=1.5, gid="impedance")
        _ylim(ax_z, max(z_known))
    else:
        ax_z.text(0.5, 0.5, "no impedance (no current flowed)", transform=ax_z.transAxes,
                  ha="center", va="center", color="grey")
        ax_z.set_ylim(0, 1)
    ax_z.set_ylabel("impedance (kΩ)")

    if any(v is not None for v in led):
        ax_led.plot(tx, steps(led), drawstyle="steps-pre", color="tab:orange", lw=1.5, gid="led")
    else:
        ax_led.text(0.5, 0.5, "no LED data", transform=ax_led.transAxes, ha="center", va="center", color="grey")
    _ylim(ax_led, 100)
    ax_led.set_yticks([0, 50, 100])
    ax_led.set_ylabel("LED (%)")
    _time_axis(ax_led, tl.end_s)
    for ax in axes:
        ax.grid(True, alpha=0.3)

    # phases: alternate bands, a line where each begins, its number and label on top
    if len(tl.phases) > 1:
        for k, (a, b, number, label) in enumerate(tl.phases):
            for ax in axes:
                if k % 2:
                    ax.axvspan(a, b, color="tab:purple", alpha=0.07, lw=0, gid="phase")
                if k:
                    ax.axvline(a, color="tab:purple", lw=0.9, ls=":", gid="phase")
            # a short phase's name would run into the next one's: those go on two rows
            row = k % 2 if min(b - a for a, b, _, _ in tl.phases) < tl.end_s / 8 else 0
            ax_i.annotate(f"{number} {label}".strip(), xy=(a, 1), xycoords=("data", "axes fraction"),
                          xytext=(3, -3 - 12 * row), textcoords="offset points", ha="left", va="top",
                          fontsize=8, color="indigo", gid="phase")
    for a, b in tl.pauses:
        for ax in axes:
            ax.axvspan(a, b, facecolor="0.55", alpha=0.3, hatch="//", edgecolor="0.45", lw=0, gid="pause")
        ax_i.annotate("paused", xy=((a + b) / 2, 0.5), xycoords=("data", "axes fraction"),
                      ha="center", va="center", fontsize=9, color="0.2", rotation=90 if b - a < tl.end_s / 15 else 0,
                      gid="pause")
    for k, (x, reason) in enumerate(tl.faults):
        for ax in axes:
            ax.axvline(x, color=FAULT_COLOUR, lw=1.6, ls="--", gid="fault")
        ax_i.annotate(f"fault: {reason}", xy=(x, 1), xycoords=("data", "axes fraction"),
                      xytext=(-4, -16 - 15 * k), textcoords="offset points", ha="right", va="top",
                      color=FAULT_COLOUR, fontsize=9, fontweight="bold", gid="fault",
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})

    first, second = title_lines(rec)
    fig.suptitle(f"{first}\n{second}", fontsize=12)
    ax_i.set_title(_facts(rec), fontsize=9, color="dimgrey")
    # the legend under the plots: over the data it hides some
    fig.legend(*ax_i.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8.5,
               frameon=False)
    return fig


def plot(rec: dict, out: Path) -> Path:
    """Save the session's figure (PNG, or PDF / SVG by the name's suffix)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure(rec).savefig(out, dpi=110)
    return out

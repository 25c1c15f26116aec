"""`myotone plot`: a session log as a PNG -- current, impedance and LED over
time on one time axis, faults marked on all three."""
from __future__ import annotations

from pathlib import Path

from .logs import fault_events, when


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


def plot(rec: dict, out: Path, title: str | None = None) -> Path:
    plt = pyplot()

    samples = rec["samples"]
    t = [s.get("t_s", i) for i, s in enumerate(samples)]
    ua = [s.get("ua") for s in samples]
    ohm = [s.get("ohm") for s in samples]
    led = [s.get("led_pct") for s in samples]

    fig, (ax_i, ax_z, ax_led) = plt.subplots(3, 1, sharex=True, figsize=(10, 7.5),
                                             gridspec_kw={"height_ratios": [3, 2, 1.4]})
    ax_i.plot(t, ua, color="tab:blue", lw=1.4, label="measured current")
    if rec.get("setpoint_ua"):
        ax_i.axhline(rec["setpoint_ua"], color="tab:blue", ls=":", lw=1, label=f"setpoint {rec['setpoint_ua']} µA")
    ax_i.set_ylabel("current (µA)")
    top = max([v for v in ua if v is not None] + [rec.get("setpoint_ua") or 0, 1])
    ax_i.set_ylim(0, top * 1.3)          # headroom for the fault labels
    ax_z.plot(t, [z / 1000 if z else None for z in ohm], color="tab:green", lw=1.4)
    ax_z.set_ylabel("impedance (kΩ)")
    ax_z.set_ylim(bottom=0)
    if any(v is not None for v in led):
        ax_led.plot(t, led, color="tab:orange", lw=1.4)
    else:
        ax_led.text(0.5, 0.5, "no LED data", transform=ax_led.transAxes, ha="center", va="center", color="grey")
    ax_led.set_ylabel("LED (%)")
    ax_led.set_ylim(0, 105)
    ax_led.set_xlabel("time in session (s)")
    for ax in (ax_i, ax_z, ax_led):
        ax.grid(True, alpha=0.3)

    end_t = t[-1] if t else 0
    for k, (ft, reason) in enumerate(fault_events(rec)):
        x = end_t if ft is None else ft
        for ax in (ax_i, ax_z, ax_led):
            ax.axvline(x, color="crimson", lw=1.6, ls="--")
        ax_i.annotate(f"fault: {reason}", xy=(x, 1), xycoords=("data", "axes fraction"),
                      xytext=(-4, -14 - 15 * k), textcoords="offset points", ha="right", color="crimson",
                      fontsize=9, fontweight="bold", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax_i.legend(loc="lower center", fontsize=8)

    facts = [f"program {rec.get('program', '?')}", when(rec.get("start_s"))]
    if rec.get("charge_uc") is not None:
        facts.append(f"charge {rec['charge_uc']:g} µC")
    if rec.get("avg_ua") is not None:
        facts.append(f"mean {rec['avg_ua']:g} µA")
    if rec.get("led_dose_j_cm2") is not None:
        facts.append(f"LED dose {rec['led_dose_j_cm2']:g} J/cm²")
    fig.suptitle(title or f"Myotone session log #{rec.get('n', '?')}", fontsize=13)
    ax_i.set_title(" · ".join(facts), fontsize=9, color="dimgrey")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

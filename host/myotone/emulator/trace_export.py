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


def plot_scope(emu, end_ns: int, path, t0_s: float = 0.0, t1_s: float | None = None, title: str = "") -> None:
    from ..plot import pyplot
    plt = pyplot()
    t0_ns = int(t0_s * 1e9)
    t1_ns = end_ns if t1_s is None else min(end_ns, int(t1_s * 1e9))
    pts = [(t, i) for t, i in current_points(emu.plant.trace, t1_ns, t0_ns)]
    roles = _roles(emu.board)
    level = {"bridge_a": 0, "bridge_b": 0, "hv_on": 0}
    bridge = [(t0_ns, 0, 0)]
    for t, pin, lv in emu.mcu.edges:
        if pin in roles:
            level[roles[pin]] = lv
            if t0_ns <= t <= t1_ns:
                state = level["bridge_a"] - level["bridge_b"] if level["hv_on"] else 0
                bridge.append((t, state, level["hv_on"]))
            elif t < t0_ns:
                bridge[0] = (t0_ns, level["bridge_a"] - level["bridge_b"] if level["hv_on"] else 0, level["hv_on"])
    bridge.append((t1_ns, bridge[-1][1], bridge[-1][2]))
    fig, (ax_i, ax_b) = plt.subplots(2, 1, sharex=True, figsize=(11, 5.5),
                                     gridspec_kw={"height_ratios": [3, 1]})
    ax_i.plot([t / 1e9 for t, _ in pts], [i for _, i in pts], lw=0.8, color="tab:blue")
    ax_i.set_ylabel("electrode current (µA)")
    ax_i.axhline(0, color="0.6", lw=0.5)
    ax_b.step([t / 1e9 for t, _, _ in bridge], [s for _, s, _ in bridge], where="post", lw=0.8,
              color="tab:orange", label="bridge (+1 A, -1 B)")
    ax_b.step([t / 1e9 for t, _, _ in bridge], [h * 1.2 for _, _, h in bridge], where="post", lw=0.8,
              color="tab:green", label="HV rail", alpha=0.6)
    ax_b.set_yticks([-1, 0, 1])
    ax_b.set_xlabel("virtual time (s)")
    ax_b.legend(loc="upper right", fontsize=7)
    for t, name, on in emu.faults.log:
        if t0_ns <= t <= t1_ns:
            for ax in (ax_i, ax_b):
                ax.axvline(t / 1e9, color="red" if on else "0.4", lw=0.8, ls="--")
            ax_i.annotate(("" if on else "clear ") + name, (t / 1e9, ax_i.get_ylim()[1]), fontsize=7,
                          rotation=90, va="top", ha="right", color="red" if on else "0.3")
    ax_i.set_title(title or "%s: electrode current and bridge" % emu.board["name"])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

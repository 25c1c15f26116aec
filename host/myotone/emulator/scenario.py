"""Scenario runner: a scripted session on an emulated board, in lockstep, and its report.

A scenario (docs/emulator.md) names a board, a seed, a load, an end time
and timed steps: requests the host sends, faults switched on and off, load
changes. `run()` plays it as fast as the CPU allows and reports what the
device said (with virtual timestamps), what the plant did (the truth) and,
per injected fault that cut the output, how long the cut took.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .board import Emulator, EmulatorError
from .faults import FAULTS
from .mcu import BROWNOUT_RESET, HARD_RESET, PWRON_RESET, WDT_RESET
from .plant import CONTACTS, Load
from .trace import ON_UA

_KEYS = {"board", "seed", "until_s", "load", "steps", "heartbeat_s", "name", "description"}
_LOAD_KEYS = {"r_series_ohm", "r_parallel_ohm", "c_parallel_nf", "contact"}
_CAUSES = {WDT_RESET: "watchdog", BROWNOUT_RESET: "brownout", HARD_RESET: "hard", PWRON_RESET: "power_on"}


class ScenarioError(ValueError):
    pass


def load(path_or_dict) -> dict:
    """Read and check a scenario (a path to JSON, or the dict itself)."""
    if isinstance(path_or_dict, dict):
        sc = path_or_dict
    else:
        try:
            sc = json.loads(Path(path_or_dict).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ScenarioError(f"cannot read scenario {path_or_dict}: {exc}") from None
    if not isinstance(sc, dict):
        raise ScenarioError("a scenario is a JSON object")
    unknown = set(sc) - _KEYS
    if unknown:
        raise ScenarioError(f"unknown scenario keys: {', '.join(sorted(unknown))}")
    until = sc.get("until_s")
    if not isinstance(until, (int, float)) or not 0 < until <= 7200:
        raise ScenarioError("until_s must be a number of seconds, 0 < until_s <= 7200")
    _check_load(sc.get("load", {}), "load")
    hb = sc.get("heartbeat_s")
    if hb is not None and (not isinstance(hb, (int, float)) or hb <= 0):
        raise ScenarioError("heartbeat_s must be a positive number of seconds")
    steps = sc.get("steps", [])
    if not isinstance(steps, list):
        raise ScenarioError("steps must be a list")
    for k, st in enumerate(steps):
        where = f"steps[{k}]"
        if not isinstance(st, dict) or not isinstance(st.get("at_s"), (int, float)) or st["at_s"] < 0:
            raise ScenarioError(f"{where}: needs at_s >= 0")
        if st["at_s"] > until:
            raise ScenarioError(f"{where}: at_s is after until_s")
        kinds = [key for key in ("send", "fault", "clear", "load", "write") if key in st]
        if len(kinds) != 1:
            raise ScenarioError(f"{where}: give exactly one of send, fault, clear, load, write")
        extra = set(st) - {"at_s", kinds[0], "in_flash_write"}
        if extra or ("in_flash_write" in st and st.get("fault") != "power_loss"):
            raise ScenarioError(f"{where}: unexpected keys {', '.join(sorted(extra or {'in_flash_write'}))}")
        if kinds[0] == "send" and not (isinstance(st["send"], dict) and isinstance(st["send"].get("cmd"), str)):
            raise ScenarioError(f"{where}: send must be a request object with a cmd")
        if kinds[0] in ("fault", "clear") and st[kinds[0]] not in FAULTS:
            raise ScenarioError(f"{where}: unknown fault {st[kinds[0]]!r} (known: {', '.join(FAULTS)})")
        if kinds[0] == "load":
            _check_load(st["load"], where + ".load")
        if kinds[0] == "write" and not isinstance(st["write"], str):
            raise ScenarioError(f"{where}: write is a string of console bytes")
    return sc


def _check_load(ld, where):
    if not isinstance(ld, dict) or set(ld) - _LOAD_KEYS:
        raise ScenarioError(f"{where}: keys are {', '.join(sorted(_LOAD_KEYS))}")
    for k, v in ld.items():
        if k == "contact":
            if v not in CONTACTS:
                raise ScenarioError(f"{where}.contact must be one of {', '.join(CONTACTS)}")
        elif not isinstance(v, (int, float)) or v < 0:
            raise ScenarioError(f"{where}.{k} must be a number >= 0")


@dataclass
class Result:
    report: dict
    emu: Emulator           # stopped; its plant, trace and MCU records remain readable
    end_ns: int


class _Listener:
    """Device output as timestamped lines (the time its newline was written)."""

    def __init__(self, emu):
        self.emu = emu
        self.buf = b""
        self.lines: list[tuple[int, str]] = []

    def __call__(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append((self.emu.clock.now_ns, line.rstrip(b"\r").decode("utf-8", "replace")))


def run(scenario, *, flash_path=None) -> Result:
    sc = load(scenario)
    try:
        emu = Emulator(sc.get("board", "pico-mcp4725"), seed=int(sc.get("seed", 1)),
                       load=Load(**sc.get("load", {})), flash_path=flash_path)
    except EmulatorError as exc:
        raise ScenarioError(str(exc)) from None
    listener, tap = _Listener(emu), _Listener(emu)
    emu.console.listeners.append(listener)      # what the host hears
    emu.console.taps.append(tap)                # what the firmware said (trip evidence)
    until_ns = int(round(sc["until_s"] * 1e9))
    plan = [(int(round(st["at_s"] * 1e9)), k, st) for k, st in enumerate(sc.get("steps", []))]
    if sc.get("heartbeat_s"):
        period = int(round(sc["heartbeat_s"] * 1e9))
        plan += [(t, 1 << 30, {"heartbeat": True}) for t in range(period, until_ns, period)]
    plan.sort(key=lambda p: (p[0], p[1]))
    sent, next_id = [], [1]
    try:
        emu.start()
        for t_ns, _, st in plan:
            emu.run_until(t_ns / 1e9)
            emu.read()
            _apply(emu, st, sent, next_id)
        emu.run_until(until_ns / 1e9)
        emu.read()
    finally:
        emu.close()
    emu.plant.trace.close(until_ns)
    said = [m | {"t_s": t / 1e9} for t, m in _json_lines(tap.lines) if m and m.get("ev") == "fault"]
    return Result(_report(sc, emu, listener.lines, sent, until_ns, said), emu, until_ns)


def _apply(emu, st, sent, next_id):
    t_s = emu.clock.now_ns / 1e9
    if "heartbeat" in st:
        if emu.host_can_connect():       # a host that is gone sends nothing
            emu.send({"id": "hb", "cmd": "heartbeat"})
    elif "send" in st:
        msg = dict(st["send"])
        if "id" not in msg:
            msg["id"] = next_id[0]
            next_id[0] += 1
        sent.append({"t_s": t_s, **msg})
        emu.send(msg)
    elif "write" in st:
        emu.write(st["write"].encode("utf-8"))
    elif "fault" in st:
        emu.set_fault(st["fault"], True, **({"in_flash_write": True} if st.get("in_flash_write") else {}))
    elif "clear" in st:
        emu.set_fault(st["clear"], False)
    elif "load" in st:
        emu.set_load(**st["load"])


def _json_lines(lines):
    """(t_ns, object or None) per line."""
    for t_ns, text in lines:
        msg = None
        if text.startswith("{"):
            try:
                msg = json.loads(text)
            except json.JSONDecodeError:
                pass
        yield t_ns, msg if isinstance(msg, dict) else None


def _report(sc, emu, lines, sent, until_ns, said) -> dict:
    replies, events, console = [], [], []
    for (t_ns, msg), (_, text) in zip(_json_lines(lines), lines):
        if isinstance(msg, dict) and "ev" in msg:
            events.append({"t_s": t_ns / 1e9, **msg})
        elif isinstance(msg, dict) and "id" in msg:
            if msg["id"] != "hb":
                replies.append({"t_s": t_ns / 1e9, **msg})
        elif text.strip():
            console.append({"t_s": t_ns / 1e9, "text": text})
    tr = emu.plant.trace
    return {
        "board": emu.board["name"], "seed": emu.seed, "until_s": until_ns / 1e9,
        "sent": sent, "replies": replies, "events": events, "console": console,
        "trace": {"max_abs_ua": round(tr.max_abs_ua, 3), "net_charge_uc": tr.net_charge_nc / 1000,
                  "moved_charge_uc": tr.abs_charge_nc / 1000, "output_on_s": tr.output_on_ns / 1e9,
                  "shoot_through": tr.shoot_through},
        "faults": _faults(emu),
        "trips": trips(emu, said),
    }


def _faults(emu) -> list:
    out, open_ = [], {}
    for t_ns, name, on in emu.faults.log:
        if on:
            open_[name] = len(out)
            out.append({"fault": name, "at_s": t_ns / 1e9, "cleared_at_s": None})
        elif name in open_:
            out[open_.pop(name)]["cleared_at_s"] = t_ns / 1e9
    return out


def trips(emu, events) -> list:
    """One per injected fault that cut the output: the evidence (a fault event the firmware
    wrote, heard by the host or not; a reset; a power cut) that follows it before the next
    injection, and when the plant's current went below ON_UA for good around that evidence."""
    injections = [(t, name) for t, name, on in emu.faults.log if on]
    evidence = [(int(round(e["t_s"] * 1e9)), e["reason"]) for e in events if e.get("ev") == "fault"]
    evidence += [(t, _CAUSES.get(cause, "reset")) for t, cause in emu.mcu.resets]
    evidence += [(t, "power_loss") for t in emu.faults.cuts]
    evidence.sort()
    tr = emu.plant.trace
    out = []
    for k, (t_f, name) in enumerate(injections):
        t_next = injections[k + 1][0] if k + 1 < len(injections) else 1 << 62
        hit = next(((t, why) for t, why in evidence if t_f <= t < t_next), None)
        if hit is None:
            continue
        t_ev, reason = hit
        off = tr.off_since(t_ev)
        off_at = None if off is None else max(off, t_f)
        out.append({"fault": name, "reason": reason, "fault_at_s": t_f / 1e9,
                    "output_off_at_s": None if off_at is None else off_at / 1e9,
                    "latency_ms": None if off_at is None else (off_at - t_f) / 1e6,
                    "off_below_ua": ON_UA})
    return out


def summary(report: dict) -> str:
    """The report for a person."""
    tr = report["trace"]
    lines = [f"{report['board']} seed {report['seed']}, {report['until_s']:g} s virtual",
             f"plant: peak {tr['max_abs_ua']:.1f} uA, net charge {tr['net_charge_uc']:.4f} uC "
             f"of {tr['moved_charge_uc']:.2f} uC moved, output on {tr['output_on_s']:.3f} s"]
    states = [f"{e['t_s']:.3f} s {e['state']}" for e in report["events"] if e.get("ev") == "state"]
    if states:
        lines.append("states: " + ", ".join(states))
    for r in report["replies"]:
        if not r.get("ok", True):
            lines.append(f"{r['t_s']:.3f} s refused: {r.get('error')}: {r.get('message')}")
    for f in report["faults"]:
        cleared = "" if f["cleared_at_s"] is None else f", cleared at {f['cleared_at_s']:g} s"
        lines.append(f"fault {f['fault']} at {f['at_s']:g} s{cleared}")
    for t in report["trips"]:
        if t["latency_ms"] is None:
            lines.append(f"TRIP {t['reason']} after {t['fault']}: OUTPUT STILL ON")
        else:
            lines.append(f"trip {t['reason']} after {t['fault']}: output off at {t['output_off_at_s']:.6f} s, "
                         f"{t['latency_ms']:.3f} ms after the fault")
    return "\n".join(lines)

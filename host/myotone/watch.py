"""Follow a running session: telemetry, state changes and faults, with the
host heartbeat of SAFETY.md for host-driven sessions."""
from __future__ import annotations

from dataclasses import dataclass, field

from .link import Link

HEARTBEAT_EVERY_S = 1.0


@dataclass
class Summary:
    final_state: str = "unknown"
    fault: str | None = None
    telemetry: list = field(default_factory=list)

    @property
    def run_samples(self) -> list:
        """Telemetry whose whole averaging window was at the setpoint."""
        return [t for prev, t in zip(self.telemetry, self.telemetry[1:])
                if t.get("state") == "run" and prev.get("state") == "run"]

    @property
    def blinded(self) -> bool:
        """A blinded study arm: the device does not say what current flowed."""
        return any(t.get("blinded") for t in self.telemetry)

    @property
    def microcurrent(self) -> bool | None:
        """Was microcurrent set or measured in any telemetry seen? (False: an LED-only
        session; None: a blinded study arm, which does not say.)"""
        if self.blinded:
            return None
        return any(not _no_current(t) for t in self.telemetry)

    def as_dict(self) -> dict:
        run = self.run_samples
        current = self.microcurrent
        measured = [t["measured_ua"] for t in run] if current else []
        ohms = [t["impedance_ohm"] for t in run if t.get("impedance_ohm")]
        return {
            "final_state": self.final_state,
            "fault": self.fault,
            "blinded": self.blinded,
            "microcurrent": current,
            "run_s": len(run),
            "mean_measured_ua": round(sum(measured) / len(measured), 1) if measured else None,
            "max_measured_ua": max((t["measured_ua"] for t in self.telemetry), default=None) if current else None,
            "mean_impedance_ohm": round(sum(ohms) / len(ohms)) if ohms else None,
            "led_dose_j_cm2": self.telemetry[-1].get("led_dose_j_cm2") if self.telemetry else None,
        }

    def text(self) -> str:
        """The one-line summary: an LED-only session says so (not "0 µA")."""
        s = self.as_dict()
        line = f"session {s['final_state']}" + (f" (fault: {s['fault']})" if s["fault"] else "")
        if s["blinded"]:
            line += ", blinded study arm (its current is not shown)"
        elif not s["microcurrent"] and self.telemetry:
            line += ", LED only (no microcurrent)"
        elif s["run_s"]:
            line += f", {s['run_s']} s at setpoint, mean {s['mean_measured_ua']} µA"
        if s["led_dose_j_cm2"]:
            line += f", LED dose {s['led_dose_j_cm2']} J/cm²"
        return line


def follow(link: Link, on_message=None, heartbeat: bool = True, max_s: float = 3600.0) -> Summary:
    """Read until the session is done or faulted; return what was seen."""
    summary = Summary()
    active = False
    start = link.now_s()
    next_beat = start + HEARTBEAT_EVERY_S
    while link.now_s() - start < max_s:
        if heartbeat and link.now_s() >= next_beat:
            link.send({"cmd": "heartbeat"})
            next_beat += HEARTBEAT_EVERY_S
        msg = link.read_message(timeout_s=0.25)
        if msg is None:
            continue
        if on_message:
            on_message(msg)
        ev = msg.get("ev")
        if ev == "telemetry":
            summary.telemetry.append(msg)
            if heartbeat:      # device time: right even when an emulator runs faster than real time
                link.send({"cmd": "heartbeat"})
                next_beat = link.now_s() + HEARTBEAT_EVERY_S
        elif ev == "fault":
            summary.fault = msg.get("reason")
        elif ev == "state":
            summary.final_state = msg["state"]
            if msg["state"] in ("ramp", "run", "ramp_down"):
                active = True
            # `idle` ends it only after the session was seen running (a boot says idle too)
            if msg["state"] in ("done", "fault") or (msg["state"] == "idle" and active):
                # the final telemetry line follows the state event
                tail = link.read_message(timeout_s=0.5)
                if tail is not None and tail.get("ev") == "telemetry":
                    summary.telemetry.append(tail)
                    if on_message:
                        on_message(tail)
                return summary
    return summary


def _no_current(msg: dict) -> bool:
    """A phase without microcurrent (an LED-only program or phase): nothing set, ramping or measured."""
    return not (msg.get("setpoint_ua") or msg.get("target_ua") or msg.get("measured_ua"))


def telemetry_line(msg: dict) -> str:
    line = f"{msg.get('elapsed_s', 0):>4} s  {msg.get('state', '?'):<9}"
    if msg.get("blinded"):
        line += f"  set {msg.get('setpoint_ua', 0):>4} µA  (blinded study arm: current not shown)"
    elif _no_current(msg):
        line += "  no microcurrent"
    else:
        line += (f"  set {msg.get('setpoint_ua', 0):>4} µA  target {msg.get('target_ua', 0):>4} µA"
                 f"  measured {msg.get('measured_ua', 0):>4} µA  impedance {msg.get('impedance_ohm', 0):>6} Ω")
    if msg.get("led_pct"):
        line += f"  LED {msg['led_pct']:>3} %"
    return line


OUTPUT_ON = ("ramp", "run", "ramp_down", "pausing")


def temperature(temp_c) -> str | None:
    """The skin-side thermistor as text. The firmware's -99 / 999 are its ADC's ends (no
    reading yet, or an open / shorted thermistor), never a temperature: "n/a"."""
    if temp_c is None or temp_c <= -99 or temp_c >= 999:
        return "temperature n/a"
    return f"{temp_c:g} °C"


def status_line(r: dict) -> str:
    """`myotone status` as text. Measured current and impedance only while the output is
    on: after a cut the device still reports its last period's mean, which is not a
    current flowing now."""
    what = r.get("program") or ""
    if what and r.get("phase"):
        what += f" phase {r['phase']}"
    bits = [f"{r['state']}" + (f": {what}" if what else "")]
    if r.get("blinded"):
        bits.append(f"set {r.get('setpoint_ua', 0)} µA")
    elif r.get("setpoint_ua") or r.get("target_ua"):
        bits.append(f"set {r.get('setpoint_ua', 0)} µA, target {r.get('target_ua', 0)} µA")
    if r.get("blinded"):
        bits.append("blinded study arm: current not shown")
    elif r.get("state") in OUTPUT_ON and _no_current(r):
        bits.append("no microcurrent")
    elif r.get("state") in OUTPUT_ON and r.get("output") not in ("off", "cut"):
        bits.append(f"measured {r.get('measured_ua', 0)} µA, impedance {r.get('impedance_ohm', 0)} Ω")
    else:
        bits.append("output off")
    led = r.get("led_pct")
    if led:
        derate = r.get("led_derate_pct")
        bits.append(f"LED {led} %" + (f" (derated to {derate} %)" if derate is not None and derate < 100 else ""))
    temp = temperature(r.get("temp_c"))
    if temp:
        bits.append(temp)
    if r.get("duration_s"):
        bits.append(f"{r.get('elapsed_s', 0)}/{r['duration_s']} s")
    if r.get("fault"):
        bits.append(f"fault {r['fault']} (`myotone fault clear` once its cause is fixed)")
    if r.get("condition"):
        bits.append(f"condition: {r['condition']}")
    return ", ".join(bits)

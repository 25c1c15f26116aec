"""One cell of the fault matrix: a board in a session phase, a fault, and the truth after it.

Used by tests/test_fault_matrix.py. The host side here behaves like the
real one: it sends a heartbeat every second (sessions are host-driven with
`"heartbeat": true`) unless the fault cut it off, and reads whatever the
device says. Times come from the plant and the MCU's pins.
"""
from __future__ import annotations

import json

from myotone.emulator import Emulator
from myotone.emulator import bench as truth
from emu_lines import json_messages

MS = 1_000_000
SESSION = {"program": "lift", "ua": 300, "duration_s": 60, "heartbeat": True}


class Cell:
    def __init__(self, board: str = "pico-mcp4725", seed: int = 1):
        self.emu = Emulator(board, seed=seed).start()
        self.board = self.emu.board
        self.log: list[tuple[int, dict]] = []
        self.t_fault = 0
        self.last_heartbeat_ns = 0
        self._rid = 100
        self.run(0.2)

    def close(self) -> None:
        self.emu.close()

    # ---- host side ----
    def _drain(self) -> None:
        for m in json_messages(self.emu, strict=False):
            self.log.append((self.emu.clock.now_ns, m))

    def run(self, seconds: float, heartbeat: bool = False) -> None:
        """Let `seconds` pass; a host that heartbeats sends one every second."""
        end = self.emu.clock.now_ns + int(seconds * 1e9)
        while self.emu.clock.now_ns < end:
            step = min(1_000_000_000, end - self.emu.clock.now_ns)
            self.emu.run_for(step / 1e9)
            self._drain()
            if heartbeat and self.emu.host_can_connect():
                self.emu.send({"cmd": "heartbeat"})
                self.last_heartbeat_ns = self.emu.clock.now_ns

    def request(self, cmd: str, **args) -> dict | None:
        """A request and its reply (None when the host is cut off or the board is dead)."""
        self._rid += 1
        self.emu.send({"id": self._rid, "cmd": cmd, **args})
        self.run(0.01)
        return next((m for _, m in self.log if m.get("id") == self._rid), None)

    def events(self, ev: str, since: int = 0) -> list[dict]:
        return [m for t, m in self.log if m.get("ev") == ev and t >= since]

    def states(self, since: int = 0) -> list[str]:
        return [m["state"] for m in self.events("state", since)]

    # ---- phases ----
    def led_only_program(self) -> str | None:
        """An LED-only program of this firmware (None: it has none)."""
        r = self.request("programs") or {}
        for p in r.get("programs", []):
            if p.get("led") and p.get("microcurrent") is False:
                return p["name"]
        return None

    def led_on(self) -> bool:
        red = getattr(self.emu, "led_red", None)
        return bool(red is not None and red.history[-1][1] > 0)

    def led_off_since_ns(self) -> int | None:
        """When the red LED last went dark (None if it is on)."""
        red = getattr(self.emu, "led_red", None)
        if red is None:
            return 0
        if red.history[-1][1] > 0:
            return None
        t = red.history[-1][0]
        for t_k, duty, _ in reversed(red.history):
            if duty > 0:
                break
            t = t_k
        return t

    def enter(self, phase: str) -> None:
        if phase == "idle":
            return
        if phase == "led_only":
            name = self.led_only_program()
            assert name, "no LED-only program"
            r = self.request("start", program=name, heartbeat=True)
            assert r and r["ok"], r
            self.run(2.0, heartbeat=True)
            assert self.led_on() and not self.emu.plant.hv_on, "an LED-only session: light, no current"
            return
        if phase == "done":                     # between sessions: one has run (the watchdog is armed)
            assert self.request("start", **{**SESSION, "duration_s": 2})["ok"]
            self.run(4.0, heartbeat=True)
            assert self.states()[-1] == "done", self.states()
            return
        r = self.request("start", **SESSION)
        assert r and r["ok"], r
        if phase == "ramp":
            self.run(1.0, heartbeat=True)
        elif phase == "run":
            self.run(4.5, heartbeat=True)
        elif phase == "ramp_down":
            self.run(4.5, heartbeat=True)
            assert self.request("stop")["state"] == "ramp_down"
            self.run(0.5, heartbeat=True)
        assert self.states()[-1] == phase, (phase, self.states())

    def inject(self, fault: str) -> None:
        self.t_fault = self.emu.clock.now_ns
        self.emu.set_fault(fault)

    # ---- truth ----
    def output_safe(self) -> bool:
        p = self.emu.plant
        return p.dac_code == 0 and not p.bridge_a and not p.bridge_b and not p.hv_on and not self.led_on()

    def rail_and_bridge_off(self) -> bool:
        p = self.emu.plant
        return not p.bridge_a and not p.bridge_b and not p.hv_on and self.current_ua() == 0

    def current_ua(self) -> float:
        return abs(self.emu.plant.trace.current_at(self.emu.clock.now_ns))

    def cut_ns(self) -> int | None:
        """When the firmware (or a reset) turned the high-voltage rail off after the fault."""
        hv = self.board["hv_enable"]
        return next((t for t, pin, level in self.emu.mcu.edges if pin == hv and not level and t >= self.t_fault),
                    None)

    def first_bridge_on_ns(self, *which: str) -> int | None:
        """The first instant from the fault on at which the bridge drives the electrodes (in the
        polarities `which`, "pol_a" / "pol_b": both by default)."""
        b = self.board["bridge"]
        pins = [b[w] for w in which or ("pol_a", "pol_b")]
        on = [t for t, pin, level in self.emu.mcu.edges if pin in pins and level and t >= self.t_fault]
        return on[0] if on else None

    def bridge_on_at(self, t_ns: int, *which: str) -> bool:
        b = self.board["bridge"]
        level = {b[w]: 0 for w in which or ("pol_a", "pol_b")}
        for t, pin, lv in self.emu.mcu.edges:
            if t > t_ns:
                break
            if pin in level:
                level[pin] = lv
        return any(level.values())

    def onset_over_ns(self, above_ua: float) -> int | None:
        """When |I| first exceeded `above_ua` after the fault (the plant's truth: bench.onset_ns)."""
        return truth.onset_ns(self.emu, self.t_fault, above_ua)

    def off_since_ns(self) -> int | None:
        """Start of the span, up to now, in which the electrode current is below 10 uA."""
        return self.emu.plant.trace.off_since(self.emu.clock.now_ns)

    def peak_ua_between(self, t0: int, t1: int) -> float:
        return truth.peak_ua(self.emu, t0, t1)

    def max_ua_after_fault(self) -> float:
        tr = self.emu.plant.trace
        peak = 0.0
        for t0, t1, i0, i_inf, tau in tr.segments(self.emu.clock.now_ns):
            if t1 >= self.t_fault:
                peak = max(peak, abs(i0), abs(i_inf) if tau else 0.0)
        return peak

    def window_ratio_ns(self, t_end: int) -> float:
        """Net / moved charge over the 10 s window ending at t_end (the plant's truth)."""
        net = moved = 0.0
        for t0, t1, i0, i_inf, tau in self.emu.plant.trace.segments(t_end):
            a, b = max(t0, t_end - 10_000 * MS), min(t1, t_end)
            if b > a:
                net += i0 * (b - a)
                moved += abs(i0) * (b - a)
        return abs(net) / moved if moved else 0.0

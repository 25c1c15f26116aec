"""Shared helpers for the safety tests: drive the emulator, read the plant's truth."""
import json

from myotone.emulator import Emulator

MS = 1_000_000


class Bench:
    """An emulated board with a session helper and truth from the plant."""

    def __init__(self, board="pico-mcp4725", **kw):
        self.emu = Emulator(board, **kw).start()
        self.emu.run_for(0.2)
        self.log = []
        self._drain()

    def close(self):
        self.emu.close()

    def _drain(self):
        for line in self.emu.read().decode().splitlines():
            if line.startswith("{"):
                self.log.append((self.emu.clock.now_ns, json.loads(line)))

    def run(self, seconds):
        self.emu.run_for(seconds)
        self._drain()

    def request(self, cmd, **args):
        rid = len(self.log) + 1000
        self.emu.send({"id": rid, "cmd": cmd, **args})
        self.run(0.005)
        return next(m for _, m in self.log if m.get("id") == rid)

    def start(self, ua=300, **args):
        args.setdefault("program", "lift")
        args.setdefault("duration_s", 120)
        r = self.request("start", ua=ua, **args)
        assert r["ok"], r
        return r

    def events(self, ev):
        return [m for _, m in self.log if m.get("ev") == ev]

    def faults(self):
        return [m["reason"] for m in self.events("fault")]

    def run_until_bridge_on(self, limit_s=1.0):
        t_end = self.emu.now_s + limit_s
        while not (self.emu.plant.bridge_a or self.emu.plant.bridge_b):
            assert self.emu.now_s < t_end, "bridge never turned on"
            self.emu.run_for(0.0005)
        self._drain()

    def cut_time_ns(self, after_ns):
        """When the output was cut: the HV rail enable falling after `after_ns`."""
        hv = self.emu.board["hv_enable"]
        for t, pin, level in self.emu.mcu.edges:
            if pin == hv and level == 0 and t >= after_ns:
                return t
        return None

    def onset_ns(self, after_ns, above_ua):
        tr = self.emu.plant.trace
        for t, i in zip(tr.t_ns, tr.i_ua):
            if t >= after_ns and abs(i) > above_ua:
                return t
        return None

    def output_is_safe(self):
        """SAFETY.md safe state, on the plant and the LED pins: DAC 0, bridge off, rail off, dark."""
        p = self.emu.plant
        dark = all(ch is None or ch.duty == 0 for ch in (self.emu.led_red, self.emu.led_nir))
        return p.dac_code == 0 and not p.bridge_a and not p.bridge_b and not p.hv_on and dark

    def record(self, n=None):
        """A session-log record (the newest when n is None), as log_read returns it."""
        if n is None:
            n = self.request("log_list")["records"][-1]["n"]
        r = self.request("log_read", n=n)
        assert r["ok"], r
        return r["record"]

"""Shared helpers for the safety tests: drive the emulator, read the plant's truth."""
import json

from myotone.emulator import Emulator
from myotone.emulator import bench as truth
from myotone.emulator.board import load_board

MS = 1_000_000

# the reference board of each pulse back-end; "timer" is the Pico driven by a 100 us hard timer
BACKEND_BOARDS = {"pio": "pico-mcp4725", "rmt": "esp32-devkit", "timer": "pico-mcp4725"}
TIMER_PULSE = {"backend": "timer", "timer_id": -1, "hard": True, "tick_us": 100}


def board_for(backend: str) -> dict:
    """The board file that runs `backend` ("pio", "rmt" or "timer")."""
    board = load_board(BACKEND_BOARDS[backend])
    if backend == "timer":
        board["pulse"] = dict(TIMER_PULSE)
    return board


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
        truth.run_until_bridge_on(self.emu, limit_s)
        self._drain()

    def cut_time_ns(self, after_ns):
        """When the output was cut: the HV rail enable falling after `after_ns`."""
        return truth.cut_ns(self.emu, after_ns)

    def onset_ns(self, after_ns, above_ua):
        return truth.onset_ns(self.emu, after_ns, above_ua)

    def output_is_safe(self):
        """SAFETY.md safe state, on the plant and the LED pins: DAC 0, bridge off, rail off, dark."""
        return truth.output_is_safe(self.emu)

    def record(self, n=None):
        """A session-log record (the newest when n is None), as log_read returns it."""
        if n is None:
            n = self.request("log_list")["records"][-1]["n"]
        r = self.request("log_read", n=n)
        assert r["ok"], r
        return r["record"]

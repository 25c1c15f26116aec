"""Shared helpers for the safety tests: drive the emulator, read the plant's truth."""
import json
from array import array

from myotone.emulator import Emulator
from myotone.emulator import bench as truth
from myotone.emulator.board import load_board
from emu_lines import json_messages

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
        self.garbled = []
        self._drain()

    def close(self):
        self.emu.close()

    def _drain(self):
        # a reset can cut a paced line (the ESP32's console): skipped, kept in `garbled`
        for m in json_messages(self.emu, strict=False, garbled=self.garbled):
            self.log.append((self.emu.clock.now_ns, m))

    def run(self, seconds):
        self.emu.run_for(seconds)
        self._drain()

    def request(self, cmd, **args):
        rid = len(self.log) + 1000
        self.emu.send({"id": rid, "cmd": cmd, **args})
        # 5 ms, or later: a garbage collection runs (heap.py), or a long reply goes out at the
        # ESP32 UART's ~11 kB/s (console.py); up to 2 s
        for _ in range(400):
            self.run(0.005)
            reply = next((m for _, m in self.log if m.get("id") == rid), None)
            if reply is not None:
                return reply
        raise AssertionError(f"no reply to {cmd} within 2 s")

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

    def stuck_dac_cut_ns(self, run_s=0.05, limit_ua=500):
        """The DAC sticks at full scale now, the over-current latch dead: run `run_s`, and return
        how long after |I| passed the over_current level (limit x 1.10 + 10 uA) the firmware cut
        the output, and when."""
        t_fault = self.emu.clock.now_ns
        # the firmware's own cut: the over-current latch (docs/hardware.md) would cut first, in
        # hardware, and the firmware follow at its 100 Hz bookkeeping (test_oc_latch.py)
        self.emu.set_fault("oc_latch_dead")
        self.emu.set_fault("dac_stuck_high")
        self.run(run_s)
        onset = self.onset_ns(t_fault, limit_ua * 1.1 + 10)
        cut = self.cut_time_ns(t_fault)
        assert onset is not None and cut is not None, (onset, cut)
        return cut - onset, cut

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

    def paused_two_phase_record(self):
        """The record of a two-phase program at 300 uA ("warm" 8 s, "light" 6 s at 50 % with
        the LED), paused from its 4th to its 9th second."""
        prog = {"phases": [{"duration_s": 8, "hz": 10, "phase_us": 40000, "gap_us": 200, "current_pct": 100,
                            "label": "warm"},
                           {"duration_s": 6, "hz": 10, "phase_us": 40000, "gap_us": 200, "current_pct": 50,
                            "red_pct": 50, "label": "light"}]}
        assert self.request("program_write", name="two", program=prog)["ok"]
        assert self.request("start", program="two", ua=300)["ok"]
        self.run(4)
        assert self.request("pause")["ok"]
        self.run(5)
        assert self.request("resume")["ok"]
        self.run(14)
        return self.record()


class FastLine:
    """The firmware's fast path and Monitor alone (under the emulator's runtime), fed sample by
    sample: the bridge pins, current and voltage as the fast path reads them; `books()` does what
    the bookkeeping tick does with the fast path's sums (charge balance)."""

    def __init__(self, fw, density_peak_ua=500, out_ua=500, sense_floor_ua=0, board=None):
        import json
        import types
        from myotone import paths
        self.M = fw("myotone.monitor")
        F = fw("myotone.fastpath")
        board = board or json.loads((paths.boards_dir() / "pico-mcp4725.json").read_text())
        self.mon = self.M.Monitor(board, 500, over_temp_raw=0, sense_floor_ua=sense_floor_ua)
        self.mon.begin(density_peak_ua)
        self.bridge, self.ua, self.mv, self.cuts = 0, 0, 0, []
        self.then_ua = []            # what the sample's further current conversions read (else `ua`)
        self.conversions = 0
        ns = types.SimpleNamespace
        self.stuck = False           # the ADC keeps its last conversions (else its noise moves them)
        self.conv = array("i", [0, 0])   # Sense.conversions: the raw current and voltage conversions
        self.read_ua = self._read_ua     # what the path's current conversions call (a test may swap it)
        sense = ns(read_ua=lambda: self.read_ua(), read_mv=lambda: self.mv, conversions=self.conv)
        self.stage = ns(state=2, out_ua=out_ua, close_by=0, fast_cut=self.cuts.append)
        self.flow = None             # the polarity comparators: None = the way the bridge drives
        self.flow_stuck = 0          # 1 or 2: that comparator reads high whatever flows
        self.fp = F.FastPath(sense, self._pin(1), self._pin(2), self._flow(1), self._flow(2), ns(value=lambda: 0),
                             ns(code=0, latch_tripped=lambda: 0), self.stage, self.mon, ns(active=False), ns(state=2))
        self.fp.begin()
        self._d = [0] * 9

    def _read_ua(self):
        self.conversions += 1
        if not self.stuck:
            self.conv[0] = (self.conv[0] + 1) & 0xFF
        return self.then_ua.pop(0) if self.conversions > 1 and self.then_ua else self.ua

    def _pin(self, pol):
        import types
        return types.SimpleNamespace(value=lambda v=None: int(self.bridge == pol))

    def _flow(self, pol):
        """A polarity comparator: current flows the `pol` way (`flow`: 1, 2 or 0; None: the bridge's)."""
        import types
        return types.SimpleNamespace(value=lambda: int(self.flow_stuck == pol
                                                       or (self.bridge if self.flow is None else self.flow) == pol))

    def sample(self, bridge, ua, mv=None, then_ua=()):
        """One fast-path pass: the pins, the current (`then_ua`: what conversions after the first
        read, e.g. over_current's confirming one) and the voltage."""
        self.bridge, self.ua, self.mv = bridge, ua, ua * 10 if mv is None else mv
        self.then_ua, self.conversions = list(then_ua), 0
        self.fp.run(None)
        return self.fp.reason

    def books(self, now_ms):
        """The bookkeeping tick's share: the sums since the last call into Monitor.charge."""
        d = self._d
        self.fp.take(d)
        return self.mon.charge(now_ms, d[5], d[6], d[7], d[8])


def supervisor(bench):
    """The firmware's Supervisor in a Bench's emulator (its objects, to look into or act on)."""
    return bench.emu.runtime.modules["myotone.app"].supervisor

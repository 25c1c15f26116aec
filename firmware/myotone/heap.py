# Garbage collection only with the output stage off (docs/safety.md "Garbage
# collection"), where the board file's `supervisor.gc` is "output_off": the
# default and the only choice on the ESP32. A collection holds off every soft
# callback for its whole length -- 20 ms with the firmware's session heap on
# the RP2040 at 125 MHz -- and on the ESP32 the fast path is a soft callback
# (on rp2 it is a hard interrupt that preempts a collection: "auto" there
# leaves collecting to MicroPython). With "output_off" automatic collection
# is off (gc.disable(): an allocation that does not fit raises MemoryError,
# it never collects), and the main loop collects:
# * with the output stage off, whenever the budget below is spent;
# * in a session with the output stage on, in a hold (checkpoint.py): the
#   stage closes after the pair under way, the heap is collected with the
#   output off, the waveform switches on again;
# * where no hold comes otherwise -- a ramp-down, the session's last second --
#   in a hold all the same once the budget is spent down to FLOOR_B: the
#   ramp-down goes on after it (checkpoint.py);
# * after an allocation failed (the budget was wrong: spent()), in a hold too;
#   the main loop waits for the stage off allocating nothing (supervisor.py,
#   Supervisor._out_of_memory);
# * only where no hold can come (the stage on with no logged session active),
#   below FLOOR_B or after a failed allocation: at once, whatever the output
#   does, counted and said (`ev: gc`, docs/protocol.md).
# The free heap is read (gc.mem_free() walks the whole heap: 9.4 ms on the
# RP2040) only right after a collection. Between two, the main loop's
# allocations are estimated from its console traffic -- every line read or
# written and its bytes, which is what it allocates for (requests, replies,
# events) -- at a bound measured on the silicon tier: a status round trip
# allocates ~1.35 kB for ~390 bytes of traffic, a telemetry event ~0.77 kB for
# ~330 (bench_silicon.garbage(), with supervisor.gc "output_off"; protocol.dumps
# writes a line a value at a time: +0.14 kB); LINE_B + BYTE_B x bytes is 1.3 and
# 2 times that.
# Main loop only.
import gc
import time
from micropython import const

RESERVE_B = const(24576)    # a hold is asked for below this (estimated) free heap ...
FLOOR_B = const(10240)      # ... and below this, with no hold in time, a collection runs anyway
LINE_B = const(256)         # the estimate: per line written ...
BYTE_B = const(4)           # ... and per byte read or written
IDLE_B_PER_S = const(384)   # and per second of main loop (log samples; measured: ~250)


class Heap:
    """The heap's budget between two collections, from the console's traffic (`console`:
    its `lines` and `bytes` counters) and the time (`now_ms`). `output_off` (the board's
    `supervisor.gc`): collect only with the output stage off -- on the ESP32, whose fast path
    is a soft callback. Else (rp2, where the fast path is a hard interrupt that preempts a
    collection) MicroPython collects when it needs to, and a hold collects as well: its output
    is off anyway."""

    def __init__(self, console, output_off=True):
        self._con = console
        self.output_off = output_off
        self.free_b = 0             # measured after the last collection
        self.forced = 0             # collections with the output stage not off
        self._lines = 0
        self._bytes = 0
        self._at_ms = 0

    def start(self, now_ms):
        """Automatic collection off (`output_off`), from a collected heap (before the ticks start)."""
        if self.output_off:
            gc.disable()
            self.collect(now_ms)

    def stop(self):
        """Automatic collection on again (the firmware ends: the REPL follows)."""
        gc.enable()

    def left_b(self, now_ms):
        """The free heap as estimated now (bytes; negative when the estimate ran out)."""
        con = self._con
        lines = con.lines - self._lines
        spent = lines * LINE_B + (con.bytes - self._bytes) * BYTE_B
        spent += time.ticks_diff(now_ms, self._at_ms) * IDLE_B_PER_S // 1000
        return self.free_b - spent

    def low(self, now_ms):
        """Under the reserve: collect (with the output stage off) soon."""
        return self.output_off and self.left_b(now_ms) < RESERVE_B

    def exhausted(self, now_ms):
        """Under the floor: no hold can wait any longer."""
        return self.output_off and self.left_b(now_ms) < FLOOR_B

    def spent(self):
        """An allocation failed: the estimate fell short, the budget is gone (low, exhausted)
        until the next collection."""
        self.free_b = 0

    def collect(self, now_ms, forced=False):
        gc.collect()
        self.free_b = gc.mem_free()
        con = self._con
        self._lines = con.lines
        self._bytes = con.bytes
        self._at_ms = now_ms
        if forced:
            self.forced += 1

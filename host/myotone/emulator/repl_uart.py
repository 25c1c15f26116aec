"""The ESP32's REPL UART as MicroPython v1.28 drives it (ports/esp32/uart.c, uart_stdout_tx_strn).

A write to sys.stdout fills the UART's 128-byte TX FIFO and, while bytes are left, sleeps a
FreeRTOS tick (10 ms) and fills it again -- in C: no bytecode runs meanwhile, so no scheduled
(soft) callback does either, and on the ESP32 the fast path is one. At 115200 baud the FIFO
drains 11 520 bytes a second: a 450-byte `status` reply held the CPU ~30 ms.

The rp2 port's USB CDC write waits with mp_event_wait_ms(), which runs scheduled callbacks:
nothing to model there.
"""
from __future__ import annotations

FIFO_B = 128
BYTES_PER_S = 11_520          # 115200 baud, 8N1
TICK_NS = 10_000_000          # CONFIG_FREERTOS_HZ 100


class ReplUart:
    def __init__(self):
        self.level_b = 0.0
        self._at_ns = 0
        self.blocked: list[tuple[int, int]] = []      # (t_ns, ns) of every write that blocked

    def _drain(self, now_ns: int) -> None:
        if now_ns > self._at_ns:
            self.level_b = max(0.0, self.level_b - (now_ns - self._at_ns) * BYTES_PER_S / 1e9)
            self._at_ns = now_ns

    def write(self, now_ns: int, n_b: int) -> int:
        """`n_b` bytes written at `now_ns`: how long the writer is held (ns; 0 if they fit)."""
        self._drain(now_ns)
        free = FIFO_B - self.level_b
        if n_b <= free:
            self.level_b += n_b
            return 0
        left = n_b - free
        self.level_b = float(FIFO_B)
        held = 0
        while left > 0:
            held += TICK_NS
            self.level_b = max(0.0, self.level_b - TICK_NS * BYTES_PER_S / 1e9)
            w = min(left, FIFO_B - self.level_b)
            self.level_b += w
            left -= w
        self._at_ns = now_ns + held
        self.blocked.append((now_ns, held))
        return held

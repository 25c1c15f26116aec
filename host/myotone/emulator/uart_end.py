"""What the TCP and pty `Uart`s share: the board's receive side.

Bytes from the host queue for `read_byte`; while an interrupt character is
set (MicroPython sets Ctrl-C while it runs code, `mp_hal_set_interrupt_char`)
that byte is not queued but raises the interrupt flag, as the board's RX
interrupt does.
"""
from __future__ import annotations

import queue
import threading


class UartEnd:
    def __init__(self):
        self._rx: queue.Queue[int | None] = queue.Queue()
        self._closed = False
        self.interrupt_char = -1
        self.interrupted = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def read_byte(self) -> int | None:
        return None if self._closed else self._rx.get()

    def set_interrupt_char(self, char: int) -> None:
        """-1 disables; otherwise that byte sets `interrupted` instead of queuing."""
        self.interrupt_char = char

    def take_interrupt(self) -> bool:
        """True once per received interrupt character."""
        if self.interrupted.is_set():
            self.interrupted.clear()
            return True
        return False

    def _received(self, data: bytes) -> None:
        """Bytes from the host (the serving thread)."""
        for byte in data:
            if byte == self.interrupt_char:
                self.interrupted.set()
            else:
                self._rx.put(byte)

    def _closing(self) -> None:
        """Mark closed and release a reader blocked in read_byte."""
        self._closed = True
        self._rx.put(None)

"""The emulated USB-serial console (the board's stdin/stdout).

Bytes from the host go into `rx`; a Ctrl-C byte is taken out at once and
raises KeyboardInterrupt in the firmware, as MicroPython's USB driver does,
unless the interrupt character is disabled (the REPL reads Ctrl-C as a
character while it edits a line). Bytes from the firmware go to every
listener (the TCP/pty endpoint) and to `tx` (the in-process link).
"""
from __future__ import annotations

import collections
import threading

from .clock import Clock


class Console:
    def __init__(self, clock: Clock):
        self.clock = clock
        self._rx: collections.deque[int] = collections.deque()
        self._tx = bytearray()
        self._lock = threading.Lock()
        self.interrupt_char = 3
        self.kbd_pending = False
        self.listeners: list = []
        self.taps: list = []           # see everything the firmware writes, heard or not (reports)
        self.closed = False
        self.link_up = True            # False: USB unpowered or the host gone; bytes are lost
        self.alive = lambda: None      # raises when the MCU is resetting

    # ---- host side ----
    def push_rx(self, data: bytes) -> None:
        if not self.link_up:
            return
        with self._lock:
            for b in data:
                if b == self.interrupt_char and self.interrupt_char >= 0:
                    self._rx.clear()             # as mp_hal: pending input is dropped
                    self.kbd_pending = True
                else:
                    self._rx.append(b)
        self.clock.notify()

    def take_tx(self) -> bytes:
        with self._lock:
            data = bytes(self._tx)
            self._tx.clear()
        return data

    # ---- device side ----
    def rx_ready(self) -> bool:
        return bool(self._rx)

    def read_available(self, n: int) -> bytes:
        with self._lock:
            k = min(n, len(self._rx))
            return bytes(self._rx.popleft() for _ in range(k))

    def read_byte(self) -> int | None:
        """Block (in virtual time) for one byte; None when the emulator stops."""
        from .clock import EmulatorStopped
        try:
            self.clock.wait(1 << 62, self.rx_ready)
        except EmulatorStopped:
            return None
        return self.read_available(1)[0]

    def write(self, data: bytes) -> None:
        self.alive()
        for tap in self.taps:
            tap(data)
        if not self.link_up:
            return
        with self._lock:
            self._tx += data
        for listener in list(self.listeners):
            listener(data)

    # ---- Ctrl-C as an interrupt ----
    def check(self) -> None:
        if self.kbd_pending:
            self.kbd_pending = False
            raise KeyboardInterrupt()

    def pending(self) -> bool:
        return self.kbd_pending

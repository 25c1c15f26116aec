# The USB serial console as a byte stream for the protocol: non-blocking
# reads through select.poll, one JSON line per write. Per byte nothing is
# allocated (ipoll, readinto): a request is read a byte at a time, and a list
# and a bytes object per byte made reading a 26-byte `status` cost ~9 ms on the
# RP2040 during a session. Ctrl-C still raises
# KeyboardInterrupt (the firmware never disables it), so mpremote can always
# break into the REPL.
#
# Paced output (the board file's `console`, docs/boards.md; required on the
# ESP32): MicroPython's ESP32 port writes sys.stdout to the REPL UART in C,
# sleeping a 10 ms FreeRTOS tick whenever the 128-byte TX FIFO is full, and no
# scheduled callback runs meanwhile -- the ESP32's fast path is one: a 450-byte
# reply held it ~30 ms (docs/safety.md "The ESP32"). So with `tx_fifo_b` and
# `tx_bytes_per_s` given, a line is queued and written only as far as the FIFO
# takes it, from what has drained since the last write at 15/16 of the rate;
# the rest goes out at the next main-loop pass (`flush`, `wait`). The rp2
# port's USB CDC write runs scheduled callbacks while it waits: unpaced there.
import sys
import select
import time
from micropython import const

_MARGIN_B = const(8)        # written short of the FIFO's size: a byte or two of timing error


class Console:
    def __init__(self, tx_fifo_b=0, tx_bytes_per_s=0):
        self._in = sys.stdin.buffer
        self._tx = sys.stdout.buffer
        self._one = bytearray(1)
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self.lines = 0              # lines written and bytes read or written: what the main
        self.bytes = 0              # loop allocates for (heap.py estimates from them)
        self._fifo_b = tx_fifo_b - _MARGIN_B if tx_fifo_b else 0
        self._rate = tx_bytes_per_s * 15 // 16      # bytes per second drained, at the least
        self._queue = []            # paced: bytes waiting, oldest first ...
        self._head = 0              # ... and how much of the first is written
        self._level_b = 0           # bytes in the TX FIFO, as estimated ...
        self._at_us = time.ticks_us()   # ... at this time

    def has_input(self):
        """A byte is ready now (no wait, no output flushed)."""
        for _ in self._poll.ipoll(0):
            return True
        return False

    def wait(self, ms):
        """Wait up to `ms` for input; True if a byte is ready. Paced output waiting: written
        first, and the wait no longer than the FIFO takes to half drain."""
        if self._queue:
            self.flush()
            if self._queue:
                ms = min(ms, self._fifo_b * 500 // self._rate)
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def read_byte(self):
        if self._in.readinto(self._one) != 1:
            return -1
        self.bytes += 1
        return self._one[0]

    def write_line(self, text):
        """One line; `text` (str or bytes: protocol.dumps) may be a tuple of pieces (a large
        reply, not copied)."""
        n = 1
        pieces = text if isinstance(text, tuple) else (text,)
        if self._fifo_b:
            q = self._queue
            for piece in pieces:
                b = piece if isinstance(piece, bytes) else piece.encode()
                q.append(b)
                n += len(b)
            q.append(b"\r\n")       # as the cooked sys.stdout.write ends a line
            self.flush()
        else:
            for piece in pieces:
                sys.stdout.write(piece)
                n += len(piece)
            sys.stdout.write("\n")
        self.lines += 1
        self.bytes += n

    def flush(self):
        """Write as much of the queue as the TX FIFO takes without waiting (main loop)."""
        q = self._queue
        if not q:
            return
        now = time.ticks_us()
        level = self._level_b - time.ticks_diff(now, self._at_us) * self._rate // 1000000
        if level < 0:
            level = 0
        room = self._fifo_b - level
        tx = self._tx
        while q and room > 0:
            b = q[0]
            h = self._head
            n = len(b) - h
            if n <= room:
                tx.write(b if h == 0 else memoryview(b)[h:])
                q.pop(0)
                self._head = 0
            else:
                n = room
                tx.write(memoryview(b)[h:h + n])
                self._head = h + n
            room -= n
            level += n
        self._level_b = level
        self._at_us = now

"""A `Uart` on a pseudo-terminal: `mpremote connect /dev/pts/N` (POSIX only).

Unlike pyserial's socket:// ports, a pty has a file descriptor, which
`mpremote repl` needs (it select()s on the port's fd). The board side holds
the master; the slave is kept open in raw mode so reads never fail while no
host is connected. Output the host does not read is dropped once the pty's
buffer is full, as a USB CDC port without a host drops it. The receive
side and the interrupt character: `UartEnd`.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import tty

from .uart_end import UartEnd


class PtyUart(UartEnd):
    def __init__(self):
        super().__init__()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="pty-uart", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._closed:
            try:
                view = view[os.write(self._master, view):]
            except BlockingIOError:
                return  # nobody reading: drop, as a host-less USB port does
            except OSError:
                return

    def _serve(self) -> None:
        while not self._closed:
            readable, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in readable:
                break
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno == errno.EIO:
                    continue
                break
            self._received(data)

    def close(self) -> None:
        self._closing()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

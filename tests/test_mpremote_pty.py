"""Real `mpremote repl` (friendly REPL) against the engine over a pty.

`mpremote repl` select()s on the port's file descriptor, which pyserial's
socket:// ports do not have, so the interactive REPL needs a pty endpoint.
mpremote itself runs on a second pty, as in a terminal.
"""

import os
import select
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX ptys")

from myotone.emulator.flash import Flash  # noqa: E402
from myotone.emulator.repl import Repl  # noqa: E402
from simple_runtime import SimpleRuntime  # noqa: E402

MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")


@pytest.fixture
def board():
    from myotone.emulator.pty_uart import PtyUart
    uart = PtyUart()
    runtime = SimpleRuntime(uart, Flash(block_count=32))
    thread = threading.Thread(target=Repl(uart, runtime).run, daemon=True)
    thread.start()
    yield uart
    uart.close()
    thread.join(timeout=5)


class Terminal:
    """mpremote running on a pty, driven like a user at a keyboard."""

    def __init__(self, *args: str):
        self.fd, slave = os.openpty()
        self.proc = subprocess.Popen([MPREMOTE, *args], stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        self.screen = b""

    def expect(self, text: bytes, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while text not in self.screen:
            left = end - time.monotonic()
            assert left > 0, "did not see %r in %r" % (text, self.screen)
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    break
        assert text in self.screen, self.screen

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def close(self) -> int:
        self.type(b"\x1d")  # Ctrl-] leaves mpremote's terminal
        try:
            return self.proc.wait(timeout=10)
        finally:
            os.close(self.fd)


def test_mpremote_repl_friendly_session(board):
    term = Terminal("connect", board.device, "repl")
    try:
        term.expect(b"Use Ctrl-] or Ctrl-x to exit this shell\r\n")
        for _ in range(10):      # mpremote forwards keys only once its console is up
            term.type(b"\r")
            try:
                term.expect(b">>> ", timeout=1)
                break
            except AssertionError:
                continue
        term.expect(b">>> ")
        term.screen = b">>> "
        term.type(b"6*7\r")
        term.expect(b">>> 6*7\r\n42\r\n>>> ")
        term.type(b"for i in range(2):\r")
        term.expect(b"...     ")
        term.type(b"print(i)\r\x7f\r")
        term.expect(b"...     print(i)\r\n...     \x08\x08\x08\x08\x1b[K\r\n0\r\n1\r\n>>> ")
        term.type(b"\x04")  # soft reset from the friendly REPL
        term.expect(b"MPY: soft reboot\r\nMicroPython v1.29.0 on 2026-01-01; "
                    b"Raspberry Pi Pico with RP2040\r\nType \"help()\" for more information.\r\n>>> ")
    finally:
        assert term.close() == 0


def test_mpremote_exec_over_pty(board):
    result = subprocess.run([MPREMOTE, "connect", board.device, "exec", "print(7*6)"],
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "42\n")

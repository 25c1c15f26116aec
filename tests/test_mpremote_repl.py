"""Real mpremote (the pinned 1.29.0) against the REPL engine over TCP.

mpremote opens `socket://HOST:PORT` through pyserial's serial_for_url, so
`mpremote connect socket://127.0.0.1:PORT` talks to the emulated board as
to a serial port. Each mpremote run is a new connection; the board keeps
running in between, as a real one does.
"""

import hashlib
import os
import subprocess
import sys
import threading

import pytest

from myotone.emulator.flash import Flash
from myotone.emulator.repl import Repl
from myotone.emulator.tcp_uart import TcpUart
from simple_runtime import SimpleRuntime

MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")


class Board:
    def __init__(self, flash: Flash):
        self.flash = flash
        self.uart = TcpUart()
        self.runtime = SimpleRuntime(self.uart, flash)
        self.repl = Repl(self.uart, self.runtime)
        self.thread = threading.Thread(target=self.repl.run, daemon=True)
        self.thread.start()

    def mpremote(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([MPREMOTE, "connect", self.uart.url, *args],
                                capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def close(self) -> None:
        self.uart.close()
        self.thread.join(timeout=5)


@pytest.fixture
def board(tmp_path):
    b = Board(Flash(tmp_path / "flash.img", block_count=64))
    yield b
    b.close()
    assert not b.thread.is_alive()


pytestmark = pytest.mark.skipif(not os.path.exists(MPREMOTE), reason="mpremote not installed")


def test_exec_and_eval(board):
    assert board.mpremote("exec", "print(1+1)").stdout == "2\n"
    assert board.mpremote("eval", "2**10").stdout == "1024\n"
    out = board.mpremote("exec", "import sys; print(sys.implementation.name)", "+",
                         "eval", "[x*x for x in range(4)]").stdout
    assert out == "micropython\n[0, 1, 4, 9]\n"


def test_exec_error_is_reported_micropython_style(board):
    result = board.mpremote("exec", "print('before'); undefined_name", check=False)
    assert result.returncode == 1
    assert result.stdout == ("before\nTraceback (most recent call last):\n"
                             "  File \"<stdin>\", line 1, in <module>\n"
                             "NameError: name 'undefined_name' isn't defined\n")


def test_filesystem_commands(board, tmp_path):
    blob = os.urandom(5000)  # several 256-byte chunks, raw-paste windows
    local = tmp_path / "blob.bin"
    local.write_bytes(blob)
    script = tmp_path / "main.py"
    script.write_text("print('hello')\n")

    board.mpremote("fs", "mkdir", ":lib")
    board.mpremote("fs", "cp", str(local), ":lib/blob.bin", "+",
                   "fs", "cp", str(script), ":main.py")
    assert board.flash.read_file("/lib/blob.bin") == blob
    assert board.flash.read_file("/main.py") == b"print('hello')\n"

    assert board.mpremote("fs", "ls").stdout == (
        "ls :\n           0 lib/\n          15 main.py\n")
    assert board.mpremote("fs", "ls", ":lib").stdout == "ls :lib\n        5000 blob.bin\n"
    digest = board.mpremote("fs", "sha256sum", ":lib/blob.bin").stdout.splitlines()[-1]
    assert digest == hashlib.sha256(blob).hexdigest()
    assert board.mpremote("fs", "cat", ":main.py").stdout == "print('hello')\n"

    copy = tmp_path / "back.bin"
    board.mpremote("fs", "cp", ":lib/blob.bin", str(copy))
    assert copy.read_bytes() == blob
    # same content: mpremote compares sha256 on the device and skips the copy
    assert "Up to date: lib/blob.bin" in board.mpremote(
        "fs", "cp", str(local), ":lib/blob.bin").stdout

    board.mpremote("fs", "rm", ":lib/blob.bin", "+", "fs", "rmdir", ":lib")
    assert not board.flash.exists("/lib")
    missing = board.mpremote("fs", "rm", ":nope", check=False)
    assert missing.returncode == 1
    assert "rm: nope: No such file or directory." in missing.stderr
    assert [name for name, _, _ in board.flash.walk()] == ["/"]


def test_soft_reset_reset_and_resume(board):
    board.mpremote("exec", "kept = 1")
    # resume: no soft reset on connect, so state survives
    assert board.mpremote("resume", "eval", "kept").stdout == "1\n"
    board.mpremote("soft-reset")
    result = board.mpremote("resume", "eval", "kept", check=False)
    assert "NameError: name 'kept' isn't defined" in result.stdout
    board.mpremote("reset")  # machine.reset(): exec --no-follow, then disconnect
    assert board.mpremote("eval", "1").stdout == "1\n"
    assert board.runtime.events.count("hard_reset") == 1
    assert board.runtime.events.count("soft_reset") >= 3  # one per mpremote connection


def test_connect_interrupts_running_main(board):
    board.flash.write_file("/main.py", b"import time\nprint('main')\nwhile True:\n"
                                       b"    time.sleep_ms(5)\n")
    # After the reset the board runs main.py, which never ends (and mpremote
    # does not wait for it: `reset` is `exec --no-follow machine.reset()`).
    board.mpremote("reset")
    # mpremote's Ctrl-C on connecting breaks into main.py, then the raw REPL works
    assert board.mpremote("eval", "'in raw repl'").stdout == "in raw repl\n"
    # main.py ran after the hard reset; the raw-REPL soft reset ran boot.py only
    assert board.runtime.events[-4:] == ["hard_reset", "boot+main", "soft_reset", "boot"]


def test_recursive_copy_tree_touch_and_df(board, tmp_path):
    src = tmp_path / "pkg"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("bb")
    board.mpremote("fs", "cp", "-r", str(src), ":")
    assert list(board.flash.walk()) == [("/", ["pkg"], []), ("/pkg", ["sub"], ["a.txt"]),
                                        ("/pkg/sub", [], ["b.txt"])]
    assert board.mpremote("fs", "tree", "-s").stdout == (
        "tree :\n:/\n└── pkg\n    ├── [        1]  a.txt\n    └── sub\n"
        "        └── [        2]  b.txt\n")
    board.mpremote("touch", ":t.txt", "+", "rm", "-r", ":pkg")
    assert list(board.flash.walk()) == [("/", [], ["t.txt"])]
    df = board.mpremote("df").stdout.splitlines()
    assert df[1].split()[:2] == ["<VfsLfs2>", str(64 * 4096)] and df[1].endswith(" /")

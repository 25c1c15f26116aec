"""The REPL engine against scripted input, byte for byte."""

import pytest

from myotone.emulator.flash import Flash
from myotone.emulator.mpy_errors import format_exception
from myotone.emulator.readline import continue_with_input
from myotone.emulator.repl import Repl
from simple_runtime import SimpleRuntime

BANNER = (b"MicroPython v1.29.0 on 2026-01-01; Raspberry Pi Pico with RP2040\r\n"
          b"Type \"help()\" for more information.\r\n")
RAW = b"raw REPL; CTRL-B to exit\r\n"


class MemUart:
    """Scripted input; input ends = emulator shutdown. A Ctrl-C next in the
    input while code runs (interrupt char set) is taken as an interrupt."""

    def __init__(self, data: bytes):
        self.data = list(data)
        self.out = bytearray()
        self.interrupt_char = -1

    def read_byte(self):
        return self.data.pop(0) if self.data else None

    def write(self, data: bytes) -> None:
        self.out += data

    def set_interrupt_char(self, char: int) -> None:
        self.interrupt_char = char

    def take_interrupt(self) -> bool:
        if self.interrupt_char == 3 and self.data[:1] == [3]:
            self.data.pop(0)
            return True
        return False


def run(data: bytes, flash: Flash | None = None):
    uart = MemUart(data)
    runtime = SimpleRuntime(uart, flash or Flash(block_count=32))
    Repl(uart, runtime).run()
    return bytes(uart.out), runtime


def friendly(data: bytes, flash=None) -> bytes:
    out, _ = run(data, flash)
    assert out.startswith(BANNER + b">>> ")
    return out[len(BANNER):]


def test_power_on_banner_and_prompt():
    assert run(b"")[0] == BANNER + b">>> "


def test_expression_echo_result_and_underscore():
    assert friendly(b"1+1\r_*10\r") == b">>> 1+1\r\n2\r\n>>> _*10\r\n20\r\n>>> "


def test_statement_prints_nothing_and_none_not_shown():
    assert friendly(b"x = 5\rNone\rprint(x)\r") == (
        b">>> x = 5\r\n>>> None\r\n>>> print(x)\r\n5\r\n>>> ")


def test_name_error_traceback():
    assert friendly(b"x\r") == (
        b">>> x\r\nTraceback (most recent call last):\r\n"
        b"  File \"<stdin>\", line 1, in <module>\r\n"
        b"NameError: name 'x' isn't defined\r\n>>> ")


def test_syntax_error_has_no_block_name():
    assert friendly(b"1 +\r") == (
        b">>> 1 +\r\nTraceback (most recent call last):\r\n"
        b"  File \"<stdin>\", line 1\r\nSyntaxError: invalid syntax\r\n>>> ")


@pytest.mark.parametrize("line, last", [
    (b"import nosuch", b"ImportError: no module named 'nosuch'"),
    (b"open('nope')", b"OSError: [Errno 2] ENOENT"),
    (b"1/0", b"ZeroDivisionError: divide by zero"),
    (b"1 + 'a'", b"TypeError: unsupported types for __add__: 'int', 'str'"),
    (b"None()", b"TypeError: 'NoneType' object isn't callable"),
    (b"{}['k']", b"KeyError: k"),
    (b"int('z')", b"ValueError: invalid syntax for integer with base 10"),
    (b"import os; os.mkdir('d'); open('d/f', 'w').close(); os.rmdir('d')", b"OSError: 39"),
    (b"raise ValueError", b"ValueError: "),
])
def test_common_errors_use_micropython_wording(line, last):
    out = friendly(line + b"\r")
    assert out.endswith(b"\r\n" + last + b"\r\n>>> ")


def test_block_with_auto_indent_and_backspace():
    # Enter after "print(i)" auto-indents; Backspace removes the 4 spaces at
    # once; Enter on the empty continuation line runs the block.
    out = friendly(b"for i in range(3):\rprint(i)\r\x08\r")
    assert out == (b">>> for i in range(3):\r\n...     print(i)\r\n...     "
                   b"\x08\x08\x08\x08\x1b[K\r\n0\r\n1\r\n2\r\n>>> ")


def test_block_ends_after_three_enters_on_auto_indented_lines():
    out = friendly(b"if 1:\rprint('a')\r\r\r\r")
    assert out == (b">>> if 1:\r\n...     print('a')\r\n...     \r\n...     \r\n... \r\n"
                   b"a\r\n>>> ")


def test_space_after_auto_indent_takes_over_indentation():
    out = friendly(b"for i in range(2):\r i\r\r")
    assert out == b">>> for i in range(2):\r\n...     \x08\x08\x08i\r\n... \r\n0\r\n1\r\n>>> "


def test_open_bracket_continues_line():
    assert friendly(b"(1 +\r2)\r") == b">>> (1 +\r\n... 2)\r\n3\r\n>>> "


def test_backspace_and_cursor_keys_edit_line():
    # "1+2", two backspaces, "3" -> "13"; then left arrow and insert "2" -> "123"
    out = friendly(b"1+2\x08\x083\x1b[D2\r")
    assert out.endswith(b"\r\n123\r\n>>> ")
    assert b"\x08\x1b[K" in out


def test_history_up_arrow_recalls_previous_line():
    assert friendly(b"6*7\r\x1b[A\r").endswith(b">>> 6*7\r\n42\r\n>>> ")


def test_ctrl_c_cancels_line_and_block():
    assert friendly(b"abc\x03") == b">>> abc\r\n>>> "
    assert friendly(b"for i in range(3):\r\x03") == (
        b">>> for i in range(3):\r\n...     \r\n>>> ")


def test_ctrl_b_prints_banner():
    assert friendly(b"\x02") == b">>> \r\n" + BANNER + b">>> "


def test_paste_mode_runs_as_file_and_prints_expressions():
    out = friendly(b"\x05def f():\r    return 5\r\rprint(f())\r2+2\r\x04")
    assert out == (b">>> \r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
                   b"def f():\r\n===     return 5\r\n=== \r\n=== print(f())\r\n=== 2+2\r\n=== "
                   b"\r\n5\r\n4\r\n>>> ")


def test_paste_mode_ctrl_c_cancels():
    assert friendly(b"\x05print(1)\x03").endswith(b"=== print(1)\r\n>>> ")


def test_traceback_lists_device_frames_only():
    out = friendly(b"\x05def f():\r    return 1/0\rf()\r\x04")
    assert out.endswith(b"Traceback (most recent call last):\r\n"
                        b"  File \"<stdin>\", line 3, in <module>\r\n"
                        b"  File \"<stdin>\", line 2, in f\r\n"
                        b"ZeroDivisionError: divide by zero\r\n>>> ")


def test_keyboard_interrupt_of_running_code():
    out = friendly(b"import time\rtime.sleep(30)\r\x03")
    assert out.endswith(b">>> time.sleep(30)\r\nTraceback (most recent call last):\r\n"
                        b"  File \"<stdin>\", line 1, in <module>\r\n"
                        b"KeyboardInterrupt: \r\n>>> ")


def test_ctrl_d_soft_reset_runs_boot_and_main():
    flash = Flash(block_count=32)
    flash.write_file("/boot.py", b"print('boot ran')\n")
    flash.write_file("/main.py", b"print('main ran')\n")
    out, runtime = run(b"x = 1\r\x04x\r", flash)
    assert out == (b"boot ran\r\nmain ran\r\n" + BANNER + b">>> x = 1\r\n>>> \r\n"
                   b"MPY: soft reboot\r\nboot ran\r\nmain ran\r\n" + BANNER
                   + b">>> x\r\nTraceback (most recent call last):\r\n"
                   b"  File \"<stdin>\", line 1, in <module>\r\n"
                   b"NameError: name 'x' isn't defined\r\n>>> ")
    assert runtime.events == ["boot+main", "soft_reset", "boot+main"]


def test_main_py_error_and_interrupt_go_to_repl():
    flash = Flash(block_count=32)
    flash.write_file("/main.py", b"import time\nprint('loop')\nwhile True:\n    time.sleep_ms(5)\n")
    out, _ = run(b"\x03", flash)
    assert out == (b"loop\r\nTraceback (most recent call last):\r\n"
                   b"  File \"main.py\", line 4, in <module>\r\nKeyboardInterrupt: \r\n"
                   + BANNER + b">>> ")


def test_raw_repl_exec_output_and_errors():
    out = friendly(b"\x01print(1)\x04x\x04\x02")
    assert out == (b">>> \r\n" + RAW + b">OK1\r\n\x04\x04>"
                   b"OK\x04Traceback (most recent call last):\r\n"
                   b"  File \"<stdin>\", line 1, in <module>\r\n"
                   b"NameError: name 'x' isn't defined\r\n\x04>\r\n" + BANNER + b">>> ")


def test_raw_repl_ctrl_c_clears_and_ctrl_a_reprints_header():
    out = friendly(b"\x01garbage\x03print(2)\x04\x01")
    assert out == b">>> \r\n" + RAW + b">OK2\r\n\x04\x04>" + RAW + b">"


def test_raw_repl_ctrl_d_soft_reset_skips_main():
    flash = Flash(block_count=32)
    flash.write_file("/boot.py", b"print('boot ran')\n")
    flash.write_file("/main.py", b"print('main ran')\n")
    out, runtime = run(b"\x01\x04print(3)\x04", flash)
    assert out == (b"boot ran\r\nmain ran\r\n" + BANNER + b">>> \r\n" + RAW + b">OK\r\n"
                   b"MPY: soft reboot\r\nboot ran\r\n" + RAW + b">OK3\r\n\x04\x04>")
    assert runtime.events == ["boot+main", "soft_reset", "boot"]


def test_sys_exit_soft_resets():
    out = friendly(b"import sys\rsys.exit()\r")
    assert out == (b">>> import sys\r\n>>> sys.exit()\r\n"
                   b"MPY: soft reboot\r\n" + BANNER + b">>> ")
    out = friendly(b"\x01import sys; sys.exit()\x04")
    assert out.endswith(b">OK\x04\x04MPY: soft reboot\r\n" + RAW + b">")


def test_machine_reset_reboots_without_soft_reboot_message():
    out, runtime = run(b"\x01import machine; machine.reset()\x04")
    assert out == BANNER + b">>> \r\n" + RAW + b">OK" + BANNER + b">>> "
    assert runtime.events == ["boot+main", "hard_reset", "boot+main"]


def test_raw_paste_flow_control():
    source = b"x = [\n" + b"    1,\n" * 60 + b"]\nprint(len(x))\n"  # > 2 windows
    out = friendly(b"\x01\x05A\x01" + source + b"\x04")
    start = out.index(RAW + b">") + len(RAW) + 1
    reply = out[start:]
    assert reply.startswith(b"R\x01\x80\x00\x01")  # 128-byte window, one free
    flow = reply[5:reply.index(b"\x04")]
    assert flow == b"\x01" * (len(source) // 128)
    assert reply.endswith(b"\x0460\r\n\x04\x04>")


def test_raw_paste_abort_with_ctrl_c_and_unknown_command():
    out = friendly(b"\x01\x05A\x01print(1)\x03\x05B\x01")
    assert out.endswith(b">R\x01\x80\x00\x01\x04\x04KeyboardInterrupt: \r\n\x04>R\x00>")


def test_raw_paste_error_output():
    out = friendly(b"\x01\x05A\x011/0\x04")
    assert out.endswith(b"R\x01\x80\x00\x01\x04\x04Traceback (most recent call last):\r\n"
                        b"  File \"<stdin>\", line 1, in <module>\r\n"
                        b"ZeroDivisionError: divide by zero\r\n\x04>")


@pytest.mark.parametrize("text, more", [
    ("x = 1", False), ("if x:", True), ("if x:\n    y\n", False), ("(1,", True),
    ("'''doc", True), ("s = ')'", False), ("a = \\", True), ("@dec", True),
    ("iffy = 1", False), ("print('(')", False), ('"""a"""', False), ("[1,\n2]", False),
])
def test_continue_with_input(text, more):
    assert continue_with_input(text) is more


def test_format_exception_oserror_and_host_frames():
    try:
        raise FileNotFoundError(2, "No such file or directory")
    except OSError as e:
        assert format_exception(e) == "OSError: [Errno 2] ENOENT\n"  # host frame dropped

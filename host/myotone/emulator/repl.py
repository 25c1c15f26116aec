"""MicroPython's REPL protocol over a byte stream.

A faithful model of `shared/runtime/pyexec.c` (friendly REPL, paste mode,
raw REPL, raw-paste mode) and of a bare-metal port's `main()` loop (boot.py
and main.py, "MPY: soft reboot"), as `mpremote` and a terminal see it.

The code itself runs in a `Runtime` supplied by the emulator; this module
only moves bytes and decides what to run when.
"""

from __future__ import annotations

from typing import Protocol

from .mpy_stdlib import MachineReset
from .readline import CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, LineEditor, continue_with_input

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_BANNER = b"paste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
SOFT_REBOOT = b"MPY: soft reboot\r\n"
PS1, PS2 = b">>> ", b"... "


class Uart(Protocol):
    def read_byte(self) -> int | None:
        """Block until a byte arrives; None when the emulator shuts down."""

    def write(self, data: bytes) -> None: ...


class Runtime(Protocol):
    banner_machine: str  # e.g. "Raspberry Pi Pico with RP2040"

    def exec_source(self, source: str, mode: str) -> object:
        """Run REPL code ("exec": raw REPL, "single": friendly REPL and
        paste mode, see `pyexec.compile_source`) in __main__; stdout goes to
        the Uart; raises whatever the code raises. While it runs, a Ctrl-C
        arriving on the Uart should raise KeyboardInterrupt in the code and
        not reach read_byte() (MicroPython's interrupt char); outside
        exec_source, Ctrl-C is an ordinary input byte for the REPL.
        SystemExit = soft reset, MachineReset = hard reset, Shutdown = stop."""

    def format_exception(self, exc: BaseException) -> str:
        """MicroPython's printout, "\\n" line ends (`mpy_errors.format_exception`)."""

    def soft_reset(self) -> None:
        """Deinit peripherals, clear __main__ and loaded modules."""

    def run_boot_and_main(self, run_main: bool = True) -> None:
        """Run /boot.py, then /main.py if `run_main` (a soft reset from the
        raw REPL runs boot.py only). Print exceptions; KeyboardInterrupt
        stops the script. Let SystemExit (soft reset) and MachineReset
        propagate."""

    # Optional: `hard_reset()` is called for machine.reset() when present,
    # otherwise soft_reset() stands in for it.


class Shutdown(BaseException):
    """The emulator is shutting down: `Repl.run()` returns.

    Raised when the Uart's read_byte() returns None; a Runtime may raise it
    too, e.g. from a sleep or a wait in device code, to stop a running
    program. A BaseException, so device code's `except Exception` lets it by.
    """


class _ForcedExit(Exception):
    """SystemExit or Ctrl-D: leave the REPL for a soft reset."""


class Repl:
    """Runs MicroPython's REPL on `uart`, executing code with `runtime`.

    `run()` is the whole life of the board from power-on: boot.py and
    main.py, the banner, the REPL; then, per soft reset, "MPY: soft reboot",
    `runtime.soft_reset()` and again boot.py (and main.py unless the reset
    came from the raw REPL). `stdin_buffer_max` sets the raw-paste window
    (half of it), 256 on most ports.
    """

    def __init__(self, uart: Uart, runtime: Runtime, *, version: str = "v1.29.0",
                 build_date: str = "2026-01-01", stdin_buffer_max: int = 256):
        self.uart = uart
        self.runtime = runtime
        self.version = version
        self.build_date = build_date
        self.raw_paste_window = stdin_buffer_max // 2
        self.raw_mode = False
        self.editor = LineEditor(self._write)

    # -- the port's main(): one pass per (soft or hard) reset ------------------
    def run(self) -> None:
        """Power on: boot.py, main.py, then the REPL, until the Uart closes."""
        try:
            while True:
                try:
                    self._boot_scripts()
                    while True:
                        if self.raw_mode:
                            self._raw_repl()
                        else:
                            self._friendly_repl()
                except _ForcedExit:
                    self._write(SOFT_REBOOT)
                    self.runtime.soft_reset()
                except MachineReset:
                    self.raw_mode = False
                    getattr(self.runtime, "hard_reset", self.runtime.soft_reset)()
        except Shutdown:
            return

    def banner(self) -> bytes:
        return ("MicroPython %s on %s; %s\r\nType \"help()\" for more information.\r\n"
                % (self.version, self.build_date, self.runtime.banner_machine)).encode()

    def _boot_scripts(self) -> None:
        try:
            self.runtime.run_boot_and_main(run_main=not self.raw_mode)
        except SystemExit:
            raise _ForcedExit from None

    # -- I/O ---------------------------------------------------------------------
    def _read(self) -> int:
        c = self.uart.read_byte()
        if c is None:
            raise Shutdown
        return c

    def _write(self, data: bytes) -> None:
        self.uart.write(data)

    def _write_text(self, text: str) -> None:
        """Text as MicroPython's cooked stdout sends it: "\\n" -> "\\r\\n"."""
        self._write(text.replace("\n", "\r\n").encode("utf-8", "replace"))

    def _readline(self, line: bytearray, prompt: bytes) -> int:
        self.editor.start(line, prompt)
        while True:
            ret = self.editor.process(self._read())
            if ret >= 0:
                return ret

    # -- execution (parse_compile_execute) -----------------------------------------
    def _execute(self, source: bytes | str, mode: str, raw: bool) -> None:
        """Run code; in raw mode frame output and errors with 0x04 bytes."""
        if isinstance(source, bytes):
            source = source.decode("utf-8", "replace")
        error: BaseException | None = None
        try:
            self.runtime.exec_source(source, mode)
        except SystemExit:
            if raw:
                self._write(b"\x04\x04")
            raise _ForcedExit from None
        except MachineReset:
            raise
        except (KeyboardInterrupt, Exception) as exc:
            error = exc
        self._finish(error, raw)

    def _finish(self, error: BaseException | None, raw: bool) -> None:
        if raw:
            self._write(b"\x04")
        if error is not None:
            self._write_text(self.runtime.format_exception(error))
        if raw:
            self._write(b"\x04")

    # -- friendly REPL (pyexec_friendly_repl) --------------------------------------
    def _friendly_repl(self) -> None:
        self._write(self.banner())
        while True:
            line = bytearray()
            ret = self._readline(line, PS1)
            mode = "single"
            if ret == CTRL_A:
                self._write(b"\r\n")
                self.raw_mode = True
                return
            if ret == CTRL_B:
                self._write(b"\r\n" + self.banner())
                continue
            if ret == CTRL_C:
                self._write(b"\r\n")
                continue
            if ret == CTRL_D:
                self._write(b"\r\n")
                raise _ForcedExit
            if ret == CTRL_E:
                if not self._paste_mode(line):
                    continue
            elif not line:
                continue
            elif not self._continuation(line):
                continue
            self._execute(bytes(line), mode, raw=False)

    def _continuation(self, line: bytearray) -> bool:
        """Read "... " lines while needed; False if Ctrl-C cancelled all."""
        while continue_with_input(line.decode("utf-8", "replace")):
            line += b"\n"
            ret = self._readline(line, PS2)
            if ret == CTRL_C:
                self._write(b"\r\n")
                return False
            if ret == CTRL_D:
                break
        return True

    def _paste_mode(self, line: bytearray) -> bool:
        """Collect a paste; False if Ctrl-C cancelled it."""
        self._write(b"\r\n" + PASTE_BANNER)
        while True:
            c = self._read()
            if c == CTRL_C:
                self._write(b"\r\n")
                return False
            if c == CTRL_D:
                self._write(b"\r\n")
                return True
            line.append(c)
            self._write(b"\r\n=== " if c == 0x0D else bytes([c]))

    # -- raw REPL (pyexec_raw_repl) --------------------------------------------------
    def _raw_repl(self) -> None:
        self._write(RAW_BANNER)
        line = bytearray()
        self._write(b">")
        while True:
            c = self._read()
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E:
                    self._raw_paste(line[1])
                else:
                    self._write(RAW_BANNER)
                line.clear()
                self._write(b">")
            elif c == CTRL_B:
                self._write(b"\r\n")
                self.raw_mode = False
                return
            elif c == CTRL_C:
                line.clear()
            elif c == CTRL_D:
                self._write(b"OK")
                if not line:
                    self._write(b"\r\n")
                    raise _ForcedExit
                self._execute(bytes(line), "exec", raw=True)
                line.clear()
                self._write(b">")
            else:
                line.append(c)

    def _raw_paste(self, command: int) -> None:
        """Raw-paste mode (do_reader_stdin): flow-controlled source upload."""
        if command != ord("A"):
            self._write(b"R\x00")
            return
        window = self.raw_paste_window
        self._write(b"R\x01" + bytes([window & 0xFF, window >> 8, 0x01]))
        remain = window
        source = bytearray()
        while True:
            c = self._read()
            if c in (CTRL_C, CTRL_D):
                self._write(b"\x04")  # end of data, acknowledged to the host
                if c == CTRL_C:  # raised inside the parser: no traceback lines
                    self._finish(KeyboardInterrupt(), raw=True)
                    return
                break
            remain -= 1
            if remain == 0:
                self._write(b"\x01")  # another window of data may be sent
                remain = window
            source.append(c)
        self._execute(bytes(source), "exec", raw=True)

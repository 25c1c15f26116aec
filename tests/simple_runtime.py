"""A small Runtime for the REPL tests: device code exec'd in a dict.

Builtins `open` and `print`, and the modules `os`, `sys`, `time`, ... are
the emulator's MicroPython-like ones; other device modules are imported
from the flash (/ and /lib), a few harmless host modules pass through.
Ctrl-C works as on a board: while code runs the Uart's interrupt character
is Ctrl-C, and `time.sleep*()` raises KeyboardInterrupt when it arrived.
"""

from __future__ import annotations

import builtins
import time

from myotone.emulator import mpy_stdlib
from myotone.emulator.flash import Flash, make_open, make_os_module, make_vfs_module
from myotone.emulator.mpy_errors import format_exception
from myotone.emulator.pyexec import REPL_PRINT, compile_source, make_repl_print, run_file_if_exists
from myotone.emulator.repl import Shutdown

HOST_MODULES = {"struct", "math", "json", "re", "collections", "io", "array"}


class InterruptibleClock(mpy_stdlib.HostClock):
    def __init__(self, runtime: "SimpleRuntime"):
        self.runtime = runtime

    def sleep_us(self, us: int) -> None:
        end = time.monotonic() + us / 1e6
        while True:
            self.runtime.check_interrupt()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.005))


class SimpleRuntime:
    banner_machine = "Raspberry Pi Pico with RP2040"

    def __init__(self, uart, flash: Flash):
        self.uart = uart
        self.flash = flash
        self.stdout = mpy_stdlib.UartStdout(uart.write)
        self.events: list[str] = []
        self._fresh()

    def _fresh(self) -> None:
        self.modules = mpy_stdlib.make_modules(self.stdout, InterruptibleClock(self))
        self.modules["os"] = make_os_module(self.flash)
        self.modules["vfs"] = make_vfs_module(self.flash)
        self.builtins = dict(vars(builtins))
        self.builtins.update(open=make_open(self.flash), print=mpy_stdlib.make_print(self.stdout),
                             __import__=self._import)
        self.builtins[REPL_PRINT] = make_repl_print(self.stdout.write, self.builtins)
        self.namespace = {"__name__": "__main__", "__builtins__": self.builtins}
        self.modules["sys"].modules = {}

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if name in self.modules:
            return self.modules[name]
        if name in HOST_MODULES:
            return builtins.__import__(name, globals, locals, fromlist, level)
        for path in ("/%s.py" % name, "/lib/%s.py" % name):
            if self.flash.exists(path):
                mod = type(builtins)(name)
                mod.__dict__["__builtins__"] = self.builtins
                self.modules[name] = mod
                self._run(compile_source(self.flash.read_file(path).decode(), "exec", path[1:]),
                          mod.__dict__)
                return mod
        raise ImportError("no module named '%s'" % name)

    # -- Ctrl-C ----------------------------------------------------------------------
    def check_interrupt(self) -> None:
        if getattr(self.uart, "closed", False):
            raise Shutdown
        if self.uart.take_interrupt():
            raise KeyboardInterrupt

    def _run(self, code, namespace) -> None:
        set_char = getattr(self.uart, "set_interrupt_char", None)
        if set_char:
            set_char(3)
        try:
            exec(code, namespace)
            self.check_interrupt()
        finally:
            if set_char:
                set_char(-1)

    # -- Runtime -----------------------------------------------------------------------
    def exec_source(self, source: str, mode: str) -> None:
        self._run(compile_source(source, mode), self.namespace)

    def format_exception(self, exc: BaseException) -> str:
        return format_exception(exc)

    def soft_reset(self) -> None:
        self.events.append("soft_reset")
        self.flash.cwd = "/"
        self._fresh()

    def hard_reset(self) -> None:
        self.events.append("hard_reset")
        self.flash.cwd = "/"
        self._fresh()

    def run_boot_and_main(self, run_main: bool = True) -> None:
        self.events.append("boot+main" if run_main else "boot")

        def read(path):
            return self.flash.read_file(path) if self.flash.exists(path) else None

        def error(exc):
            self.stdout.write(format_exception(exc))

        for path in ("boot.py", "main.py") if run_main else ("boot.py",):
            run_file_if_exists(path, read, lambda code: self._run(code, self.namespace), error)

"""Runs the unmodified firmware under CPython, one isolated world per instance.

Each instance has its own module table, its own builtins (``__import__``,
``open``, ``print``) and its own shims of the MicroPython modules, so
several emulators in one process share nothing. Firmware modules are loaded
from the instance's flash filesystem, as on a board. Only modules
MicroPython has are importable.
"""
from __future__ import annotations

import builtins
import threading
import traceback
import types

from .clock import EmulatorStopped
from .console import Console
from .machine_shim import make_machine_module
from .mcu import MachineReset, Mcu
from . import mpy_modules

# CPython modules close enough to MicroPython's to be used as they are.
_PASSTHROUGH = ("array", "struct", "math", "binascii", "errno", "collections", "re", "io",
                "hashlib", "random", "json")
_ALIASES = {"utime": "time", "usys": "sys", "uselect": "select", "uos": "os", "ujson": "json",
            "uarray": "array", "ustruct": "struct", "ubinascii": "binascii", "uerrno": "errno",
            "ucollections": "collections", "ure": "re", "uio": "io", "uhashlib": "hashlib",
            "urandom": "random"}


class SoftReset(BaseException):
    """machine.soft_reset() or Ctrl-D: restart the interpreter, keep the hardware."""


class Runtime:
    def __init__(self, mcu: Mcu, console: Console, fs):
        self.mcu = mcu
        self.clock = mcu.clock
        self.console = console
        self.fs = fs
        self.port = mcu.port
        self.banner_machine = ("Raspberry Pi Pico with RP2040" if self.port == "rp2"
                               else "Generic ESP32 module with ESP32")
        console.alive = mcu.check_alive
        mcu.irq_error = self._irq_error
        self.clock.check_hooks[:] = [console.check, mcu.check_alive]
        self.thread: threading.Thread | None = None
        self.reset_interpreter()

    # ---- interpreter state ----
    def reset_interpreter(self) -> None:
        self.modules: dict[str, types.ModuleType] = {}
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self._import
        self.builtins["open"] = self.fs.make_open()
        self.builtins["print"] = self._print
        self.builtins["input"] = None
        self.main_ns = {"__name__": "__main__", "__builtins__": self.builtins}

    def _factories(self):
        return {
            "machine": lambda: make_machine_module(self.mcu),
            "time": lambda: mpy_modules.make_time(self.clock),
            "micropython": lambda: mpy_modules.make_micropython(self),
            "sys": lambda: mpy_modules.make_sys(self),
            "select": lambda: mpy_modules.make_select(self.console, self.clock),
            "gc": mpy_modules.make_gc,
            "os": lambda: self.fs.make_os_module(),
        }

    def _create(self, name: str) -> types.ModuleType | None:
        factory = self._factories().get(name)
        if factory is not None:
            return factory()
        if name in _PASSTHROUGH:
            return __import__(name)
        if name in ("rp2", "esp32") and name == self.port:
            return mpy_modules.make_port_module(self, name)
        path = name.replace(".", "/")
        for base in ("", "/lib"):
            for candidate, is_pkg in ((f"{base}/{path}.py", False), (f"{base}/{path}/__init__.py", True)):
                source = self.fs.read_file(candidate)
                if source is not None:
                    return self._exec_module(name, candidate, source, is_pkg)
        return None

    def _exec_module(self, name, filename, source, is_pkg):
        mod = types.ModuleType(name)
        mod.__file__ = filename.lstrip("/")
        mod.__dict__["__builtins__"] = self.builtins
        if is_pkg:
            mod.__path__ = [filename.rsplit("/", 1)[0]]
        self.modules[name] = mod
        try:
            code = compile(source, filename.lstrip("/"), "exec", dont_inherit=True)
            exec(code, mod.__dict__)
        except BaseException:
            self.modules.pop(name, None)
            raise
        return mod

    def _load(self, name: str) -> types.ModuleType:
        name = _ALIASES.get(name, name)
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub in self.modules:
                continue
            mod = self._create(sub)
            if mod is None:
                raise ImportError(f"no module named '{sub}'")
            self.modules[sub] = mod
            if i > 1:
                setattr(self.modules[".".join(parts[:i - 1])], parts[i - 1], mod)
        return self.modules[name]

    def import_module(self, name: str) -> types.ModuleType:
        """Import a firmware module into this instance (tests use it for logic)."""
        return self._load(name)

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            pkg = (globals or {}).get("__name__", "")
            if "__path__" not in (globals or {}):
                pkg = pkg.rpartition(".")[0]
            for _ in range(level - 1):
                pkg = pkg.rpartition(".")[0]
            name = f"{pkg}.{name}" if name else pkg
        mod = self._load(name)
        if fromlist:
            for attr in fromlist:
                if attr != "*" and not hasattr(mod, attr) and hasattr(mod, "__path__"):
                    try:
                        self._load(f"{name}.{attr}")
                    except ImportError:
                        pass
            return mod
        return self.modules[_ALIASES.get(name, name).split(".")[0]]

    # ---- console output ----
    def write_text(self, text: str) -> None:
        self.console.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace"))

    def _print(self, *args, sep=" ", end="\n", file=None):
        text = sep.join(str(a) for a in args) + end
        if file is not None:
            file.write(text)
        else:
            self.write_text(text)

    def format_exception(self, exc: BaseException) -> str:
        lines = ["Traceback (most recent call last):\n"]
        for fs in traceback.extract_tb(exc.__traceback__):
            if fs.filename.startswith("<") or not fs.filename.endswith(".py") or "/myotone/emulator/" in fs.filename:
                if fs.filename != "<stdin>":
                    continue
            lines.append(f'  File "{fs.filename}", line {fs.lineno}, in {fs.name}\n')
        msg = str(exc)
        lines.append(f"{type(exc).__name__}: {msg}\n" if msg else f"{type(exc).__name__}: \n")
        return "".join(lines)

    def _irq_error(self, exc: BaseException) -> None:
        self.write_text("Uncaught exception in IRQ callback handler\n" + self.format_exception(exc))

    # ---- what the REPL needs ----
    def exec_source(self, source: str, mode: str = "exec"):
        code = compile(source, "<stdin>", mode, dont_inherit=True)
        self.console.interrupt_char = 3
        try:
            return exec(code, self.main_ns)
        finally:
            self.console.interrupt_char = -1

    def run_file(self, path: str) -> bool:
        """Run /boot.py or /main.py as MicroPython does; False if absent."""
        source = self.fs.read_file(path)
        if source is None:
            return False
        ns = {"__name__": "__main__", "__builtins__": self.builtins, "__file__": path.lstrip("/")}
        self.console.interrupt_char = 3
        try:
            exec(compile(source, path.lstrip("/"), "exec", dont_inherit=True), ns)
        except (SoftReset, MachineReset, EmulatorStopped):
            raise
        except BaseException as exc:     # KeyboardInterrupt included, as pyexec does
            self.write_text(self.format_exception(exc))
        finally:
            self.console.interrupt_char = -1
        return True

    def run_boot_and_main(self, run_main: bool = True) -> None:
        self.run_file("/boot.py")
        if run_main:
            self.run_file("/main.py")

    def soft_reset(self) -> None:
        self.mcu.soft_reset()
        self.reset_interpreter()
        self.write_text("MPY: soft reboot\n")

    # ---- the CPU ----
    def start(self, repl_factory) -> None:
        self.thread = threading.Thread(target=self._cpu, args=(repl_factory,), name="emu-cpu", daemon=True)
        self.thread.start()

    def _cpu(self, repl_factory) -> None:
        try:
            while True:
                try:
                    self.run_boot_and_main()
                    repl_factory(self).run()
                    return
                except SoftReset:
                    self.soft_reset()
                except MachineReset:
                    self.mcu.after_hard_reset()
                    self.reset_interpreter()
        except EmulatorStopped:
            pass
        finally:
            with self.clock._cond:
                self.clock.cpu_done = True
                self.clock._cond.notify_all()

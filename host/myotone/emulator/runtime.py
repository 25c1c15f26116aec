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
from .heap import Heap
from .repl_uart import ReplUart
from .console import Console
from .machine_shim import make_machine_module
from .mcu import POWER_OFF, MachineReset, Mcu
from . import mpy_errors, mpy_modules, mpy_stdlib, pyexec, vfs

# CPython modules close enough to MicroPython's to be used as they are.
_PASSTHROUGH = ("array", "struct", "math", "collections", "re", "io", "random", "json")
_ALIASES = {"utime": "time", "usys": "sys", "uselect": "select", "uos": "os", "ujson": "json",
            "uarray": "array", "ustruct": "struct", "ubinascii": "binascii", "uerrno": "errno",
            "ucollections": "collections", "ure": "re", "uio": "io", "uhashlib": "hashlib",
            "urandom": "random"}

_CODE: dict = {}          # (filename, source) -> code object; code is immutable, shared by instances
_CODE_MAX = 512


def compile_cached(source: bytes, filename: str) -> types.CodeType:
    """A firmware file's code object: every boot and soft reset imports the same sources,
    and compiling them all again costs ~0.1 s of CPU each time. Errors are not kept."""
    key = (filename, source)
    code = _CODE.get(key)
    if code is None:
        code = compile(source, filename, "exec", dont_inherit=True)
        if len(_CODE) >= _CODE_MAX:
            _CODE.clear()
        _CODE[key] = code
    return code


def _viper_pointer(buf):
    if isinstance(buf, int):
        raise TypeError("a viper pointer to an address has no meaning in the emulator")
    return buf


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
        self.heap = Heap(self.clock, lambda: self.mcu.plant)     # a fresh heap at every boot
        self.repl_uart = ReplUart() if self.port == "esp32" else None   # rp2: USB CDC
        self.builtins = dict(vars(builtins))
        self.builtins["__import__"] = self._import
        self.builtins["open"] = vfs.make_open(self.fs)
        self.builtins["print"] = self._print
        self.builtins["input"] = None
        # a @micropython.viper function runs here as Python: its ptr8/16/32(buf) casts give the
        # buffer itself, whose items are what the pointer reads (the firmware points them only at
        # its own arrays, never at an address: tools/typecheck_firmware.py)
        for cast in ("ptr8", "ptr16", "ptr32"):
            self.builtins[cast] = _viper_pointer
        self.builtins["__repl_print__"] = pyexec.make_repl_print(self.write_text, self.builtins)
        self.main_ns = {"__name__": "__main__", "__builtins__": self.builtins}

    def _factories(self):
        return {
            "machine": lambda: make_machine_module(self.mcu),
            "time": lambda: mpy_modules.make_time(self.clock, self.mcu),
            "micropython": lambda: mpy_modules.make_micropython(self),
            "sys": lambda: mpy_modules.make_sys(self),
            "select": lambda: mpy_modules.make_select(self.console, self.clock),
            "gc": self.heap.module,
            "os": lambda: vfs.make_os_module(self.fs),
            "vfs": lambda: vfs.make_vfs_module(self.fs),
            "hashlib": mpy_stdlib.make_hashlib_module,
            "binascii": mpy_stdlib.make_binascii_module,
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
                source = self.read_source(candidate)
                if source is not None:
                    return self._exec_module(name, candidate, source, is_pkg)
        return None

    def read_source(self, path: str) -> bytes | None:
        try:
            return self.fs.read_file(path)
        except OSError:
            return None

    def _exec_module(self, name, filename, source, is_pkg):
        mod = types.ModuleType(name)
        mod.__file__ = filename.lstrip("/")
        mod.__dict__["__builtins__"] = self.builtins
        if is_pkg:
            mod.__path__ = [filename.rsplit("/", 1)[0]]
        self.modules[name] = mod
        try:
            exec(compile_cached(source, filename.lstrip("/")), mod.__dict__)
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
    def console_tx(self, n_b: int) -> None:
        """The firmware writes `n_b` bytes to sys.stdout: on the ESP32 that blocks in C while the
        REPL UART's FIFO is full (repl_uart.py)."""
        if self.repl_uart is not None and not self.clock.in_interrupt:
            held = self.repl_uart.write(self.clock.now_ns, n_b)
            if held:
                self.clock.hold_soft(held)

    def write_text(self, text: str) -> None:
        self.console.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace"))

    def _print(self, *args, sep=" ", end="\n", file=None):
        text = sep.join(str(a) for a in args) + end
        if file is not None:
            file.write(text)
        else:
            self.write_text(text)

    def format_exception(self, exc: BaseException) -> str:
        return mpy_errors.format_exception(exc)

    def _irq_error(self, exc: BaseException) -> None:
        self.write_text("Uncaught exception in IRQ callback handler\n" + self.format_exception(exc))

    # ---- what the REPL needs ----
    def exec_source(self, source: str, mode: str = "exec"):
        code = pyexec.compile_source(source, mode)
        self.console.interrupt_char = 3
        try:
            return exec(code, self.main_ns)
        finally:
            self.console.interrupt_char = -1

    def run_file(self, path: str) -> bool:
        """Run /boot.py or /main.py as MicroPython does; False if absent."""
        source = self.read_source(path)
        if source is None:
            return False
        ns = {"__name__": "__main__", "__builtins__": self.builtins, "__file__": path.lstrip("/")}
        self.console.interrupt_char = 3
        try:
            exec(compile_cached(source, path.lstrip("/")), ns)
        except (SystemExit, mpy_stdlib.MachineReset, EmulatorStopped):
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
        """What a soft reset clears: peripherals the port deinitialises, the interpreter."""
        self.mcu.soft_reset()
        self.fs.cwd = "/"
        self.reset_interpreter()

    def hard_reset(self) -> None:
        """After a MachineReset has unwound the CPU: the MCU is at power-on.

        A power cut (fault power_loss, or the flash dying inside a write)
        holds the CPU here, unpowered, until the power returns; then the
        flash is mounted again from whatever image survived.
        """
        power_cut = self.mcu.pending_reset == POWER_OFF or not self.fs.powered
        if power_cut:
            self.mcu.pending_reset = POWER_OFF
            self.mcu.power_off()
        self.mcu.after_hard_reset()
        self.console.read_available(1 << 20)   # USB re-enumerates: unread input is gone
        if power_cut:
            self.clock.wait(1 << 62, lambda: self.power_wanted)
            self.fs = self.remount(self.fs)
            self.mcu.power_on()
        self.fs.cwd = "/"
        self.reset_interpreter()

    # the emulator sets these for power cuts (see board.Emulator)
    power_wanted = True
    remount = staticmethod(lambda fs: fs)

    # ---- the CPU ----
    def start(self, repl_factory) -> None:
        self.thread = threading.Thread(target=self._cpu, args=(repl_factory,), name="emu-cpu", daemon=True)
        self.thread.start()

    def _cpu(self, repl_factory) -> None:
        try:
            repl_factory(self).run()      # the whole life of the board, resets included
        except EmulatorStopped:
            pass
        finally:
            with self.clock._cond:
                self.clock.cpu_done = True
                self.clock._cond.notify_all()

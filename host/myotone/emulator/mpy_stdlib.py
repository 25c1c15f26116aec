"""Small MicroPython-like built-in modules for code run in the emulator.

Enough of `sys`, `hashlib`, `binascii`, `gc`, `time`, `machine`,
`micropython` and `errno` for firmware code and for what mpremote execs on
the device. Each `make_*` returns a fresh module object; a runtime puts them
where the device code's `import` finds them (`make_modules()` builds them
all at once). Time comes from a `Clock` so the emulator's virtual clock can
drive it; the default clock is the host's.
"""

from __future__ import annotations

import binascii as _binascii
import hashlib as _hashlib
import time as _time
from types import ModuleType
from typing import Callable, Protocol

from . import mpy_errno
from .mpy_errors import format_exception

TICKS_PERIOD = 1 << 30  # MICROPY_PY_TIME_TICKS_PERIOD
VERSION = (1, 29, 0, "")


class MachineReset(BaseException):
    """machine.reset(): the board reboots. Not an Exception, so firmware's
    `except Exception` does not swallow it; the REPL performs the reset."""


class Clock(Protocol):
    def ticks_us(self) -> int: ...          # monotonic microseconds
    def sleep_us(self, us: int) -> None: ...
    def time_ns(self) -> int: ...           # wall clock, ns since 1970


class HostClock:
    def ticks_us(self) -> int:
        return _time.monotonic_ns() // 1000

    def sleep_us(self, us: int) -> None:
        if us > 0:
            _time.sleep(us / 1e6)

    def time_ns(self) -> int:
        return _time.time_ns()


def _module(module_name: str, **attrs) -> ModuleType:
    mod = ModuleType(module_name)
    mod.__dict__.update(attrs)
    return mod


class UartStdout:
    """sys.stdout: text is cooked ("\\n" -> "\\r\\n"), `.buffer` is raw."""

    def __init__(self, write_bytes: Callable[[bytes], None]):
        self._write_bytes = write_bytes
        self.buffer = _module("buffer", write=self._write_raw)

    def _write_raw(self, data, n: int | None = None) -> int:
        data = bytes(data if n is None else memoryview(data)[:n])
        self._write_bytes(data)
        return len(data)

    def write(self, text) -> int:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace")
        self._write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        pass


def make_print(stdout) -> Callable:
    """The builtin print(), writing to `stdout` unless file= is given."""

    def print(*args, sep=" ", end="\n", file=None):  # noqa: A001
        (file or stdout).write((sep if sep is not None else " ").join(map(str, args))
                               + (end if end is not None else "\n"))

    return print


def make_sys_module(stdout: UartStdout, *, platform: str = "rp2",
                    machine: str = "Raspberry Pi Pico with RP2040",
                    build_date: str = "2026-01-01") -> ModuleType:
    impl = _module("implementation", name="micropython", version=VERSION,
                   _machine=machine, _mpy=0x0A06)

    def exit(code=None):
        raise SystemExit(code) if code is not None else SystemExit

    def print_exception(exc, file=None):
        (file or stdout).write(format_exception(exc))

    return _module(
        "sys", stdout=stdout, stderr=stdout, stdin=None, platform=platform,
        implementation=impl, version="3.4.0; MicroPython v%d.%d.%d on %s" % (
            VERSION[:3] + (build_date,)), version_info=(3, 4, 0),
        byteorder="little", maxsize=2**31 - 1, argv=[], path=["", ".frozen", "/lib"],
        modules={}, exit=exit, print_exception=print_exception)


class _Sha256:
    """MicroPython's hashlib.sha256: update() and digest() only; final."""

    def __init__(self, data=None):
        self._h = _hashlib.sha256()
        self._final = False
        if data is not None:
            self.update(data)

    def update(self, data) -> None:
        if self._final:
            raise ValueError("hash is final")
        self._h.update(data.encode() if isinstance(data, str) else bytes(data))

    def digest(self) -> bytes:
        if self._final:
            raise ValueError("hash is final")
        self._final = True
        return self._h.digest()


def make_hashlib_module() -> ModuleType:
    _Sha256.__name__ = "sha256"
    return _module("hashlib", sha256=_Sha256)


def make_binascii_module() -> ModuleType:
    def hexlify(data, sep=None):
        data = bytes(data)
        if sep is None:
            return _binascii.hexlify(data)
        sep = sep.encode() if isinstance(sep, str) else bytes(sep)
        return sep.join(b"%02x" % b for b in data)

    def b2a_base64(data, *, newline=True):
        return _binascii.b2a_base64(bytes(data), newline=newline)

    def a2b_base64(data):
        try:
            return _binascii.a2b_base64(data)
        except _binascii.Error:
            raise ValueError("incorrect padding") from None

    def unhexlify(data):
        try:
            return _binascii.unhexlify(data)
        except _binascii.Error:
            raise ValueError("odd-length string") from None

    return _module("binascii", hexlify=hexlify, unhexlify=unhexlify,
                   a2b_base64=a2b_base64, b2a_base64=b2a_base64,
                   crc32=lambda data, crc=0: _binascii.crc32(bytes(data), crc))


def make_gc_module(heap_bytes: int = 192 * 1024, used_bytes: int = 8 * 1024) -> ModuleType:
    """gc with plausible, constant numbers (host memory is not the board's)."""
    state = {"enabled": True}
    return _module(
        "gc", collect=lambda: None, mem_free=lambda: heap_bytes - used_bytes,
        mem_alloc=lambda: used_bytes, enable=lambda: state.update(enabled=True),
        disable=lambda: state.update(enabled=False),
        isenabled=lambda: state["enabled"], threshold=lambda *a: -1)


def make_time_module(clock: Clock | None = None, epoch_year: int = 1970) -> ModuleType:
    clock = clock or HostClock()
    epoch_offset = 0 if epoch_year == 1970 else 946684800  # 2000-01-01

    def ticks_us():
        return clock.ticks_us() % TICKS_PERIOD

    def ticks_add(ticks, delta):
        return (ticks + delta) % TICKS_PERIOD

    def ticks_diff(end, start):
        half = TICKS_PERIOD // 2
        return ((end - start + half) & (TICKS_PERIOD - 1)) - half

    def gmtime(secs=None):
        if secs is None:
            secs = clock.time_ns() // 1_000_000_000 - epoch_offset
        t = _time.gmtime(int(secs) + epoch_offset)
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                t.tm_wday, t.tm_yday)

    def mktime(tup):
        import calendar
        return calendar.timegm(tuple(tup[:6]) + (0, 0, 0)) - epoch_offset

    return _module(
        "time",
        sleep=lambda s: clock.sleep_us(int(s * 1_000_000)),
        sleep_ms=lambda ms: clock.sleep_us(int(ms) * 1000),
        sleep_us=lambda us: clock.sleep_us(int(us)),
        ticks_us=ticks_us, ticks_ms=lambda: clock.ticks_us() // 1000 % TICKS_PERIOD,
        ticks_cpu=ticks_us, ticks_add=ticks_add, ticks_diff=ticks_diff,
        time=lambda: clock.time_ns() // 1_000_000_000 - epoch_offset,
        time_ns=lambda: clock.time_ns() - epoch_offset * 1_000_000_000,
        gmtime=gmtime, localtime=gmtime, mktime=mktime)


def make_machine_module(freq_hz: int = 125_000_000, uid: bytes = b"\xe6\x61\x4c\x31\x13\x37\x5a\x2b",
                        clock: Clock | None = None) -> ModuleType:
    """Only the board-level calls; the emulator adds Pin, PWM, ADC, ..."""
    clock = clock or HostClock()

    def reset():
        raise MachineReset("machine.reset()")

    def soft_reset():
        raise SystemExit

    def bootloader(*args):
        raise MachineReset("machine.bootloader()")

    return _module(
        "machine", reset=reset, soft_reset=soft_reset, bootloader=bootloader,
        freq=lambda *hz: freq_hz if not hz else None, unique_id=lambda: uid,
        idle=lambda: None, reset_cause=lambda: 1, PWRON_RESET=1, WDT_RESET=3,
        disable_irq=lambda: 0, enable_irq=lambda state=0: None,
        lightsleep=lambda ms=0: clock.sleep_us(int(ms) * 1000),
        deepsleep=lambda ms=0: reset())


def make_micropython_module(kbd_intr: Callable[[int], None] | None = None,
                            schedule: Callable[[Callable, object], None] | None = None) -> ModuleType:
    return _module(
        "micropython", const=lambda x: x, opt_level=lambda *a: 0,
        kbd_intr=kbd_intr or (lambda c: None),
        schedule=schedule or (lambda fn, arg: fn(arg)),
        alloc_emergency_exception_buf=lambda n: None,
        mem_info=lambda *a: None, qstr_info=lambda *a: None,
        heap_lock=lambda: 0, heap_unlock=lambda: 0, native=lambda f: f,
        viper=lambda f: f)


def make_errno_module() -> ModuleType:
    names = {name: value for name, value in vars(mpy_errno).items()
             if name.startswith("E") and name.isupper() and isinstance(value, int)}
    return _module("errno", errorcode=dict(mpy_errno.ERRNO_NAMES), **names)


def make_modules(stdout: UartStdout, clock: Clock | None = None, **sys_kwargs) -> dict[str, ModuleType]:
    """All the modules above, keyed by import name."""
    return {
        "sys": make_sys_module(stdout, **sys_kwargs), "hashlib": make_hashlib_module(),
        "binascii": make_binascii_module(), "gc": make_gc_module(),
        "time": make_time_module(clock), "machine": make_machine_module(clock=clock),
        "micropython": make_micropython_module(), "errno": make_errno_module(),
    }

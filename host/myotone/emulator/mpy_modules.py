"""Per-instance shims of MicroPython's own modules: time, micropython, sys,
select, gc, and the port modules rp2 / esp32."""
from __future__ import annotations

import time as _time
import types

_TICKS_PERIOD = 1 << 30          # MicroPython's ticks wrap here
_TICKS_MASK = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD >> 1
# The RTC's power-on time (Unix seconds), as the ports leave it when nothing sets it:
# MicroPython's rp2 main.c starts it at 2021-01-01; an ESP32's starts at its epoch,
# 2000-01-01. (time.time() here counts from 1970 on both ports.)
RTC_POWER_ON_S = {"rp2": 1_609_459_200, "esp32": 946_684_800}


def _rtc_base_s(mcu) -> int:
    return RTC_POWER_ON_S[getattr(mcu, "port", "rp2")] + getattr(mcu, "rtc_offset_s", 0)


def rtc_now_s(clock, mcu=None) -> int:
    """The device's time.time(): the RTC's power-on time, plus what set it since, plus uptime."""
    return _rtc_base_s(mcu) + clock.now_ns // 1_000_000_000


def make_time(clock, mcu=None) -> types.ModuleType:
    t = types.ModuleType("time")
    t.ticks_ms = lambda: (clock.now_ns // 1_000_000) & _TICKS_MASK
    t.ticks_us = lambda: (clock.now_ns // 1_000) & _TICKS_MASK
    t.ticks_cpu = t.ticks_us
    t.ticks_add = lambda ticks, delta: (ticks + delta) & _TICKS_MASK
    t.ticks_diff = lambda a, b: ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF
    t.sleep_ms = lambda ms: clock.wait(clock.now_ns + int(ms) * 1_000_000)
    t.sleep_us = lambda us: clock.wait(clock.now_ns + int(us) * 1_000)
    t.sleep = lambda s: clock.wait(clock.now_ns + int(s * 1e9))
    t.time = lambda: rtc_now_s(clock, mcu)
    t.time_ns = lambda: _rtc_base_s(mcu) * 1_000_000_000 + clock.now_ns
    t.gmtime = lambda secs=None: _time.gmtime(t.time() if secs is None else secs)[:8]
    t.localtime = t.gmtime
    t.mktime = lambda tup: int(_time.mktime(tuple(tup[:8]) + (0,)) - _time.timezone)
    return t


def make_micropython(runtime) -> types.ModuleType:
    m = types.ModuleType("micropython")
    state = {"heap_locked": 0}
    m.const = lambda x: x
    m.native = m.viper = lambda f: f
    m.alloc_emergency_exception_buf = lambda n: None
    m.opt_level = lambda *a: 0

    def schedule(fn, arg):
        runtime.clock.schedule(runtime.clock.now_ns, lambda: fn(arg))
    m.schedule = schedule

    def kbd_intr(ch):
        runtime.console.interrupt_char = ch
    m.kbd_intr = kbd_intr

    def heap_lock():
        state["heap_locked"] += 1
        return state["heap_locked"] - 1

    def heap_unlock():
        state["heap_locked"] = max(0, state["heap_locked"] - 1)
        return state["heap_locked"]
    m.heap_lock, m.heap_unlock = heap_lock, heap_unlock
    m.mem_info = lambda *a: runtime.write_text("stack: 0\nGC: total: 196608, used: 0, free: 196608\n")
    m.qstr_info = lambda *a: None
    m.stack_use = lambda: 0
    return m


class _Stdout:
    def __init__(self, runtime):
        self._rt = runtime
        self.buffer = types.SimpleNamespace(write=self._write_raw)

    def write(self, text):
        self._rt.heap.wrote(text)        # the garbage the firmware made to say it (heap.py)
        self._rt.console_tx(len(text.encode("utf-8", "replace")))
        self._rt.write_text(text)
        return len(text)

    def _write_raw(self, data):
        data = bytes(data)
        self._rt.heap.wrote(data)
        self._rt.console_tx(len(data))
        self._rt.console.write(bytes(data))
        return len(data)

    def flush(self):
        pass


class _Stdin:
    def __init__(self, runtime):
        self._con = runtime.console
        self._clock = runtime.clock
        self.buffer = types.SimpleNamespace(read=self._read_bytes, readinto=self._readinto)

    def _read_bytes(self, n=1):
        out = bytearray()
        while len(out) < n:
            self._clock.wait(1 << 62, self._con.rx_ready)
            out += self._con.read_available(n - len(out))
        return bytes(out)

    def _readinto(self, buf):
        """Fill `buf` (blocking, like MicroPython's stdin); the number of bytes read."""
        data = self._read_bytes(len(buf))
        buf[:len(data)] = data
        return len(data)

    def read(self, n=1):
        return self._read_bytes(n).decode("utf-8", "replace")

    def readline(self):
        out = bytearray()
        while not out.endswith(b"\n"):
            out += self._read_bytes(1)
        return out.decode("utf-8", "replace")


def make_sys(runtime) -> types.ModuleType:
    s = types.ModuleType("sys")
    s.stdin = _Stdin(runtime)
    s.stdout = _Stdout(runtime)
    s.stderr = s.stdout
    s.platform = runtime.port
    s.implementation = types.SimpleNamespace(name="micropython", version=(1, 29, 0, ""),
                                             _machine=runtime.banner_machine, _mpy=0)
    s.version = "3.4.0; MicroPython v1.29.0 (emulated)"
    s.version_info = (3, 4, 0)
    s.byteorder = "little"
    s.maxsize = 2**31 - 1
    s.path = ["", ".frozen", "/lib"]
    s.modules = runtime.modules
    s.argv = []

    def exit(code=0):
        raise SystemExit(code)
    s.exit = exit
    s.print_exception = lambda exc, file=None: (file or s.stdout).write(runtime.format_exception(exc))
    return s


def make_select(console, clock) -> types.ModuleType:
    sel = types.ModuleType("select")
    sel.POLLIN, sel.POLLOUT, sel.POLLERR, sel.POLLHUP = 1, 4, 8, 16

    class Poll:
        def __init__(self):
            self._objs = {}

        def register(self, obj, mask=sel.POLLIN | sel.POLLOUT):
            self._objs[id(obj)] = (obj, mask)

        def unregister(self, obj):
            self._objs.pop(id(obj), None)

        def modify(self, obj, mask):
            self._objs[id(obj)] = (obj, mask)

        def _ready(self):
            out = []
            for obj, mask in self._objs.values():
                ev = (sel.POLLIN if console.rx_ready() else 0) | sel.POLLOUT
                if ev & mask:
                    out.append((obj, ev & mask))
            return out

        def _waiter(self):
            """What clock.wait asks after every event: as cheap as the registrations allow."""
            masks = [mask for _, mask in self._objs.values()]
            if any(mask & sel.POLLOUT for mask in masks):
                return lambda: True
            if any(mask & sel.POLLIN for mask in masks):
                return console.rx_ready
            return lambda: False

        def poll(self, timeout=-1):
            ready = self._ready()
            if ready or timeout == 0:
                return ready
            until = (1 << 62) if timeout is None or timeout < 0 else clock.now_ns + int(timeout) * 1_000_000
            clock.wait(until, self._waiter())
            return self._ready()

        def ipoll(self, timeout=-1, flags=0):
            return iter(self.poll(timeout))

    sel.poll = Poll
    return sel



def make_port_module(runtime, name: str) -> types.ModuleType:
    """rp2 / esp32: filled by the PIO and RMT models where present."""
    mod = types.ModuleType(name)
    try:
        from . import port_modules
    except ImportError:
        return mod
    return port_modules.build(runtime, name, mod)

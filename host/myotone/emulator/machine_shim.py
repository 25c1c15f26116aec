"""`machine` for the firmware, per emulator instance, as the ports document it.

Port differences that the firmware must respect are reproduced (the I/O
classes are in `machine_io`): rp2 has only the virtual timer -1 and accepts
``hard=True``; esp32 has hardware timers 0..3 and refuses ``hard``; a
started WDT cannot be stopped (no ``deinit``; only a reset, or the RP2040's
CTRL register through ``mem32``, ends it); timers and PWM keep running
after Ctrl-C until deinitialised or soft-reset; `machine.freq()` accepts
what the port accepts.
"""
from __future__ import annotations

import types

from .heap import SCHEDULER_DEPTH
from .machine_io import make_io
from .mcu import (BROWNOUT_RESET, DEEPSLEEP_RESET, HARD_RESET, PWRON_RESET, SOFT_RESET,
                  WDT_RESET, MachineReset, Mcu)

_ESP32_FREQS = (20_000_000, 40_000_000, 80_000_000, 160_000_000, 240_000_000)


def make_machine_module(mcu: Mcu) -> types.ModuleType:
    clock = mcu.clock
    port = mcu.port
    m = types.ModuleType("machine")

    class Timer:
        ONE_SHOT, PERIODIC = 0, 1

        def __init__(self, id=-1, **kw):
            if port == "rp2" and id != -1:
                raise ValueError("Timer doesn't exist")
            if port == "esp32" and id not in (0, 1, 2, 3):
                raise ValueError("invalid Timer number")
            self._event = None
            self._hard = False
            if kw:
                self.init(**kw)

        def init(self, *, mode=1, freq=None, period=-1, tick_hz=1000, callback=None, **kw):
            hard = kw.pop("hard", None)
            if hard is not None and port == "esp32":
                raise TypeError("unexpected keyword argument 'hard'")
            if kw:
                raise TypeError("unexpected keyword argument '%s'" % next(iter(kw)))
            self.deinit()
            if freq is not None and freq > 0:
                period_ns = round(1e9 / freq)
            elif period > 0:
                period_ns = int(period) * 1_000_000_000 // tick_hz
            else:
                raise ValueError("period or freq required")
            self._mode, self._period_ns, self._cb = mode, max(1000, period_ns), callback
            self._hard = bool(hard)
            self._start_ns = clock.now_ns
            self._n = 0
            mcu.timers.append(self)
            self._arm()

        def _arm(self):
            self._n += 1       # absolute deadlines: start + n x period, no drift
            t_ns = self._start_ns + self._n * self._period_ns
            if self._event is None:
                self._event = clock.schedule(t_ns, self._fire)
            else:              # periodic: the event that just ran goes back in the queue
                clock.reschedule(self._event, t_ns)

        def _fire(self):
            if self._mode == Timer.PERIODIC:
                self._arm()
            else:
                self._event = None
                if self in mcu.timers:
                    mcu.timers.remove(self)
            if self._cb is None:
                return
            if not self._hard and clock.soft_held_until_ns > clock.now_ns:
                # a garbage collection runs: MicroPython queues the callback (heap.py) and
                # runs it once the collection ends, if the scheduler's queue had room
                if clock.soft_deferred < SCHEDULER_DEPTH:
                    clock.soft_deferred += 1
                    clock.schedule(clock.soft_held_until_ns, self._run_deferred)
                else:
                    clock.soft_dropped += 1     # the queue is full: this call is lost
                return
            cost = mcu.cost
            if cost is not None and self._period_ns == cost.tick_period_ns:   # the supervisor tick, charged:
                start = max(clock.now_ns, clock.busy_until_ns)   # after the tick still running, if any
                if start > clock.now_ns and clock.tick_start_ns > clock.now_ns:
                    return                  # one tick already waits for the CPU: this one is lost
                clock.tick_start_ns = start
                on = bool(mcu.plant.hv_on)
                end = start + cost.tick_ns(on)
                clock.busy_until_ns = end
                # it reads the ADC this far in, and its outputs take effect at its end
                clock.schedule(start + cost.sample_ns[on], lambda: self._run(end))
                return
            self._run(0)

        def _run_deferred(self):
            clock.soft_deferred -= 1
            self._run(0)

        def _run(self, effects_at_ns):
            if self._cb is None:
                return
            clock.effects_at_ns = effects_at_ns
            try:
                self._cb(self)
            except (MachineReset, KeyboardInterrupt):
                raise
            except Exception as exc:    # as MicroPython: report, disable this callback
                self.deinit()
                mcu.irq_error(exc)
            finally:
                clock.effects_at_ns = 0

        def deinit(self):
            if self._event is not None:
                self._event.cancel()
                self._event = None
            if self in mcu.timers:
                mcu.timers.remove(self)

    class WDT:
        def __init__(self, id=0, timeout=5000):
            if port == "rp2":
                if id != 0:
                    raise ValueError("WDT(%d) doesn't exist" % id)
                if timeout > 8388:
                    raise ValueError("timeout exceeds 8388")
            else:
                if id != 0:
                    raise ValueError()
                if timeout <= 0:
                    raise ValueError("WDT timeout too short")
            mcu.wdt_start(timeout)

        def feed(self):
            mcu.wdt_feed()

    class _Mem:
        """machine.mem32: only the RP2040 watchdog CTRL register is modelled."""
        _WDT_CTRL, _ENABLE = 0x40058000, 1 << 30

        def __getitem__(self, addr):
            if port == "rp2" and addr == self._WDT_CTRL:
                return self._ENABLE if mcu.wdt_deadline is not None else 0
            return 0

        def __setitem__(self, addr, value):
            if port == "rp2" and addr == self._WDT_CTRL and not value & self._ENABLE:
                mcu.wdt_stop()

    def freq(hz=None, *rest):
        if hz is None:
            return mcu.cpu_hz
        if port == "esp32" and hz not in _ESP32_FREQS:
            raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
        if port == "rp2" and not 10_000_000 <= hz <= 300_000_000:
            raise ValueError("cannot change frequency")
        mcu.cpu_hz = hz

    def reset():
        mcu.hard_reset(HARD_RESET)

    def soft_reset():
        raise SystemExit()          # as the ports do: the REPL soft-resets

    state = {"irq": True}

    def disable_irq():
        old, state["irq"] = state["irq"], False
        return old

    def enable_irq(old=True):
        state["irq"] = old

    def idle():
        nxt = clock.next_event_ns()
        clock.wait(nxt if nxt is not None else clock.now_ns + 1_000_000)

    def lightsleep(ms=None):
        clock.wait(clock.now_ns + (ms if ms is not None else 1 << 40) * 1_000_000)

    class RTC:
        """datetime() reads or sets (year, month, day, weekday, hours, minutes, seconds,
        subseconds) in UTC, as `mpremote rtc --set` does; time.time() follows it."""

        def __init__(self, id=0):
            pass

        def datetime(self, dt=None):
            import calendar
            import time as host_time
            from .mpy_modules import rtc_now_s
            now = rtc_now_s(clock, mcu)
            if dt is None:
                y, mo, d, h, mi, s, wd = host_time.gmtime(now)[:7]
                return (y, mo, d, wd, h, mi, s, 0)
            y, mo, d, _wd, h, mi, s = tuple(dt)[:7]
            mcu.rtc_offset_s += calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - now

    for name, cls in make_io(mcu).items():
        setattr(m, name, cls)
    m.Timer, m.WDT, m.RTC, m.mem32 = Timer, WDT, RTC, _Mem()
    m.reset, m.soft_reset, m.idle, m.lightsleep, m.freq = reset, soft_reset, idle, lightsleep, freq
    m.disable_irq, m.enable_irq = disable_irq, enable_irq
    m.reset_cause = lambda: mcu.reset_cause
    m.unique_id = lambda: bytes(mcu.unique_id)
    m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET = PWRON_RESET, HARD_RESET, WDT_RESET
    m.DEEPSLEEP_RESET, m.SOFT_RESET = DEEPSLEEP_RESET, SOFT_RESET
    if port == "esp32":
        m.BROWNOUT_RESET = BROWNOUT_RESET
    return m

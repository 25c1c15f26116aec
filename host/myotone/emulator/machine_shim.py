"""`machine` for the firmware, per emulator instance, as the ports document it.

Port differences that the firmware must respect are reproduced: rp2 has no
DAC; esp32 DAC codes outside 0..255 raise ValueError; rp2 timers accept
``hard=True`` and esp32 timers refuse it; a started WDT cannot be stopped.
"""
from __future__ import annotations

import types

from .mcu import (BROWNOUT_RESET, DEEPSLEEP_RESET, HARD_RESET, PWRON_RESET, SOFT_RESET,
                  WDT_RESET, MachineReset, Mcu)


def make_machine_module(mcu: Mcu) -> types.ModuleType:
    clock = mcu.clock
    m = types.ModuleType("machine")

    class Pin:
        IN, OUT, OPEN_DRAIN, ALT = 0, 1, 2, 3
        PULL_UP, PULL_DOWN = 1, 2
        IRQ_FALLING, IRQ_RISING = 4, 8

        def __init__(self, id, mode=-1, pull=-1, *, value=None, **kw):
            if not isinstance(id, int):
                raise ValueError("invalid pin")
            self.id = id
            self._mode = None
            self.init(mode, pull, value=value)

        def init(self, mode=-1, pull=-1, *, value=None, **kw):
            if mode != -1:
                self._mode = mode
                for p in list(mcu.pwms):          # GPIO function takes the pin back from PWM
                    if p.pin_id == self.id:
                        p.deinit()
            if value is not None:
                mcu.drive(self.id, value)

        def value(self, v=None):
            if v is None:
                return mcu.level(self.id)
            mcu.drive(self.id, v)

        __call__ = value

        def on(self):
            mcu.drive(self.id, 1)

        def off(self):
            mcu.drive(self.id, 0)

        high, low = on, off

        def __repr__(self):
            return f"Pin({self.id})"

    class ADC:
        def __init__(self, pin, *args, **kw):
            self.pin_id = pin.id if isinstance(pin, Pin) else pin
            if mcu.port == "rp2" and isinstance(pin, int) and 0 <= pin <= 4:
                self.pin_id = 26 + pin            # rp2 ADC channel numbers
        def read_u16(self):
            mcu.check_alive()
            return mcu.adc_u16(self.pin_id)
        if mcu.port == "esp32":
            ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3
            def atten(self, a):
                pass
            def read(self):
                return self.read_u16() >> 4

    class PWM:
        def __init__(self, pin, *, freq=1000, duty_u16=0, **kw):
            self.pin_id = pin.id
            self._freq = freq
            self._duty = duty_u16
            for p in list(mcu.pwms):              # one PWM per pin: the new one takes over
                if p.pin_id == self.pin_id:
                    mcu.pwms.remove(p)
            mcu.pwms.append(self)
            mcu.pwm_event(self, True)
        def freq(self, f=None):
            if f is None:
                return self._freq
            self._freq = f
            mcu.pwm_event(self, self in mcu.pwms)
        def duty_u16(self, d=None):
            if d is None:
                return self._duty
            if not 0 <= d <= 65535:
                raise ValueError("duty_u16 must be from 0 to 65535")
            mcu.check_alive()
            self._duty = d
            mcu.pwm_event(self, self in mcu.pwms)
        def deinit(self):
            self._duty = 0
            if self in mcu.pwms:
                mcu.pwms.remove(self)
            mcu.pwm_event(self, False)

    class I2C:
        def __init__(self, id, *, scl=None, sda=None, freq=400000, **kw):
            self.bus = id
        def scan(self):
            return sorted(a for (b, a) in mcu.i2c_devices if b == self.bus)
        def writeto(self, addr, buf, stop=True):
            mcu.check_alive()
            dev = mcu.i2c_devices.get((self.bus, addr))
            if dev is None:
                raise OSError(19)                 # ENODEV, as the ports report a NACK
            dev.write(bytes(buf))
            return len(buf)

    class Timer:
        ONE_SHOT, PERIODIC = 0, 1

        def __init__(self, id=-1, **kw):
            if mcu.port == "rp2" and id != -1:
                raise ValueError("Timer doesn't exist")
            if mcu.port == "esp32" and id not in (0, 1, 2, 3):
                raise ValueError("invalid Timer number")
            self._event = None
            if kw:
                self.init(**kw)

        def init(self, *, mode=1, freq=-1, period=-1, callback=None, **kw):
            hard = kw.pop("hard", None)
            if hard is not None and mcu.port == "esp32":
                raise TypeError("unexpected keyword argument 'hard'")
            if kw:
                raise TypeError("unexpected keyword argument '%s'" % next(iter(kw)))
            self.deinit()
            if freq > 0:
                period_ns = round(1e9 / freq)
            elif period > 0:
                period_ns = int(period) * 1_000_000
            else:
                raise ValueError("period or freq required")
            self._mode, self._period_ns, self._cb = mode, period_ns, callback
            self._start_ns = clock.now_ns
            self._n = 0
            mcu.timers.append(self)
            self._arm()

        def _arm(self):
            self._n += 1       # absolute deadlines: start + n x period, no drift
            self._event = clock.schedule(self._start_ns + self._n * self._period_ns, self._fire)

        def _fire(self):
            if self._mode == Timer.PERIODIC:
                self._arm()
            else:
                self._event = None
                if self in mcu.timers:
                    mcu.timers.remove(self)
            if self._cb is not None:
                try:
                    self._cb(self)
                except (MachineReset, KeyboardInterrupt):
                    raise
                except Exception as exc:    # as MicroPython: report, disable this callback
                    self.deinit()
                    mcu.irq_error(exc)

        def deinit(self):
            if self._event is not None:
                self._event.cancel()
                self._event = None
            if self in mcu.timers:
                mcu.timers.remove(self)

    class WDT:
        def __init__(self, id=0, timeout=5000):
            if mcu.port == "rp2" and timeout > 8388:
                raise ValueError("timeout exceeds 8388 ms")
            mcu.wdt_start(timeout)
        def feed(self):
            mcu.wdt_feed()

    if mcu.port == "esp32":
        class DAC:
            def __init__(self, pin, *a, **kw):
                if pin.id not in (25, 26):
                    raise ValueError("invalid Pin for DAC")
            def write(self, value):
                if not 0 <= value <= 255:
                    raise ValueError("value out of range")
                mcu.set_dac(value)
        m.DAC = DAC

    def reset():
        mcu.hard_reset(HARD_RESET)

    class _Mem:
        """machine.mem32: only the RP2040 watchdog CTRL register is modelled."""
        _WDT_CTRL, _ENABLE = 0x40058000, 1 << 30

        def __getitem__(self, addr):
            if mcu.port == "rp2" and addr == self._WDT_CTRL:
                return self._ENABLE if mcu.wdt_deadline is not None else 0
            return 0

        def __setitem__(self, addr, value):
            if mcu.port == "rp2" and addr == self._WDT_CTRL and not value & self._ENABLE:
                mcu.wdt_stop()
    m.mem32 = _Mem()

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

    m.Pin, m.ADC, m.PWM, m.I2C, m.Timer, m.WDT = Pin, ADC, PWM, I2C, Timer, WDT
    m.reset, m.soft_reset, m.idle = reset, soft_reset, idle
    m.disable_irq, m.enable_irq = disable_irq, enable_irq
    m.reset_cause = lambda: mcu.reset_cause
    m.unique_id = lambda: bytes(mcu.unique_id)
    m.freq = lambda *a: 125_000_000 if mcu.port == "rp2" else 160_000_000
    m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET = PWRON_RESET, HARD_RESET, WDT_RESET
    m.DEEPSLEEP_RESET, m.SOFT_RESET = DEEPSLEEP_RESET, SOFT_RESET
    if mcu.port == "esp32":
        m.BROWNOUT_RESET = BROWNOUT_RESET
    return m

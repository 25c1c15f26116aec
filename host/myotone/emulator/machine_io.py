"""`machine` I/O classes (Pin, PWM, ADC, DAC, I2C) for one MCU, as the ports document them.

Port differences reproduced: rp2 has no DAC and ADC only on GPIO26-29
(channels 0-3); esp32 ADC1/ADC2 pins, attenuation (0 dB by default),
`read()` / `read_uv()` / `width()`; esp32 DAC on GPIO25/26 with codes 0..255
(ValueError outside); rp2 I2C pin multiplexing; esp32 PWM `duty()` (10
bit). PWM keeps running until `deinit()` or a soft reset; the DAC holds its
value through a soft reset.
"""
from __future__ import annotations

from .adc import esp32_raw_to_mv, u16_from_raw

_RP2_ADC_PINS = (26, 27, 28, 29)
_ESP32_ADC_PINS = (36, 37, 38, 39, 32, 33, 34, 35, 4, 0, 2, 15, 13, 12, 14, 27, 25, 26)
_RP2_I2C_SDA = ((0, 4, 8, 12, 16, 20, 24, 28), (2, 6, 10, 14, 18, 22, 26))
_RP2_I2C_SCL = ((1, 5, 9, 13, 17, 21, 25, 29), (3, 7, 11, 15, 19, 23, 27))


def _pin_id(pin) -> int:
    return pin if isinstance(pin, int) else pin.id


def make_io(mcu):
    """Pin, ADC, PWM, I2C (and DAC on esp32) bound to `mcu`."""
    port = mcu.port

    class Pin:
        IN, OUT, OPEN_DRAIN, ALT = 0, 1, 2, 3
        PULL_UP, PULL_DOWN = 1, 2
        IRQ_FALLING, IRQ_RISING = 4, 8

        def __init__(self, id, mode=-1, pull=-1, *, value=None, **kw):
            if not isinstance(id, int) or not 0 <= id < (30 if port == "rp2" else 40):
                raise ValueError("invalid pin")
            self.id = id
            self.init(mode, pull, value=value)

        def init(self, mode=-1, pull=-1, *, value=None, **kw):
            if value is not None:
                mcu.drive(self.id, value)
            if mode != -1:
                for p in list(mcu.pwms):          # GPIO function takes the pin back from PWM
                    if p.pin_id == self.id:
                        p.deinit()
                mcu.modes[self.id] = mode
            if pull != -1:
                mcu.pulls[self.id] = pull

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

        def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, hard=False, **kw):
            if handler is None:
                mcu.pin_irqs.pop(self.id, None)
            else:
                mcu.pin_irqs[self.id] = (handler, trigger, self)

        if port == "rp2":
            def toggle(self):
                mcu.drive(self.id, 1 - mcu.level(self.id))

        def __repr__(self):
            return "Pin(GPIO%d)" % self.id if port == "rp2" else "Pin(%d)" % self.id

    class ADC:
        if port == "esp32":
            ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3
            WIDTH_9BIT, WIDTH_10BIT, WIDTH_11BIT, WIDTH_12BIT = 9, 10, 11, 12

        def __init__(self, pin, *, atten=None, **kw):
            if port == "rp2":
                if isinstance(pin, int) and 0 <= pin <= 4:
                    pin = 26 + pin                # rp2 ADC channel numbers
                if _pin_id(pin) not in _RP2_ADC_PINS:
                    raise ValueError("Pin doesn't have ADC capabilities")
            elif _pin_id(pin) not in _ESP32_ADC_PINS:
                raise ValueError("invalid pin")
            self.pin_id = _pin_id(pin)
            if port == "esp32":
                self.init(atten=atten)

        def read_u16(self):
            return mcu.adc_u16(self.pin_id)

        if port == "esp32":
            def init(self, *, atten=None):
                if atten is not None:
                    self.atten(atten)
                else:
                    mcu.adc_atten.setdefault(self.pin_id, 0)

            def atten(self, a):
                if a not in (0, 1, 2, 3):
                    raise ValueError("invalid atten")
                mcu.adc_atten[self.pin_id] = a

            def width(self, bits):
                if bits not in (9, 10, 11, 12):
                    raise ValueError("invalid bit-width")
                mcu.adc_bits = bits

            def read(self):
                return mcu.adc_raw(self.pin_id)

            def read_uv(self):
                raw12 = mcu.adc_raw(self.pin_id) << (12 - mcu.adc_bits)
                return esp32_raw_to_mv(raw12, mcu.adc_atten.get(self.pin_id, 0)) * 1000

        def __repr__(self):
            return "ADC(Pin(%d))" % self.pin_id

    class PWM:
        def __init__(self, pin, freq=None, duty_u16=None, *, duty_ns=None, duty=None, **kw):
            self.pin_id = _pin_id(pin)
            for p in list(mcu.pwms):              # one PWM per pin
                if p.pin_id == self.pin_id:
                    p.deinit()
            self._freq = 1000 if freq is None else freq
            self._duty = 0
            mcu.pwms.append(self)
            self.init(duty_u16=duty_u16, duty_ns=duty_ns, duty=duty)
            mcu.pwm_event(self, True)             # the LED model follows its pin (peripherals.py)

        def init(self, *, freq=None, duty_u16=None, duty_ns=None, duty=None, **kw):
            if freq is not None:
                self.freq(freq)
            if duty_u16 is not None:
                self.duty_u16(duty_u16)
            elif duty_ns is not None:
                self.duty_ns(duty_ns)
            elif duty is not None and port == "esp32":
                self.duty(duty)

        def freq(self, f=None):
            if f is None:
                return self._freq
            if f <= 0:
                raise ValueError("freq too small")
            self._freq = f
            mcu.pwm_event(self, self in mcu.pwms)

        def duty_u16(self, d=None):
            if d is None:
                return self._duty
            if not 0 <= d <= 65535:
                raise ValueError("duty_u16 must be from 0 to 65535")
            self._set(d)

        def duty_ns(self, ns=None):
            period_ns = 1_000_000_000 // self._freq
            if ns is None:
                return self._duty * period_ns // 65535
            self._set(min(65535, max(0, ns * 65535 // period_ns)))

        if port == "esp32":
            def duty(self, d=None):
                if d is None:
                    return self._duty >> 6
                self._set(min(1023, max(0, d)) * 65535 // 1023)

        def _set(self, d):
            mcu.check_alive()
            self._duty = d
            mcu.pwm_event(self, self in mcu.pwms)
            if mcu.board["dac"]["kind"] == "pwm" and mcu.board["dac"]["pin"] == self.pin_id:
                mcu.set_dac(d)                    # the RC-filtered PWM is the DAC

        def deinit(self):
            if self in mcu.pwms:
                mcu.pwms.remove(self)
                if self._duty and mcu.board["dac"]["kind"] == "pwm" and mcu.board["dac"]["pin"] == self.pin_id:
                    mcu.plant.dac_code = 0
                    mcu.plant.changed(mcu.clock.now_ns)
            self._duty = 0
            mcu.pwm_event(self, False)

    class I2C:
        def __init__(self, id, *, scl=None, sda=None, freq=400000, **kw):
            if id not in (0, 1):
                raise ValueError("I2C(%s) doesn't exist" % id)
            if port == "rp2":
                if sda is not None and _pin_id(sda) not in _RP2_I2C_SDA[id]:
                    raise ValueError("bad SDA pin")
                if scl is not None and _pin_id(scl) not in _RP2_I2C_SCL[id]:
                    raise ValueError("bad SCL pin")
            self.bus = id
            self.freq = freq

        def _dev(self, addr):
            mcu.check_alive()
            dev = mcu.i2c_devices.get((self.bus, addr))
            if dev is None:
                raise OSError(5 if port == "rp2" else 19)     # EIO / ENODEV: nobody ACKed
            return dev

        def scan(self):
            return sorted(a for (b, a) in mcu.i2c_devices if b == self.bus)

        def writeto(self, addr, buf, stop=True):
            self._dev(addr).write(bytes(buf))
            return len(buf)

        def writevto(self, addr, vector, stop=True):
            return self.writeto(addr, b"".join(bytes(v) for v in vector), stop)

        def readfrom(self, addr, nbytes, stop=True):
            return self._dev(addr).read(nbytes)

        def readfrom_into(self, addr, buf, stop=True):
            buf[:] = self.readfrom(addr, len(buf))

    io = {"Pin": Pin, "ADC": ADC, "PWM": PWM, "I2C": I2C, "SoftI2C": I2C}
    if port == "esp32":
        class DAC:
            def __init__(self, pin, bits=8, **kw):
                if _pin_id(pin) not in (25, 26):
                    raise ValueError("invalid Pin for DAC")
                self.pin_id = _pin_id(pin)

            def write(self, value):
                if not 0 <= value <= 255:
                    raise ValueError("value out of range")
                if mcu.board["dac"]["kind"] == "esp32" and mcu.board["dac"]["pin"] == self.pin_id:
                    mcu.set_dac(value)
                else:
                    mcu.check_alive()
        io["DAC"] = DAC
    return io


__all__ = ["make_io", "u16_from_raw"]

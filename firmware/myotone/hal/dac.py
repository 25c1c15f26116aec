# DAC drivers. Each takes its bus or pin object from the caller and offers
# `write(code)`, `check()` and `max_code`. Nothing but myotone.output.Output
# calls write(): that is where every code is clamped to the limit. check()
# raises OSError when the DAC does not answer (an I2C DAC off its bus) and
# changes nothing; it allocates nothing.
import micropython
from micropython import const

_MCP4725_FAST_WRITE = const(0x00)   # fast-mode command, power-down bits 00


class Mcp4725:
    """Microchip MCP4725 12-bit I2C DAC (RP2040 reference board)."""

    max_code = 4095

    def __init__(self, i2c, addr=0x60):
        self._i2c = i2c
        self._writeto = i2c.writeto     # bound once: the tick writes through it
        self._addr = addr
        self._buf = bytearray(2)
        self._status = bytearray(3)     # a read: status byte and DAC register

    @micropython.viper
    def write(self, code):
        c = int(code)
        buf = self._buf
        b = ptr8(buf)
        b[0] = _MCP4725_FAST_WRITE | ((c >> 8) & 0x0F)
        b[1] = c & 0xFF
        self._writeto(self._addr, buf)

    def check(self):
        """Read the status and DAC register: OSError if nobody answers (NACK)."""
        self._i2c.readfrom_into(self._addr, self._status)


class Esp32Dac:
    """ESP32 / ESP32-S2 internal 8-bit DAC (machine.DAC, codes 0..255)."""

    max_code = 255

    def __init__(self, dac):
        self._dac = dac

    def write(self, code):
        self._dac.write(code)

    def check(self):
        """On the chip: it cannot leave a bus."""


class PwmDac:
    """PWM + RC filter fallback: duty_u16 as a 16-bit code."""

    max_code = 65535

    def __init__(self, pwm):
        self._pwm = pwm

    def write(self, code):
        self._pwm.duty_u16(code)

    def check(self):
        """On the chip: it cannot leave a bus."""

# ESP32 / ESP32-S2 internal 8-bit DAC, built from its pin. Only these chips
# have machine.DAC, so this file is type-checked for the esp32 port only
# (tools/firmware_ports.json) and board.check() refuses it elsewhere.
import machine
from myotone.hal.dac import Esp32Dac


def make(pin_id):
    return Esp32Dac(machine.DAC(machine.Pin(pin_id)))

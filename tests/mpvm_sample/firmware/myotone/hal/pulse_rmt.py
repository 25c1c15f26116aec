# esp32 only: RMT peripheral; timer callbacks on esp32 are always soft.
import esp32
from machine import Pin, Timer


class RmtOutput:
    def __init__(self, pin):
        self.rmt = esp32.RMT(0, pin=Pin(pin), clock_div=80)
        self.timer = Timer(0)

    def start(self, train):
        self.timer.init(mode=Timer.PERIODIC, freq=1000, callback=train.step)

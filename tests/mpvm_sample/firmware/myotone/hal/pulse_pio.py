# rp2 only: the pulse train is clocked by a hard Timer IRQ (MicroPython >= 1.26).
import rp2
from machine import Pin, Timer


@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def _blink():
    set(pins, 1)
    set(pins, 0)


class PioOutput:
    def __init__(self, pin):
        self.sm = rp2.StateMachine(0, _blink, freq=2000, set_base=Pin(pin))
        self.timer = Timer(-1)  # rp2 accepts Timer(), but the 1.29 stubs require the id

    def start(self, train):
        self.sm.active(1)
        self.timer.init(mode=Timer.PERIODIC, freq=1000, callback=train.step, hard=True)

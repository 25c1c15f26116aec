# Port-neutral hal: only machine APIs both rp2 and esp32 have.
from machine import PWM, Pin, Timer


class LedPwm:
    def __init__(self, pin):
        self.pwm = PWM(Pin(pin), freq=1000, duty_u16=0)

    def set_level(self, level_u16):
        self.pwm.duty_u16(level_u16)


def start_ticker(callback, freq_hz):
    # Soft callback: valid on both ports.
    return Timer(-1, mode=Timer.PERIODIC, freq=freq_hz, callback=callback)

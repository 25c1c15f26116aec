# Safe state from the board file alone, before the supervisor exists: used
# by boot.py, and by main.py's `finally` when the supervisor never got built.
# The DAC is zeroed through Output, the only code that writes it.
import machine
from myotone import board as board_mod


def _leds_off(board):
    """LED PWMs survive a soft reset on some ports: zero and release them, pins low."""
    from myotone.hardware import led_pins_low
    led = board["led"]
    for key in ("red_pin", "nir_pin"):
        if key in led:
            try:
                pwm = machine.PWM(machine.Pin(led[key]), freq=led["pwm_hz"], duty_u16=0)
                pwm.deinit()
            except Exception:
                pass
    led_pins_low(board)


def enter(board=None):
    if board is None:
        board = board_mod.load()
    from myotone.hardware import make_dac
    from myotone.hal.bridge import HBridge
    from myotone.output import Output
    Pin = machine.Pin
    hv = Pin(board["hv_enable"], Pin.OUT, value=0)
    bridge = HBridge(Pin(board["bridge"]["pol_a"], Pin.OUT, value=0),
                     Pin(board["bridge"]["pol_b"], Pin.OUT, value=0))
    try:
        Output(make_dac(board), bridge, hv, board_mod.full_scale_ua(board), board["limit_ua"])
    except Exception:
        pass   # DAC absent, I2C stuck, any error: bridge and rail are already off, the LEDs next
    _leds_off(board)
    if "status_led_pin" in board:
        Pin(board["status_led_pin"], Pin.OUT, value=0)

# Safe state from the board file alone, before any driver exists: used by
# boot.py, and by main.py's `finally` when the supervisor never got built.
import machine
from myotone import board as board_mod


def enter(board=None):
    if board is None:
        board = board_mod.load()
    Pin = machine.Pin
    for pin in (board["hv_enable"], board["bridge"]["pol_a"], board["bridge"]["pol_b"]):
        Pin(pin, Pin.OUT, value=0)
    d = board["dac"]
    if d["kind"] == "mcp4725":
        i2c = machine.I2C(d["i2c_id"], sda=Pin(d["sda"]), scl=Pin(d["scl"]), freq=400000)
        try:
            i2c.writeto(d.get("addr", 0x60), b"\x00\x00")
        except OSError:
            pass   # DAC absent or bus stuck: the bridge is already off
    elif d["kind"] == "esp32":
        machine.DAC(Pin(d["pin"])).write(0)   # holds its value through soft reset
    else:
        Pin(d["pin"], Pin.OUT, value=0)

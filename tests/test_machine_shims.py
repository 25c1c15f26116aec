"""`machine`, `time` and `micropython` on the emulated ports behave as the ports document.

Each test runs real MicroPython-style code through the raw REPL of a bare
board (nothing on its flash), in lockstep virtual time.
"""
import pytest

from emu_repl import RawRepl
from myotone.emulator.mcu import HARD_RESET, PWRON_RESET, WDT_RESET


@pytest.fixture
def rp2():
    r = RawRepl("pico-mcp4725")
    yield r
    r.close()


@pytest.fixture
def esp32():
    r = RawRepl("esp32-devkit")
    yield r
    r.close()


def error(repl, code):
    out, err = repl.exec(code)
    return err.strip().splitlines()[-1] if err else None


# ---- DAC -----------------------------------------------------------------------

def test_esp32_dac_refuses_codes_outside_0_255_and_holds_through_soft_reset(esp32):
    assert error(esp32, "import machine\nd = machine.DAC(machine.Pin(25))\nd.write(256)") \
        == "ValueError: value out of range"
    assert error(esp32, "d.write(-1)") == "ValueError: value out of range"
    assert error(esp32, "machine.DAC(machine.Pin(4))") == "ValueError: invalid Pin for DAC"
    esp32.exec("d.write(200)")
    assert esp32.emu.plant.dac_code == 200
    esp32.soft_reset()
    assert esp32.emu.plant.dac_code == 200           # the ESP32 DAC keeps driving
    esp32.reset()
    assert esp32.emu.plant.dac_code == 0             # a hard reset does clear it


def test_rp2_has_no_dac(rp2):
    assert rp2.value("hasattr(__import__('machine'), 'DAC')") is False


# ---- WDT -------------------------------------------------------------------------

def test_a_started_wdt_cannot_be_stopped_not_even_by_soft_reset(rp2):
    assert error(rp2, "import machine\nmachine.WDT(timeout=9000)") == "ValueError: timeout exceeds 8388"
    assert error(rp2, "machine.WDT(1)") == "ValueError: WDT(1) doesn't exist"
    rp2.exec("w = machine.WDT(timeout=500)")
    assert rp2.value("hasattr(w, 'deinit') or hasattr(w, 'stop')") is False
    rp2.exec("w.feed()")
    rp2.soft_reset()
    rp2.emu.run_for(0.6)
    assert rp2.emu.mcu.resets[-1][1] == WDT_RESET
    rp2.enter()
    assert rp2.value("__import__('machine').reset_cause()") == WDT_RESET


def test_esp32_wdt_refuses_a_zero_timeout(esp32):
    assert error(esp32, "import machine\nmachine.WDT(timeout=0)") == "ValueError: WDT timeout too short"


# ---- Timer, PWM and Ctrl-C ---------------------------------------------------------

def test_timers_and_pwm_keep_running_after_ctrl_c_until_a_soft_reset(rp2):
    rp2.exec("import machine, time\nn = [0]\n"
             "t = machine.Timer(-1)\nt.init(freq=1000, callback=lambda _: n.__setitem__(0, n[0] + 1))\n"
             "p = machine.PWM(machine.Pin(15), freq=1000, duty_u16=30000)")
    rp2.start("while True:\n    time.sleep_ms(10)\n", dt=0.1)
    _, err = rp2.interrupt()
    assert "KeyboardInterrupt" in err
    before = rp2.value("n[0]")
    rp2.emu.run_for(0.1)
    assert rp2.value("n[0]") - before >= 99           # the timer still ticks at 1 kHz
    assert rp2.value("p.duty_u16()") == 30000 and len(rp2.emu.mcu.pwms) == 1
    rp2.soft_reset()                                   # what the port deinitialises
    assert rp2.emu.mcu.timers == [] and rp2.emu.mcu.pwms == []


def test_the_firmware_stops_its_timers_and_pulses_after_ctrl_c(emu):
    emu.send({"id": 1, "cmd": "start", "program": "lift", "ua": 300})
    emu.run_for(3)
    assert emu.mcu.timers and emu.plant.trace.max_abs_ua > 250
    emu.write(b"\x03")
    emu.run_for(0.1)
    t = emu.clock.now_ns
    emu.run_for(1)
    assert emu.mcu.timers == [] and emu.plant.current_ua() == 0
    assert all(i == 0 for tt, i in zip(emu.plant.trace.t_ns, emu.plant.trace.i_ua) if tt > t)


def test_rp2_timer_takes_hard_and_esp32_timer_refuses_it(rp2, esp32):
    assert error(rp2, "import machine\nt = machine.Timer(-1)\n"
                      "t.init(freq=100, callback=lambda _: None, hard=True)\nt.deinit()") is None
    assert error(rp2, "machine.Timer(0)") == "ValueError: Timer doesn't exist"
    assert error(esp32, "import machine\nmachine.Timer(0).init(freq=100, callback=print, hard=True)") \
        == "TypeError: unexpected keyword argument 'hard'"
    assert error(esp32, "machine.Timer(-1)") == "ValueError: invalid Timer number"


def test_soft_reset_keeps_gpio_levels_and_drops_pin_irqs(rp2):
    rp2.exec("import machine\nmachine.Pin(15, machine.Pin.OUT, value=1)\n"
             "machine.Pin(24, machine.Pin.IN).irq(lambda p: None)")
    assert rp2.emu.mcu.pin_irqs
    rp2.soft_reset()
    assert rp2.emu.mcu.levels[15] == 1 and rp2.emu.mcu.pin_irqs == {}


# ---- ADC, I2C, Pin ----------------------------------------------------------------

def test_adc_pins_resolution_and_esp32_attenuation(rp2, esp32):
    assert error(rp2, "import machine\nmachine.ADC(machine.Pin(5))") \
        == "ValueError: Pin doesn't have ADC capabilities"
    raw = rp2.value("machine.ADC(2).read_u16()")             # channel 2 = GPIO28, the thermistor
    truth = rp2.emu.plant.thermistor_v() / 3.3 * 65535
    assert abs(raw - truth) < 6 * 16 and raw & 0xF == raw >> 12   # 12 bits, read_u16 scaling
    # esp32: a channel starts at 0 dB and saturates near 1 V; 11 dB reads the 1.37 V divider
    esp32.exec("import machine")
    assert esp32.value("machine.ADC(machine.Pin(32)).read()") == 4095
    uv = esp32.value("machine.ADC(machine.Pin(32), atten=machine.ADC.ATTN_11DB).read_uv()")
    assert abs(uv / 1e6 - esp32.emu.plant.thermistor_v()) < 0.005
    assert error(esp32, "machine.ADC(machine.Pin(5))") == "ValueError: invalid pin"


def test_i2c_finds_the_dac_and_checks_its_pins(rp2):
    assert rp2.value("__import__('machine').I2C(0, sda=__import__('machine').Pin(4), "
                     "scl=__import__('machine').Pin(5)).scan()") == [0x60]
    assert error(rp2, "import machine\nmachine.I2C(0, sda=machine.Pin(2), scl=machine.Pin(5))") \
        == "ValueError: bad SDA pin"
    assert error(rp2, "machine.I2C(2)") == "ValueError: I2C(2) doesn't exist"
    assert error(rp2, "machine.I2C(0).writeto(0x61, b'xx')") == "OSError: [Errno 5] EIO"
    rp2.exec("machine.I2C(0).writeto(0x60, bytes([0x01, 0x00]))")
    assert rp2.emu.plant.dac_code == 0x100


# ---- reset_cause, unique_id, freq ----------------------------------------------------

def test_reset_cause_unique_id_and_freq(rp2, esp32):
    assert rp2.value("__import__('machine').reset_cause()") == PWRON_RESET
    assert len(rp2.value("__import__('machine').unique_id()")) == 8
    assert len(esp32.value("__import__('machine').unique_id()")) == 6
    assert rp2.value("__import__('machine').freq()") == 125_000_000
    assert esp32.value("__import__('machine').freq()") == 160_000_000
    assert error(esp32, "import machine\nmachine.freq(100_000_000)").startswith("ValueError")
    esp32.exec("machine.freq(240_000_000)")
    assert esp32.value("machine.freq()") == 240_000_000
    rp2.reset()
    assert rp2.emu.mcu.resets[-1][1] == HARD_RESET


# ---- time and micropython -------------------------------------------------------------

def test_time_runs_on_the_virtual_clock_and_ticks_wrap_as_on_the_ports(rp2):
    t0 = rp2.emu.clock.now_ns
    out, err = rp2.exec("import time\na = time.ticks_us()\ntime.sleep_ms(250)\n"
                        "print(time.ticks_diff(time.ticks_us(), a))", dt=0.3)
    assert not err and 250_000 <= int(out) <= 250_100
    assert rp2.emu.clock.now_ns - t0 >= 250_000_000
    assert rp2.value("time.ticks_add(2**30 - 1, 1)") == 0
    assert rp2.value("time.ticks_diff(0, 2**30 - 1)") == 1


def test_micropython_schedule_and_const(rp2):
    rp2.exec("import micropython\nseen = []\nmicropython.schedule(seen.append, micropython.const(7))")
    rp2.emu.run_for(0.01)
    assert rp2.value("seen") == [7]

# Builds every hardware object from the board file -- the one module of the
# app layer that imports `machine` -- and knows how to return all of it to
# the safe state: DAC 0, bridge off, LED PWMs zeroed and deinitialised, HV
# rail off, and every timer and pulse back-end deinitialised (they keep
# running after Ctrl-C otherwise).
import machine
from micropython import const
from myotone.hal.bridge import HBridge
from myotone.hal.oc_latch import OcLatch
from myotone.hal.sense import Sense
from myotone.output import Output
from myotone.led import Led
from myotone.board import full_scale_ua, nir_enabled
from myotone import limits, thermal
from myotone import calib as calib_mod

_RP2040_WATCHDOG_CTRL = const(0x40058000)
_RP2040_WATCHDOG_ENABLE = const(1 << 30)

_RESET_CAUSES = (
    ("WDT_RESET", "watchdog"),
    ("BROWNOUT_RESET", "brownout"),
    ("HARD_RESET", "hard"),
    ("DEEPSLEEP_RESET", "deepsleep"),
    ("SOFT_RESET", "soft"),
    ("PWRON_RESET", "power_on"),
)


def reset_cause():
    cause = machine.reset_cause()
    for name, text in _RESET_CAUSES:
        if getattr(machine, name, None) == cause:
            return text
    return "unknown"


def unit_id():
    """machine.unique_id() in hex: the flash chip's ID (rp2, 8 bytes) or the MAC (esp32, 6)."""
    return "".join("%02x" % b for b in machine.unique_id())


def make_adc(board, pin):
    """An ADC on `pin` over the sense circuits' range (see hal/adc_esp32.py)."""
    if board["mcu"] == "esp32":
        from myotone.hal import adc_esp32
        return adc_esp32.make(pin)
    return machine.ADC(pin)


def make_dac(board):
    d = board["dac"]
    if d["kind"] == "mcp4725":
        from myotone.hal.dac import Mcp4725
        i2c = machine.I2C(d["i2c_id"], sda=machine.Pin(d["sda"]), scl=machine.Pin(d["scl"]), freq=400000)
        return Mcp4725(i2c, d.get("addr", 0x60))
    if d["kind"] == "esp32":
        from myotone.hal import dac_esp32
        return dac_esp32.make(d["pin"])
    from myotone.hal.dac import PwmDac
    return PwmDac(machine.PWM(machine.Pin(d["pin"]), freq=d.get("pwm_hz", 100000), duty_u16=0))


def make_pulse(board, bridge):
    p = board["pulse"]
    kind = p["backend"]
    if kind == "timer":
        from myotone.hal.pulse_timer import TimerPulse
        return TimerPulse(machine.Timer(p["timer_id"]), bridge.pin_a, bridge.pin_b,
                          p["tick_us"], p.get("hard", False), p.get("min_phase_us", p["tick_us"]))
    if kind == "pio":
        from myotone.hal.pulse_pio import PioPulse
        return PioPulse(p.get("sm_id", 0), bridge.pin_a, bridge.pin_b, p.get("min_phase_us", 20),
                        machine.disable_irq, machine.enable_irq)
    if kind == "rmt":
        from myotone.hal.pulse_rmt import RmtPulse
        return RmtPulse(bridge.pin_a, bridge.pin_b, p.get("channels", (0, 1)), p.get("dead_us", 200))
    raise ValueError("unknown pulse back-end " + kind)


def make_led(board):
    """The LED PWMs. A NIR channel without eye shields is held low, never driven."""
    led = board["led"]
    Pin = machine.Pin
    red = machine.PWM(Pin(led["red_pin"]), freq=led["pwm_hz"], duty_u16=0)
    nir = None
    if nir_enabled(board):
        nir = machine.PWM(Pin(led["nir_pin"]), freq=led["pwm_hz"], duty_u16=0)
    elif "nir_pin" in led:
        Pin(led["nir_pin"], Pin.OUT, value=0)
    therm = board["thermistor"]
    return Led(red, nir, led["red_mw_cm2_at_100"], led.get("nir_mw_cm2_at_100", 0),
               limits.BOOKKEEPING_HZ, thermal.raw_for_c(therm, limits.LED_DERATE_C),
               thermal.raw_for_c(therm, limits.OVER_TEMP_C))


def led_pins_low(board):
    """Every LED pin as a GPIO driven low (after the PWMs are released)."""
    Pin = machine.Pin
    for key in ("red_pin", "nir_pin"):
        if key in board["led"]:
            Pin(board["led"][key], Pin.OUT, value=0)


class _Both:
    """One soft timer for both ticks (ports without hard timers); allocates nothing.

    The bookkeeping runs on slow_hz of every hz calls, spread evenly (a phase accumulator):
    exactly slow_hz a second even where hz is no multiple of it (1000 Hz, 400 Hz)."""

    def __init__(self, fast, slow, hz, slow_hz):
        self._fast = fast
        self._slow = slow
        self._hz = hz
        self._slow_hz = slow_hz
        self._acc = 0

    def run(self, timer):
        self._fast(timer)
        acc = self._acc + self._slow_hz
        if acc >= self._hz:
            acc -= self._hz
            self._acc = acc
            self._slow(timer)
        else:
            self._acc = acc


class Hardware:
    def __init__(self, board, calib=None, calib_source="default"):
        self.board = board
        self.reset_cause = reset_cause()
        self.unit_id = unit_id()
        Pin = machine.Pin
        self.hv = Pin(board["hv_enable"], Pin.OUT, value=0)
        b = board["bridge"]
        self.bridge = HBridge(Pin(b["pol_a"], Pin.OUT, value=0), Pin(b["pol_b"], Pin.OUT, value=0))
        self.dac = make_dac(board)
        ol = board["oc_latch"]         # the over-current latch (docs/hardware.md, U10-U13)
        self.oc_latch = OcLatch(Pin(ol["q_pin"], Pin.IN), Pin(ol["clear_pin"], Pin.OUT, value=0),
                                Pin(ol["test_pin"], Pin.OUT, value=0))
        self.output = Output(self.dac, self.bridge, self.hv, full_scale_ua(board), board["limit_ua"], self.oc_latch)
        s = board["sense"]
        adc_i = make_adc(board, Pin(s["current_adc"]))
        adc_v = make_adc(board, Pin(s["voltage_adc"]))
        calibrated = board["mcu"] == "esp32"      # the ESP32 ADC is not linear: read_uv()
        self.sense = Sense(adc_i, adc_v, s["r_sense_ohm"], s["divider"], s["adc_vref_mv"], calibrated,
                           s.get("bias_mv", 0) > 0)
        # the polarity comparators (FLOW_A: current E1 -> E2, FLOW_B: E2 -> E1; docs/hardware.md)
        self.flow_a = Pin(s["flow_a_pin"], Pin.IN)
        self.flow_b = Pin(s["flow_b_pin"], Pin.IN)
        self.pulse = make_pulse(board, self.bridge)
        self.vbus = Pin(board["vbus_pin"], Pin.IN)
        self._adc_temp = make_adc(board, Pin(board["thermistor"]["adc"]))
        if calibrated:
            from myotone.hal.adc_esp32 import RatiometricCode
            self._adc_temp = RatiometricCode(self._adc_temp)
        self.led = make_led(board)
        self.button = Pin(board["button_pin"], Pin.IN, Pin.PULL_UP) if "button_pin" in board else None
        self.status_led = Pin(board["status_led_pin"], Pin.OUT, value=0) if "status_led_pin" in board else None
        self._tick_timer = machine.Timer(board["supervisor"]["timer_id"])
        self._slow_timer = None
        self._wdt = None
        self.set_calibration(calib if calib is not None else calib_mod.identity(), calib_source)

    def set_calibration(self, cal, source="file"):
        """Apply a checked calibration (calib.check) to the output and the sense."""
        self.output.calibrate(cal["dac_gain"], cal["dac_offset_ua"])
        self.sense.calibrate(cal["adc_gain"], cal["adc_offset_ua"])
        self.calib = cal
        self.calib_source = source

    def set_rtc(self, datetime):
        """Set the calendar clock: machine.RTC().datetime()'s tuple (clock.rtc_tuple)."""
        machine.RTC().datetime(datetime)

    def read_temp_raw(self):
        """The thermistor as a read_u16() code of a ratiometric 3.3 V ADC (thermal.py's scale)."""
        return self._adc_temp.read_u16()

    def start_ticks(self, fast, slow, slow_hz):
        """The fast path at supervisor.hz and the bookkeeping tick at `slow_hz`.

        rp2 (MicroPython >= 1.26): the fast path is a hard timer interrupt (neither the GC nor
        a busy main loop delays it), the bookkeeping a soft timer. The ESP32 has soft timers
        only (a hard Timer raises): one timer runs the fast path and, on slow_hz of every hz
        calls, the bookkeeping (docs/safety.md: how its bounds still hold)."""
        hz = self.board["supervisor"]["hz"]
        Timer = machine.Timer
        if self.board["mcu"] == "rp2040":
            self._tick_timer.init(freq=hz, mode=Timer.PERIODIC, callback=fast, hard=True)
            self._slow_timer = Timer(-1)
            self._slow_timer.init(freq=slow_hz, mode=Timer.PERIODIC, callback=slow)
        else:
            self._both = _Both(fast, slow, hz, slow_hz)
            self._tick_timer.init(freq=hz, mode=Timer.PERIODIC, callback=self._both.run)

    def start_watchdog(self):
        """Started with the first session: a hang with output on resets the board."""
        if self._wdt is None:
            self._wdt = machine.WDT(timeout=self.board["watchdog_ms"])

    def feed_watchdog(self):
        if self._wdt is not None:
            self._wdt.feed()

    def release_watchdog(self):
        """After Ctrl-C, with the output already safe: let the REPL live.

        The RP2040 watchdog is disabled through its CTRL register (ENABLE,
        bit 30) so mpremote is not reset under the user. The ESP32 task
        watchdog cannot be stopped from MicroPython: it resets the board
        within watchdog_ms, which boots into the safe state.
        """
        if self._wdt is not None and self.board["mcu"] == "rp2040":
            machine.mem32[_RP2040_WATCHDOG_CTRL] &= ~_RP2040_WATCHDOG_ENABLE

    def safe_off(self):
        """Safe state; every step runs even if an earlier one fails."""
        for step in (self._tick_timer.deinit, self._slow_deinit, self.pulse.stop, self.output.off, self.led.deinit,
                     self._pins_low):
            try:
                step()
            except Exception:
                pass

    def _slow_deinit(self):
        if self._slow_timer is not None:
            self._slow_timer.deinit()

    def _pins_low(self):
        led_pins_low(self.board)
        if self.status_led is not None:
            self.status_led.value(0)

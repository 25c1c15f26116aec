"""The emulated microcontroller's peripherals, wired to the plant.

Pins, timers, PWM, I2C devices, the ESP32 DAC, ADC channels, the watchdog
and the power supply live here, per emulator instance. `machine_shim`
exposes them to the firmware with MicroPython's API; this module holds
the state that survives (or not) a soft reset, a hard reset and a power
cut, following the real ports.
"""
from __future__ import annotations

from . import mpy_stdlib
from .clock import Clock
from .plant import Plant, driven_pins, oc_q_pin

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET, BROWNOUT_RESET = 1, 2, 3, 4, 5, 6
POWER_OFF = -1      # not a port constant: the supply is gone (fault power_loss)


class MachineReset(mpy_stdlib.MachineReset):
    """A hardware reset (watchdog, machine.reset(), brown-out, power cut): unwinds the CPU."""

    def __init__(self, cause: int):
        super().__init__(cause)
        self.cause = cause


class Mcp4725Model:
    """The MCP4725 on the I2C bus: fast-mode writes set the 12-bit code.

    It is outside the MCU, so an MCU reset does not clear it; it powers up
    with the code in its EEPROM (0 from the factory), so a power cut does.
    """

    def __init__(self, plant: Plant, mcu: "Mcu"):
        self.plant = plant
        self.mcu = mcu
        self.eeprom_code = 0

    def write(self, data: bytes) -> None:
        if len(data) >= 2 and (data[0] & 0xC0) == 0:      # fast mode
            self.mcu.set_dac(((data[0] & 0x0F) << 8) | data[1])
        elif len(data) >= 3 and (data[0] & 0xE0) in (0x40, 0x60):   # write DAC register (+EEPROM)
            code = (data[1] << 4) | (data[2] >> 4)
            if data[0] & 0xE0 == 0x60:
                self.eeprom_code = code
            self.mcu.set_dac(code)

    def read(self, n: int) -> bytes:
        """Status byte, DAC register, EEPROM (datasheet figure 6-3)."""
        code = self.plant.dac_code
        data = bytes([0xC0, code >> 4, (code & 0x0F) << 4, self.eeprom_code >> 8, self.eeprom_code & 0xFF])
        return data[:n]

    def power_on(self) -> None:
        self.plant.dac_code = self.eeprom_code


class Mcu:
    def __init__(self, board: dict, clock: Clock, plant: Plant, unique_id: bytes = bytes(range(8))):
        self.board = board
        self.port = "rp2" if board["mcu"] == "rp2040" else "esp32"
        self.clock = clock
        self.plant = plant
        plant.now_ns = lambda: clock.now_ns
        self.levels: dict[int, int] = {}
        self.modes: dict[int, int] = {}
        self.pulls: dict[int, int] = {}
        self.pin_irqs: dict[int, tuple] = {}        # pin -> (handler, trigger, pin object)
        self.reset_cause = PWRON_RESET
        self.rtc_offset_s = 0           # machine.RTC().datetime(...) moves time.time() by this much;
        #                                 it survives resets (as an RTC on its own supply), not power loss
        self.resets: list[tuple[int, int]] = []     # (t_ns, cause) of every hardware reset
        self.timers: list = []          # live machine.Timer shims
        self.cost = None                # cost.CostModel: the chip's tick time charged (None: zero time)
        self.on_reset: list = []        # port peripherals (PIO, RMT) to stop on any reset
        self.pwms: list = []
        self.wdt_deadline = None        # (Event) once started, never stopped
        self.wdt_timeout_ms = 0
        self.pending_reset = None
        self.powered = True
        self.cpu_hz = 125_000_000 if self.port == "rp2" else 160_000_000
        self.unique_id = unique_id[:8] if self.port == "rp2" else unique_id[:6]
        self.adc_atten: dict[int, int] = {}         # esp32: per channel, kept until a hard reset
        self.adc_bits = 12
        self.irq_error = lambda exc: None        # the runtime prints it on the console
        self.dac_writes: list[tuple[int, int]] = []
        self.edges: list[tuple[int, int, int]] = []     # (t_ns, pin, level)
        self.i2c_devices = {}
        self.dac_chip = None
        self._dac_addr = None
        if board["dac"]["kind"] == "mcp4725":
            self.dac_chip = Mcp4725Model(plant, self)
            self._dac_addr = (board["dac"]["i2c_id"], board["dac"].get("addr", 0x60))
            self.i2c_devices[self._dac_addr] = self.dac_chip
        self._role = driven_pins(board)
        self._oc_q_pin = oc_q_pin(board)    # the over-current latch's Q (plant)
        s = board["sense"]
        self._adc_channel = {s["current_adc"]: "i", s["voltage_adc"]: "v", board["thermistor"]["adc"]: "t"}
        # the polarity comparators' outputs (plant.flow): FLOW_A +1, FLOW_B -1
        self._flow = {s[k]: sign for k, sign in (("flow_a_pin", 1), ("flow_b_pin", -1)) if k in s}
        # peripherals (peripherals.py): output pins they watch, input pins they drive, PWMs they follow
        self.watch: dict = {}           # pin -> fn(t_ns, level)
        self.inputs: dict = {}          # pin -> fn() -> level
        self.pwm_watch: dict = {}       # pin -> fn(t_ns, pwm, attached)

    def dac_off_bus(self, off: bool) -> None:
        """Fault dac_off_bus: the I2C DAC stops answering (NACK, OSError in the firmware)
        and keeps driving its last code; a board with the MCU's own DAC has none to lose."""
        if self._dac_addr is None:
            return
        if off:
            self.i2c_devices.pop(self._dac_addr, None)
        else:
            self.i2c_devices[self._dac_addr] = self.dac_chip

    # ---- pins ----
    def drive(self, pin: int, level: int, t_ns: int | None = None) -> None:
        self.check_alive()
        level = 1 if level else 0
        if self.levels.get(pin) == level:
            return
        self.levels[pin] = level
        at = self.clock.effects_at_ns
        if t_ns is None and at > self.clock.now_ns:      # written in a charged tick: at its end
            self.clock.schedule(at, lambda: self._output(pin, level, at))
            return
        self._output(pin, level, self.clock.now_ns if t_ns is None else t_ns)

    def _output(self, pin: int, level: int, t: int) -> None:
        role = self._role.get(pin)
        if role is not None:
            self.edges.append((t, pin, level))
            setattr(self.plant, role, level)
            self.plant.changed(t)
        watcher = self.watch.get(pin)
        if watcher is not None:
            watcher(t, level)

    def level(self, pin: int) -> int:
        if pin == self.board["vbus_pin"]:
            return 1 if self.plant.vbus_present() else 0
        sign = self._flow.get(pin)
        if sign is not None:
            return self.plant.flow(sign, self.clock.now_ns)
        if pin == self._oc_q_pin:
            self.plant.current_ua(self.clock.now_ns)     # carried to now: a latch set meanwhile shows
            return self.plant.oc_q_level()
        source = self.inputs.get(pin)          # a peripheral drives it (the button)
        if source is not None:
            return source()
        if pin in self.levels:
            return self.levels[pin]
        return 1 if self.pulls.get(pin) == 1 else 0

    def input_changed(self, pin: int, old: int) -> None:
        """An external level changed (VBUS): run the pin's IRQ handler if it wants this edge."""
        irq = self.pin_irqs.get(pin)
        new = self.level(pin)
        if irq is None or new == old:
            return
        handler, trigger, obj = irq
        if trigger & (8 if new else 4):             # IRQ_RISING = 8, IRQ_FALLING = 4
            self.clock.schedule(self.clock.now_ns, lambda: handler(obj))

    def pwm_event(self, pwm, attached: bool) -> None:
        """A PWM started, changed duty/frequency, or let go of its pin."""
        watcher = self.pwm_watch.get(pwm.pin_id)
        if watcher is not None:
            watcher(self.clock.now_ns, pwm, attached)

    def set_dac(self, code: int) -> None:
        self.check_alive()
        at = self.clock.effects_at_ns
        if at > self.clock.now_ns:                       # written in a charged tick: at its end
            self.clock.schedule(at, lambda: self._dac_output(code, at))
        else:
            self._dac_output(code, self.clock.now_ns)

    def _dac_output(self, code: int, t: int) -> None:
        self.plant.dac_code = code
        self.dac_writes.append((t, code))
        self.plant.changed(t)

    def adc_raw(self, pin: int) -> int:
        """One conversion at the port's width (an unconnected pin reads noise around 0)."""
        self.check_alive()
        ch = self._adc_channel.get(pin)
        if ch is None:
            return 0
        return self.plant.adc_raw(ch, self.clock.now_ns, self.adc_atten.get(pin, 0), self.adc_bits)

    def adc_u16(self, pin: int) -> int:
        """read_u16(): adc_raw() scaled as the ports do (u16_from_raw, inlined: every tick reads three)."""
        if self.pending_reset is not None:
            raise MachineReset(self.pending_reset)
        ch = self._adc_channel.get(pin)
        if ch is None:
            return 0
        bits = self.adc_bits
        raw = self.plant.adc_raw(ch, self.clock.now_ns, self.adc_atten.get(pin, 0), bits)
        return (raw << (16 - bits)) | (raw >> (2 * bits - 16))

    # ---- watchdog ----
    def wdt_start(self, timeout_ms: int) -> None:
        self.wdt_timeout_ms = timeout_ms
        self.wdt_feed()

    def wdt_stop(self) -> None:
        """Only reachable as on the RP2040: clearing WATCHDOG CTRL.ENABLE (and by a reset)."""
        if self.wdt_deadline is not None:
            self.wdt_deadline.cancel()
        self.wdt_deadline = None
        self.wdt_timeout_ms = 0

    def wdt_feed(self) -> None:
        if self.wdt_timeout_ms == 0:
            return
        if self.wdt_deadline is not None:
            self.wdt_deadline.cancel()
        self.wdt_deadline = self.clock.schedule(self.clock.now_ns + self.wdt_timeout_ms * 1_000_000,
                                                lambda: self.hard_reset(WDT_RESET))

    # ---- resets and power ----
    def check_alive(self) -> None:
        """Once a hardware reset has begun, firmware code does nothing more."""
        if self.pending_reset is not None:
            raise MachineReset(self.pending_reset)

    def hard_reset(self, cause: int) -> None:
        """Everything in the MCU returns to power-on state; external chips keep theirs."""
        self.pending_reset = cause
        raise MachineReset(cause)

    def _stop_peripherals(self) -> None:
        hooks, self.on_reset = self.on_reset, []     # port peripherals (PIO, RMT) first
        for stop in hooks:
            stop()
        for t in list(self.timers):
            t.deinit()
        for p in list(self.pwms):
            p.deinit()
        self.pin_irqs.clear()

    def after_hard_reset(self) -> None:
        cause = self.pending_reset
        self.pending_reset = None
        self._stop_peripherals()
        self.wdt_stop()
        self.clock.hang = False               # a reset ends a firmware hang
        t = self.clock.now_ns
        self.modes.clear()
        self.pulls.clear()
        self.adc_atten.clear()
        self.adc_bits = 12
        self.cpu_hz = 125_000_000 if self.port == "rp2" else 160_000_000
        for pin, level in list(self.levels.items()):   # every GPIO back to input: pulled low
            self.levels[pin] = 0
            role = self._role.get(pin)
            if role is not None and level:
                setattr(self.plant, role, 0)
                self.edges.append((t, pin, 0))
            if level and pin in self.watch:
                self.watch[pin](t, 0)
        if self.dac_chip is None:
            self.plant.dac_code = 0            # the MCU's own DAC resets; an I2C DAC does not
        self.plant.changed(t)
        if cause != POWER_OFF:
            self.reset_cause = cause
            self.resets.append((t, cause))

    def power_off(self) -> None:
        """The supply is gone: nothing drives the output, external chips lose their state."""
        self.powered = False
        self.plant.powered = False
        self.plant.changed(self.clock.now_ns)

    def power_on(self) -> None:
        self.powered = True
        self.plant.powered = True
        if self.dac_chip is not None:
            self.dac_chip.power_on()
        self.reset_cause = PWRON_RESET
        self.plant.changed(self.clock.now_ns)

    def soft_reset(self) -> None:
        """What the real ports deinitialise on soft reset: PIO/RMT (`on_reset`), timers, PWM,
        pin IRQs. GPIO levels, the ESP32 DAC and the watchdog carry on."""
        self._stop_peripherals()

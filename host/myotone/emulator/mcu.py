"""The emulated microcontroller's peripherals, wired to the plant.

Pins, timers, I2C devices, the ESP32 DAC, ADC channels and the watchdog
live here, per emulator instance. `machine_shim` exposes them to the
firmware with MicroPython's API; this module holds the state that
survives (or not) a soft reset, following the real ports.
"""
from __future__ import annotations

from . import mpy_stdlib
from .clock import Clock
from .plant import Plant

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET, BROWNOUT_RESET = 1, 2, 3, 4, 5, 6


class MachineReset(mpy_stdlib.MachineReset):
    """A hardware reset (watchdog, machine.reset(), brown-out): unwinds the CPU."""

    def __init__(self, cause: int):
        super().__init__(cause)
        self.cause = cause


class Mcp4725Model:
    """The MCP4725 on the I2C bus: fast-mode writes set the 12-bit code.

    It is outside the MCU, so an MCU reset does not clear it.
    """

    def __init__(self, plant: Plant, mcu: "Mcu"):
        self.plant = plant
        self.mcu = mcu

    def write(self, data: bytes) -> None:
        if len(data) >= 2 and (data[0] & 0xC0) == 0:      # fast mode
            self.mcu.set_dac(((data[0] & 0x0F) << 8) | data[1])
        elif len(data) >= 3 and (data[0] & 0xE0) in (0x40, 0x60):   # write DAC register (+EEPROM)
            self.mcu.set_dac((data[1] << 4) | (data[2] >> 4))


class Mcu:
    def __init__(self, board: dict, clock: Clock, plant: Plant):
        self.board = board
        self.port = "rp2" if board["mcu"] == "rp2040" else "esp32"
        self.clock = clock
        self.plant = plant
        self.levels: dict[int, int] = {}
        self.reset_cause = PWRON_RESET
        self.resets: list[tuple[int, int]] = []     # (t_ns, cause) of every hardware reset
        self.timers: list = []          # live machine.Timer shims
        self.on_reset: list = []        # port peripherals (PIO, RMT) to stop on any reset
        self.pwms: list = []
        self.wdt_deadline = None        # (Event) once started, never stopped
        self.wdt_timeout_ms = 0
        self.pending_reset = None
        self.unique_id = bytes(range(8))
        self.irq_error = lambda exc: None        # the runtime prints it on the console
        self.dac_writes: list[tuple[int, int]] = []
        self.edges: list[tuple[int, int, int]] = []     # (t_ns, pin, level)
        self.i2c_devices = {}
        if board["dac"]["kind"] == "mcp4725":
            self.i2c_devices[(board["dac"]["i2c_id"], board["dac"].get("addr", 0x60))] = Mcp4725Model(plant, self)
        b = board["bridge"]
        self._role = {b["pol_a"]: "bridge_a", b["pol_b"]: "bridge_b", board["hv_enable"]: "hv_on"}
        # peripherals (peripherals.py): output pins they watch, input pins they drive, PWMs they follow
        self.watch: dict = {}           # pin -> fn(t_ns, level)
        self.inputs: dict = {}          # pin -> fn() -> level
        self.pwm_watch: dict = {}       # pin -> fn(t_ns, pwm, attached)

    # ---- pins ----
    def drive(self, pin: int, level: int, t_ns: int | None = None) -> None:
        self.check_alive()
        level = 1 if level else 0
        if self.levels.get(pin) == level:
            return
        t = self.clock.now_ns if t_ns is None else t_ns
        self.levels[pin] = level
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
            return 1 if (self.plant.vbus or "vbus" in self.plant.faults) else 0
        source = self.inputs.get(pin)
        if source is not None:
            return source()
        return self.levels.get(pin, 0)

    def pwm_event(self, pwm, attached: bool) -> None:
        """A PWM started, changed duty/frequency, or let go of its pin."""
        watcher = self.pwm_watch.get(pwm.pin_id)
        if watcher is not None:
            watcher(self.clock.now_ns, pwm, attached)

    def set_dac(self, code: int) -> None:
        self.check_alive()
        self.plant.dac_code = code
        self.dac_writes.append((self.clock.now_ns, code))
        self.plant.changed(self.clock.now_ns)

    def adc_u16(self, pin: int) -> int:
        s = self.board["sense"]
        if pin == s["current_adc"]:
            return self.plant.sense_current_u16()
        if pin == s["voltage_adc"]:
            return self.plant.sense_voltage_u16()
        if pin == self.board["thermistor"]["adc"]:
            return self.plant.thermistor_u16()
        return 0

    # ---- watchdog ----
    def wdt_start(self, timeout_ms: int) -> None:
        self.wdt_timeout_ms = timeout_ms
        self.wdt_feed()

    def wdt_stop(self) -> None:
        """Only reachable as on the RP2040: clearing WATCHDOG CTRL.ENABLE."""
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

    # ---- resets ----
    def check_alive(self) -> None:
        """Once a hardware reset has begun, firmware code does nothing more."""
        if self.pending_reset is not None:
            raise MachineReset(self.pending_reset)

    def hard_reset(self, cause: int) -> None:
        """Everything in the MCU returns to power-on state; external chips keep theirs."""
        self.pending_reset = cause
        raise MachineReset(cause)

    def _stop_port_peripherals(self) -> None:
        hooks, self.on_reset = self.on_reset, []
        for stop in hooks:
            stop()

    def after_hard_reset(self) -> None:
        cause = self.pending_reset
        self.pending_reset = None
        self._stop_port_peripherals()
        for t in list(self.timers):
            t.deinit()
        for p in list(self.pwms):
            p.deinit()
        self.wdt_stop()
        self.clock.hang = False               # a reset ends a firmware hang
        t = self.clock.now_ns
        for pin, level in list(self.levels.items()):   # every GPIO back to input: pulled low
            self.levels[pin] = 0
            role = self._role.get(pin)
            if role is not None and level:
                setattr(self.plant, role, 0)
                self.edges.append((t, pin, 0))
            if pin in self.watch:
                self.watch[pin](t, 0)
        if self.board["dac"]["kind"] != "mcp4725":
            self.plant.dac_code = 0            # the MCU's own DAC resets; an I2C DAC does not
        self.plant.changed(t)
        self.reset_cause = cause
        self.resets.append((t, cause))

    def soft_reset(self) -> None:
        """What the real ports deinitialise on soft reset: timers and PWM.

        GPIO levels and the ESP32 DAC hold their values; the watchdog keeps running.
        """
        self._stop_port_peripherals()
        for t in list(self.timers):
            t.deinit()
        for p in list(self.pwms):
            p.deinit()

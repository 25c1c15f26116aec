"""Fault injection: one switch per fault, flipped at the present virtual time.

| fault | on | off |
|---|---|---|
| electrode_off / electrode_short | contact open / 0 Ω | contact good |
| dac_stuck_high | the V->I stage sees full scale whatever the DAC holds | DAC code again |
| dac_off_bus | the I2C DAC stops answering (every transfer NACKed: OSError); it keeps driving its last code | answers again |
| adc_stuck | every ADC channel keeps its last conversion | live again |
| bridge_asymmetry | the negative half delivers 80 % | symmetric |
| bridge_leg_open | a switch of the POL_B diagonal is open: POL_B phases have no current path (unipolar pulses, 100 % DC); the source sits at its rail in them | healthy bridge |
| bridge_leg_short | a high-side switch of the E1 leg is short: POL_B phases bypass the electrodes (or, with `plant.leg_short_reverse`, drive them the POL_A way); the sense still reads the source's current | healthy bridge |
| firmware_hang | main code stops (interrupts run on) | (a reset ends it too) |
| brownout | supply dip: MCU reset (cause reported where the port can) | - |
| over_temp | thermistor at 42 °C | skin temperature |
| thermistor_open | the thermistor is open (the pull-up alone: full scale) | connected again |
| vbus | charger present | absent |
| flow_stuck_high | a polarity comparator (FLOW_A, or FLOW_B with `plant.flow_stuck_sign = -1`) reads 1 whenever the rail is up: it would hide a DC fault in its direction | healthy |
| oc_latch_dead | the over-current latch's comparator never sets it, OC_TEST included (found at the next switch-on's latch test: `oc_latch_fault`; until then the firmware's own `over_current` is all there is) | live |
| oc_latch_stuck | the latch's Q is stuck set: the bridge inputs are held off and OC_Q reads 1 | healthy |
| host_disconnect | the host stops talking: bytes both ways are lost; a served endpoint drops its client | host back |
| power_loss | power cut now, or armed inside the next flash write (``in_flash_write=True``) | power on from the surviving flash image |

Actions on the firmware's CPU (resets, power cuts) are handed to the CPU
thread through `Injector`, which runs them at its next wait, i.e. at the
virtual time the switch was flipped.
"""
from __future__ import annotations

import collections

from .mcu import BROWNOUT_RESET, POWER_OFF, PWRON_RESET

FAULTS = ("electrode_off", "electrode_short", "dac_stuck_high", "dac_off_bus", "adc_stuck", "bridge_asymmetry",
          "bridge_leg_short", "bridge_leg_open", "firmware_hang", "brownout", "over_temp", "thermistor_open", "vbus",
          "host_disconnect", "power_loss", "flow_stuck_high", "oc_latch_dead", "oc_latch_stuck")
PLANT_FAULTS = ("dac_stuck_high", "adc_stuck", "bridge_asymmetry", "bridge_leg_short", "bridge_leg_open", "over_temp",
                "thermistor_open", "vbus", "flow_stuck_high", "oc_latch_dead", "oc_latch_stuck")


class Injector:
    """A clock check hook: runs queued actions on the CPU thread at its next wait."""

    def __init__(self):
        self._queue = collections.deque()

    def post(self, fn) -> None:
        self._queue.append(fn)

    def pending(self) -> bool:
        return bool(self._queue)

    def __call__(self) -> None:
        while self._queue:
            self._queue.popleft()()


class FaultSwitch:
    def __init__(self, emu):
        self.emu = emu
        self.active: set[str] = set()
        self.log: list[tuple[int, str, bool]] = []       # (t_ns, fault, on)
        self.cuts: list[int] = []                        # when the power actually went
        self.disconnect_hooks: list = []                 # served endpoints drop their client
        self.injector = Injector()

    def set(self, name: str, on: bool = True, *, in_flash_write: bool = False) -> None:
        emu = self.emu
        clock, mcu, plant = emu.clock, emu.mcu, emu.plant
        t = clock.now_ns
        self.log.append((t, name, on))
        (self.active.add if on else self.active.discard)(name)
        if name == "firmware_hang":
            clock.hang = on
        elif name == "brownout":
            if on:       # the supply dips: the MCU resets, and reports why if the port can
                cause = BROWNOUT_RESET if mcu.port == "esp32" else PWRON_RESET
                self.injector.post(lambda: mcu.powered and mcu.hard_reset(cause))
            self.active.discard(name)
        elif name in ("electrode_off", "electrode_short"):
            plant.load.contact = ("off" if name == "electrode_off" else "short") if on else "good"
            plant.changed(t)
        elif name == "host_disconnect":
            emu.console.link_up = not on and mcu.powered
            if on:
                for hook in list(self.disconnect_hooks):
                    hook()
        elif name == "power_loss":
            self._power(on, in_flash_write)
        elif name == "dac_off_bus":
            mcu.dac_off_bus(on)
        else:
            (plant.faults.add if on else plant.faults.discard)(name)
            if name == "vbus":
                mcu.input_changed(emu.board["vbus_pin"], 0 if on else 1)
            plant.changed(t)
        clock.notify()

    def _power(self, on: bool, in_flash_write: bool) -> None:
        emu = self.emu
        rt, mcu = emu.runtime, emu.mcu
        if not on:
            emu.fs.disarm_power_loss()
            rt.power_wanted = True
            emu.console.link_up = "host_disconnect" not in self.active
            return
        rt.power_wanted = False
        if in_flash_write:           # the cut comes with the next program/erase of the flash
            emu.fs.arm_power_loss(1)
            return
        self.cut_now()

    def cut_now(self) -> None:
        """The supply is gone at this instant: output dead now, the CPU unwinds at once."""
        mcu = self.emu.mcu
        if not mcu.powered:
            return
        self.cuts.append(self.emu.clock.now_ns)
        self.emu.runtime.power_wanted = False
        self.emu.console.link_up = False
        for hook in list(self.disconnect_hooks):     # the USB device is gone
            hook()
        mcu.power_off()
        mcu.pending_reset = POWER_OFF
        self.injector.post(mcu.check_alive)

"""The port modules `rp2` (PIO) and `esp32` (RMT) for one emulator instance.

They run on the instance's clock and drive its MCU pins through the small
protocols of `sim_protocols`. On a soft or hard reset every state machine
and RMT channel stops, as the ports deinitialise them.
"""
from __future__ import annotations

import types


class _ClockAdapter:
    def __init__(self, clock):
        self._clock = clock

    def now_ns(self) -> int:
        return self._clock.now_ns

    def schedule(self, t_ns: int, callback):
        return self._clock.schedule(t_ns, callback)

    def sleep_until(self, t_ns: int) -> None:
        self._clock.wait(t_ns)

    def quiet_until(self) -> int:
        return self._clock.quiet_until()


class _PinsAdapter:
    def __init__(self, mcu):
        self._mcu = mcu

    def drive(self, pin_id: int, level: int, t_ns: int) -> None:
        self._mcu.drive(pin_id, level, t_ns)

    def level(self, pin_id: int) -> int:
        return self._mcu.level(pin_id)


def build(runtime, name: str, mod: types.ModuleType) -> types.ModuleType:
    mcu = runtime.mcu
    clock, pins = _ClockAdapter(mcu.clock), _PinsAdapter(mcu)
    if name == "rp2":
        from .rp2_shim import make_rp2_module
        mod = make_rp2_module(clock, pins)
        emu = mod._emu

        def stop_all():
            for sm in list(emu.sm_objs.values()):
                try:
                    sm.active(0)
                except Exception:
                    pass
            if emu._wake is not None:
                emu._wake.cancel()
                emu._wake = emu._wake_ns = None
        mcu.on_reset.append(stop_all)
        return mod
    if name == "esp32":
        from .rmt_sim import make_rmt_class
        base = make_rmt_class(clock, pins)
        live: list = []

        class RMT(base):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                live.append(self)

        def deinit_all():
            for rmt in live:
                try:
                    rmt.deinit()
                except Exception:
                    pass
            live.clear()
        RMT.__name__ = RMT.__qualname__ = "RMT"
        mod.RMT = RMT
        mcu.on_reset.append(deinit_all)
        return mod
    return mod

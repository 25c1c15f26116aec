"""Emulator: one virtual board -- clock, MCU, plant, console, flash, firmware."""
from __future__ import annotations

import json
from pathlib import Path

from .. import paths
from .clock import Clock
from .console import Console
from .mcu import BROWNOUT_RESET, PWRON_RESET, Mcu
from .flash import ESP32_BLOCKS, Flash
from .peripherals import Peripherals
from .plant import Load, Plant
from .runtime import Runtime


class EmulatorError(Exception):
    pass


def load_board(name_or_path: str) -> dict:
    p = Path(name_or_path)
    if not p.suffix:
        p = paths.boards_dir() / f"{name_or_path}.json"
    if not p.is_file():
        known = ", ".join(sorted(b.stem for b in paths.boards_dir().glob("*.json")))
        raise EmulatorError(f"no board file {name_or_path!r} (known boards: {known})")
    return json.loads(p.read_text())


def install_firmware(fs, board: dict, firmware_dir: Path | None = None) -> None:
    """Put the firmware tree and the board file on the flash, as `myotone flash` does."""
    root = firmware_dir or paths.firmware_dir()
    for f in sorted(root.rglob("*.py")):
        fs.write_file("/" + f.relative_to(root).as_posix(), f.read_bytes(), makedirs=True)
    fs.write_file("/board.json", json.dumps(board).encode())


def _repl_factory(runtime):
    from .repl import Repl
    return Repl(runtime.console, runtime)


class Emulator:
    def __init__(self, board: str | dict = "pico-mcp4725", *, seed: int = 1, load: Load | None = None,
                 fs=None, firmware_dir: Path | None = None):
        self.board = board if isinstance(board, dict) else load_board(board)
        self.clock = Clock()
        self.plant = Plant(self.board, load, seed=seed)
        self.mcu = Mcu(self.board, self.clock, self.plant)
        self.periph = Peripherals(self.board, self.mcu)
        self.console = Console(self.clock)
        if fs is None:
            fs = Flash(autosave=False) if self.board["mcu"] == "rp2040" else Flash(
                block_count=ESP32_BLOCKS, prog_size=32, autosave=False)
            install_firmware(fs, self.board, firmware_dir)
        self.fs = fs
        self.runtime = Runtime(self.mcu, self.console, self.fs)
        self._started = False

    # ---- life cycle ----
    def start(self) -> "Emulator":
        if not self._started:
            self._started = True
            self.runtime.start(_repl_factory)
        return self

    def close(self) -> None:
        self.clock.stop()
        if self.runtime.thread is not None:
            self.runtime.thread.join(timeout=5)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- lockstep time ----
    @property
    def now_s(self) -> float:
        return self.clock.now_ns / 1e9

    def run_until(self, t_s: float) -> None:
        self.start()
        self.clock.run_until(int(round(t_s * 1e9)))

    def run_for(self, dt_s: float) -> None:
        self.run_until(self.now_s + dt_s)

    def serve_realtime(self, speed: float = 1.0) -> None:
        self.start()
        self.clock.start_realtime(speed)

    # ---- console ----
    def write(self, data: bytes) -> None:
        self.console.push_rx(data)

    def send(self, msg: dict) -> None:
        self.write(json.dumps(msg).encode() + b"\n")

    def read(self) -> bytes:
        return self.console.take_tx()

    # ---- button, LEDs ----
    def press_button(self, hold_s: float = 0.1, at_s: float | None = None) -> None:
        """Press the device's button at virtual time `at_s` (default: now) for `hold_s`."""
        t_ns = self.clock.now_ns if at_s is None else int(round(at_s * 1e9))
        self.periph.button.press(t_ns, int(round(hold_s * 1e9)))

    @property
    def led_red(self):
        return self.periph.red

    @property
    def led_nir(self):
        return self.periph.nir

    @property
    def status_led(self):
        return self.periph.status

    # ---- faults and plant ----
    FAULTS = ("electrode_off", "electrode_short", "dac_stuck_high", "adc_stuck", "bridge_asymmetry",
              "firmware_hang", "brownout", "over_temp", "vbus", "host_disconnect", "power_loss")

    def set_fault(self, name: str, active: bool = True) -> None:
        """Switch a fault on or off at the current virtual time."""
        if name not in self.FAULTS:
            raise EmulatorError(f"unknown fault {name!r} (known: {', '.join(self.FAULTS)})")
        if name == "firmware_hang":
            self.clock.hang = active
            self.clock.notify()
            return
        if name == "brownout":
            if active:       # the supply dips: the MCU resets, and reports why if the port can
                self._reset_request = BROWNOUT_RESET if self.mcu.port == "esp32" else PWRON_RESET
                self.clock.schedule(self.clock.now_ns, self._brownout)
            return
        if name in ("electrode_off", "electrode_short"):
            self.plant.load.contact = ("off" if name == "electrode_off" else "short") if active else "good"
        elif active:
            self.plant.faults.add(name)
        else:
            self.plant.faults.discard(name)
        self.plant.changed(self.clock.now_ns)

    def _brownout(self) -> None:
        self.mcu.hard_reset(self._reset_request)

    def set_load(self, **values) -> None:
        """Change the electrode-skin load now (r_series_ohm, r_parallel_ohm, c_parallel_nf, contact)."""
        for k, v in values.items():
            if not hasattr(self.plant.load, k):
                raise EmulatorError(f"unknown load field {k!r}")
            setattr(self.plant.load, k, v)
        self.plant.changed(self.clock.now_ns)

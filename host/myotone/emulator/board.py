"""Emulator: one virtual board -- clock, MCU, plant, console, flash, firmware."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import paths
from .clock import Clock
from .console import Console
from .cost import CostModel
from .faults import FAULTS, FaultSwitch
from .flash import ESP32_BLOCKS, RP2040_PICO_BLOCKS, Flash, FlashCorrupt
from .mcu import Mcu
from .peripherals import Peripherals
from .plant import CONTACTS, Load, Plant
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
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"board file {p} cannot be read as JSON: {getattr(exc, 'strerror', None) or exc}") from None


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
    """One virtual board. `flash_path` keeps the littlefs image in a file (made and
    flashed with the firmware when new, used as it is when it exists). `chip_time`
    charges the supervisor tick its time on the RP2040 (cost.py), measured on the
    silicon tier; without it the firmware runs in zero time."""

    FAULTS = FAULTS

    def __init__(self, board: str | dict = "pico-mcp4725", *, seed: int = 1, load: Load | None = None,
                 fs=None, firmware_dir: Path | None = None, flash_path: str | os.PathLike | None = None,
                 chip_time: bool = False):
        self.board = board if isinstance(board, dict) else load_board(board)
        self.seed = seed
        self.clock = Clock()
        self.plant = Plant(self.board, load, seed=seed)
        self.mcu = Mcu(self.board, self.clock, self.plant, unique_id=_unique_id(seed))
        if chip_time:           # the supervisor tick charged its time on the RP2040 (cost.py)
            self.mcu.cost = CostModel.for_board(self.board, seed)
        self.periph = Peripherals(self.board, self.mcu)
        self.console = Console(self.clock)
        if fs is None:
            fs = self._make_flash(flash_path, firmware_dir)
        self.fs = fs
        self.runtime = Runtime(self.mcu, self.console, self.fs)
        self.faults = FaultSwitch(self)
        self.clock.check_hooks.append(self.faults.injector)
        self.runtime.remount = self._remount
        fs.device.on_dead = self.faults.cut_now
        self._started = False

    def _make_flash(self, path, firmware_dir) -> Flash:
        geometry = ({"block_count": RP2040_PICO_BLOCKS, "prog_size": 256} if self.board["mcu"] == "rp2040"
                    else {"block_count": ESP32_BLOCKS, "prog_size": 32})
        fresh = path is None or not os.path.exists(path)
        fs = Flash(path, autosave=path is not None, **geometry)
        if fresh:
            install_firmware(fs, self.board, firmware_dir)
        return fs

    def _remount(self, old: Flash) -> Flash:
        """Power-on: mount what survived; a broken image is formatted, as the ports' _boot.py does."""
        kw = dict(old.geometry, path=old.path, autosave=old.path is not None)
        try:
            fs = Flash.from_image(old.image_bytes(), **kw)
        except FlashCorrupt:
            fs = Flash(image=old.image_bytes(), format_if_unmountable=True, **kw)
            if fs.path:
                fs.save()
        fs.device.on_dead = self.faults.cut_now
        self.fs = fs
        return fs

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

    @property
    def edges(self) -> list:
        """(t_ns, pin, level) of every bridge / HV-enable edge."""
        return self.mcu.edges

    def output_is_safe(self) -> bool:
        """SAFETY.md's safe state on the plant and the LED pins."""
        from .bench import output_is_safe
        return output_is_safe(self)

    def host_can_connect(self) -> bool:
        """False while the host is cut off (host_disconnect) or the board unpowered."""
        return "host_disconnect" not in self.faults.active and self.mcu.powered

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
    def set_fault(self, name: str, active: bool = True, **options) -> None:
        """Switch a fault on or off at the current virtual time (see faults.py).

        `power_loss` takes ``in_flash_write=True``: the cut comes inside the
        next flash program/erase instead of now.
        """
        if name not in FAULTS:
            raise EmulatorError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
        if options and name != "power_loss":
            raise EmulatorError(f"fault {name!r} takes no options")
        self.faults.set(name, active, **options)

    def set_load(self, **values) -> None:
        """Change the electrode-skin load now (r_series_ohm, r_parallel_ohm, c_parallel_nf, contact)."""
        set_load(self.plant, self.clock.now_ns, values)


def set_load(plant: Plant, t_ns: int, values: dict) -> None:
    """Change the plant's electrode-skin load at t_ns (both tiers' `set_load`)."""
    for k, v in values.items():
        if not hasattr(plant.load, k):
            raise EmulatorError(f"unknown load field {k!r}")
        if k == "contact" and v not in CONTACTS:
            raise EmulatorError(f"contact must be one of {', '.join(CONTACTS)}")
        setattr(plant.load, k, v)
    plant.changed(t_ns)


def _unique_id(seed: int) -> bytes:
    """machine.unique_id(): the flash ID (rp2, 8 bytes) or MAC (esp32, 6), fixed per seed."""
    return hashlib.sha256(b"myotone-board-%d" % seed).digest()[:8]

"""A Pico board on the silicon tier: the official MicroPython firmware on an emulated
RP2040 (rp2040js, `chip.py`), with the project's firmware in its littlefs flash and
the fast tier's analog plant on its pins.

    from myotone.silicon import SiliconBoard
    with SiliconBoard("pico-mcp4725") as b:
        b.run_for(1.5)                      # boot to the firmware's first hello
        b.send({"id": 1, "cmd": "status"})
        b.run_for(0.1)
        print(b.read())

The board around the chip (docs/emulator.md, "silicon tier"):
* MCP4725 on I2C0 at the board's address: every write decoded, recorded with its
  simulated time and set on the plant; `dac_off_bus` takes it off the bus (NACK);
* the bridge pins, HV enable: every edge recorded with its time and set on the plant
  (a pin the MCU does not drive reads low, as the gate drivers' pull-downs make it);
* ADC0..2 (GPIO26..28): current sense, electrode divider, thermistor, each conversion
  answered by the plant for its instant; ADC3 (VSYS/3) and the temperature sensor fixed;
* the polarity comparators' outputs (`sense.flow_a_pin`, `flow_b_pin`) driven by the
  plant's electrode current, set with every ADC conversion's answer (the fast path reads
  them between its two conversions), and the over-current latch's OC_Q likewise (the
  firmware reads it at its 100 Hz bookkeeping, long after a conversion); OC_CLEAR and
  OC_TEST set on the plant at every edge, the chip held while the plant answers with OC_Q
  then and when the latch sets (the switch-on's latch test reads it 50 us later);
* VBUS (GPIO24) driven by the plant; the button floats (its pull-up reads released)
  until pressed;
* flash: the littlefs image file is the chip's filesystem partition, written through on
  every erase/program, so files, logs and calibration survive resets and restarts.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from .. import build, paths
from ..emulator.board import EmulatorError, load_board, set_load
from ..emulator.flash import RP2040_PICO_BLOCKS, Flash
from ..emulator.plant import Load, Plant, driven_pins, oc_q_pin
from . import assets, elf
from .chip import Chip

MPY_RP2_V128 = 4870             # sys.implementation._mpy of MicroPython v1.28.0 on rp2: .mpy 6.3, armv6m
SLICE_NS = 1_000_000            # the chip runs in 1 ms slices between host bytes and control changes
IMAGE_MTIME_NS = 1_609_459_200_000_000_000   # every file's mtime in a new image (2021-01-01, the chip's RTC
                                             # start): the same image every time, so runs are deterministic
ADC_FIXED = {3: 2068, 4: 876}   # VSYS/3 at 5 V; the temperature sensor at 27 °C (0.706 V)
FAULTS = ("electrode_off", "electrode_short", "dac_stuck_high", "dac_off_bus", "adc_stuck",
          "bridge_asymmetry", "bridge_leg_short", "bridge_leg_open", "firmware_hang", "over_temp", "thermistor_open", "vbus",
          "flow_stuck_high", "oc_latch_dead", "oc_latch_stuck")
PLANT_FAULTS = ("dac_stuck_high", "adc_stuck", "bridge_asymmetry", "bridge_leg_short", "bridge_leg_open", "over_temp",
                "thermistor_open", "vbus", "flow_stuck_high", "oc_latch_dead", "oc_latch_stuck")


class _Clock:
    """What the serving stack (`emulator.serve`, `emulator.control`) asks of a board's clock."""

    def __init__(self):
        self.stopped = False
        self.check_hooks: list = []
        self.wake = threading.Event()
        self.now_ns = 0

    def notify(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()


class _Faults:
    def __init__(self):
        self.active: set[str] = set()
        self.log: list[tuple[int, str, bool]] = []
        self.disconnect_hooks: list = []


class _Console:
    def __init__(self):
        self.listeners: list = []


def make_flash_image(path: Path, board_name: str | None, firmware_dir: Path | None = None) -> None:
    """A littlefs image of the RPI_PICO filesystem with the firmware laid out as
    `myotone flash` lays it out on v1.28.0 (.mpy 6.3 for armv6m, board.json); with no
    board name, an empty filesystem (bare MicroPython)."""
    fs = Flash(path, block_count=RP2040_PICO_BLOCKS, prog_size=256, time_ns=lambda: IMAGE_MTIME_NS)
    if board_name is not None:
        bfile = Path(board_name) if board_name.endswith(".json") else paths.boards_dir() / f"{board_name}.json"
        pkg = build.build(firmware_dir or paths.firmware_dir(), bfile, build.mpy_target(MPY_RP2_V128, "rp2040"))
        for remote, data in sorted(pkg.files.items()):
            fs.write_file(remote, data, makedirs=True)
    fs.save()


class SiliconBoard:
    def __init__(self, board: str = "pico-mcp4725", *, uf2: str | None = None, flash_path: str | None = None,
                 seed: int = 1, load: Load | None = None, firmware_dir: Path | None = None,
                 firmware: bool = True, probe: str | tuple[str, ...] | None = None):
        self.board = load_board(board)
        if self.board.get("mcu") != "rp2040" or self.board["dac"]["kind"] != "mcp4725":
            raise EmulatorError(f"the silicon tier models an RP2040 with an MCP4725 DAC; "
                                f"{self.board['name']} is {self.board.get('mcu')} / {self.board['dac']['kind']}")
        self._tmp = None
        if flash_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="myotone-silicon-")
            flash_path = str(Path(self._tmp.name) / "flash.img")
        self.flash_path = Path(flash_path)
        if not self.flash_path.exists():
            name = board if board.endswith(".json") else self.board["name"]
            make_flash_image(self.flash_path, name if firmware else None, firmware_dir)
        self.plant = Plant(self.board, load, seed)
        self.plant.now_ns = lambda: self.clock.now_ns
        b = self.board
        self._role = driven_pins(b)
        s = b["sense"]
        self._adc = {s["current_adc"] - 26: "i", s["voltage_adc"] - 26: "v", b["thermistor"]["adc"] - 26: "t"}
        self._dac_addr = b["dac"]["addr"]
        self._flow = tuple((s[k], sign) for k, sign in (("flow_a_pin", 1), ("flow_b_pin", -1)) if k in s)
        self._oc_q_pin = oc_q_pin(b)      # the over-current latch's Q (plant)
        self.edges: list[tuple[int, int, int | None]] = []     # (t_ns, gpio, level) of every output pin
        self.last_edge: dict[int, tuple[int, int | None]] = {}  # gpio -> its latest (t_ns, level)
        self.dac_writes: list[tuple[int, int]] = []            # (t_ns, code)
        self.flash_ops: list[tuple[int, str, int, int]] = []
        self.resets: list[tuple[int, str]] = []
        self.adc_times: list[int] = []                      # when each conversion started
        self.clock = _Clock()
        self.faults = _Faults()
        self.console = _Console()
        self._tx = bytearray()
        self._rx: list[bytes] = []
        self._lock = threading.RLock()
        self._thread = None
        # (t_ns, duration_ns) of each call of `probe` (the first, if several), and per name
        self.calls: list[tuple[int, int]] = []
        names = (probe,) if isinstance(probe, str) else tuple(probe or ())
        self.probe_calls: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
        self._probe_names = names
        self._uf2 = uf2
        self._symbols = None
        addresses = []
        if names:
            syms = elf.symbols(assets.find_elf(assets.find_uf2(uf2)))
            for name in names:
                if name not in syms:
                    raise EmulatorError(f"no function {name!r} in the firmware's ELF")
                addresses.append(syms[name])
        # OC_CLEAR and OC_TEST move the latch's Q with no conversion near: answered at their edges
        sync = tuple(p for p, role in self._role.items() if role in ("oc_clear", "oc_test"))
        self.chip = Chip(self, self.flash_path, uf2, probe=addresses, sync_pins=sync)
        self.chip.drive(b["vbus_pin"], 0)

    # ---- events from the chip (called on the thread that runs it) ----
    def pin(self, t_ns: int, gpio: int, level: int | None) -> None:
        self.edges.append((t_ns, gpio, level))
        self.last_edge[gpio] = (t_ns, level)
        role = self._role.get(gpio)
        if role:
            setattr(self.plant, role, level or 0)
            self.plant.changed(t_ns)

    def i2c(self, t_ns: int, addr: int, data: bytes) -> None:
        if addr != self._dac_addr:
            return
        code = None
        if data[0] >> 6 == 0:                       # fast write(s): 2 bytes each, PD bits 5:4
            for i in range(0, len(data) - 1, 2):
                code = 0 if data[i] & 0x30 else ((data[i] & 0x0F) << 8) | data[i + 1]
        elif data[0] >> 5 in (2, 3) and len(data) >= 3:   # write DAC register (and EEPROM)
            code = 0 if data[0] & 0x06 else (data[1] << 4) | (data[2] >> 4)
        if code is not None:
            self.dac_writes.append((t_ns, code))
            self.plant.dac_code = code
            self.plant.changed(t_ns)

    def adc(self, t_ns: int, channel: int) -> int:
        self.adc_times.append(t_ns)
        name = self._adc.get(channel)
        return ADC_FIXED.get(channel, 0) if name is None else self.plant.adc_raw(name, t_ns)

    def inputs(self) -> list[tuple[int, int]]:
        """The inputs the plant drives, at the conversion just answered: the polarity comparators."""
        t = self.adc_times[-1]
        levels = [(gpio, self.plant.flow(sign, t)) for gpio, sign in self._flow]
        if self._oc_q_pin is not None:                  # flow() carried the plant to t
            levels.append((self._oc_q_pin, self.plant.oc_q_level()))
        return levels

    def inputs_after_edge(self, t_ns: int) -> list[tuple[int, int, int]]:
        """After an OC_CLEAR or OC_TEST edge: OC_Q now, and when the latch will set if it will
        (gpio, level, delay_ns)."""
        if self._oc_q_pin is None:
            return []
        out = [(self._oc_q_pin, self.plant.oc_q_level(), 0)]
        t_set = self.plant.oc_latch_sets_at()
        if t_set is not None:
            out.append((self._oc_q_pin, 1, max(1, t_set - t_ns)))
        return out

    def usb(self, data: bytes) -> None:
        self._tx.extend(data)
        for listener in self.console.listeners:
            listener(data)

    # ---- a profile (silicon/profile.py) ----
    def profile_start(self, probe: str | None = None) -> None:
        """Count cycles per instruction from now on: inside calls of `probe` (one of this
        board's probes; interrupts nested in them included), or everywhere."""
        k = -1 if probe is None else self._probe_names.index(probe)
        with self._lock:
            self.chip.profile_start(k)

    def profile_take(self) -> list[tuple[str, int]]:
        """The cycles counted since profile_start(), per function, most first."""
        from myotone.silicon import profile
        with self._lock:
            cycles = self.chip.profile_take()
        if self._symbols is None:
            self._symbols = profile.Symbols(assets.find_elf(assets.find_uf2(self._uf2)))
        return profile.by_function(cycles, self._symbols)

    def flash(self, t_ns: int, op: str, offset: int, length: int) -> None:
        self.flash_ops.append((t_ns, op, offset, length))

    def call(self, t_ns: int, duration_ns: int, k: int = 0) -> None:
        if k == 0:
            self.calls.append((t_ns, duration_ns))
        self.probe_calls[self._probe_names[k]].append((t_ns, duration_ns))

    def reset(self, t_ns: int, reason: str) -> None:
        self.resets.append((t_ns, reason))
        self.faults.active.discard("firmware_hang")
        for role in self._role.values():        # the pins float: the pull-downs hold them low
            setattr(self.plant, role, 0)
        self.plant.changed(t_ns)

    # ---- time ----
    @property
    def now_s(self) -> float:
        return self.clock.now_ns / 1e9

    def _step(self, until_ns: int) -> None:
        with self._lock:
            if self._rx:
                data, self._rx = b"".join(self._rx), []
                self.chip.host_sends(data)
            self.chip.run_until(until_ns)
            self.clock.now_ns = self.chip.now_ns

    def run_until(self, t_s: float) -> None:
        if self._thread is not None:
            raise EmulatorError("this board is served in real time; it cannot also run in lockstep")
        end = int(round(t_s * 1e9))
        while self.clock.now_ns < end:
            for hook in self.clock.check_hooks:
                if hook.pending():
                    hook()
            self._step(min(end, self.clock.now_ns + SLICE_NS))

    def run_for(self, dt_s: float) -> None:
        self.run_until(self.now_s + dt_s)

    def serve_realtime(self, speed: float = 1.0) -> None:
        """Run the chip in a thread, `speed` simulated seconds per wall second at most."""
        self._thread = threading.Thread(target=self._realtime, args=(speed,), name="silicon", daemon=True)
        self._thread.start()

    def _realtime(self, speed: float) -> None:
        w0, v0 = time.monotonic(), self.clock.now_ns
        while not self.clock.stopped:
            for hook in self.clock.check_hooks:
                if hook.pending():
                    hook()
            target = v0 + (time.monotonic() - w0) * speed * 1e9
            ahead_ns = self.clock.now_ns - target
            if ahead_ns >= 0:
                self.clock.wake.wait(min(0.002, ahead_ns / speed / 1e9))
                self.clock.wake.clear()
                continue
            if ahead_ns < -100e6:                    # slower than real time: no catch-up burst
                w0, v0 = time.monotonic(), self.clock.now_ns
            self._step(self.clock.now_ns + SLICE_NS)

    # ---- the USB serial port ----
    def write(self, data: bytes) -> None:
        with self._lock:
            self._rx.append(bytes(data))
        self.clock.notify()

    def send(self, msg: dict) -> None:
        self.write(json.dumps(msg).encode() + b"\n")

    def read(self) -> bytes:
        with self._lock:
            data, self._tx = bytes(self._tx), bytearray()
        return data

    def host_can_connect(self) -> bool:
        return True

    def output_is_safe(self) -> bool:
        """SAFETY.md's safe state: DAC 0, bridge off, HV rail off, and both LED pins held low
        (no PWM edge in the last 2 ms)."""
        p = self.plant
        led = self.board["led"]
        recent = self.clock.now_ns - 2_000_000
        dark = all(not level and t < recent for t, level in
                   (self.last_edge.get(led.get(k), (0, 0)) for k in ("red_pin", "nir_pin")))
        return p.dac_code == 0 and not p.bridge_a and not p.bridge_b and not p.hv_on and dark

    def wait_for(self, text: bytes, timeout_s: float, step_s: float = 0.01) -> bytes:
        """Run in lockstep until `text` has come out of the USB port; all that came, or
        EmulatorError after `timeout_s` of simulated time."""
        got = bytearray()
        end = self.clock.now_ns + int(timeout_s * 1e9)
        while text not in got:
            if self.clock.now_ns >= end:
                raise EmulatorError(f"no {text!r} within {timeout_s} s (simulated); got {bytes(got[-300:])!r}")
            self.run_for(step_s)
            got += self.read()
        return bytes(got)

    def exec_raw(self, code: str, timeout_s: float = 5.0) -> str:
        """Run `code` in MicroPython's raw REPL (what mpremote does); its output, or
        EmulatorError with the traceback. Ctrl-C first stops whatever runs."""
        self.write(b"\r\x03\x03")
        self.wait_for(b">", timeout_s)
        self.write(b"\x01")
        self.wait_for(b"raw REPL; CTRL-B to exit\r\n>", timeout_s)
        self.write(code.encode() + b"\x04")
        got = self.wait_for(b"\x04>", timeout_s)
        out = got[got.index(b"OK") + 2:] if b"OK" in got else got
        stdout, _, rest = out.partition(b"\x04")
        err = rest.partition(b"\x04")[0]
        self.write(b"\x02")                         # back to the friendly REPL
        if err:
            raise EmulatorError(err.decode(errors="replace").strip())
        return stdout.decode(errors="replace")

    # ---- the bench: button, faults, load ----
    def press_button(self, pressed: bool = True) -> None:
        self.chip.drive(self.board["button_pin"], 0 if pressed else None)

    def set_fault(self, name: str, active: bool = True) -> None:
        if name not in FAULTS:
            raise EmulatorError(f"unknown fault {name!r} on the silicon tier (known: {', '.join(FAULTS)})")
        t = self.clock.now_ns
        self.faults.log.append((t, name, active))
        (self.faults.active.add if active else self.faults.active.discard)(name)
        p = self.plant
        if name in PLANT_FAULTS:
            (p.faults.add if active else p.faults.discard)(name)
        if name == "vbus":
            self.chip.drive(self.board["vbus_pin"], int(active))
        elif name in ("electrode_off", "electrode_short"):
            p.load.contact = ("off" if name == "electrode_off" else "short") if active else "good"
        elif name == "dac_off_bus":
            self.chip.i2c_present(self._dac_addr, not active)
        elif name == "firmware_hang":
            self.chip.hang(active)
        p.changed(t)

    def set_load(self, **values) -> None:
        set_load(self.plant, self.clock.now_ns, values)

    # ---- life ----
    def close(self) -> None:
        self.clock.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self.chip.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "SiliconBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The RP2040 in rp2040js (rig/rig.mjs) as a Python object stepped in lockstep.

`Chip.run_until(t_ns)` lets the chip execute up to simulated time t_ns and hands
every event it reports on the way to the `Pins` object given (pin edges, I2C
writes, ADC conversions, USB bytes, flash operations, resets) in time order. An
ADC conversion is answered synchronously: the chip stands still until the
handler returns the code, so the plant is read at the instant of the sample; the
answer also sets the inputs the plant drives (the polarity comparators), as of
that instant. An edge of a pin in `sync_pins` is answered the same way: the chip
stands still while the plant takes it and says what the inputs it drives do, now or
a given time later (`inputs_after_edge`).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from . import assets

FS_OFFSET = 0xA0000          # RPI_PICO: the littlefs partition starts 1408 KiB before the end of 2 MiB


class Events(Protocol):
    def pin(self, t_ns: int, gpio: int, level: int | None) -> None: ...
    def i2c(self, t_ns: int, addr: int, data: bytes) -> None: ...
    def adc(self, t_ns: int, channel: int) -> int: ...
    def inputs(self) -> list[tuple[int, int]]: ...
    def inputs_after_edge(self, t_ns: int) -> list[tuple[int, int, int]]: ...
    def usb(self, data: bytes) -> None: ...
    def flash(self, t_ns: int, op: str, offset: int, length: int) -> None: ...
    def reset(self, t_ns: int, reason: str) -> None: ...
    def call(self, t_ns: int, duration_ns: int, k: int) -> None: ...


class ChipGone(Exception):
    """The rig process ended (its stderr is in the message)."""


class Chip:
    def __init__(self, events: Events, fs_image: Path, uf2: Path | None = None, probe: list[int] | None = None,
                 sync_pins: tuple[int, ...] = ()):
        self.events = events
        self.now_ns = 0
        self.busy_ns = 0          # the core's time executing (or stalled on flash), in total
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        cmd = [assets.node(), str(assets.rig_script()), f"--bootrom={assets.bootrom_path()}",
               f"--uf2={assets.find_uf2(uf2)}", f"--fs={fs_image}", f"--fs-offset={FS_OFFSET}",
               f"--in={r_in}", f"--out={w_out}"] + ([f"--probe={','.join(map(str, probe))}"] if probe else []) \
            + ([f"--sync-pins={','.join(map(str, sync_pins))}"] if sync_pins else [])
        self._stderr = tempfile.TemporaryFile()     # a pipe nobody drains would stall the rig
        self.proc = subprocess.Popen(cmd, pass_fds=(r_in, w_out), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        os.close(r_in)
        os.close(w_out)
        self._to = os.fdopen(w_in, "wb", buffering=0)
        self._from = os.fdopen(r_out, "rb")
        self._handle()            # to the rig's `log ready`: booted to the first instruction

    def _send(self, line: str) -> None:
        try:
            self._to.write(line.encode() + b"\n")
        except BrokenPipeError:
            raise self._gone() from None

    def _gone(self) -> ChipGone:
        self.proc.wait(timeout=5)
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace").strip()
        return ChipGone(f"the rp2040js rig ended (exit {self.proc.returncode}): {err[-2000:]}")

    def _handle(self) -> None:
        """Hand the rig's events to `events` up to its `done` (or, at start, `log ready`)."""
        ev = self.events
        for raw in self._from:
            f = raw.split()
            kind = f[0]
            if kind == b"pin":
                v = f[3]
                ev.pin(int(f[1]), int(f[2]), None if v == b"z" else int(v))
            elif kind == b"pin?":         # a sync pin's edge: the plant takes it, then answers
                t = int(f[1])
                v = f[3]
                ev.pin(t, int(f[2]), None if v == b"z" else int(v))
                self._send("in" + "".join(f" {g} {lv} {d}" for g, lv, d in ev.inputs_after_edge(t)))
            elif kind == b"adc?":         # the answer carries the inputs the plant drives, as of now
                code = ev.adc(int(f[1]), int(f[2]))
                self._send(f"adc {code}" + "".join(f" {g} {v}" for g, v in ev.inputs()))
            elif kind == b"tx":
                if len(f) > 1:
                    ev.usb(bytes.fromhex(f[1].decode()))
            elif kind == b"i2c":
                ev.i2c(int(f[1]), int(f[2]), bytes.fromhex(f[3].decode()))
            elif kind == b"done":
                self.now_ns, self.busy_ns = int(f[1]), int(f[2])
                return
            elif kind == b"call":
                ev.call(int(f[1]), int(f[2]), int(f[3]))
            elif kind == b"flash":
                ev.flash(int(f[1]), f[2].decode(), int(f[3]), int(f[4]))
            elif kind == b"reset":
                ev.reset(int(f[1]), f[2].decode())
            elif kind == b"log":
                if f[1:] == [b"ready"]:
                    return
        raise self._gone()

    # ---- what the Python side does to the chip ----
    def run_until(self, t_ns: int) -> None:
        self._send(f"run {int(t_ns)}")
        self._handle()

    def host_sends(self, data: bytes) -> None:
        """Bytes from the USB host to the CDC OUT endpoint (delivered as the chip reads)."""
        for i in range(0, len(data), 4096):
            self._send(f"rx {data[i:i + 4096].hex()}")

    def drive(self, gpio: int, level: int | None) -> None:
        """Drive a pin from outside (0/1), or let it float (None: it reads its pull)."""
        self._send(f"pin {gpio} {'z' if level is None else int(level)}")

    def i2c_present(self, addr: int, present: bool) -> None:
        self._send(f"i2c {addr} {int(present)}")

    def hang(self, hung: bool) -> None:
        """Stop the core where it is (timers, PIO and the watchdog run on) until a reset."""
        self._send(f"hang {int(hung)}")

    def profile_start(self, k: int = -1) -> None:
        """Count the core's cycles per instruction address from now on: inside the k-th probe's
        calls only (interrupts nested in them included), or everywhere (k = -1)."""
        self._send(f"prof {int(k)}")

    def profile_take(self) -> dict[int, int]:
        """The cycles counted per instruction address since profile_start(); profiling stops."""
        self._send("prof?")
        out: dict[int, int] = {}
        for raw in self._from:
            f = raw.split()
            if f[0] == b"pc":
                out[int(f[1])] = int(f[2])
            elif f[:2] == [b"prof", b"end"]:
                return out
        raise self._gone()

    def power_cycle(self) -> None:
        """A power-on reset: fresh core and peripherals, the same flash."""
        self._send("reset")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send("quit")
                self.proc.wait(timeout=5)
            except (ChipGone, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self._to, self._from, self._stderr):
            try:
                f.close()
            except OSError:
                pass

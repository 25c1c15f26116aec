"""The board's flash filesystem: a littlefs image, as MicroPython formats it.

`Flash` holds the raw image of the filesystem partition in memory and
mounts it with littlefs-python using the configuration MicroPython's
`vfs.VfsLfs2` uses (read size 32, lookahead 32, 100 block cycles; program
size 256 on rp2 as its `_boot.py` asks, 32 on esp32), so an image made here
mounts on a board and the other way round.

The block device below littlefs behaves like NOR flash: erase sets a block
to 0xFF, programming can only clear bits (new = old & data). Every program
and erase counts as one operation; `arm_power_loss(n)` cuts the power at
the n-th one from then on (see `FlashDevice`).

The device-side API (`os`, `open`) is in `vfs.py`; `make_os_module` and
`make_open` are re-exported here.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from typing import Callable, Iterator

from littlefs import LittleFS, LittleFSError, UserContext, lfs

from .mpy_errno import MpOSError
from .mpy_stdlib import MachineReset

BLOCK_SIZE = 4096
RP2040_PICO_BLOCKS = 1408 * 1024 // BLOCK_SIZE    # RPI_PICO: 1408 KiB
RP2040_PICO_W_BLOCKS = 848 * 1024 // BLOCK_SIZE   # RPI_PICO_W: 848 KiB
ESP32_BLOCKS = 2 * 1024 * 1024 // BLOCK_SIZE      # ESP32_GENERIC vfs partition: 2 MiB
LFS_ERR_IO = -5
ATTR_MTIME = ord("t")
O_RDONLY, O_WRONLY, O_RDWR = 1, 2, 3  # littlefs open flags
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0x100, 0x200, 0x400, 0x800  # MicroPython's LFS2 mtime attribute: u64 ns since 1970, LE


class PowerLoss(MachineReset):
    """The flash lost power during a program/erase operation.

    A BaseException so firmware's `except Exception`/`except OSError` does
    not catch it, and a MachineReset so the emulated board goes down with
    it: after it, the device is dead until re-created with
    `Flash.from_image(flash.image_bytes())`.
    """


class FlashCorrupt(Exception):
    """The image does not mount as littlefs."""


class FlashDevice(UserContext):
    """NOR-flash-like block device with operation counting and power cuts.

    When the armed operation comes, it is interrupted and the device dies:
    * torn="garbage" (default): the interrupted operation is half done, as
      a real chip leaves it. An interrupted program clears a pseudo-random
      subset of the bits it should have cleared (old & (data | noise)); an
      interrupted erase sets a pseudo-random subset of the block's bits to
      1 (old | noise). Deterministic for a given `seed`.
    * torn="old": the interrupted operation left no trace at all.
    Operations before it persist in full; none after it happen.
    """

    def __init__(self, image: bytearray):
        self.buffer = image
        self.ops = 0
        self.fail_at: int | None = None
        self.torn = "garbage"
        self.seed = 0
        self.dead = False
        self.on_sync: Callable[[], None] | None = None
        self.on_dead: Callable[[], None] | None = None   # the power went at the armed operation

    def read(self, cfg, block: int, off: int, size: int) -> bytes:
        start = block * cfg.block_size + off
        return bytes(self.buffer[start:start + size])

    def _interrupted(self) -> bool:
        self.ops += 1
        cut = self.fail_at is not None and self.ops >= self.fail_at
        if cut and self.on_dead is not None:
            self.on_dead()
        return cut

    def _noise(self, size: int) -> int:
        return random.Random(self.seed * 1_000_003 + self.ops).getrandbits(8 * size)

    def _store(self, start: int, size: int, value: int) -> None:
        self.buffer[start:start + size] = value.to_bytes(size, "little")

    def prog(self, cfg, block: int, off: int, data: bytes) -> int:
        if self.dead:
            return LFS_ERR_IO
        start, size = block * cfg.block_size + off, len(data)
        old = int.from_bytes(self.buffer[start:start + size], "little")
        new = int.from_bytes(data, "little")
        if self._interrupted():
            self.dead = True
            if self.torn == "garbage":
                self._store(start, size, old & (new | self._noise(size)))
            return LFS_ERR_IO
        self._store(start, size, old & new)
        return 0

    def erase(self, cfg, block: int) -> int:
        if self.dead:
            return LFS_ERR_IO
        start, size = block * cfg.block_size, cfg.block_size
        if self._interrupted():
            self.dead = True
            if self.torn == "garbage":
                old = int.from_bytes(self.buffer[start:start + size], "little")
                self._store(start, size, old | self._noise(size))
            return LFS_ERR_IO
        self.buffer[start:start + size] = b"\xff" * size
        return 0

    def sync(self, cfg) -> int:
        if self.dead:
            return LFS_ERR_IO
        if self.on_sync:
            self.on_sync()
        return 0


class Flash:
    """A littlefs filesystem image, optionally persisted to `path`."""

    def __init__(self, path: str | os.PathLike | None = None, block_size: int = BLOCK_SIZE,
                 block_count: int = RP2040_PICO_BLOCKS, *, prog_size: int = 256,
                 image: bytes | bytearray | None = None, format_if_unmountable: bool = True,
                 autosave: bool = True, time_ns: Callable[[], int] = time.time_ns):
        self.path = os.fspath(path) if path is not None else None
        if image is None and self.path and os.path.exists(self.path):
            with open(self.path, "rb") as f:
                image = f.read()
        if image is not None:
            if len(image) % block_size:
                raise ValueError("image size is not a multiple of the block size")
            block_count = len(image) // block_size
        fresh = image is None
        self.device = FlashDevice(bytearray(image) if image is not None
                                  else bytearray(b"\xff" * block_size * block_count))
        self.time_ns = time_ns
        self.geometry = {"block_size": block_size, "prog_size": prog_size}
        self.cwd = "/"  # the VFS current directory (reset to "/" on soft reset)
        self._lock = threading.RLock()
        self.lfs = LittleFS(context=self.device, mount=False, block_size=block_size,
                            block_count=block_count, read_size=32, prog_size=prog_size,
                            cache_size=min(block_size, 4 * max(32, prog_size)),
                            lookahead_size=32, block_cycles=100)
        try:
            self.lfs.mount()
        except LittleFSError:
            if not (fresh or format_if_unmountable):
                raise FlashCorrupt("image does not mount as littlefs") from None
            self.lfs.format()
            self.lfs.mount()
        self._autosave = autosave and self.path is not None
        if self._autosave:
            self.device.on_sync = self.save
            if fresh:
                self.save()

    @classmethod
    def from_image(cls, image: bytes, block_size: int = BLOCK_SIZE, **kwargs) -> "Flash":
        """Mount an image (e.g. after a power loss); FlashCorrupt if it won't."""
        kwargs.setdefault("format_if_unmountable", False)
        return cls(image=image, block_size=block_size, **kwargs)

    # -- power -----------------------------------------------------------------
    @property
    def ops(self) -> int:
        """Program/erase operations done so far."""
        return self.device.ops

    def arm_power_loss(self, after_ops: int, torn: str = "garbage", seed: int = 0) -> None:
        """Cut the power at the `after_ops`-th program/erase from now (1 = next)."""
        if after_ops < 1 or torn not in ("garbage", "old"):
            raise ValueError("after_ops >= 1 and torn in ('garbage', 'old')")
        self.device.fail_at = self.device.ops + after_ops
        self.device.torn, self.device.seed = torn, seed

    def disarm_power_loss(self) -> None:
        self.device.fail_at = None

    @property
    def powered(self) -> bool:
        return not self.device.dead

    # -- image -----------------------------------------------------------------
    def image_bytes(self) -> bytes:
        with self._lock:
            return bytes(self.device.buffer)

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Write the image to `path` (default: the Flash's path) atomically."""
        path = os.fspath(path) if path is not None else self.path
        if path is None:
            raise ValueError("no path to save to")
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".flash-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.device.buffer)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    # -- littlefs calls with MicroPython errors ------------------------------------
    def call(self, fn: Callable, *args):
        """Run an `lfs.*` function on this filesystem; errors as MicroPython's."""
        with self._lock:
            if self.device.dead:
                raise PowerLoss("flash is without power")
            try:
                return fn(self.lfs.fs, *args)
            except LittleFSError as e:
                if self.device.dead:
                    if self._autosave:
                        self.save()
                    raise PowerLoss("power lost at flash operation %d" % self.device.ops) from None
                raise MpOSError(-e.code) from None

    def set_mtime(self, path: str) -> None:
        self.call(lfs.setattr, path, ATTR_MTIME, self.time_ns().to_bytes(8, "little"))

    def mtime(self, path: str) -> int:
        """Seconds since 1970 from the mtime attribute, 0 if there is none."""
        try:
            data = self.call(lfs.getattr, path, ATTR_MTIME)
        except OSError:
            return 0
        return int.from_bytes(data[:8], "little") // 1_000_000_000 if len(data) >= 8 else 0

    # -- host-side helpers -------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        fh = self.call(lfs.file_open, path, O_RDONLY)
        try:
            size = self.call(lfs.file_size, fh)
            return self.call(lfs.file_read, fh, size)
        finally:
            self.call(lfs.file_close, fh)

    def write_file(self, path: str, data: bytes, makedirs: bool = False) -> None:
        if makedirs:
            parts = [p for p in path.split("/") if p][:-1]
            for i in range(1, len(parts) + 1):
                try:
                    self.call(lfs.mkdir, "/" + "/".join(parts[:i]))
                except OSError as e:
                    if e.args[0] != 17:
                        raise
        fh = self.call(lfs.file_open, path, O_WRONLY | O_CREAT | O_TRUNC)
        try:
            self.call(lfs.file_write, fh, bytes(data))
        finally:
            self.call(lfs.file_close, fh)
        self.set_mtime(path)

    def exists(self, path: str) -> bool:
        try:
            self.call(lfs.stat, path)
            return True
        except OSError:
            return False

    def scandir(self, path: str = "/") -> list:
        """littlefs entries of a directory (without "." and "..")."""
        dh = self.call(lfs.dir_open, path)
        entries = []
        try:
            while (info := self.call(lfs.dir_read, dh)) is not None:
                if info.name not in (".", ".."):
                    entries.append(info)
        finally:
            self.call(lfs.dir_close, dh)
        return entries

    def walk(self, top: str = "/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like os.walk: (dirpath, dirnames, filenames), top-down."""
        entries = self.scandir(top)
        dirs = [e.name for e in entries if e.type == 2]
        yield top, dirs, [e.name for e in entries if e.type == 1]
        for name in dirs:
            yield from self.walk(top.rstrip("/") + "/" + name)

    def used_blocks(self) -> int:
        return self.call(lfs.fs_size)


from .vfs import make_open, make_os_module, make_vfs_module  # noqa: E402  (re-export)

__all__ = ["Flash", "FlashCorrupt", "FlashDevice", "PowerLoss", "make_open", "make_os_module", "make_vfs_module",
           "RP2040_PICO_BLOCKS", "RP2040_PICO_W_BLOCKS", "ESP32_BLOCKS", "BLOCK_SIZE"]

"""Power cuts during the firmware's own file writes, on the littlefs image.

A `World` is the firmware's module world (the emulator's runtime) bound to
one `Flash`: the firmware's store functions run in it exactly as on the
board, with MicroPython's `open`/`os` on that image. A trial copies a base
image, arms the flash to lose power at one program/erase operation of the
write (the operation left half done, "garbage", or not at all, "old"),
runs the write until the power goes, remounts what survived with
`Flash.from_image` and hands it to a check: every file old or new, never
broken; the filesystem mounts.

Used by tests/test_power_cut.py.
"""
from __future__ import annotations

import pathlib
import random
import re

from myotone.emulator import Emulator
from myotone.emulator.flash import Flash, FlashCorrupt, PowerLoss

FIRMWARE = pathlib.Path(__file__).resolve().parents[1] / "firmware"


def firmware_writers(root: pathlib.Path = FIRMWARE) -> dict[str, list[str]]:
    """Firmware modules that write files: {module path: [what it does]}.

    Found as the brief says: `open(` in a write mode, `os.rename`,
    `os.remove`, `os.mkdir`.
    """
    found: dict[str, list[str]] = {}
    pat = re.compile(r"""open\([^)]*["'][wax+]b?\+?["']|os\.(rename|remove|mkdir|rmdir)\(""")
    for f in sorted(root.rglob("*.py")):
        hits = [m.group(0) for m in pat.finditer(f.read_text())]
        if hits:
            found[f.relative_to(root).as_posix()] = sorted(set(hits))
    return found


class World:
    """The firmware's modules, running on a given Flash (not a booted board)."""

    def __init__(self, board: str = "pico-mcp4725", firmware_dir: pathlib.Path | None = None):
        self.emu = Emulator(board, firmware_dir=firmware_dir)   # never started: only its runtime is used
        self.base = self.emu.fs
        self.geometry = dict(self.base.geometry)

    def close(self) -> None:
        self.emu.close()

    def bind(self, fs: Flash):
        """A fresh interpreter whose open/os work on `fs`; returns its import function."""
        rt = self.emu.runtime
        rt.fs = fs
        rt.reset_interpreter()
        return rt.import_module

    def image(self, setup=None) -> bytes:
        """The base image: the firmware installed, then `setup(import_module)` run on it."""
        fs = Flash.from_image(self.base.image_bytes(), **self.geometry)
        if setup is not None:
            setup(self.bind(fs))
        return fs.image_bytes()

    def count_ops(self, image: bytes, action) -> int:
        fs = Flash.from_image(image, **self.geometry)
        imp = self.bind(fs)
        ops0 = fs.ops
        action(imp)
        return fs.ops - ops0

    def trial(self, image: bytes, action, cut_at: int, torn: str, seed: int) -> tuple[bytes, bool]:
        """Run `action` with the power going at its cut_at-th flash operation.

        Returns (surviving image, whether the power was lost).
        """
        fs = Flash.from_image(image, **self.geometry)
        imp = self.bind(fs)
        fs.arm_power_loss(cut_at, torn=torn, seed=seed)
        lost = False
        try:
            action(imp)
        except PowerLoss:
            lost = True
        return fs.image_bytes(), lost

    def remount(self, image: bytes):
        """Mount what survived (FlashCorrupt if it does not) and bind the firmware to it."""
        fs = Flash.from_image(image, **self.geometry)
        return fs, self.bind(fs)


def run_trials(world: World, setup, action, check, trials: int, seed: int) -> dict:
    """`trials` power cuts at random operations of `action`; `check(fs, import_module)` after each.

    Every operation index is cut at least once when trials allow.
    """
    image = world.image(setup)
    total = world.count_ops(image, action)
    assert total > 0, "the write does no flash operation: nothing to cut"
    rng = random.Random(seed)
    points = list(range(1, total + 1))
    rng.shuffle(points)
    points = (points * (trials // total + 1))[:trials]
    lost = 0
    for k, cut_at in enumerate(points):
        torn = "garbage" if k % 3 else "old"
        survived, was_lost = world.trial(image, action, cut_at, torn, seed * 100_003 + k)
        lost += was_lost
        try:
            fs, imp = world.remount(survived)
        except FlashCorrupt:
            raise AssertionError(f"unmountable after a cut at operation {cut_at}/{total} ({torn})") from None
        check(fs, imp)
    return {"trials": len(points), "ops": total, "cuts": lost}

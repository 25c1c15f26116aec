"""Client for the real MicroPython VM used by the tests (tools/mpvm/runner.mjs).

One Node process runs the official MicroPython WebAssembly port for the whole
pytest session; ``MicroPythonVM.run(code)`` sends code to it and returns what
it printed, or raises ``MicroPythonError`` (an AssertionError) carrying the
MicroPython traceback.  Every ``run`` gets a fresh ``__main__`` namespace;
imported firmware modules stay imported until ``reset()``.

Only the firmware's pure-logic files are copied into the VM (it has no
``machine``), and imports are limited to modules the rp2 and esp32 firmware
both have (from the pinned stubs), so ``import abc`` fails here as on a device.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MPVM_DIR = REPO / "tools" / "mpvm"
RUNNER = MPVM_DIR / "runner.mjs"
WASM_PACKAGE = MPVM_DIR / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"

sys.path.insert(0, str(REPO / "tools"))
import typecheck_firmware  # noqa: E402  (tools/ is not a package)

# Top-level modules that only exist on hardware: a file importing one of these
# (anywhere in it) is not pure logic and is not copied to the VM.  hal/ files
# that take their pins and timers as arguments are pure logic by this rule, so
# their interrupt handlers can be tested here.
HARDWARE_MODULES = {
    "machine", "rp2", "esp32", "esp", "network", "bluetooth", "neopixel",
    "onewire", "ds18x20", "dht", "espnow", "aioespnow", "pyb", "umachine",
}


class MicroPythonError(AssertionError):
    """Code raised inside MicroPython; the message is MicroPython's traceback."""

    def __init__(self, exc_type: str, traceback: str, stdout: str, code: str):
        self.exc_type = exc_type
        self.traceback = traceback
        self.stdout = stdout
        self.code = code
        shown = stdout if len(stdout) < 4000 else "..." + stdout[-4000:]
        super().__init__(
            f"MicroPython raised {exc_type}:\n{traceback.rstrip()}\n"
            + (f"--- stdout before the error ---\n{shown.rstrip()}\n" if stdout else "")
            + f"--- code ---\n{code.rstrip()}"
        )


class VMCrashed(RuntimeError):
    pass


def _is_hardware(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return bool(typecheck_firmware.imported_top_modules(tree) & HARDWARE_MODULES)


def pure_logic_files(firmware_dir: Path) -> list[str]:
    """Relative paths of the firmware's package files that import nothing hardware.

    boot.py and main.py (top-level files) run the device; they are not copied.
    """
    files = []
    for path in typecheck_firmware.discover(firmware_dir):
        rel = path.relative_to(firmware_dir)
        if len(rel.parts) == 1:
            continue
        if not _is_hardware(path):
            files.append(rel.as_posix())
    return files


def pure_logic_modules(firmware_dir: Path) -> list[str]:
    mods = []
    for rel in pure_logic_files(firmware_dir):
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def device_modules(stubs_root: Path, ports: list[str]) -> set[str]:
    """Modules every listed port's firmware has, according to the pinned stubs."""
    common = None
    for port in ports:
        mods = typecheck_firmware.stub_modules(stubs_root / port)[0]
        common = mods if common is None else common & mods
    return common or set()


def check_installed() -> None:
    if shutil.which("node") is None:
        raise RuntimeError("the MicroPython VM needs Node.js ('node' on PATH)")
    if not (WASM_PACKAGE / "micropython.mjs").exists():
        raise RuntimeError(
            f"{WASM_PACKAGE} is missing; install the pinned MicroPython VM with\n"
            f"    npm ci --prefix {MPVM_DIR.relative_to(REPO)}"
        )


class MicroPythonVM:
    def __init__(self, firmware_dir: Path, *, allow_modules: set[str] | None = None,
                 heapsize: int = 1024 * 1024, timeout: float = 30.0):
        check_installed()
        self.firmware_dir = Path(firmware_dir).resolve()
        self.files = pure_logic_files(self.firmware_dir)
        self.allow_modules = allow_modules
        self.heapsize = heapsize
        self.timeout = timeout
        self.version = ""
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: list[str] = []
        self._next_id = 0
        self.starts = 0

    # -- process ------------------------------------------------------------

    def start(self) -> None:
        cmd = ["node", str(RUNNER), "--root", str(self.firmware_dir), "--heapsize", str(self.heapsize)]
        if self.allow_modules is not None:
            cmd += ["--allow-modules", ",".join(sorted(self.allow_modules))]
        cmd += self.files
        self._lines = queue.Queue()
        self._stderr = []
        self._proc = subprocess.Popen(
            cmd, cwd=MPVM_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1,
        )
        self.starts += 1
        threading.Thread(target=self._pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_err, args=(self._proc.stderr,), daemon=True).start()
        ready = self._read(self.timeout)
        if not ready.get("ready"):
            raise VMCrashed(f"MicroPython VM did not start: {ready}")
        self.version = ready.get("version", "")

    @staticmethod
    def _pump(stream, q: queue.Queue) -> None:
        for line in stream:
            q.put(line)
        q.put(None)

    def _pump_err(self, stream) -> None:
        for line in stream:
            self._stderr.append(line)

    def _read(self, timeout: float) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise VMCrashed(f"MicroPython VM gave no answer within {timeout} s (infinite loop?); restarted") from None
        if line is None:
            rc = self._proc.wait(timeout=5)
            err = "".join(self._stderr)[-4000:]
            self._proc = None
            raise VMCrashed(f"MicroPython VM exited (status {rc}):\n{err}")
        return json.loads(line)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
            self._proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests -----------------------------------------------------------

    def _request(self, op: str, timeout: float | None = None, **fields) -> dict:
        if self._proc is None:
            self.start()
        self._next_id += 1
        req = {"id": self._next_id, "op": op, **fields}
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        answer = self._read(self.timeout if timeout is None else timeout)
        if answer.get("id") != req["id"]:
            raise VMCrashed(f"MicroPython VM answered out of turn: {answer}")
        return answer

    def run(self, code: str, *, timeout: float | None = None) -> str:
        """Run code in MicroPython; return its stdout or raise MicroPythonError."""
        answer = self._request("run", timeout=timeout, code=code)
        if not answer["ok"]:
            raise MicroPythonError(answer["exc_type"], _clean_traceback(answer["traceback"]),
                                   answer["stdout"], code)
        return answer["stdout"]

    def assert_no_alloc(self, setup: str, stmt: str, *, repeat: int = 1, after: str = "") -> str:
        """Fail unless `stmt` (run `repeat` times) allocates nothing on the heap.

        `setup` runs first, unlocked, and builds whatever `stmt` uses; `stmt`
        then runs inside a function with micropython.heap_lock() held, as a
        hard interrupt handler would; `_mpvm_i` is the iteration number.
        There is no warm-up call: a hard IRQ gets none either.  `after` runs
        unlocked once the check passed; what it prints is returned, so a test
        can show that `stmt` really did its work.  The VM cannot say *where*
        it allocated (the WebAssembly build has no emergency exception
        buffer): split `stmt` to find out.
        """
        body = textwrap.indent(textwrap.dedent(stmt).strip(), " " * 8)
        code = textwrap.dedent(setup) + f"""
import micropython as _mpvm_mp
def _mpvm_probe():
    for _mpvm_i in range({int(repeat)}):
{body}
def _mpvm_check():
    _mpvm_mp.heap_lock()
    try:
        _mpvm_probe()
    except MemoryError:
        return False
    finally:
        _mpvm_mp.heap_unlock()
    return True
print("no-alloc" if _mpvm_check() else "ALLOCATES")
""" + textwrap.dedent(after)
        out = self.run(code)
        head, marker, rest = out.partition("no-alloc\n")
        if not marker:
            raise AssertionError(
                f"allocates on the heap under micropython.heap_lock() (not interrupt-safe):\n"
                f"    {stmt.strip()}\n--- setup ---\n{textwrap.dedent(setup).strip()}\n--- output ---\n{out}"
            )
        return rest

    def reset(self) -> None:
        """Forget imported firmware modules, so the next import runs them afresh."""
        answer = self._request("reset")
        if not answer["ok"]:
            raise VMCrashed(answer["traceback"])


def _clean_traceback(text: str) -> str:
    """Drop the runner's own frames (File "<stdin>") from a traceback."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('  File "<stdin>"'):
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n"

"""Deploy: a full `myotone flash` to a served emulator vs an unchanged re-flash vs `mpremote fs cp -r`.

Every method runs as the command a user types (a subprocess, interpreter
start-up included) against `myotone emu serve` in real time (speed 1), on a
pty (what a board's USB serial port looks like) and on TCP (socket://, the
emulator's usual endpoint). "Blank board": every file removed first.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

ROOT = report.ROOT
SPEED = 1.0
BOARD = "pico-mcp4725"
TARGET_SHARE = 0.10
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "host"))

_WIPE = """\
import os
def rm(d):
    for e in os.ilistdir(d):
        p = d.rstrip('/') + '/' + e[0]
        if e[1] & 0x4000:
            rm(p)
            os.rmdir(p)
        else:
            os.remove(p)
rm('/')
"""


class Served:
    """`myotone emu serve --pty|--tcp 0 --speed 1` in a subprocess."""

    def __init__(self, transport: str):
        where = ["--pty"] if transport == "pty" else ["--tcp", "0"]
        self.proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--board", BOARD,
                                      *where, "--speed", str(SPEED)], stdout=subprocess.PIPE, text=True,
                                     env=ENV, cwd=ROOT)
        words = self.proc.stdout.readline().split()
        if not words or words[0] != "serving":
            self.close()
            raise RuntimeError(f"emu serve did not start: {words}")
        self.url = words[1]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run(cmd: list, cwd: Path = ROOT) -> tuple[float, str]:
    """Wall seconds of one command, and its stdout; a failure is an error, not a figure."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    wall_s = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return wall_s, r.stdout


def _mpremote(url: str, *args: str, cwd: Path = ROOT) -> tuple[float, str]:
    return _run([sys.executable, "-m", "mpremote", "connect", url, *args], cwd)


def _flash(url: str) -> tuple[float, int, int]:
    wall_s, out = _run([sys.executable, "-m", "myotone", "flash", "--port", url, "--json"])
    res = json.loads(out.strip().splitlines()[-1])["results"][0]
    if not res["ok"]:
        raise RuntimeError(f"myotone flash failed: {res['error']}")
    return wall_s, len(res["uploaded"]), res["bytes"]


def _tree(tmp: Path) -> tuple[Path, list, int, int]:
    """What `myotone flash` puts on a board that loads no .mpy (the emulator): the
    firmware sources and the board file, laid out for `mpremote fs cp -r`."""
    tree = tmp / "tree"
    shutil.copytree(ROOT / "firmware", tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(ROOT / "boards" / f"{BOARD}.json", tree / "board.json")
    files = [p for p in tree.rglob("*") if p.is_file()]
    return tree, sorted(p.name for p in tree.iterdir()), len(files), sum(p.stat().st_size for p in files)


def _cp(url: str, tree: Path, top: list, n_files: int, n_bytes: int) -> tuple[float, int, int]:
    wall_s, out = _mpremote(url, "fs", "cp", "-r", *top, ":", cwd=tree)
    up_to_date = sum(1 for line in out.splitlines() if line.startswith("Up to date:"))
    return wall_s, n_files - up_to_date, (0 if up_to_date == n_files else n_bytes)


def _one_round(url: str, tree: Path, top: list, n_files: int, n_bytes: int) -> dict:
    """One run of each method, in an order that gives each its starting state."""
    out = {}
    _mpremote(url, "exec", _WIPE)
    out["myotone flash, blank board"] = _flash(url)
    out["myotone flash, nothing changed"] = _flash(url)
    _mpremote(url, "exec", _WIPE)
    out["mpremote fs cp -r, blank board"] = _cp(url, tree, top, n_files, n_bytes)
    out["mpremote fs cp -r, nothing changed"] = _cp(url, tree, top, n_files, n_bytes)
    return out


def _mpy_builds(cache: Path) -> list:
    """The .mpy package a real RP2040 gets (mpy-cross per module), built on the host with
    an empty compile cache, then again: (files, bytes, wall_s) each."""
    sys.path.insert(0, str(ROOT / "host"))
    from myotone import build
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    out = []
    try:
        for _ in range(2):
            t0 = time.perf_counter()
            pkg = build.build(ROOT / "firmware", ROOT / "boards" / f"{BOARD}.json", build.MpyTarget(6, 3, "armv6m"))
            out.append((len(pkg.files), sum(len(b) for b in pkg.files.values()), time.perf_counter() - t0))
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME")
        else:
            os.environ["XDG_CACHE_HOME"] = old
    return out


def measure(quick: bool) -> report.Section:
    runs = 1 if quick else 3
    transports = ("pty",) if quick else ("pty", "tcp")
    rows, shares, unchanged_s = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="myotone-deploy-") as tmp:
        tree, top, n_files, n_bytes = _tree(Path(tmp))
        for transport in transports:
            with Served(transport) as served:
                rounds = [_one_round(served.url, tree, top, n_files, n_bytes) for _ in range(runs)]
            full = {}
            for method in rounds[0]:
                wall_s = statistics.median(r[method][0] for r in rounds)
                files, nbytes = rounds[-1][method][1:]
                tool = method.split(",")[0]
                full.setdefault(tool, wall_s)
                rows.append({"transport": transport, "method": method, "files": files, "bytes": nbytes,
                             "wall_s": wall_s, "share_of_full": wall_s / full[tool]})
            same = next(r for r in rows if r["transport"] == transport
                        and r["method"] == "myotone flash, nothing changed")
            shares[transport], unchanged_s[transport] = same["share_of_full"], same["wall_s"]
        builds = _mpy_builds(Path(tmp) / "cache")
    start_s = statistics.median(_run([sys.executable, "-c", "import myotone.cli, myotone.flasher, "
                                      "mpremote.transport_serial"])[0] for _ in range(3 * runs))
    rows.append({"transport": "-", "method": "python start-up + imports of myotone flash", "files": 0,
                 "bytes": 0, "wall_s": round(start_s, 3), "share_of_full": None})
    for (files, nbytes, wall_s), how in zip(builds, ("empty cache", "cached")):
        rows.append({"transport": "-", "method": f"build the RP2040 .mpy package, {how}", "files": files,
                     "bytes": nbytes, "wall_s": round(wall_s, 3), "share_of_full": None})
    met = all(s < TARGET_SHARE for s in shares.values())
    notes = [f"emulator served by `myotone emu serve --board {BOARD} --speed {SPEED:g}` "
             f"({', '.join('--pty' if t == 'pty' else '--tcp 0' for t in transports)}); "
             f"wall_s: median of {runs} run(s) of the whole command, interpreter start-up included; "
             "share_of_full: against the same tool's copy to a blank board",
             "the emulator reports no .mpy version (sys.implementation._mpy = 0), so `myotone flash` "
             "sends source files and mpy-cross does not run; for a real board it builds the .mpy "
             "package on every flash (the two `build` rows: mpy-cross per module, then from the cache)",
             "mpremote fs cp -r hashes each file in its own round trip (`Up to date:`) and neither "
             "resets the board nor checks that the firmware answers; myotone flash hashes the whole "
             "board in one exec, resets (a soft reset on the open port when nothing changed) and "
             "waits for `hello`; on socket:// pyserial sleeps 0.3 s after closing a port (every mpremote "
             "run pays it, myotone's Link does not)",
             "unchanged re-flash, share of full: " + "; ".join(
                 f"{t} {s:.1%} ({unchanged_s[t]:.2f} s, of which Python start-up and imports "
                 f"{start_s:.2f} s)" for t, s in shares.items())]
    return report.Section("deploy", "full flash vs unchanged re-flash vs mpremote fs cp -r (served emulator)",
                          rows, target="an unchanged re-flash costs under 10 % of a full one", met=met,
                          notes=notes)

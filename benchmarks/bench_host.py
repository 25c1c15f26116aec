"""Host: `myotone --help` start-up, and one command round trip to an emulator through the host's Link."""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

import report
from bench_deploy import ENV, ROOT, Served

# what the --help path must not import: each is a real cost, paid only by the commands that use it
HEAVY = ("serial", "mpremote", "myotone.emulator", "myotone.flasher", "matplotlib", "numpy", "littlefs")


def _wall_s(cmd: list) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - t0


def _row(what: str, walls_s: list) -> dict:
    return {"what": what, "runs": len(walls_s), "median_ms": statistics.median(walls_s) * 1e3,
            "worst_ms": max(walls_s) * 1e3}


def import_costs() -> dict:
    """`python -X importtime -m myotone --help`: cumulative import µs by module."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "myotone", "--help"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, check=True, timeout=60)
    cumulative_us, total_us = {}, 0
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if m:
            cumulative_us.setdefault(m.group(4), int(m.group(2)))
            total_us += int(m.group(2)) if not m.group(3) else 0     # top level: imported by __main__
    cumulative_us["(all)"] = total_us
    return cumulative_us


def help_imports() -> set:
    """Which HEAVY modules a `myotone --help` process has loaded when it exits."""
    code = ("import sys, runpy\nsys.argv = ['myotone', '--help']\n"
            "try:\n    runpy.run_module('myotone', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       check=True, timeout=60)
    return set(eval(r.stdout.strip().splitlines()[-1]))        # noqa: S307 - our own print of a list


def round_trips(port: str, n: int) -> list:
    """Wall seconds of `status` request -> reply, n times on one open Link."""
    sys.path.insert(0, str(ROOT / "host"))
    from myotone.link import Link
    walls_s = []
    with Link.open(port) as link:
        link.request("hello", timeout_s=15)                  # booted and listening
        for _ in range(n):
            t0 = time.perf_counter()
            link.request("status", timeout_s=5)
            walls_s.append(time.perf_counter() - t0)
            link.drop_pending()
    return walls_s


def measure(quick: bool) -> report.Section:
    n_start, n_trip = (3, 10) if quick else (10, 50)
    py = [sys.executable]
    rows = [_row("python -c pass (the interpreter alone)", [_wall_s(py + ["-c", "pass"]) for _ in range(n_start)]),
            _row("python -m myotone --help", [_wall_s(py + ["-m", "myotone", "--help"]) for _ in range(n_start)])]
    for transport in ("pty", "tcp"):
        with Served(transport) as served:
            rows.append(_row(f"status round trip, Link on emu serve --{transport} (speed 1)",
                             round_trips(served.url, n_trip)))
    rows.append(_row("status round trip, Link on emu (in-process, lockstep)", round_trips("emu", n_trip)))
    from myotone.link import EmuTransport
    cost_us = import_costs()
    ms = {name: cost_us.get(name, 0) / 1e3 for name in ("(all)", "myotone.cli", "click", "myotone.link")}
    heavy = help_imports()
    notes = [f"`python -X importtime -m myotone --help` (its own overhead included): imports {ms['(all)']:.1f} ms in all, myotone.cli "
             f"{ms['myotone.cli']:.1f} ms of it, of which click {ms['click']:.1f} ms (the CLI itself) and "
             f"myotone.link {ms['myotone.link']:.1f} ms; nothing avoidable is on the path, so nothing was made lazy",
             ("the --help path loads none of " + ", ".join(HEAVY) + " (tests/test_cli_startup.py keeps it so)")
             if not heavy else "the --help path loads " + ", ".join(sorted(heavy)),
             "round trip: wall time from Link.request('status') to its reply on one open link; "
             "`myotone emu serve` paces virtual time at 1x the wall clock, the in-process emulator "
             f"runs in lockstep steps of {EmuTransport.step_s * 1e3:g} ms virtual time",
             f"runs: {n_start} start-ups, {n_trip} round trips per link; cores: {os.cpu_count()}"]
    return report.Section("host", "`myotone --help` start-up and one command round trip", rows, notes=notes)

"""`make demo`: an emulated board behind a real socket, one real session."""
from __future__ import annotations

import subprocess
import sys

import click

from . import watch
from .link import Link, LinkError


def start_server(board: str, speed: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--board", board,
                             "--tcp", "0", "--speed", str(speed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # (stderr is read only when it fails: the server's own "Interrupted by SIGTERM" when the
    # demo stops it is not news)
    line = proc.stdout.readline().strip()
    if not line.startswith("serving "):
        proc.kill()
        said = (proc.stderr.read().strip().splitlines() or [line])[-1]
        raise LinkError(f"the emulator did not start: {said.removeprefix('Error: ')}")
    return proc, line.split(" ", 1)[1]


def run_demo(board: str, speed: float, ua: int, duration_s: int) -> int:
    proc, url = start_server(board, speed)
    click.echo(f"emulator: {board} at {url} ({speed:g}x real time)")
    try:
        with Link.open(url) as link:
            hello = link.request("hello", timeout_s=10)
            lim = hello["limits"]
            click.echo(f"device: {hello['board']}, firmware {hello['firmware']}, limit {lim['max_ua']} µA, "
                       f"soft start {lim['soft_start_ua']} µA")
            link.request("start", program="lift", ua=ua, duration_s=duration_s, heartbeat=True)
            click.echo(f"session: program lift at {ua} µA for {duration_s} s")
            summary = watch.follow(link, on_message=lambda m: click.echo(watch.telemetry_line(m))
                                   if m.get("ev") == "telemetry" else None, max_s=duration_s * 3 / speed + 30)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    s = summary.as_dict()
    click.echo(f"summary: {s['final_state']}, {s['run_s']} s at setpoint, mean measured {s['mean_measured_ua']} µA "
               f"(max {s['max_measured_ua']} µA), mean impedance {s['mean_impedance_ohm']} Ω"
               + (f", FAULT {s['fault']}" if s["fault"] else ""))
    return 0 if s["final_state"] == "done" and not s["fault"] else 1

"""Soak: hours of back-to-back sessions in lockstep virtual time, with its figures.

    python benchmarks/soak.py [--hours 8] [--board pico-mcp4725] [--session-s 60] [--json out.json]

Runs the unmodified firmware on the emulator through sessions of the
built-in programs, one after the other (some end by themselves, some are
stopped by the host), and after each one checks (tests/soak_run.py):
every bridge edge against the program's ideal schedule (drift), the
supervisor's tick count against virtual time (missed ticks), the bytes the
firmware world holds and the process RSS (memory), the session's states,
and that no fault occurred. Prints a table every N sessions and a summary;
writes a JSON report (default benchmarks/results/soak-BOARD.json). Exit
status 1 on the first failed check.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

from soak_run import Soak, SoakError  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=8.0, help="virtual hours (default 8)")
    ap.add_argument("--board", default="pico-mcp4725")
    ap.add_argument("--session-s", type=int, default=60, help="session length (default 60 s)")
    ap.add_argument("--every", type=int, default=20, help="print a row every N sessions")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    path = pathlib.Path(args.json or ROOT / "benchmarks" / "results" / f"soak-{args.board}.json")
    soak = Soak(args.board, session_s=args.session_s)
    head = f"{'session':>7} {'virtual':>9} {'program':8} {'edges':>6} {'drift_us':>8} {'missed':>6} " \
           f"{'world_B':>8} {'rss_MB':>7}"
    print(head, flush=True)

    def write(summary):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"summary": summary, "sessions": soak.sessions}, indent=1) + "\n")

    def row(r):
        if r["n"] % args.every == 0:
            soak.wall_s = soak.elapsed_wall()
            write({**soak.summary(), "partial": True})      # a long run leaves its figures as it goes
            print(f"{r['n']:7d} {r['t_s'] / 3600:8.3f}h {r['program']:8} {r['edges']:6d} {r['drift_us']:8.1f} "
                  f"{r['missed_ticks']:6d} {r['world_bytes']:8d} {r['rss_bytes'] / 2 ** 20:7.1f}", flush=True)
    status = 0
    try:
        summary = soak.run(args.hours * 3600, row)
    except SoakError as e:
        print(f"FAILED: {e}", flush=True)
        soak.wall_s = soak.wall_s or 1.0
        summary = soak.summary() if soak.sessions else {}
        summary["failure"] = str(e)
        status = 1
    finally:
        soak.close()
    print()
    for k, v in summary.items():
        print(f"  {k:32} {v}")
    write(summary)
    print(f"report: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())

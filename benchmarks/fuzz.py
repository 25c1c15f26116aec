"""Long protocol fuzz: >= 100 000 inputs against the firmware, with its figures.

    python benchmarks/fuzz.py [--inputs 100000] [--seed 1] [--board pico-mcp4725] [--json out.json]

Three fuzzers, each run against the unmodified firmware in the emulator:
  mutate-inprocess   raw-bytes mutations of valid requests, through the LineReader
                     and Supervisor.handle() of the running firmware (fast)
  hypothesis         hypothesis-generated request lines, same path
  mutate-console     mutated lines end to end, as bytes into the emulated console
Every reply is checked (structured, declared error code, the request's id),
the plant must carry no current unless a valid start got through (which is
then stopped and checked against the limit), `hello` must answer after every
batch, and no input may create a file. The first failure stops the run and
is printed. Writes a JSON report (default benchmarks/results/fuzz.json).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "tests")]

from hypothesis import HealthCheck, given, seed, settings, strategies as st  # noqa: E402

from protocol_fuzz import Mutator, Target, corpus, field_sweep, lines  # noqa: E402


def run_inprocess(target: Target, n: int, seed: int) -> int:
    mut = Mutator(corpus(commands=target.commands), seed=seed)
    reader = target.P.LineReader()
    rng = random.Random(seed)
    done = 0
    while done < n:
        data = mut.one() + rng.choice((b"\n", b"\r\n", b"\r"))
        for b in data:                          # through the firmware's own line reader
            line = reader.feed(b)
            if line is target.P.LINE_TOO_LONG:
                done += 1
            elif line is not None:
                target.handle(line)
                done += 1
        if done % 5000 < 2:
            target.hello()
    for line in field_sweep():
        target.handle(line)
        done += 1
    return done


def run_hypothesis(target: Target, n: int, seed_: int) -> int:
    count = [0]

    @seed(seed_)
    @settings(max_examples=max(1, n // 4), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(lines(target.commands, target.max_line), min_size=1, max_size=16))
    def prop(batch):
        for line in batch:
            target.handle(line)
            count[0] += 1
    prop()
    target.hello()
    return count[0]


def run_console(target: Target, n: int, seed: int) -> int:
    mut = Mutator(corpus(commands=target.commands), seed=seed + 1)
    rng = random.Random(seed + 1)
    n0 = target.inputs
    batches = 0
    while target.inputs - n0 < n:
        parts = [mut.one() for _ in range(rng.randrange(1, 16))]
        target.serve(b"".join(p + rng.choice((b"\n", b"\r\n", b"\r", b"\n\n")) for p in parts))
        batches += 1
        if batches % 50 == 0:
            target.hello()
    target.hello()
    return target.inputs - n0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="total inputs (split 60/10/30)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--board", default="pico-mcp4725")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    args = ap.parse_args(argv)
    shares = [("mutate-inprocess", run_inprocess, 0.6), ("hypothesis", run_hypothesis, 0.1),
              ("mutate-console", run_console, 0.3)]
    rows = []
    target = Target(args.board, seed=args.seed)
    try:
        for name, fn, share in shares:
            s0, t0 = target.sessions, time.monotonic()
            n = fn(target, int(args.inputs * share), args.seed)
            wall = time.monotonic() - t0
            rows.append({"fuzzer": name, "inputs": n, "wall_s": round(wall, 1),
                         "inputs_per_s": round(n / wall) if wall else None, "valid_starts": target.sessions - s0})
            print(f"{name:18} {n:8d} inputs {wall:7.1f} s {n / wall:8.0f}/s  valid starts {target.sessions - s0}",
                  flush=True)
        target.check_files()
        events = {}
        for m in target.events:
            events[m["ev"]] = events.get(m["ev"], 0) + 1
    finally:
        target.close()
    report = {"board": args.board, "seed": args.seed, "total_inputs": sum(r["inputs"] for r in rows),
              "failures": 0, "fuzzers": rows, "events_seen": events,
              "properties": ["structured reply with a declared code and the request's id, or dropped with an event",
                             "no current unless a valid start (then <= limit, stopped by ramp-down)",
                             "hello answers after every batch", "no file created"]}
    print(f"{'total':18} {report['total_inputs']:8d} inputs, 0 failures")
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

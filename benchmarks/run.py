"""Myotone performance: what users feel, measured side by side in one run.

    python benchmarks/run.py [--quick] [--only emulator,deploy,...] [--json PATH] [--markdown]

Sections (each a module in benchmarks/ with ``measure(quick)``):

  emulator  virtual seconds per wall second of a 20-minute session
  deploy    full flash vs unchanged re-flash vs `mpremote fs cp -r`
  pulse     edge-time error per pulse back-end over 20 minutes; the cost
            of one interrupt step on the MicroPython VM
  trips     trip latency per SAFETY.md trip, median and worst over seeds
  host      `myotone --help` start-up and one command round trip
  silicon   the firmware on the official RP2040 MicroPython in rp2040js: boot,
            heap, tick, status rate, over_current latency, PIO edges
  envelope  the envelope property's long run: random waveforms x back-ends x
            faults x moments judged on the plant; cases, violations by class,
            refusals by reason

Prints a table per section and writes every figure as JSON (default
benchmarks/results/perf.json) with the machine it ran on. ``--markdown``
prints the tables as docs/performance.md shows them. Benchmarks report
figures; they assert nothing about time.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "host"), str(ROOT / "tests")]

import report  # noqa: E402

SECTIONS = ("emulator", "deploy", "pulse", "trips", "host", "silicon", "envelope")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shortened runs (checks the benchmarks work)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--json", default=str(HERE / "results" / "perf.json"), help="where to write the figures")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--update-docs", action="store_true",
                    help="also put the tables in docs/performance.md (a full run of every section)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    if args.update_docs and (args.quick or names != list(SECTIONS)):
        ap.error("--update-docs publishes a full run of every section: no --quick, no --only")
    out = {"machine": report.machine(), "quick": args.quick, "sections": {}}
    t0 = time.perf_counter()
    for name in names:
        section = importlib.import_module(f"bench_{name}").measure(args.quick)
        out["sections"][name] = section.to_json()
        print(report.render(section, args.markdown), end="\n\n", flush=True)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"figures written to {path} ({out['wall_s']} s)")
    if args.update_docs:
        update_docs(DOCS, out, [report.Section(**s) for s in out["sections"].values()])
        print(f"tables written to {DOCS}")
    return 0


DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- figures: benchmarks/run.py --update-docs -->", "<!-- /figures -->"


def update_docs(path: Path, out: dict, sections: list) -> None:
    """Replace the figures block of docs/performance.md with this run's tables."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} block to replace")
    m = out["machine"]
    head = (f"Latest run: commit {m['commit']}, {m['cpu']} ({m['cores']} cores), "
            f"{m['implementation']} {m['python']}, {out['wall_s']:.0f} s in all.")
    body = "\n\n".join([head] + [report.render(s, markdown=True).replace("## ", "### ", 1) for s in sections])
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{BEGIN}\n{body}\n{END}{after}")


if __name__ == "__main__":
    sys.exit(main())

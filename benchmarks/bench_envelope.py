"""The envelope property's long run: random sessions over the whole accepted envelope x back-ends x
faults x fault moments x stop / pause-resume moments, each judged on the plant.

The cases, the running and the judges are the test's own (tests/envelope_case.py,
tests/envelope_judge.py; the modest derandomized budget is tests/test_envelope_property.py). Here
they are drawn from a seeded `random.Random`, all of them run (a violation does not stop the run),
and the figures are counted: cases, refusals by reason, cases with a violation and violations by
class, each class with its first (smallest-numbered) example. The full list goes to
benchmarks/results/envelope.json.
"""
from __future__ import annotations

import collections
import json
import random
import time
from pathlib import Path

import report
from envelope_case import draw_case, run_case

CASES, QUICK_CASES = 1000, 12
SEED = 1
RESULTS = Path(__file__).resolve().parent / "results" / "envelope.json"


def run(n: int, seed: int = SEED) -> dict:
    rng = random.Random(seed)
    refusals, classes, examples, cases = collections.Counter(), collections.Counter(), {}, []
    per_backend = collections.Counter()
    wall = time.perf_counter()
    errors = []
    for k in range(n):
        case = draw_case(rng.randint, rng.choice)
        try:
            out = run_case(case, seed=1 + k % 7)
        except Exception as exc:                 # reported, never hidden
            errors.append(f"case {k}: {case.short()}: {exc!r}")
            continue
        row = {"n": k, "case": case.short(), "refused": out.refused, "message": out.message,
               "violations": [str(v) for v in out.violations], "latched": out.latched,
               "sim_s": round(out.sim_s, 3), "wall_s": round(out.wall_s, 3)}
        cases.append(row)
        per_backend[(case.backend, "refused" if out.refused else "violated" if out.violations else "held")] += 1
        if out.refused:
            refusals[out.refused] += 1
        seen = set()
        for v in out.violations:
            cls = f"{v.cls} ({case.fault})" if v.cls in ("trip_late", "over_limit") else v.cls
            if cls not in seen:
                classes[cls] += 1
                seen.add(cls)
                examples.setdefault(cls, f"case {k}: {case.short()} -> {v}")
    return {"seed": seed, "cases": n, "run": len(cases), "errors": errors, "refusals": dict(refusals),
            "violated_cases": sum(1 for c in cases if c["violations"]),
            "classes": dict(classes), "examples": examples,
            "per_backend": {f"{b}/{o}": c for (b, o), c in sorted(per_backend.items())},
            "sim_s": round(sum(c["sim_s"] for c in cases), 1), "wall_s": round(time.perf_counter() - wall, 1),
            "list": cases}


def measure(quick: bool) -> report.Section:
    r = run(QUICK_CASES if quick else CASES)
    path = RESULTS.with_name("envelope-quick.json") if quick else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r, indent=1) + "\n")
    accepted = r["run"] - sum(r["refusals"].values())
    rows = [{"figure": "cases drawn (seed %d)" % r["seed"], "count": r["cases"]},
            {"figure": "refused (a fine outcome)", "count": sum(r["refusals"].values())},
            {"figure": "run", "count": accepted},
            {"figure": "run with >= 1 violation", "count": r["violated_cases"]},
            {"figure": "errors of the bench itself", "count": len(r["errors"])}]
    by_class = [{"violation class": c, "cases": n, "first example": r["examples"][c]}
                for c, n in sorted(r["classes"].items(), key=lambda x: -x[1])]
    by_reason = [{"refusal": k, "cases": v} for k, v in sorted(r["refusals"].items(), key=lambda x: -x[1])]
    by_backend = [{"back-end / outcome": k, "cases": v} for k, v in r["per_backend"].items()]
    notes = [f"{r['sim_s']:.0f} s simulated in {r['wall_s']:.0f} s wall; every case in {path.name}"]
    notes += r["errors"][:5]
    return report.Section("envelope", "the envelope property: random sessions judged on the plant "
                          "(tests/test_envelope_property.py)", rows,
                          target="no violation in any case run (issue 17)",
                          met=r["violated_cases"] == 0 and not r["errors"],
                          notes=notes, more=[("violations by class (cases)", by_class),
                                             ("refusals by reason", by_reason), ("by back-end", by_backend)])

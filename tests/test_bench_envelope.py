"""The envelope benchmark section: its quick run counts every case once (refused, held or violated),
gives each violation class an example, and writes the cases it ran."""
import json
import sys

from firmware_paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_envelope  # noqa: E402


def test_the_quick_envelope_section_accounts_for_every_case():
    section = bench_envelope.measure(quick=True)
    figures = {r["figure"]: r["count"] for r in section.rows}
    drawn = figures[f"cases drawn (seed {bench_envelope.SEED})"]
    assert drawn == bench_envelope.QUICK_CASES
    assert figures["refused (a fine outcome)"] + figures["run"] + figures["errors of the bench itself"] == drawn
    assert figures["errors of the bench itself"] == 0
    assert figures["run with >= 1 violation"] <= figures["run"]
    tables = dict(section.more)
    assert all(row["first example"].startswith("case ") for row in tables["violations by class (cases)"])
    assert sum(r["cases"] for r in tables["refusals by reason"]) == figures["refused (a fine outcome)"]
    assert section.met == (figures["run with >= 1 violation"] == 0)
    saved = json.loads((REPO / "benchmarks" / "results" / "envelope-quick.json").read_text())
    assert len(saved["list"]) == drawn

"""Sections of the performance report: rows of figures, printed as tables, saved as JSON.

Each benchmark module has ``measure(quick: bool) -> Section``. A row is a
dict of plain values (str, int, float, bool, None); the table's columns are
the keys of the first row. ``quick`` runs a shortened version (the test
suite uses it to keep the benchmarks working; its figures are not the
published ones).
"""
from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Section:
    name: str                       # "emulator", "deploy", ...
    title: str                      # one line: what is measured
    rows: list[dict]
    target: str = ""                # the target, in words
    met: bool | None = None         # whether the target is met (None: no target)
    notes: list[str] = field(default_factory=list)
    more: list[tuple[str, list[dict]]] = field(default_factory=list)   # further tables: (heading, rows)

    def to_json(self) -> dict:
        return asdict(self)


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}".replace(",", " ")
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}".replace(",", " ") if abs(v) >= 10000 else str(v)
    return str(v)


def table(rows: list[dict], markdown: bool = False) -> str:
    """The rows as an aligned text table (or a Markdown one)."""
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    if markdown:                    # a "|" in a cell (|I|) would end the cell
        cells = [[c.replace("|", "\\|") for c in r] for r in cells]
        out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) if i else v.ljust(w)      # noqa: E731
                                  for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def render(section: Section, markdown: bool = False) -> str:
    head = f"## {section.name}: {section.title}" if markdown else f"== {section.name}: {section.title}"
    parts = [head, "", table(section.rows, markdown)]
    for heading, rows in section.more:
        parts += ["", heading, "", table(rows, markdown)]
    if section.target:
        verdict = {True: "met", False: "NOT met", None: "-"}[section.met]
        parts += ["", f"{'**target**' if markdown else 'target'}: {section.target} ({verdict})"]
    if markdown and section.notes:
        parts += [""] + [f"* {n}" for n in section.notes]
    else:
        parts += [f"note: {n}" for n in section.notes]
    return "\n".join(parts)


def machine() -> dict:
    """Where the figures were taken."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return {"python": platform.python_version(), "implementation": sys.implementation.name,
            "cpu": cpu, "cores": os.cpu_count(), "system": platform.system(), "commit": commit}

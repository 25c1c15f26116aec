"""The emulator benchmark section and the report's one command: they run and say true things."""
import json
import sys

import pytest

from firmware_paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_emulator  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402


def test_the_quick_emulator_section_runs_every_tick_of_every_back_end():
    section = bench_emulator.measure(quick=True)
    assert [r["backend"] for r in section.rows] == ["pio", "rmt", "timer"]
    for row in section.rows:
        assert row["states"] == "ramp run ramp_down done" and row["faults"] == 0
        assert row["ticks"] == round(row["virtual_s"] * row["hz"])  # no fast-path sample skipped, none extra
        # telemetry every second, on time (within a main-loop pass), from the start through the
        # ramp-down (>= 1.5 s), and one at the end: the end falls anywhere in the last virtual
        # second, so the count is not the run's rounded length
        assert 0 <= row["telemetry_late_ms"] <= 20
        assert 20 + 1 <= row["telemetry"] <= round(row["virtual_s"]) + 1
        assert row["speed_x"] == row["virtual_s"] / row["wall_s"]    # the same unrounded figures
    assert section.met == (section.rows[0]["speed_x"] >= bench_emulator.TARGET_X)
    assert "firmware's own ticks" in section.notes[0]


def test_tables_print_every_row_and_column_as_text_and_markdown():
    section = report.Section("demo", "a demo", [{"name": "a", "wall_s": 1.234, "n": 12345},
                                                {"name": "bb", "wall_s": 0.0, "n": None}],
                             target="fast", met=False)
    text = report.render(section)
    assert text.splitlines()[2].split() == ["name", "wall_s", "n"]
    assert "12 345" in text and "1.23" in text and "NOT met" in text
    md = report.render(section, markdown=True).splitlines()
    assert md[0] == "## demo: a demo" and md[2] == "| name | wall_s | n |" and md[5] == "| bb | 0 | - |"


def test_run_refuses_an_unknown_section_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "perf.json"
    with pytest.raises(SystemExit) as exc:
        run.main(["--only", "emulator,warp", "--json", str(out)])
    assert exc.value.code == 2 and not out.exists()
    assert "unknown section(s) warp" in capsys.readouterr().err


def test_run_writes_the_figures_with_the_machine(tmp_path, monkeypatch):
    fake = report.Section("emulator", "t", [{"backend": "pio", "speed_x": 1.0}], target="x", met=False)
    monkeypatch.setattr(bench_emulator, "measure", lambda quick: fake)
    out = tmp_path / "perf.json"
    assert run.main(["--quick", "--only", "emulator", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["sections"]["emulator"]["rows"] == fake.rows
    assert {"python", "cpu", "cores", "commit"} <= set(data["machine"])


def test_update_docs_replaces_only_the_figures_block(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(f"# P\n\nintro\n\n{run.BEGIN}\nold tables\n{run.END}\n\n## After\n")
    out = {"machine": {"commit": "abc1234", "cpu": "cpu", "cores": 2, "implementation": "cpython",
                       "python": "3.11.7"}, "wall_s": 12.0}
    section = report.Section("emulator", "t", [{"backend": "pio", "speed_x": 20.5}], target="x", met=False,
                             notes=["why"])
    run.update_docs(doc, out, [section])
    text = doc.read_text()
    assert "old tables" not in text and text.startswith("# P\n\nintro\n") and text.endswith("## After\n")
    assert "commit abc1234" in text and "### emulator: t" in text and "| pio | 20.50 |" in text
    assert "**target**: x (NOT met)" in text and "* why" in text
    doc.write_text("# no block\n")
    with pytest.raises(SystemExit):
        run.update_docs(doc, out, [section])


def test_a_pipe_in_a_cell_does_not_break_the_markdown_table():
    md = report.table([{"trip": "over_current", "timed": "|I| > limit -> HV off"}], markdown=True)
    assert md.splitlines()[2] == "| over_current | \\|I\\| > limit -> HV off |"

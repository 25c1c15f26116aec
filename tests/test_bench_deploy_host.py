"""The deploy and host benchmark sections run (quick) and measure what they say; no figure is judged."""
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_deploy  # noqa: E402
import bench_host  # noqa: E402


def test_deploy_section_flashes_a_blank_board_whole_and_an_unchanged_one_not_at_all():
    section = bench_deploy.measure(quick=True)
    rows = {(r["transport"], r["method"]): r for r in section.rows}
    full, same = rows["pty", "myotone flash, blank board"], rows["pty", "myotone flash, nothing changed"]
    cp_full, cp_same = rows["pty", "mpremote fs cp -r, blank board"], rows["pty", "mpremote fs cp -r, nothing changed"]
    assert full["files"] == cp_full["files"] >= 30 and full["bytes"] == cp_full["bytes"] > 0   # the same tree
    assert same["files"] == same["bytes"] == cp_same["files"] == 0
    assert full["share_of_full"] == 1.0 and same["share_of_full"] == same["wall_s"] / full["wall_s"]
    assert section.met == (same["share_of_full"] < 0.10)
    cold, warm = rows["-", "build the RP2040 .mpy package, empty cache"], rows["-", "build the RP2040 .mpy package, cached"]
    assert cold["files"] == warm["files"] == full["files"] and cold["bytes"] == warm["bytes"] < full["bytes"]
    assert all(r["wall_s"] > 0 for r in section.rows)


def test_host_section_times_help_and_round_trips_on_every_link():
    section = bench_host.measure(quick=True)
    whats = [r["what"] for r in section.rows]
    assert "python -m myotone --help" in whats and sum("round trip" in w for w in whats) == 3
    assert all(0 < r["median_ms"] <= r["worst_ms"] for r in section.rows)
    assert any("loads none of" in n for n in section.notes)          # the --help path stays light

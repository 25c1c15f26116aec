"""The trips benchmark section: its quick run times every SAFETY.md trip, each within its bound."""
import sys

from firmware_paths import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_trips  # noqa: E402

# SAFETY.md's own numbers, typed here on purpose: the section reads its bounds from the
# firmware's limits, so a weakened limit must fail here, not pass there
SAFETY_BOUNDS_MS = {"over_current": 2, "contact_lost": 10, "charge_imbalance": 1000, "sense_fault": 100,
                    "over_temp": 1000, "watchdog": 1000}
SAFETY_TRIPS = {"over_current", "contact_lost", "high_density", "charge_imbalance", "sense_fault",
                "over_temp", "charging", "heartbeat_lost", "watchdog", "brownout"}


def test_the_quick_trips_section_times_every_trip_within_its_bound():
    section = bench_trips.measure(quick=True)
    rows = section.rows
    assert SAFETY_TRIPS <= {r["trip"] for r in rows}
    for r in rows:
        assert r["runs"] >= 2 and r["worst_ms"] is not None and r["worst_ms"] >= r["median_ms"] >= 0
        if r["bound_ms"] is not None:
            assert r["within_bound"] is True, r
        assert r["bound_ms"] == SAFETY_BOUNDS_MS.get(r["trip"]), r
    assert section.met is True

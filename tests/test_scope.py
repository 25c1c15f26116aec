"""`myotone emu scope`: the figure itself -- the time axis in units a zoomed window reads
in, the injected fault and the firmware's trip marked where they happened, the window
checked -- not only that a PNG was written."""
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from cli_helpers import cli, one_line_error, usage_error
from figure_helpers import data_max, spans, texts, vlines
from myotone.emulator import scenario, trace_export

SCENARIO = Path(__file__).resolve().parent.parent / "docs" / "scenarios" / "dac-stuck-high.json"


@pytest.fixture(scope="module")
def stuck_dac():
    """dac-stuck-high: the DAC sticks at 30.0202 s, inside a phase; the over-current latch gates the bridge off ~10 us
    later (docs/hardware.md; the fast path alone would cut at its next sample, 0.5 ms)."""
    return scenario.run(str(SCENARIO))


def test_a_zoomed_scope_reads_in_ms_from_the_window_start_and_marks_the_trip(stuck_dac):
    res = stuck_dac
    fig = trace_export.scope_figure(res.emu, res.end_ns, 30.0192, 30.0232, res.report)
    ax_i, ax_b = fig.axes
    assert ax_b.get_xlabel() == "time after 30.0192 s (ms)"
    assert ax_b.get_xlim() == pytest.approx((0, 4))
    fig.canvas.draw()
    labels = [t.get_text() for t in ax_b.get_xticklabels()]
    assert labels and not any("e" in s or "+" in s for s in labels)     # no offset, no exponent
    for ax in (ax_i, ax_b):
        assert vlines(ax, "inject") == [pytest.approx(1.0)]                 # 30.0202 s
        (off,) = vlines(ax, "trip")                                         # output off ~30.02021 s
        assert 1.0 < off <= 1.0 + 0.02
        ((a, b),) = spans(ax, "trip")
        assert (a, b) == (pytest.approx(1.0), pytest.approx(off))
    (trip,) = texts(ax_i, "trip")
    assert "over_current" in trip and f"{off - 1.0:.3f} ms" in trip
    lo, hi = ax_i.get_ylim()
    assert lo < 0 and hi > data_max(ax_i, "current") * 1.1


def test_scope_time_units_follow_the_window():
    assert trace_export.time_unit(45e9) == (1e9, "s")
    assert trace_export.time_unit(4e6) == (1e6, "ms")
    assert trace_export.time_unit(1.5e6) == (1e3, "µs")
    assert trace_export.time_unit(500) == (1, "ns")


def test_a_whole_run_scope_reads_in_seconds(stuck_dac):
    res = stuck_dac
    fig = trace_export.scope_figure(res.emu, res.end_ns, report=res.report)
    ax_b = fig.axes[1]
    assert ax_b.get_xlabel() == "virtual time (s)" and ax_b.get_xlim() == pytest.approx((0, 45))


@pytest.mark.parametrize("window, message", [
    ((50, None), "--from-s 50 is not before the scenario's end (45 s)"),
    ((44.9999995, None), "shorter than 1 µs"),
    ((5, 1), "--to-s 1 must be after --from-s 5"),
    ((-1, None), "before the start"),
])
def test_a_window_outside_the_run_is_refused(window, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        trace_export.scope_window(45 * 10**9, *window)


def test_scope_from_after_the_end_is_one_line(tmp_path):
    out = tmp_path / "a.png"
    one_line_error(cli("emu", "scope", str(SCENARIO), "--out", str(out), "--from-s", "50"),
                   "--from-s 50 is not before the scenario's end (45 s)")
    assert not out.exists()
    usage_error(cli("emu", "scope", str(SCENARIO), "--out", str(out), "--from-s", "-1"), "myotone emu scope",
                "--from-s")                                                 # click's range check

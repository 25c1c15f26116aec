"""`myotone plot`: the figure itself -- axes limits, units, what is labelled, where
pauses, phases and faults are drawn, and the title -- not only that a PNG was written. Records are made here as the firmware writes them (marks
included); test_session_log.py proves the firmware writes them so."""
import time

import pytest

pytest.importorskip("matplotlib")

from figure_helpers import by_gid, data_max, spans, texts, vlines
from myotone import logs, plot

START_S = 1_796_558_400           # 2026-12-06 12:00 UTC


def record(seconds=60, marks=None, faults=(), samples=None, **extra):
    """A lift session at 300 uA as the firmware logs it: one sample a second, each the mean
    over the second before it (80 % duty: 240 uA), 9.8 kOhm."""
    if samples is None:
        samples = [{"t_s": t, "ua": 240, "ohm": 9806, "led_pct": 0} for t in range(1, seconds + 1)]
    if marks is None:
        marks = [{"t_ms": 0, "mark": "phase", "phase": 1, "label": ""}, {"t_ms": 0, "mark": "setpoint", "ua": 300},
                 {"t_ms": seconds * 1000 - 1500, "mark": "stop"}, {"t_ms": seconds * 1000, "mark": "end"}]
    rec = {"n": 4, "start_s": START_S, "end_s": START_S + seconds, "program": "lift", "faults": list(faults),
           "setpoint_ua": 300, "charge_uc": 14000.0, "avg_ua": 233.2, "impedance_ohm": [9806],
           "led_dose_j_cm2": 0.0, "firmware": "0.1.0", "board": "pico-mcp4725", "unit_id": "e660583883253b2f",
           "marks": marks, "samples": samples}
    rec.update(extra)
    return rec


def axes(fig):
    ax_i, ax_z, ax_led = fig.axes
    return ax_i, ax_z, ax_led


# ---- plot: a normal session ---------------------------------------------------------
def test_title_names_the_session_board_firmware_unit_and_date():
    fig = plot.figure(record())
    title = fig._suptitle.get_text()
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(START_S))
    for part in ("Session #4", "lift", date, "board pico-mcp4725", "firmware 0.1.0", "unit e660583883253b2f"):
        assert part in title, title
    assert "not set" not in title
    old = plot.figure(record(start_s=1_609_459_300, firmware=None))   # a clock nothing set; no firmware field
    assert "device clock not set" in old._suptitle.get_text() and "firmware unknown" in old._suptitle.get_text()


def test_axes_have_units_and_no_line_runs_on_the_frame():
    fig = plot.figure(record())
    ax_i, ax_z, ax_led = axes(fig)
    assert "µA" in ax_i.get_ylabel() and "kΩ" in ax_z.get_ylabel() and "%" in ax_led.get_ylabel()
    assert ax_led.get_xlabel() == "time since the start (s)"
    for ax, gid in ((ax_i, "measured"), (ax_i, "setpoint"), (ax_z, "impedance")):
        lo, hi = ax.get_ylim()
        assert lo < 0 < data_max(ax, gid) and data_max(ax, gid) * 1.2 <= hi, (gid, ax.get_ylim())
    assert ax_z.get_ylim()[1] == pytest.approx(9.806 * plot.HEADROOM)
    lo, hi = ax_led.get_ylim()
    assert lo < 0 and hi > 100
    lo, hi = ax_led.get_xlim()
    assert lo == 0 and hi > 60                      # the last sample and the end are inside the frame


def test_the_averaged_current_is_labelled_as_such_against_the_setpoint():
    fig = plot.figure(record())
    ax_i = fig.axes[0]
    (measured,), (setpoint,) = by_gid(ax_i, "measured"), by_gid(ax_i, "setpoint")
    assert measured.get_drawstyle() == "steps-pre"     # each sample is the mean over the second before it
    assert "mean" in measured.get_label() and "per 1 s" in measured.get_label() and "gaps" in measured.get_label()
    assert "setpoint" in setpoint.get_label() and "amplitude" in setpoint.get_label()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [setpoint.get_label(), measured.get_label()]
    assert set(setpoint.get_ydata()) == {300} and max(setpoint.get_xdata()) == pytest.approx(58.5)   # to the stop
    assert not by_gid(ax_i, "pause") and not by_gid(ax_i, "phase") and not by_gid(ax_i, "fault")


def test_a_long_session_reads_in_minutes_and_its_thinned_samples_say_so():
    samples = [{"t_s": t, "ua": 240, "ohm": 9806, "led_pct": 60} for t in range(2, 601, 2)]
    fig = plot.figure(record(600, samples=samples))
    ax_i, _, ax_led = axes(fig)
    assert ax_led.get_xlabel() == "time since the start (min:s)"
    fmt = ax_led.xaxis.get_major_formatter()
    assert fmt(90, 0) == "1:30" and fmt(600, 0) == "10:00"
    assert "per 2 s" in by_gid(ax_i, "measured")[0].get_label()


# ---- plot: pauses, phases, faults ----------------------------------------------------
def test_a_pause_is_shaded_on_every_axis_from_the_pause_to_the_resume():
    marks = [{"t_ms": 0, "mark": "phase", "phase": 1, "label": ""}, {"t_ms": 0, "mark": "setpoint", "ua": 300},
             {"t_ms": 20005, "mark": "pause"}, {"t_ms": 35010, "mark": "resume"},
             {"t_ms": 50000, "mark": "pause"}, {"t_ms": 60000, "mark": "stop"}, {"t_ms": 61500, "mark": "end"}]
    fig = plot.figure(record(62, marks=marks))
    for ax in fig.axes:
        assert spans(ax, "pause") == [(20.005, 35.01), (50.0, 60.0)]    # the second one: stopped while paused
    assert texts(fig.axes[0], "pause") == ["paused", "paused"]


def test_phases_are_banded_named_and_the_setpoint_follows_them():
    marks = [{"t_ms": 0, "mark": "phase", "phase": 1, "label": "forehead"}, {"t_ms": 0, "mark": "setpoint", "ua": 300},
             {"t_ms": 30000, "mark": "phase", "phase": 2, "label": "move"}, {"t_ms": 30000, "mark": "setpoint", "ua": 0},
             {"t_ms": 35000, "mark": "phase", "phase": 3, "label": "jaw"}, {"t_ms": 35020, "mark": "setpoint", "ua": 240},
             {"t_ms": 70000, "mark": "stop"}, {"t_ms": 71500, "mark": "end"}]
    fig = plot.figure(record(72, marks=marks))
    ax_i = fig.axes[0]
    assert texts(ax_i, "phase") == ["1 forehead", "2 move", "3 jaw"]
    for ax in fig.axes:
        assert vlines(ax, "phase") == [30.0, 35.0]          # where phases 2 and 3 begin
        assert spans(ax, "phase") == [(30.0, 35.0)]         # every other phase banded
    (setpoint,) = by_gid(ax_i, "setpoint")
    assert list(setpoint.get_xdata()) == [0, 30, 35.02, 70] and list(setpoint.get_ydata()) == [300, 0, 240, 240]
    # a short phase's name goes on a second row: "2 move" sits lower than "1 forehead" and "3 jaw"
    rows = {a.get_text(): a.xyann[1] for a in by_gid(ax_i, "phase") if hasattr(a, "get_text")}
    assert rows["2 move"] < rows["1 forehead"] == rows["3 jaw"]


def test_a_fault_is_marked_where_it_latched_on_every_axis():
    marks = [{"t_ms": 0, "mark": "phase", "phase": 1, "label": ""}, {"t_ms": 0, "mark": "setpoint", "ua": 300},
             {"t_ms": 25020, "mark": "end"}, {"t_ms": 25020, "mark": "fault", "reason": "contact_lost"}]
    rec = record(25, marks=marks, faults=["contact_lost"])
    fig = plot.figure(rec)
    for ax in fig.axes:
        assert vlines(ax, "fault") == [25.02]
        assert ax.get_xlim()[1] > 25.02                     # not on the frame
    assert texts(fig.axes[0], "fault") == ["fault: contact_lost"]
    # the CSV's fault column takes the same time: the row of the sample nearest it
    assert logs.fault_events(rec) == [(25.02, "contact_lost")]
    rows = logs.to_csv(rec).splitlines()
    assert rows[25].split(",")[0] == "25" and rows[25].endswith(",contact_lost")
    assert sum(r.endswith(",contact_lost") for r in rows) == 1


def test_an_older_record_without_marks_still_plots_its_faults_at_the_end():
    rec = record(30, faults=["heartbeat_lost"])
    for key in ("marks", "firmware", "board", "unit_id"):
        rec.pop(key)
    fig = plot.figure(rec)
    assert vlines(fig.axes[0], "fault") == [30]
    (setpoint,) = by_gid(fig.axes[0], "setpoint")
    assert set(setpoint.get_ydata()) == {300}
    assert "board unknown · firmware unknown · unit unknown" in fig._suptitle.get_text()


def test_no_current_at_all_says_so_instead_of_an_empty_impedance_axis():
    samples = [{"t_s": t, "ua": 0, "ohm": 0, "led_pct": 100} for t in range(1, 11)]
    marks = [{"t_ms": 0, "mark": "phase", "phase": 1, "label": ""}, {"t_ms": 0, "mark": "setpoint", "ua": 0},
             {"t_ms": 10000, "mark": "end"}]
    fig = plot.figure(record(10, samples=samples, marks=marks, program="glow", setpoint_ua=0))
    ax_i, ax_z, ax_led = axes(fig)
    assert not by_gid(ax_z, "impedance") and "no impedance" in " ".join(t.get_text() for t in ax_z.texts)
    assert data_max(ax_led, "led") == 100 and ax_led.get_ylim()[1] > 100
    assert not by_gid(ax_i, "setpoint") and "no current" in " ".join(t.get_text() for t in ax_i.texts)
    assert ax_i.get_ylim()[1] >= 100                  # a scale in µA, not 0 .. 1


# ---- the record as the firmware writes it, plotted -----------------------------------
def test_a_paused_two_phase_session_on_the_emulator_plots_its_pause_and_phases(bench):
    rec = bench.paused_two_phase_record()           # test_session_log.py checks its marks
    fig = plot.figure(rec)
    ax_i = fig.axes[0]
    ((p0, p1),) = spans(ax_i, "pause")
    assert p0 == pytest.approx(4, abs=0.05) and p1 == pytest.approx(9, abs=0.05)
    assert texts(ax_i, "phase") == ["1 warm", "2 light"]
    assert vlines(ax_i, "phase") == [pytest.approx(8 + 5, abs=0.05)]   # session time 8 s, after a 5 s pause
    assert "pico-mcp4725" in fig._suptitle.get_text() and rec["unit_id"] in fig._suptitle.get_text()


def test_plot_saves_what_figure_draws(tmp_path):
    out = plot.plot(record(), tmp_path / "sub" / "s.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""`calibrate` and `selftest` through the device: the in-process emulator sets its own
loads, a served one is driven through its side channel (--rig), a real board asks."""
import datetime
import json
import re

import pytest

from cli_helpers import Served, cli, one_line_error
from myotone import link as link_mod
from myotone.calibrate import CalibrationError, calibrate, fit_line
from myotone.link import Link
from myotone.bench import Capture
from myotone.rig import EmuRig
from myotone.selftest import calibration_state, led_figures, selftest
from myotone.selftest_text import format_text


def unit_with(monkeypatch, **plant):
    """Every in-process emulator the CLI opens is a unit with these tolerances."""
    real = link_mod.EmuTransport.__init__

    def init(self, board="pico-mcp4725", **kw):
        real(self, board, **kw)
        for k, v in plant.items():
            setattr(self.emulator.plant, k, v)
    monkeypatch.setattr(link_mod.EmuTransport, "__init__", init)


def plateau_ua(emulator, link, ua):
    """Mean |I| on the plant while a session runs at `ua` (the truth, not the device's belief)."""
    link.request("start", program="lift", ua=ua, duration_s=30)
    t0 = emulator.now_s + 4
    while emulator.now_s < t0:
        link.read_message(0.5)
    t = emulator.clock.now_ns
    while emulator.now_s < t0 + 1:
        link.read_message(0.5)
    tr = emulator.plant.trace
    on = [abs(i) for tt, i in zip(tr.t_ns, tr.i_ua) if tt >= t and i != 0]
    link.request("stop")
    while link.read_message(0.5) is not None or link.request("status")["state"] != "done":
        pass
    return sum(on) / len(on)


def test_calibration_fits_the_unit_and_the_firmware_uses_it():
    with Link.open("emu") as link:
        emu = link.transport.emulator
        emu.plant.dac_gain, emu.plant.sense_gain = 0.93, 1.05     # a unit 7 % weak, its sense 5 % high
        assert plateau_ua(emu, link, 300) == pytest.approx(279, abs=2)
        r = calibrate(link, 1000, EmuRig(emu))
        assert r["calibration"]["dac_gain"] == pytest.approx(0.93, abs=0.005)
        assert r["calibration"]["adc_gain"] == pytest.approx(1 / 1.05, abs=0.005)
        assert abs(r["check"]["error_pct"]) < 1.0 and r["residual_ua"] < 2
        assert r["limit_code"] <= r["nominal_limit_code"]
        assert json.loads(emu.fs.read_file("/calib.json"))["dac_gain"] == r["calibration"]["dac_gain"]
        emu.set_load(r_series_ohm=2000, r_parallel_ohm=8000)      # back on a face-like load
        assert plateau_ua(emu, link, 300) == pytest.approx(300, abs=2)
        st = link.request("status")
        assert st["state"] == "done"


def test_calibrate_cli_in_process_text_and_json(monkeypatch):
    unit_with(monkeypatch, dac_gain=1.06)
    r = cli("calibrate", "--port", "emu", "--load-ohm", "1000")
    assert r.exit_code == 0, r.output
    assert "stored: DAC µA = 1.0" in r.stdout and "check at 250 µA" in r.stdout
    assert "measuring at 50 µA" in r.stderr
    r = cli("calibrate", "--port", "emu", "--load-ohm", "1000", "--json")
    out = json.loads(r.stdout)
    assert out["calibration"]["dac_gain"] == pytest.approx(1.06, abs=0.005) and len(out["points"]) == 5


def test_calibrate_with_a_meter_reading_typed_in(monkeypatch):
    """The person reads a meter that says 2 % more than the voltage channel would."""
    unit_with(monkeypatch)
    readings = "\n".join(str(round(ua * 1.02, 1)) for ua in (50, 150, 250, 350, 450, 250)) + "\n"
    r = cli("calibrate", "--port", "emu", "--load-ohm", "1000", "--meter", "--json", input=readings)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reference"] == "meter" and out["calibration"]["dac_gain"] == pytest.approx(1.02, abs=0.005)


def test_a_fit_out_of_bounds_is_refused_and_the_old_calibration_kept(monkeypatch):
    unit_with(monkeypatch, dac_gain=0.7)                    # a broken unit (or the wrong resistor)
    r = cli("calibrate", "--port", "emu", "--load-ohm", "1000")
    err = one_line_error(r, "out of bounds", "dac_gain 0.", "allowed 0.85..1.15")
    assert "reference load" in err
    fitted = float(re.search(r"dac_gain (\d\.\d+)", err).group(1))
    assert fitted == pytest.approx(0.7, abs=0.02)          # the unit's gain, as measured through noise
    with Link.open("emu") as link:
        emu = link.transport.emulator
        emu.plant.dac_gain = 0.7
        with pytest.raises(CalibrationError):
            calibrate(link, 1000, EmuRig(emu))
        got = link.request("calib_get")["calibration"]
        assert got["dac_gain"] == 1.0 and got["note"] == ""   # restored, not left at "calibrating"
        assert link.request("status")["state"] in ("idle", "done")


def test_fit_line():
    g, o, worst = fit_line([50, 150, 250], [52, 152.5, 253])
    assert g == pytest.approx(1.005) and o == pytest.approx(1.75) and worst < 0.2
    with pytest.raises(CalibrationError, match="same reading"):
        fit_line([5, 5], [1, 2])


LOAD_FIGURES = ("peak_current_ua", "mean_current_ua", "peak_voltage_v", "impedance_ohm", "charge_per_phase_uc",
                "net_charge_per_pulse_uc", "max_current_density_ma_cm2_rms", "max_avg_power_density_mw_cm2",
                "average_current_ua")


def test_selftest_in_process_reports_the_fda_list():
    r = cli("selftest", "--port", "emu", "--json")
    assert r.exit_code == 0, r.output
    assert "n/a" not in r.stdout                    # absent values are null, never a string
    out = json.loads(r.stdout)
    assert out["ok"] and [row["load_ohm"] for row in out["loads"]] == [500, 2000, 10000]
    assert out["electrode_area_cm2"] == 4
    for row in out["loads"]:
        z = row["load_ohm"]
        assert row["peak_current_ua"] == pytest.approx(500, abs=3)
        assert row["peak_voltage_v"] == pytest.approx(0.5 * z / 1000, rel=0.06, abs=0.05)
        assert row["impedance_ohm"] == pytest.approx(z, rel=0.02)
        assert row["charge_per_phase_uc"] == pytest.approx(20, rel=0.01)          # 500 µA x 40 ms
        assert abs(row["net_charge_per_pulse_uc"]) < 0.02
        assert row["max_current_density_ma_cm2_rms"] == pytest.approx(0.5 * 0.8 ** 0.5 / 4, rel=0.01)
        # I_rms² × R / area: (500 µA)² × 0.8 duty × z / 4 cm², in mW/cm²
        assert row["max_avg_power_density_mw_cm2"] == pytest.approx(0.25e-6 * 0.8 * z / 4 * 1000, rel=0.02)
        assert row["average_current_ua"] == pytest.approx(400, rel=0.01)
        # a pass limit for every figure (or the reason there is none), each judged
        assert set(LOAD_FIGURES) <= set(row["limits"])
        assert row["limits"]["mean_current_ua"] == {"min": 473, "max": 527, "ok": True,
                                                    "rule": "within 5 % + 2 µA of 500 µA"}
        assert row["limits"]["max_current_density_ma_cm2_rms"]["max"] == 0.5
        assert row["limits"]["net_charge_per_pulse_uc"]["max"] == pytest.approx(0.8)      # 2 % of 2 x 20 µC
        power = row["limits"]["max_avg_power_density_mw_cm2"]
        assert power["max"] is None and power["ok"] is None and "SAFETY.md sets no limit" in power["rule"]
        assert all(lim["ok"] in (True, None) for lim in row["limits"].values())
    # timing: nominal beside what the plant's edges show
    t = out["timing"]
    assert t["not_measured"] is None and "edges" in t["measured_by"]
    assert t["frequency_hz"]["nominal"] == 10 and t["frequency_hz"]["measured"] == pytest.approx(10, rel=1e-4)
    assert t["phase_width_us"]["nominal"] == 40000 and t["phase_width_us"]["measured"] == pytest.approx(40000, abs=1)
    assert t["interphase_gap_us"]["measured"] == pytest.approx(200, abs=1) and t["frequency_hz"]["ok"]
    assert t["burst_on_ms"]["nominal"] is None and t["burst_on_ms"]["ok"] is None
    assert all(row["timing"]["frequency_hz"] == pytest.approx(10, rel=1e-4) for row in out["loads"])
    # the LED, from the board's calibration (lift has no light: irradiance 0, dose 0)
    red, nir = out["led"]["channels"]["red"], out["led"]["channels"]["nir"]
    assert (red["wavelength_nm"], red["irradiance_at_100_mw_cm2"], red["dose_j_cm2"]) == (630, 15.0, 0.0)
    assert (nir["wavelength_nm"], nir["irradiance_at_100_mw_cm2"]) == (830, 12.0)
    assert out["led"]["limits"]["dose_j_cm2"]["max"] == 10.0
    r = cli("selftest", "--port", "emu", "--load", "1000", "--ua", "200", "--program", "contour")
    assert r.exit_code == 0, r.output
    assert re.search(r"frequency\s+100 Hz\s+100 Hz\s+within 1 % of nominal\s+ok", r.stdout), r.stdout
    assert re.search(r"burst on\s+500 ms\s+500 ms", r.stdout) and "1 kΩ" in r.stdout and "PASS" in r.stdout
    assert re.search(r"^limit\s+≤ 230\s+≤ 24\s+±5 %", r.stdout, re.M), r.stdout      # the limit row of the table


def test_selftest_header_says_when_which_unit_firmware_calibration_and_rig():
    when = datetime.datetime(2026, 12, 6, 22, 30, tzinfo=datetime.timezone.utc)
    with Link.open("emu") as link:
        hello = link.request("hello")
        out = selftest(link, [2000], EmuRig(link.transport.emulator), ua=200, hold_s=1, now=when)
        h = out["header"]
        assert h["date"] == "2026-12-06T22:30:00+00:00"
        assert h["unit_id"] == hello["unit_id"] and len(h["unit_id"]) == 16
        assert (h["board"], h["firmware"], h["rig"]) == ("pico-mcp4725", hello["firmware"], "emulator (in-process)")
        assert h["calibration"]["state"] == "not calibrated" and h["calibration"]["date"] is None
        text = format_text(out)
        assert "date            2026-12-06T22:30:00+00:00" in text and hello["unit_id"] in text
        link.request("calib_set", dac_gain=1.01, dac_offset_ua=0, adc_gain=1.0, adc_offset_ua=0,
                     note="R=1000 2026-11-21")
        cal = calibration_state(link)
        assert cal["state"] == "calibrated" and cal["date"] == "2026-11-21" and cal["dac_gain"] == 1.01
        assert "calibrated 2026-11-21" in format_text(selftest(link, [2000], EmuRig(link.transport.emulator),
                                                               ua=200, hold_s=1))
        link.request("calib_set", dac_gain=1.0, dac_offset_ua=0, adc_gain=1.0, adc_offset_ua=0, note="calibrating")
        assert calibration_state(link)["state"].startswith("not calibrated (a calibration was interrupted")
    # the CLI's own clock: an ISO 8601 time with its offset
    r = cli("selftest", "--port", "emu", "--load", "2000", "--hold-s", "1", "--json")
    assert datetime.datetime.fromisoformat(json.loads(r.stdout)["header"]["date"]).utcoffset() is not None


class SlowClockRig(EmuRig):
    """A unit whose pulse clock runs 2 % slow: what its scope shows is stretched in time."""

    def capture(self, since_s):
        c = super().capture(since_s)
        return Capture([since_s + (t - since_s) * 1.02 for t in c.t_s], c.i_ua, since_s + (c.end_s - since_s) * 1.02)


def test_selftest_timing_is_measured_not_the_programs_nominal():
    with Link.open("emu") as link:
        out = selftest(link, [2000], SlowClockRig(link.transport.emulator), ua=300, hold_s=1)
    t = out["timing"]
    assert t["frequency_hz"]["nominal"] == 10 and t["frequency_hz"]["measured"] == pytest.approx(10 / 1.02, rel=1e-4)
    assert t["phase_width_us"]["measured"] == pytest.approx(40800, abs=1)
    assert t["frequency_hz"]["ok"] is False and t["phase_width_us"]["ok"] is False and not out["ok"]
    assert out["loads"][0]["ok"]                    # the current was right; the timing was not
    assert re.search(r"frequency\s+10 Hz\s+9\.80\d* Hz\s+within 1 % of nominal\s+FAIL", format_text(out))


def test_selftest_led_figures_come_from_the_board_calibration_per_channel():
    with Link.open("emu") as link:
        hello = link.request("hello")
        sculpt = led_figures(link, hello, "sculpt")            # red 60 % for 570 s (three zones, two pauses)
        assert sculpt["channels"]["red"] == {"wavelength_nm": 630, "irradiance_at_100_mw_cm2": 15.0,
                                             "irradiance_mw_cm2": 9.0, "on_s": 570, "dose_j_cm2": 5.13, "why": None}
        assert sculpt["channels"]["nir"]["dose_j_cm2"] == 0.0 and sculpt["ok"]
        both = led_figures(link, hello, "glow_nir")            # red and NIR at 50 % for 480 s
        assert both["channels"]["nir"]["irradiance_mw_cm2"] == 6.0 and both["channels"]["nir"]["dose_j_cm2"] == 2.88
        assert both["dose_j_cm2"] == pytest.approx(3.6 + 2.88) and both["on_s"] == 480
        assert both["limits"]["on_s"] == {"min": None, "max": 600, "ok": True,
                                          "rule": "≤ 600 s of LED per session (SAFETY.md)"}
    with Link.open("emu:esp32-devkit") as link:                # no NIR channel: null, and why
        led = led_figures(link, link.request("hello"), "sculpt")
        nir = led["channels"]["nir"]
        assert nir["wavelength_nm"] is None and nir["dose_j_cm2"] is None and "no NIR channel" in nir["why"]


def test_selftest_writes_a_markdown_or_json_report(tmp_path):
    md, js = tmp_path / "report.md", tmp_path / "report.json"
    r = cli("selftest", "--port", "emu", "--load", "2000", "--hold-s", "1", "--out", str(md))
    assert r.exit_code == 0, r.output
    text = md.read_text()
    assert text.startswith("# Characterisation report: pico-mcp4725 unit ") and "## LED" in text
    assert "**PASS**" in text and "mW/cm² avg" in text
    r = cli("selftest", "--port", "emu", "--load", "2000", "--hold-s", "1", "--out", str(js))
    assert r.exit_code == 0, r.output and json.loads(js.read_text())["loads"][0]["load_ohm"] == 2000
    one_line_error(cli("selftest", "--port", "emu", "--out", str(tmp_path / "r.pdf")), ".md or .json")


def test_selftest_fails_on_a_unit_that_delivers_too_little(monkeypatch):
    unit_with(monkeypatch, dac_gain=0.9)
    r = cli("selftest", "--port", "emu", "--load", "2000")
    assert r.exit_code == 1 and "FAIL" in r.stdout and "not within 5 %" in r.stdout


def test_selftest_reports_a_load_the_output_cannot_drive(monkeypatch):
    r = cli("selftest", "--port", "emu", "--load", "500,60000", "--json")     # 60 k: past the compliance
    out = json.loads(r.stdout)
    assert r.exit_code == 1 and out["loads"][0]["ok"]
    assert not out["loads"][1]["ok"] and "contact_lost" in out["loads"][1]["problems"][0]


def test_selftest_on_a_served_emulator_through_its_side_channel():
    s = Served(speed=20)
    try:
        r = cli("selftest", "--port", s.url, "--rig", s.control_url, "--load", "500,10000", "--json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        rows = out["loads"]
        assert [row["impedance_ohm"] for row in rows] == [pytest.approx(500, rel=0.02), pytest.approx(10000, rel=0.02)]
        # the control port is the scope too: the edges of the served plant
        assert out["timing"]["phase_width_us"]["measured"] == pytest.approx(40000, abs=1)
        assert out["header"]["scope"] == "the served emulator's plant trace (control port)"
        # without a rig, a person is asked to connect each load (here: the control port does it for them);
        # no one answering is an error
        c = s.control()
        c.set_load(r_series_ohm=2000, r_parallel_ohm=0)
        c.close()
        r = cli("selftest", "--port", s.url, "--load", "2000", input="\n")
        assert r.exit_code == 0, r.output
        assert "Connect the 2 kΩ load across the electrodes" in r.stderr
        # no scope: the timing is not measured, and says why, rather than showing the nominal
        assert re.search(r"frequency\s+10 Hz\s+not measured", r.stdout), r.stdout
        assert "timing not measured: loads connected by hand" in r.stdout
        r = cli("selftest", "--port", s.url, "--load", "2000", "--json", input="\n")
        t = json.loads(r.stdout)["timing"]
        assert t["frequency_hz"]["measured"] is None and t["frequency_hz"]["ok"] is None
        assert "no scope" in t["not_measured"]
        one_line_error(cli("selftest", "--port", s.url, "--load", "2000", input=""), "no one to connect the loads")
    finally:
        s.close()


def test_esp32_adc_floor_is_said_not_hidden():
    """The ESP32's ADC reads 0 below ~140 mV at the pin: a 500 Ω load's electrode voltage
    (0.25 V / 11) is unreadable, and calibration uses only the levels it can read."""
    r = cli("selftest", "--port", "emu:esp32-devkit", "--program", "gentle", "--load", "500,10000", "--json")
    assert r.exit_code == 0, r.output
    low, high = json.loads(r.stdout)["loads"]
    assert low["peak_voltage_v"] is None and low["impedance_ohm"] is None and low["ok"]
    assert high["peak_voltage_v"] == pytest.approx(5.0, abs=0.1)
    r = cli("calibrate", "--port", "emu:esp32-devkit", "--load-ohm", "10000", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [p["setpoint_ua"] for p in out["points"]] == [250, 350, 450]
    assert [p["setpoint_ua"] for p in out["skipped"]] == [50, 150]
    one_line_error(cli("calibrate", "--port", "emu:esp32-devkit", "--load-ohm", "1000"),
                   "within the ADC's range", "larger reference resistor")

"""`calibrate` and `selftest` through the device: the in-process emulator sets its own
loads, a served one is driven through its side channel (--rig), a real board asks."""
import json
import re

import pytest

from cli_helpers import Served, cli, one_line_error
from myotone import link as link_mod
from myotone.calibrate import CalibrationError, calibrate, fit_line
from myotone.link import Link
from myotone.rig import EmuRig


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


def test_selftest_in_process_reports_the_fda_list():
    r = cli("selftest", "--port", "emu", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ok"] and [row["load_ohm"] for row in out["loads"]] == [500, 2000, 10000]
    assert out["frequency_hz"] == 10 and out["phase_width_us"] == 40000 and out["electrode_area_cm2"] == 4
    for row in out["loads"]:
        z = row["load_ohm"]
        assert row["peak_current_ua"] == pytest.approx(500, abs=3)
        assert row["peak_voltage_v"] == pytest.approx(0.5 * z / 1000, rel=0.06, abs=0.05)
        assert row["impedance_ohm"] == pytest.approx(z, rel=0.02)
        assert row["charge_per_phase_uc"] == pytest.approx(20, rel=0.01)          # 500 µA x 40 ms
        assert abs(row["net_charge_per_pulse_uc"]) < 0.02
        assert row["max_current_density_ma_cm2_rms"] == pytest.approx(0.5 * 0.8 ** 0.5 / 4, rel=0.01)
        assert row["average_current_ua"] == pytest.approx(400, rel=0.01)
    assert out["led"]["irradiance_mw_cm2"] == "n/a"
    r = cli("selftest", "--port", "emu", "--load", "1000", "--ua", "200", "--program", "contour")
    assert r.exit_code == 0, r.output
    assert "frequency       100 Hz, phase width 2000 µs" in r.stdout and "1 kΩ" in r.stdout and "PASS" in r.stdout


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
        rows = json.loads(r.stdout)["loads"]
        assert [row["impedance_ohm"] for row in rows] == [pytest.approx(500, rel=0.02), pytest.approx(10000, rel=0.02)]
        # without a rig, a person is asked to connect each load; no one answering is an error
        r = cli("selftest", "--port", s.url, "--load", "2000", input="\n")
        assert r.exit_code == 0, r.output
        assert "Connect the 2 kΩ load across the electrodes" in r.stderr
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

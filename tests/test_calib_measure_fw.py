"""Firmware: unit calibration (/calib.json, atomic, bounded, used by Output and Sense,
never raising the most the DAC may command) and the `measure` command."""
import json

import pytest

from myotone.emulator import Emulator
from myotone.emulator.flash import PowerLoss
from safety_helpers import Bench

IDENTITY = {"dac_gain": 1.0, "dac_offset_ua": 0.0, "adc_gain": 1.0, "adc_offset_ua": 0.0}


def run_session_plateau_ua(bench, ua=200):
    """Mean |I| on the plant while a session runs at `ua`."""
    bench.start(ua=ua, duration_s=30)
    bench.run(4)
    t = bench.emu.clock.now_ns
    bench.run(1)
    tr = bench.emu.plant.trace
    on = [abs(i) for tt, i in zip(tr.t_ns, tr.i_ua) if tt >= t and i != 0]
    bench.request("stop")
    bench.run(2)
    return sum(on) / len(on)


def test_calib_get_defaults_and_set_round_trip(bench):
    r = bench.request("calib_get")
    assert r["source"] == "default" and r["limit_code"] == r["nominal_limit_code"]
    r = bench.request("calib_set", dac_gain=1.05, dac_offset_ua=-1.5, adc_gain=0.97, adc_offset_ua=2, note="unit 7")
    assert r["ok"] and r["source"] == "file" and r["calibration"]["note"] == "unit 7"
    stored = json.loads(bench.emu.fs.read_file("/calib.json"))
    assert stored["dac_gain"] == 1.05 and stored["adc_offset_ua"] == 2
    assert not bench.emu.fs.exists("/calib.json.tmp")


@pytest.mark.parametrize("field,value", [("dac_gain", 1.5), ("dac_gain", 0.5), ("adc_gain", 2), ("adc_gain", 0.94),
                                         ("dac_offset_ua", 50), ("adc_offset_ua", -11),
                                         ("dac_offset_ua", 5.5), ("dac_offset_ua", -20)])   # 1 % of 500 uA
def test_calibration_values_are_bounded(bench, field, value):
    r = bench.request("calib_set", **{**IDENTITY, field: value})
    assert r["ok"] is False and r["error"] == "out_of_range" and field in r["message"]
    assert not bench.emu.fs.exists("/calib.json")


def test_calibration_refused_while_a_session_runs(bench):
    bench.start(ua=100)
    bench.run(1)
    assert bench.request("calib_set", **IDENTITY)["error"] == "busy"
    assert bench.request("calib_set", dac_gain="1")["error"] == "bad_request"


def test_calibration_corrects_the_output_of_a_unit_that_under_delivers():
    b = Bench()
    try:
        b.emu.plant.dac_gain = 0.9           # this unit's R_set / Vref: 10 % low
        assert 175 < run_session_plateau_ua(b, 200) < 185
        assert b.request("calib_set", **{**IDENTITY, "dac_gain": 0.9})["ok"]
        assert 197 < run_session_plateau_ua(b, 200) < 203
    finally:
        b.close()


def measured_at_200(b, cal):
    assert b.request("calib_set", **{**IDENTITY, **cal})["ok"]
    b.request("fault_clear")
    b.start(ua=200, duration_s=30)
    b.run(5)
    ua = b.request("status")["measured_ua"]
    b.request("stop")
    b.run(2)
    return ua


def test_sense_calibration_corrects_a_sense_that_reads_low():
    b = Bench()
    try:
        b.emu.plant.sense_gain = 0.96        # R_sense 4 % low: the ADC reads 4 % low
        assert 189 <= measured_at_200(b, {}) <= 194
        assert 197 <= measured_at_200(b, {"adc_gain": 1 / 0.96}) <= 203
    finally:
        b.close()


def test_sense_calibration_never_lowers_a_reading():
    """A calibration that says the sense reads high is not taken (hal/sense.py): were the claim
    wrong, every trip level would sit higher in true current. A sense that does read high keeps
    reading high, which only trips earlier."""
    b = Bench()
    try:
        b.emu.plant.sense_gain = 1.05        # R_sense 5 % high: the ADC reads 5 % high
        assert 207 <= measured_at_200(b, {}) <= 213
        assert 207 <= measured_at_200(b, {"adc_gain": 1 / 1.05, "adc_offset_ua": -10}) <= 213
    finally:
        b.close()


def test_a_calibration_never_raises_the_current_above_the_limit(bench):
    """A unit that truly delivers the nominal current, told it under-delivers by the
    most the bounds allow: the DAC code stays at or below the nominal limit code."""
    r = bench.request("calib_set", dac_gain=0.85, dac_offset_ua=-5, adc_gain=0.95, adc_offset_ua=-10)
    assert r["ok"] and r["limit_code"] <= r["nominal_limit_code"]
    bench.start(ua=500, duration_s=30)
    bench.run(6)
    assert bench.faults() == []
    assert bench.emu.plant.trace.max_abs_ua <= 500.0


def test_output_limit_code_over_the_whole_calibration_range(fw):
    O = fw("myotone.output")
    HB = fw("myotone.hal.bridge")

    class Pin:
        def value(self, v=None):
            return 0

        def on(self):
            pass

        def off(self):
            pass

    class Dac:
        max_code = 4095

        def write(self, code):
            assert 0 <= code <= self.max_code

        def check(self):
            pass

    out = O.Output(Dac(), HB.HBridge(Pin(), Pin()), Pin(), full_scale_ua=1000, limit_ua=500)
    nominal = out.nominal_limit_code
    for gain in (0.85, 0.9, 1.0, 1.1, 1.15):
        for off in (-20, -5, 0, 5, 20):
            out.calibrate(gain, off)
            assert out.limit_code <= nominal
            assert out.ua_for_code(out.limit_code) <= 500          # floor on the calibrated transfer
            assert out.code_for_ua(10_000) == out.limit_code
            assert out.code_for_ua(0) == 0 and out.code_for_ua(-3) == 0
            assert out.code_for_na(0) == 0 and out.code_for_na(-400) == 0     # the tick's path too
            assert out.ua_for_code(0) == 0


def test_calibration_is_loaded_at_boot_and_a_broken_file_is_ignored(bench):
    bench.request("calib_set", **{**IDENTITY, "dac_gain": 1.1})
    bench.emu.set_fault("brownout")       # power dip: boot loads /calib.json
    bench.run(1)
    r = bench.request("calib_get")
    assert r["source"] == "file" and r["calibration"]["dac_gain"] == 1.1
    bench.emu.fs.write_file("/calib.json", b'{"dac_gain": 9, "dac_offset_ua": 0, "adc_gain": 1, "adc_offset_ua": 0}')
    bench.emu.set_fault("brownout")
    bench.run(1)
    r = bench.request("calib_get")
    assert r["source"] == "invalid" and r["calibration"]["dac_gain"] == 1.0


@pytest.mark.parametrize("torn", ["old", "garbage"])
def test_calibration_write_is_atomic_under_power_cuts(torn):
    old = {**IDENTITY, "dac_gain": 0.95, "note": "old"}
    new = {**IDENTITY, "dac_gain": 1.05, "note": "new"}
    base = Emulator("pico-mcp4725")
    base.fs.write_file("/calib.json", json.dumps(old).encode())
    image = base.fs.image_bytes()
    base.close()

    def attempt(cut_after):
        from myotone.emulator.flash import Flash
        flash = Flash.from_image(image)
        emu = Emulator("pico-mcp4725", fs=flash)
        calib = emu.runtime.import_module("myotone.calib")
        if cut_after:
            flash.arm_power_loss(cut_after, torn=torn, seed=cut_after)
        try:
            calib.save(calib.check(new))
            done = True
        except PowerLoss:
            done = False
        ops = flash.ops
        after = Flash.from_image(flash.image_bytes())
        emu.close()
        return done, ops, after

    _, total_ops, _ = attempt(0)
    cuts = 0
    for n in range(1, 40):
        done, _, after = attempt(n)
        if done:
            break
        cuts += 1
        got = json.loads(after.read_file("/calib.json"))
        assert got["note"] in ("old", "new"), got
    assert cuts >= 2


def test_measure_reports_the_run_phase_on_a_resistive_load(bench):
    bench.emu.set_load(r_series_ohm=2000, r_parallel_ohm=0)
    r = bench.request("measure", ua=200, hold_s=2)
    assert r["ok"] and r["hold_s"] == 2 and r["state"] == "ramp"
    for _ in range(8):                      # measure is host-driven: it needs the heartbeat
        bench.run(1)
        bench.request("heartbeat")
    m = bench.events("measure")
    assert len(m) == 1, bench.log[-5:]
    m = m[0]
    assert m["state"] == "done" and m["fault"] is None and m["n"] >= 1500
    assert 195 <= m["mean_ua"] <= 205 and abs(m["pos_ua"] - m["neg_ua"]) < 3
    assert 380 <= m["mean_mv"] <= 420 and 1900 <= m["impedance_ohm"] <= 2100
    assert m["max_ua"] <= 215 and m["code"] > 0
    assert abs(m["nominal_ua"] - 200) <= 1 and m["output_ua"] == m["nominal_ua"]
    assert bench.output_is_safe()


def test_measure_goes_through_every_check_of_start(bench):
    assert bench.request("measure", ua=900)["error"] == "out_of_range"
    assert bench.request("measure", ua=100, hold_s=30)["error"] == "out_of_range"
    assert bench.request("measure", ua=100, heartbeat=False)["error"] == "bad_request"
    bench.emu.set_fault("vbus")
    bench.run(0.1)
    assert bench.request("measure", ua=100)["error"] == "charging"
    assert bench.emu.plant.trace.max_abs_ua == 0

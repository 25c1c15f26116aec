"""What the device says about itself (firmware/myotone/report.py) is true now:
no measured current once the output is off, no temperature where none was read."""
import pytest

from myotone.emulator.board import load_board

def _telemetry(bench, state):
    return [m for m in bench.events("telemetry") if m["state"] == state]


def test_measured_current_reads_zero_once_a_cut_turned_the_output_off(bench):
    bench.start(ua=300, duration_s=60)
    bench.run(5.5)                               # mid-period: the next telemetry averages current that flowed
    on = bench.request("status")
    assert on["output"] == "on" and on["measured_ua"] >= 250 and on["impedance_ohm"] > 0
    bench.emu.set_fault("electrode_off")
    bench.run(0.5)
    assert bench.faults() == ["contact_lost"]
    st = bench.request("status")
    assert st["output"] == "cut" and st["measured_ua"] == 0 and st["impedance_ohm"] == 0, st
    last = _telemetry(bench, "fault")
    assert last and last[-1]["measured_ua"] == 0 and last[-1]["impedance_ohm"] == 0, last
    bench.run(3)                                 # and it stays so
    assert bench.request("status")["measured_ua"] == 0


def test_measured_current_reads_zero_after_a_session_ends(bench):
    bench.start(ua=300, duration_s=60)
    bench.run(5.5)
    bench.request("stop")
    bench.run(0.5)
    ramping_down = bench.request("status")
    assert ramping_down["state"] == "ramp_down" and ramping_down["measured_ua"] > 0    # it still flows
    bench.run(2)
    st = bench.request("status")
    assert st["state"] == "done" and st["output"] == "off" and st["measured_ua"] == 0, st
    assert _telemetry(bench, "done")[-1]["measured_ua"] == 0


def test_temperature_is_null_where_no_temperature_was_read(fw):
    report = fw("myotone.report")
    therm = load_board("pico-mcp4725")["thermistor"]
    assert report.temp_c(therm, 65535) is None   # the supervisor's value before its first reading; open
    assert report.temp_c(therm, 0) is None       # shorted
    assert report.temp_c(therm, 30000) == pytest.approx(27, abs=3)


def test_an_open_thermistor_reports_null_not_minus_99(bench):
    bench.emu.set_fault("thermistor_open")
    bench.run(0.5)
    st = bench.request("status")
    assert st["condition"] == "temp_sensor_fault" and st["temp_c"] is None, st
    bench.emu.set_fault("thermistor_open", False)
    bench.run(0.5)
    assert bench.request("status")["temp_c"] == pytest.approx(33, abs=0.5)

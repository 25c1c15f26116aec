"""The analog plant: R||C skin under a current source with compliance, exact charge, ADCs."""
import math

import pytest

from myotone.emulator.adc import AdcModel, Esp32Transfer, esp32_raw_to_mv, u16_from_raw
from myotone.emulator.board import load_board
from myotone.emulator.plant import Load, Plant
from myotone.emulator.trace import Trace

MS = 1_000_000


def driven(load, ua, board="pico-mcp4725", **board_changes):
    b = load_board(board)
    b.update(board_changes)
    p = Plant(b, load)
    p.dac_code = round(ua / 1000 * p.dac_max)          # 1000 uA full scale on the reference boards
    p.hv_on = 1
    p.changed(0)
    p.bridge_a = 1
    p.changed(0)
    return p


def test_electrode_voltage_rises_during_a_constant_current_phase():
    load = Load(r_series_ohm=2000, r_parallel_ohm=8000, c_parallel_nf=100)
    p = driven(load, 300)
    i = p.current_ua(0)
    assert 299 < i < 301                                 # a current source: I is set, not V
    tau_ns = 8000 * 100e-9 * 1e9                        # R_p C = 0.8 ms
    for t in (0, MS // 2, MS, 3 * MS, 10 * MS):
        expect_v = i * 1e-6 * (2000 + 8000 * (1 - math.exp(-t / tau_ns)))
        assert p.electrode_mv(t) == pytest.approx(expect_v * 1000, rel=1e-9)
        assert p.current_ua(t) == pytest.approx(i)


def test_an_open_bridge_leg_leaves_pol_b_phases_without_a_path_and_the_source_at_its_rail():
    """`bridge_leg_open`: POL_A phases flow as before; POL_B phases carry no current (the sense reads
    the source's current: none) and the divider reads the rail, as with an open electrode."""
    load = Load(r_series_ohm=2000, r_parallel_ohm=8000, c_parallel_nf=100)
    p = driven(load, 300)
    p.faults.add("bridge_leg_open")
    p.changed(MS)
    assert p.current_ua(2 * MS) == pytest.approx(p.set_point_ua())          # POL_A: untouched
    p.bridge_a = 0
    p.changed(3 * MS)
    idle_v = p.channel_volts("i", 3 * MS)                                 # the sense with no current
    p.bridge_b = 1
    p.changed(3 * MS)
    assert p.current_ua(4 * MS) == 0 and p.channel_volts("i", 4 * MS) == pytest.approx(idle_v)
    assert p.electrode_mv(4 * MS) == pytest.approx(p.board["compliance_v"] * 1000)
    p.faults.discard("bridge_leg_open")                                    # healthy again
    p.changed(5 * MS)
    assert p.current_ua(6 * MS) == pytest.approx(-p.set_point_ua())


def test_compliance_is_reached_mid_phase_and_the_current_then_relaxes():
    # 24 V rail, R_s 20 k + R_sense 3 k, R_p 60 k, C 100 nF; 500 uA needs 11.5 V at once, 41.5 V at DC
    load = Load(r_series_ohm=20_000, r_parallel_ohm=60_000, c_parallel_nf=100)
    p = driven(load, 500)
    i_set = p.set_point_ua()                           # 500 uA to the DAC's resolution
    i_a, r_ser, r_p, c = i_set * 1e-6, 23_000, 60_000, 100e-9
    u_max = 24 - i_a * r_ser                          # capacitor voltage where the rail runs out
    t_c = r_p * c * math.log(i_a * r_p / (i_a * r_p - u_max))
    before, after = int(t_c * 1e9) - 1000, int(t_c * 1e9) + 1000
    assert p.current_ua(before) == pytest.approx(i_set, rel=1e-12)
    assert p.current_ua(after) < i_set
    # then: the rail over R_ser into R_p || C, towards 24 V / (R_ser + R_p)
    i_inf = 24 / (r_ser + r_p) * 1e6
    tau_c = c * r_ser * r_p / (r_ser + r_p)
    t = t_c + 5e-3
    expect = i_inf + (i_set - i_inf) * math.exp(-(t - t_c) / tau_c)
    assert p.current_ua(int(t * 1e9)) == pytest.approx(expect, rel=1e-4)
    assert p.electrode_mv(int(t * 1e9)) == pytest.approx((24 - expect * 1e-6 * 3000) * 1000, rel=1e-4)
    # the trace holds the same function, and its charge is the exact integral
    p.bridge_a = 0
    p.changed(int(0.2e9))
    tr = p.trace
    tr.close(int(0.3e9))
    q_exact = (i_a * t_c + i_inf * 1e-6 * (0.2 - t_c)
               + (i_set - i_inf) * 1e-6 * tau_c * (1 - math.exp(-(0.2 - t_c) / tau_c)))
    assert tr.net_charge_nc == pytest.approx(q_exact * 1e9, rel=1e-6)
    assert tr.current_at(int(t * 1e9)) == pytest.approx(expect, rel=1e-4)
    assert tr.max_abs_ua == pytest.approx(i_set)
    assert tr.output_on_ns == 200 * MS                 # never below 10 uA while driven


def test_open_and_short_contact():
    p = driven(Load(contact="off"), 300)
    assert p.current_ua(MS) == 0 and p.electrode_mv(MS) == 24_000      # the source sits at its rail
    p = driven(Load(contact="short"), 300)
    assert p.current_ua(MS) == pytest.approx(300, abs=0.2) and p.electrode_mv(MS) == 0


def test_hardware_limiter_and_stuck_dac_cap_the_current():
    p = driven(Load(), 300)
    p.faults.add("oc_latch_dead")                      # the limiter alone (the latch would gate it off)
    p.faults.add("dac_stuck_high")
    p.changed(MS)
    assert p.current_ua(2 * MS) == pytest.approx(677)  # hw_limit_ua, not 1000 uA full scale
    p.limiter_temp_c, p.limiter_tol = 0.0, -0.03       # a cold limiter at the low end of its tolerance
    p.changed(3 * MS)
    assert p.current_ua(4 * MS) == pytest.approx(677 * (1 - 25 * 3354e-6) * 0.97)   # ~602 uA


def test_trace_off_since_finds_where_an_exponential_fell_below_10_ua():
    tr = Trace()
    tr.record(0, 100.0)
    tr.record(1000, 100.0, 0.0, 1000.0)                # decays from 100 uA with tau 1 us
    t_cross = 1000 + 1000 * math.log(10)               # 100 e^-t/tau = 10
    assert tr.off_since(10_000) == pytest.approx(t_cross, abs=2)
    assert tr.off_since(1500) is None
    tr.close(10_000)
    assert tr.output_on_ns == pytest.approx(t_cross, abs=2)


def test_rp2_adc_scaling_and_seeded_noise():
    adc = AdcModel("rp2", 3300)
    assert adc.raw(1.65, 0.0) == 2048 and adc.raw(3.3, 0.0) == 4095 and adc.raw(-1, 0.0) == 0
    assert u16_from_raw(4095, 12) == 65535 and u16_from_raw(2048, 12) == 0x8008
    a = [driven(Load(), 300).adc_raw("i", MS) for _ in range(2)]
    b = Plant(load_board("pico-mcp4725"), seed=2)
    assert a[0] == a[1]                                # the same seed, the same noise
    seq = lambda p: [p.adc_raw("t", k) for k in range(20)]    # noqa: E731
    assert seq(Plant(load_board("pico-mcp4725"), seed=1)) == seq(Plant(load_board("pico-mcp4725"), seed=1))
    assert seq(Plant(load_board("pico-mcp4725"), seed=1)) != seq(b)


def test_esp32_adc_follows_the_ports_calibration():
    # esp_adc_cal, default Vref 1100 mV: 0 dB tops out near 1.04 V, 11 dB starts at 142 mV
    assert esp32_raw_to_mv(4095, 0) == 1039 and esp32_raw_to_mv(0, 3) == 142
    assert esp32_raw_to_mv(4095, 3) == pytest.approx(3134, abs=2)     # the non-linear top
    t0, t11 = Esp32Transfer(0), Esp32Transfer(3)
    assert t0.raw_f(1.5) == 4095                       # 0 dB saturates: attenuation matters
    assert t11.raw_f(0.1) < -40 and t11.code_f(0.1) < -40    # far below the offset: never a 1, noise or not
    for v in (0.3, 0.9, 1.8, 2.6, 3.0):
        raw = round(t11.raw_f(v))
        assert abs(esp32_raw_to_mv(raw, 3) - v * 1000) <= 2     # read_uv() gives back the truth


def test_firmware_on_the_esp32_adc_measures_what_the_plant_drives():
    """Without 11 dB attenuation and the port's calibration the ESP32 board tripped at once."""
    from safety_helpers import Bench
    b = Bench("esp32-devkit")
    try:
        b.start(ua=300)
        b.run(6)
        assert b.faults() == []
        st = b.request("status")
        assert st["state"] == "run" and abs(st["measured_ua"] - 300) <= 6
        assert abs(st["temp_c"] - 33.0) <= 0.5
        assert abs(st["impedance_ohm"] - 10_000) <= 500
    finally:
        b.close()



def _pulse_oc_clear(p, t_ns, width_ns=100):
    """The MCU's re-arm: OC_CLEAR high for `width_ns` from t_ns."""
    p.oc_clear = 1
    p.changed(t_ns)
    p.oc_clear = 0
    p.changed(t_ns + width_ns)


def test_the_over_current_latch_gates_the_bridge_off_10_us_after_the_current_passes_its_threshold():
    """docs/hardware.md, U10-U13: set by the comparator, cleared by OC_CLEAR, set wins."""
    from myotone.emulator.plant import OC_LATCH_DELAY_NS
    p = driven(Load(), 300)
    assert p.oc_latch_ua() == 530 and p.current_ua(MS) == pytest.approx(300, abs=0.5) and p.oc_q_level() == 0
    p.faults.add("dac_stuck_high")
    p.changed(MS)
    assert p.current_ua(MS + OC_LATCH_DELAY_NS - 1) == pytest.approx(677)
    assert p.current_ua(MS + OC_LATCH_DELAY_NS) == 0 and p.oc_q_level() == 1
    assert p.trace.off_since(3 * MS) == MS + OC_LATCH_DELAY_NS
    p.bridge_a = 0                                    # the MCU still drove the bridge; now off, and cleared
    p.changed(4 * MS)
    _pulse_oc_clear(p, 4 * MS + 1000, width_ns=1000)
    assert p.oc_q_level() == 0
    p.bridge_a = 1                                    # the DAC still stuck: set again 10 us in
    p.changed(5 * MS)
    assert p.current_ua(5 * MS + OC_LATCH_DELAY_NS - 1) > 600 and p.current_ua(5 * MS + OC_LATCH_DELAY_NS) == 0
    p.oc_clear = 1                                    # set wins over a clear held on
    p.changed(6 * MS)
    assert p.current_ua(6 * MS + OC_LATCH_DELAY_NS) == 0 and p.oc_q_level() == 1


def test_oc_test_sets_the_latch_with_no_current_and_holds_it_10_us_past_its_fall():
    """The switch-on's latch test (docs/hardware.md, R37/D6): OC_TEST drives the comparator over its
    threshold with the output off; the latch sets 10 us later; a clear before the comparator has
    fallen again (10 us after OC_TEST) loses to the preset; after it, it clears. A dead comparator
    never sets, a stuck Q never clears."""
    from myotone.emulator.plant import OC_LATCH_DELAY_NS as D
    p = Plant(load_board("pico-mcp4725"), Load())
    p.changed(0)
    p.oc_test = 1
    p.changed(MS)
    assert p.oc_latch_sets_at() == MS + D
    p.current_ua(MS + D - 1)
    assert p.oc_q_level() == 0
    p.current_ua(MS + D)
    assert p.oc_q_level() == 1 and p.oc_latch_log == [(MS + D, 1)]
    p.oc_test = 0
    p.changed(2 * MS)
    _pulse_oc_clear(p, 2 * MS + D - 200)              # the comparator still asserts: set wins
    assert p.oc_q_level() == 1
    _pulse_oc_clear(p, 2 * MS + D)
    assert p.oc_q_level() == 0 and p.oc_latch_sets_at() is None
    assert p.trace.off_since(0) == 0                  # no current at any time
    dead = Plant(load_board("pico-mcp4725"), Load())
    dead.faults.add("oc_latch_dead")
    dead.changed(0)
    dead.oc_test = 1
    dead.changed(MS)
    assert dead.oc_latch_sets_at() is None and dead.current_ua(5 * MS) == 0 and dead.oc_q_level() == 0
    stuck = Plant(load_board("pico-mcp4725"), Load())
    stuck.faults.add("oc_latch_stuck")
    stuck.changed(0)
    _pulse_oc_clear(stuck, MS)
    assert stuck.oc_q_level() == 1


def test_the_latch_threshold_is_crossed_in_closed_form_at_compliance_and_not_at_the_limit():
    """A current that climbs through the threshold (the source coming off compliance as the skin's
    capacitance discharges) sets the latch when it crosses, solved in closed form; a current at the
    limit (500 uA) never does; a dead latch never sets."""
    from myotone.emulator.plant import OC_LATCH_DELAY_NS
    p = driven(Load(), 500)
    assert p.current_ua(50 * MS) == pytest.approx(500, abs=1) and p.oc_q_level() == 0
    p = driven(Load(r_series_ohm=2000, r_parallel_ohm=100_000, c_parallel_nf=100), 300)
    p.current_ua(60 * MS)                             # charged to compliance: ~22.9 V on the capacitance
    p.load.r_parallel_ohm = 8000                      # the skin's resistance falls, the charge stays
    p.faults.add("dac_stuck_high")
    t0 = 60 * MS
    p.changed(t0)
    assert p.current_ua(t0) < 300                     # at compliance: the current climbs from ~230 uA
    seen, t = {}, t0
    while p.current_ua(t) != 0:
        seen[t] = p.current_ua(t)
        t += 1000
        assert t < t0 + MS, "the latch never set"
    t_cross = t - OC_LATCH_DELAY_NS                   # the comparator asserted then (to within 1 us)
    assert seen[t_cross - 1000] < 530 < seen[t_cross + 1000]
    q = driven(Load(), 300)
    q.faults.update(("dac_stuck_high", "oc_latch_dead"))
    q.changed(MS)
    assert q.current_ua(5 * MS) == pytest.approx(677) and q.oc_q_level() == 0

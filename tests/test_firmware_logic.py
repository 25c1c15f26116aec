"""Firmware logic (pure modules) under CPython, loaded as the emulator loads them."""
import pytest


# ---- session: soft start, ramps, auto-off -------------------------------

def run_session(S, setpoint_ua, duration_ms, limit_ua=500, stop_at_ms=None):
    s = S.Session(limit_ua)
    s.begin(setpoint_ua, duration_ms, 0)
    targets = []
    for t in range(1, duration_ms + 5000):
        if stop_at_ms is not None and t == stop_at_ms:
            s.request_stop()
        targets.append((t, s.step(t), s.state))
        if s.state == S.DONE:
            break
    return s, targets


def test_soft_start_is_at_most_two_percent_of_limit(fw):
    S = fw("myotone.session")
    for limit in (100, 250, 500, 1000):
        s = S.Session(limit)
        assert s.min_ua <= limit * 0.02
        s.begin(limit, 60_000, 0)
        assert s.target_na // 1000 <= limit * 0.02


def test_a_late_step_slows_a_ramp_never_steps_it(fw):
    """The output slice runs at 100 Hz; one held off (a garbage collection holds the ESP32's soft
    timer ~20 ms, a busy main loop) moves a ramp by one slice's worth, up or down, not by the
    time it was late: a step of 150 ms at 250 uA/s would be 37 uA in one pair."""
    S, L = fw("myotone.session"), fw("myotone.limits")
    s = S.Session(500)
    s.begin(500, 60_000, 0)
    s.step(0)                                     # live from here
    before = s.target_na
    s.step(150)
    assert s.target_na - before <= L.RAMP_MAX_NA_PER_MS * L.RAMP_STEP_MAX_MS
    for t in range(160, 3000, 10):
        s.step(t)
    at_stop = s.target_na
    s.request_stop()
    s.step(3010)
    before = s.target_na
    s.step(3160)                                  # late in the ramp-down too
    # one slice's worth of the ramp-down's steeper part (9/10 of RAMP_DOWN_MS above the soft
    # start), not 150 ms of it
    assert before - s.target_na <= at_stop * L.RAMP_STEP_MAX_MS // (L.RAMP_DOWN_MS * 9 // 10) + 1


def test_ramp_takes_at_least_2_s_and_never_exceeds_250_ua_per_s(fw):
    S = fw("myotone.session")
    for setpoint in (20, 200, 500):
        _, targets = run_session(S, setpoint, 10_000)
        reached = next(t for t, ua, st in targets if ua >= setpoint)
        assert reached >= 2000, f"{setpoint} uA reached after {reached} ms"
        for (t0, a, _), (t1, b, _) in zip(targets, targets[1:]):
            assert b - a <= 1, "more than 1 uA in 1 ms is faster than 250 uA/s"
    s = S.Session(1000)
    s.begin(1000, 60_000, 0)
    start_ua = s.target_na // 1000
    for t in range(1, 1001):
        ua = s.step(t)
    assert ua - start_ua <= 250, "more than 250 uA gained in 1 s"


def test_a_ramp_spanning_under_2_ua_still_lasts_2_s(fw):
    """A span under RAMP_MIN_MS nA used to ramp at the 1 nA/ms floor: 1 uA in 1 s (issue 17, item 10)."""
    S = fw("myotone.session")
    for setpoint in (11, 12):                     # 1 and 2 uA above the 10 uA soft start
        _, targets = run_session(S, setpoint, 10_000)
        reached = next(t for t, ua, st in targets if ua >= setpoint)
        assert reached >= 2000, f"{setpoint} uA reached after {reached} ms"
    s = S.Session(500)
    s.begin(100, 60_000, 0)
    t = 0
    while s.state != S.RUN:
        t += 1
        s.step(t)
    s.change_setpoint(101)
    t0 = t
    while s.state != S.RUN:
        t += 1
        s.step(t)
    assert t - t0 >= 2000


def delivered_ramp(fw, max_code, full_scale_ua, limit_ua, setpoint_ua):
    """(the session's targets through Output, as the DAC delivers them: uA per ms, one DAC step)."""
    S, O, HB = fw("myotone.session"), fw("myotone.output"), fw("myotone.hal.bridge")
    dac = FakeDac()
    dac.max_code = max_code
    out = O.Output(dac, HB.HBridge(FakePin(), FakePin()), FakePin(), full_scale_ua, limit_ua)
    s = S.Session(limit_ua, out)
    s.begin(setpoint_ua, 60_000, 0)
    ua = [out.code_for_na(s.target_na) * full_scale_ua / max_code]    # as the supervisor delivers it
    for t in range(1, 6000):
        s.step(t)
        ua.append(out.code_for_na(s.target_na) * full_scale_ua / max_code)
    return ua, full_scale_ua / max_code


@pytest.mark.parametrize("max_code", [255, 4095])
@pytest.mark.parametrize("gain,offset_ua", [(1.0, 0), (0.85, -5), (1.15, 5), (0.85, 5), (1.15, -5)])
def test_what_a_code_delivers_in_na_turns_back_into_that_code(fw, max_code, gain, offset_ua):
    """Output.na_for_code is the least target code_for_na turns into the code again, on every
    transfer the calibration bounds allow: one nA less is the code below. Rounded down, 44 went to
    10.625 uA and back to 43 on the Pico: a ramp-down from what the output delivered began two codes
    down (the envelope's case 312: 0.48 uA in one pair where 0.3 was allowed)."""
    O, HB = fw("myotone.output"), fw("myotone.hal.bridge")
    dac = FakeDac()
    dac.max_code = max_code
    out = O.Output(dac, HB.HBridge(FakePin(), FakePin()), FakePin(), 1000, 500)
    out.calibrate(gain, offset_ua)
    checked = 0
    for code in range(2, out.limit_code + 1):
        na = out.na_for_code(code)
        if out.na_for_code(code - 1) <= 0:
            continue                    # a negative offset: the first codes command nothing
        assert out.code_for_na(na) == code, (code, na)
        assert out.code_for_na(na - 1) == code - 1, (code, na)
        checked += 1
    assert checked >= out.limit_code * 9 // 10


@pytest.mark.parametrize("max_code,full_scale_ua,limit_ua", [(255, 1000, 500), (255, 1000, 300),
                                                              (4095, 1000, 500), (4095, 1000, 1000),
                                                              (4095, 1000, 100), (65535, 1000, 500)])
def test_soft_start_and_ramps_as_delivered_for_any_span(fw, max_code, full_scale_ua, limit_ua):
    """Through the DAC's codes, not the session's targets: the soft start <= 2 % of the limit
    (rounded down: the ESP32's 8-bit DAC gave 11.76 uA = 2.35 % of 500 uA), the ramp reaches
    what it delivers at the end no sooner than 2 s, and never climbs faster than 250 uA/s
    (over any stretch, give or take the 1 uA the session's targets move by and one DAC step)."""
    for setpoint in sorted({11, 12, 15, 20, 37, 50, 137, 260, limit_ua // 2, limit_ua - 1, limit_ua}):
        if not 10 <= setpoint <= limit_ua:
            continue
        ua, step = delivered_ramp(fw, max_code, full_scale_ua, limit_ua, setpoint)
        assert ua[0] <= limit_ua * 0.02, f"soft start {ua[0]:.2f} uA"
        assert ua[-1] <= setpoint
        if ua[-1] - ua[0] > step:                 # more than one DAC step to climb
            reach = ua.index(ua[-1])
            assert reach >= 2000, f"{setpoint} uA: delivered at {reach} ms"
        for w in (1, 10, 100, 1000, 2000):
            for t in range(len(ua) - w):
                assert ua[t + w] - ua[t] <= 0.25 * w + 1 + step + 1e-9, (setpoint, t, w)


def test_stop_ramps_down_over_at_least_1_s(fw):
    S = fw("myotone.session")
    s, targets = run_session(S, 300, 60_000, stop_at_ms=5000)
    down = [t for t, ua, st in targets if st in (S.RAMP_DOWN, S.DONE)]
    assert down[-1] - down[0] >= 1000
    assert targets[-1][2] == S.DONE and targets[-1][1] == 0


def test_a_ramp_down_spends_at_least_1_s_above_the_soft_start(fw):
    """From any amplitude, also one just above the soft start, the part above it takes >= 1 s
    of the ramp-down (9/10 of it), the tail to zero the rest: the whole lasts RAMP_DOWN_MS.
    From 12 uA a fall to zero over 1.5 s had crossed the soft start (10 uA) in 0.25 s."""
    S = fw("myotone.session")
    L = fw("myotone.limits")
    for setpoint, stop_at in ((300, 5000), (12, 1500), (12, 30_000)):
        s = S.Session(500)
        s.begin(setpoint, 60_000, 0)
        t = 0
        while t < stop_at:
            t += 1
            s.step(t)
        s.request_stop()
        soft_na = s.min_ua * 1000
        assert s.target_na > soft_na
        while s.target_na > soft_na:
            t += 1
            s.step(t)
        assert t - stop_at >= 1000, (setpoint, stop_at, t)
        while s.state != S.DONE:                  # the tail: from the soft start to zero
            t += 1
            s.step(t)
        assert s.target_na == 0 and t - stop_at <= L.RAMP_DOWN_MS + 1, (setpoint, stop_at, t)


def test_the_ramp_down_is_twice_as_long_where_a_slice_may_miss_the_off_time_after_a_pair(fw):
    """Off times under a 10 ms output slice (contour: 5.5 ms; a 13.7 Hz waveform with 2.7 ms): the
    DAC may follow only every second pair, so the ramp-down lasts 2 x RAMP_DOWN_MS there (and at
    least two pair intervals everywhere); lift's 19.8 ms off times keep RAMP_DOWN_MS."""
    S = fw("myotone.session")
    L = fw("myotone.limits")
    R = fw("myotone.runner")
    P = fw("myotone.programs")
    contour = P.Waveform(100_000, 2000, 500, True, 500, 500)
    lift = P.Waveform(10_000, 40000, 200)
    fast = P.Waveform(13_677, 35210, 0, False)
    assert [R.off_short(w) for w in (contour, lift, fast, None)] == [True, False, True, False]
    assert S.ramp_down_ms(R.pair_ms(lift), R.off_short(lift)) == L.RAMP_DOWN_MS
    assert S.ramp_down_ms(R.pair_ms(contour), R.off_short(contour)) == 2 * L.RAMP_DOWN_MS
    assert S.ramp_down_ms(5000, True) == 10_000 and S.ramp_down_ms(5000, False) == 10_000
    s = S.Session(500)
    s.timed_to(0, True)
    s.begin(300, 60_000, 0)
    t = 0
    while s.state != S.RUN:
        t += 1
        s.step(t)
    s.request_stop()
    stop_at = t
    while s.state != S.DONE:
        t += 1
        s.step(t)
    assert 2 * L.RAMP_DOWN_MS - 2 <= t - stop_at <= 2 * L.RAMP_DOWN_MS + 1, t - stop_at


def test_session_ends_by_itself_at_its_duration(fw):
    S = fw("myotone.session")
    s, targets = run_session(S, 100, 10_000)
    first_down = next(t for t, ua, st in targets if st == S.RAMP_DOWN)
    assert first_down == 10_000
    assert s.state == S.DONE


def test_session_refuses_out_of_range(fw):
    S = fw("myotone.session")
    s = S.Session(500)
    with pytest.raises(ValueError):
        s.begin(501, 1000, 0)
    with pytest.raises(ValueError):
        s.begin(5, 1000, 0)
    with pytest.raises(ValueError):
        s.begin(100, 20 * 60_000 + 1, 0)


# ---- pulse tables ----------------------------------------------------------

def charge(table, P):
    pos = sum(table.dur[i] for i in range(table.n) if table.state[i] & P.BRIDGE == P.POS)
    neg = sum(table.dur[i] for i in range(table.n) if table.state[i] & P.BRIDGE == P.NEG)
    return pos, neg


@pytest.mark.parametrize("hz,phase,gap,alt", [(10, 40000, 0, True), (100, 2000, 500, False),
                                             (1000, 100, 0, True), (0.5, 500000, 1000, True)])
def test_tables_are_charge_balanced_and_fill_the_period(fw, hz, phase, gap, alt):
    P = fw("myotone.pulse")
    w = P.Waveform(int(hz * 1000), phase, gap, alt)
    t = P.Table().compile(w, unit_us=1)
    pos, neg = charge(t, P)
    assert pos == neg == phase * (2 if alt else 1)
    assert sum(t.dur[i] for i in range(t.n)) == w.unit_us()
    for i in range(1, t.n):
        assert t.state[i] != t.state[i - 1]


@pytest.mark.parametrize("hz,phase,gap,alt,burst", [(214.783, 1888, 631, True, (0, 0)), (100, 2000, 500, False, (0, 0)),
                                                   (128.233, 2625, 0, True, (2350, 42)), (0.5, 500000, 1000, False, (0, 0))])
def test_the_playhead_counts_every_pair_begun_whatever_its_calls_see(fw, hz, phase, gap, alt, burst):
    """The supervisor follows a PIO/RMT back-end from time alone, every 10 ms: at 214.8 Hz a call
    lands in the segment the last one saw more often than not, and counting the segment changes
    a call saw missed pairs (writes that wait for a new pair came every ~70 ms, in big steps)."""
    P = fw("myotone.pulse")
    w = P.Waveform(int(hz * 1000), phase, gap, alt, *burst)
    t = P.Table().compile(w, unit_us=1)
    unit_us = sum(t.dur[i] for i in range(t.n))
    per_unit = sum(1 for i in range(t.n) if t.state[i] & P.PAIR_START)
    h = P.Playhead()
    h.pairs = 7                                      # counts on from where the last waveform left it
    h.start(t, 1000)
    for k in range(0, 3000):
        now_us = 1000 + k * 10_000
        h.advance(now_us)
        pos = k * 10_000                             # the pairs begun by now, from the schedule
        cycle = unit_us * t.reps + t.off if t.reps else unit_us
        c, r = divmod(pos, cycle)
        begun = c * per_unit * (t.reps or 1)
        if t.reps and r >= unit_us * t.reps:
            begun += per_unit * t.reps
        else:
            u, ru = divmod(r, unit_us)
            starts, acc = [], 0
            for i in range(t.n):
                if t.state[i] & P.PAIR_START:
                    starts.append(acc)
                acc += t.dur[i]
            begun += u * per_unit + sum(1 for s0 in starts if s0 <= ru)
        assert h.pairs == (7 + begun) & 0xFFFF, (k, h.pairs, 7 + begun)


def test_waveform_outside_envelope_is_refused(fw):
    P = fw("myotone.pulse")
    with pytest.raises(P.WaveformError):
        P.Waveform(2_000_000, 100)        # 2 kHz
    with pytest.raises(P.WaveformError):
        P.Waveform(10_000, 10)            # 10 us phase
    with pytest.raises(P.WaveformError):
        P.Waveform(1_000_000, 600)        # 2 x 600 us does not fit 1 ms


def test_timing_the_backend_cannot_play_is_refused_not_rounded(fw):
    P = fw("myotone.pulse")
    w = P.Waveform(100_000, 250)
    with pytest.raises(P.TimingUnsupported):
        P.Table().compile(w, unit_us=100)
    with pytest.raises(P.TimingUnsupported):
        P.Table().compile(P.Waveform(100_000, 100), unit_us=100, min_units=2)


# ---- board file -------------------------------------------------------------

def test_board_limit_is_clamped_to_the_ceiling(fw):
    import json
    from myotone import paths
    B = fw("myotone.board")
    raw = json.loads((paths.boards_dir() / "pico-mcp4725.json").read_text())
    raw["limit_ua"] = 5000
    raw["sense"]["r_sense_ohm"] = 2500        # a sense that reads past the ceiling's trip level (1110 uA)
    raw["hw_limit_ua"] = 2000                 # ... and a limiter above it
    raw["oc_latch"]["trip_ua"] = 1050         # ... and an over-current latch within 1020..1110 uA
    assert B.check(raw)["limit_ua"] == 1000 == B.ABS_CEILING_UA


def test_board_files_in_repo_are_valid(fw):
    import json
    from myotone import paths
    B = fw("myotone.board")
    for f in paths.boards_dir().glob("*.json"):
        b = B.check(json.loads(f.read_text()))
        assert b["limit_ua"] == 500


def test_an_esp32_board_without_the_sense_bias_is_refused(fw):
    """The ESP32's ADC reads 0 below ~142 mV (~47 uA on the 3 kOhm sense): without U10's bias
    sense_fault's low reading is blind under ~94 uA and a stuck ADC runs unseen there."""
    import json
    from myotone import paths
    B = fw("myotone.board")
    raw = json.loads((paths.boards_dir() / "esp32-devkit.json").read_text())
    assert B.check(json.loads(json.dumps(raw)))
    for bias in (None, 0, 140):
        bad = json.loads(json.dumps(raw))
        if bias is None:
            del bad["sense"]["bias_mv"]
        else:
            bad["sense"]["bias_mv"] = bias
        with pytest.raises(B.BoardError, match="bias_mv must be >= 180"):
            B.check(bad)


@pytest.mark.parametrize("mutate,msg", [
    (lambda b: b.pop("bridge"), "missing bridge"),
    (lambda b: b.update(limit_ua="500"), "integer"),
    (lambda b: b.update(mcu="avr"), "mcu"),
    (lambda b: b["bridge"].update(pol_b=b["bridge"]["pol_a"]), "differ"),
    (lambda b: b.update(watchdog_ms=5000), "watchdog"),
    (lambda b: b.update(dac={"kind": "esp32", "pin": 25, "bits": 8, "vref_mv": 3300}), "esp32 only"),
    (lambda b: b.update(pulse={"backend": "rmt"}), "esp32 only"),
    (lambda b: b.update(mcu="esp32", dac={"kind": "esp32", "pin": 25, "bits": 8, "vref_mv": 3300},
                        pulse={"backend": "timer", "timer_id": 0, "hard": True, "tick_us": 100},
                        sense=dict(b["sense"], bias_mv=200)), "soft"),
    (lambda b: b["sense"].update(bias_mv=600), "bias_mv"),
    (lambda b: b["sense"].update(bias_mv="200"), "bias_mv"),
    (lambda b: b["bridge"].update(pol_b=b["bridge"]["pol_a"] + 2), "pol_a \\+ 1"),
])
def test_bad_board_files_are_refused(fw, mutate, msg):
    import json
    from myotone import paths
    B = fw("myotone.board")
    raw = json.loads((paths.boards_dir() / "pico-mcp4725.json").read_text())
    mutate(raw)
    with pytest.raises(B.BoardError, match=msg):
        B.check(raw)


ESP32_RMT = {"mcu": "esp32", "dac": {"kind": "esp32", "pin": 25, "bits": 8, "vref_mv": 3300},
             "pulse": {"backend": "rmt", "channels": [0, 1], "dead_us": 200}}


# Each a board file that would break a SAFETY.md bound if it were accepted (issue 17, item 9).
@pytest.mark.parametrize("mutate,msg", [
    # over_current needs a sample within half its 2 ms bound: at 500 Hz an onset went 4 ms untripped
    (lambda b: b["supervisor"].update(hz=500), "supervisor.hz must be 1000..2000"),
    (lambda b: b["supervisor"].update(hz=999), "supervisor.hz must be 1000..2000"),
    (lambda b: b["supervisor"].update(hz=5000), "supervisor.hz must be 1000..2000"),
    # 1e9 cm2 switches the density cap off; 0.001 is a slip of units
    (lambda b: b.update(electrode_area_cm2=1e9), "electrode_area_cm2 must be 0.1..25"),
    (lambda b: b.update(electrode_area_cm2=26), "electrode_area_cm2 must be 0.1..25"),
    (lambda b: b.update(electrode_area_cm2=0.001), "electrode_area_cm2 must be 0.1..25"),
    # pins: a VBUS sense or the HV enable on a bridge pin, any two roles on one pin
    (lambda b: b.update(vbus_pin=b["bridge"]["pol_a"]), "bridge.pol_a and vbus_pin are both pin 10"),
    (lambda b: b.update(hv_enable=b["bridge"]["pol_b"]), "bridge.pol_b and hv_enable are both pin 11"),
    (lambda b: b.update(status_led_pin=b["led"]["red_pin"]), "led.red_pin and status_led_pin are both pin 15"),
    (lambda b: b["sense"].update(voltage_adc=b["thermistor"]["adc"]),
     "thermistor.adc and sense.voltage_adc are both pin 28"),
    (lambda b: b["dac"].update(sda=b["bridge"]["pol_a"]), "dac.sda and bridge.pol_a are both pin 10"),
    (lambda b: b.update(button_pin=-1), "button_pin must be >= 0"),
    # the polarity comparators (a DC fault is invisible without them): present, integers, own pins
    (lambda b: b["sense"].pop("flow_b_pin"), "missing sense.flow_b_pin"),
    (lambda b: b["sense"].update(flow_a_pin="17"), "sense.flow_a_pin must be an integer"),
    (lambda b: b["sense"].update(flow_a_pin=b["bridge"]["pol_b"]), "sense.flow_a_pin and bridge.pol_b are both pin 11"),
    (lambda b: b["sense"].update(flow_b_pin=b["sense"]["flow_a_pin"]),
     "sense.flow_b_pin and sense.flow_a_pin are both pin 17"),
    (lambda b: b["sense"].update(flow_b_pin=b["sense"]["current_adc"]),
     "sense.flow_b_pin and sense.current_adc are both pin 26"),
    # a 1 ms watchdog resets the board in the middle of a flash write
    (lambda b: b.update(watchdog_ms=1), "watchdog_ms must be >= 500"),
    (lambda b: b.update(watchdog_ms=499), "watchdog_ms must be >= 500"),
    # the over-current latch (docs/hardware.md): required, its pins its own, its threshold between
    # the limit + 2 % and the over_current trip level at both ends of its tolerance
    (lambda b: b.pop("oc_latch"), "board: missing oc_latch"),
    (lambda b: b["oc_latch"].pop("clear_pin"), "board: missing oc_latch.clear_pin"),
    (lambda b: b["oc_latch"].update(q_pin=b["bridge"]["pol_a"]), "oc_latch.q_pin and bridge.pol_a are both pin 10"),
    (lambda b: b["oc_latch"].update(trip_ua=550), "sets at 536..564 uA .* within 510..560 uA"),
    (lambda b: b["oc_latch"].update(trip_ua=520), "sets at 507..533 uA .* within 510..560 uA"),
    (lambda b: b["oc_latch"].update(tol_pct=11), "oc_latch.tol_pct must be 0..10"),
    (lambda b: b.update(limit_ua=300), "sets at 516..544 uA .* within 306..340 uA"),
    # rmt: opposite phases need off-time between them
    (lambda b: b.update(ESP32_RMT, pulse={**ESP32_RMT["pulse"], "dead_us": 0}), "dead_us must be an integer >= 100"),
    (lambda b: b.update(ESP32_RMT, pulse={**ESP32_RMT["pulse"], "dead_us": 99}), "dead_us must be an integer >= 100"),
    # dac.bits the driver ignores: the MCP4725 driver writes 12 bits, machine.DAC 8
    (lambda b: b["dac"].update(bits=16), "dac.bits must be 12: the mcp4725 driver writes 12-bit"),
    (lambda b: b.update(ESP32_RMT, dac={**ESP32_RMT["dac"], "bits": 12}), "dac.bits must be 8"),
    # the trip level must be readable: at 1000 uA it is 1110 uA, above the sense's 1100 uA
    (lambda b: b.update(limit_ua=1000, hw_limit_ua=2000),
     "reads up to 1100 uA, not 10 % above the over_current trip level 1110"),
    (lambda b: b["sense"].update(r_sense_ohm=5600), "reads up to 589 uA, not 10 % above .* 560 uA"),
    (lambda b: b["sense"].update(r_sense_ohm=100), "sense full scale 33000 uA is above 4096"),
    # V->I: an r_set_ohm so large the DAC gives 0 uA (safe_boot divided by it), or so small one
    # DAC step is more than the soft start
    (lambda b: b["v_to_i"].update(r_set_ohm=10 ** 9), "gives 0 uA at full scale, below limit_ua 500"),
    (lambda b: b["v_to_i"].update(r_set_ohm=7000), "gives 471 uA at full scale, below limit_ua 500"),
    (lambda b: b["v_to_i"].update(r_set_ohm=60), "one DAC step \\(55000 uA / 4095\\) is more than the soft start"),
    (lambda b: b.update(ESP32_RMT, limit_ua=150), "one DAC step \\(1000 uA / 255\\) is more than the soft start"),
    # the hardware limiter must cap above the trip level at 0 C and -3 %: 600 uA at 25 C (the old
    # R_LIM of 113 Ohm) caps at 533 uA there, under the 560 uA trip: a stuck DAC ran untripped
    (lambda b: b.update(hw_limit_ua=600), "caps at 533 uA at 0 C and -3 %, not 5 % above .* 560 uA"),
    (lambda b: b.update(hw_limit_tol_pct=10), "caps at 558 uA at 0 C and -10 %"),
    (lambda b: b.update(hw_limit_ppm_per_c=-1), "hw_limit_ppm_per_c must be >= 0"),
    # a collection holds a soft-timer fast path off ~20 ms: the ESP32 collects only with the output off
    (lambda b: b.update(ESP32_RMT, supervisor={**b["supervisor"], "gc": "auto"}),
     r'supervisor.gc must be "output_off" \(a collection'),
    (lambda b: b["supervisor"].update(gc="never"), 'supervisor.gc must be "output_off" or "auto"'),
    # an unpaced console write holds a soft-timer fast path off (~30 ms for a status reply on the ESP32)
    (lambda b: b.update(ESP32_RMT), "missing console \\(tx_fifo_b, tx_bytes_per_s\\)"),
    (lambda b: b.update(console={"tx_fifo_b": 8, "tx_bytes_per_s": 11520}), "console.tx_fifo_b must be 32..4096"),
    (lambda b: b.update(console={"tx_fifo_b": 128}), "missing console.tx_bytes_per_s"),
])
def test_board_files_that_would_break_a_bound_are_refused(fw, mutate, msg):
    import json
    from myotone import paths
    B = fw("myotone.board")
    raw = json.loads((paths.boards_dir() / "pico-mcp4725.json").read_text())
    assert B.check(json.loads(json.dumps(raw)))          # the unchanged file passes ...
    mutate(raw)
    with pytest.raises(B.BoardError, match=msg):         # ... the changed one is refused, saying why
        B.check(raw)


# ---- the DAC clamp --------------------------------------------------------------

class FakeDac:
    max_code = 4095

    def __init__(self):
        self.codes = []

    def write(self, code):
        self.codes.append(code)

    def check(self):
        pass


class FakePin:
    def __init__(self):
        self.v = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


def test_output_never_writes_a_code_above_the_limit(fw):
    O = fw("myotone.output")
    HB = fw("myotone.hal.bridge")
    dac = FakeDac()
    out = O.Output(dac, HB.HBridge(FakePin(), FakePin()), FakePin(), full_scale_ua=1000, limit_ua=500)
    for ua in (0, 10, 499, 500, 501, 800, 10**6, -5):
        out.set_ua(ua)
    assert max(dac.codes) == out.limit_code
    assert out.ua_for_code(out.limit_code) <= 500
    with pytest.raises(ValueError):
        O.Output(dac, HB.HBridge(FakePin(), FakePin()), FakePin(), 2000, 1500)


# ---- protocol -----------------------------------------------------------------

def test_line_reader_drops_over_long_lines_and_recovers(fw):
    P = fw("myotone.protocol")
    r = P.LineReader(16)
    out = [r.feed(b) for b in b"x" * 40 + b"\n" + b'{"cmd":"a"}\n']
    results = [o for o in out if o is not None]
    assert results == [P.LINE_TOO_LONG, b'{"cmd":"a"}']


@pytest.mark.parametrize("line,code", [
    (b"not json", "bad_json"), (b"[1,2]", "bad_json"), (b"\xff\xfe", "bad_json"),
    (b'{"a":' * 10 + b"1" + b"}" * 10, "bad_json"), (b'{"id":1}', "bad_request"),
    (b'{"cmd":5}', "bad_request"), (b'{"id":[1],"cmd":"x"}', "bad_request"),
])
def test_parse_errors(fw, line, code):
    P = fw("myotone.protocol")
    with pytest.raises(P.ProtocolError) as e:
        P.parse(line)
    assert e.value.code == code


def test_check_args_types_and_unknown_fields(fw):
    P = fw("myotone.protocol")
    schema = {"ua": ("int", True), "hz": ("num", False)}
    assert P.check_args({"ua": 5}, schema) == {"ua": 5}
    for bad in ({"ua": "5"}, {"ua": True}, {"ua": 5, "x": 1}, {}, {"ua": 1, "hz": float("nan")}):
        with pytest.raises(P.ProtocolError):
            P.check_args(bad, schema)

"""The session log on the device: one record per session, checked against the
plant's truth; a bounded ring on flash; atomic under power loss at any instant."""
import json

import pytest

from myotone.emulator import Emulator
from myotone.emulator.flash import Flash, PowerLoss
from safety_helpers import Bench

S = 1_000_000_000
RTC_EPOCH_S = 1_609_459_200        # the emulated RP2040's RTC powers on at 2021-01-01 (nothing set it)
BLINK = {"phases": [{"duration_s": 1, "red_pct": 10}]}
KEYS = {"n", "start_s", "end_s", "program", "setpoint_ua", "charge_uc", "avg_ua", "impedance_ohm",
        "led_dose_j_cm2", "faults", "samples", "firmware", "board", "unit_id", "marks"}


def blink_sessions(bench, count):
    assert bench.request("program_write", name="blink", program=BLINK)["ok"]
    for _ in range(count):
        assert bench.request("start", program="blink")["ok"]
        bench.run(1.1)


# ---- contents ----------------------------------------------------------------------

def written(write_body) -> dict:
    """The record's body as store.log_append writes it (write_body into a file), parsed."""
    class Sink:
        text = ""

        def write(self, s):
            Sink.text += s
    write_body(Sink())
    return json.loads("{" + Sink.text + "}")


def test_record_of_a_microcurrent_session_matches_the_plant(bench):
    t0 = bench.emu.clock.now_ns
    assert bench.request("start", program="lift", ua=300, duration_s=20)["ok"]
    bench.run(23)
    assert bench.events("log") == [{"ev": "log", "n": 1}]
    rec = bench.record()
    assert KEYS <= set(rec) and rec["n"] == 1
    assert rec["program"] == "lift" and rec["setpoint_ua"] == 300 and rec["faults"] == []
    assert rec["start_s"] == RTC_EPOCH_S + t0 // S
    assert 21 <= rec["end_s"] - rec["start_s"] <= 22            # 20 s + the 1.5 s ramp-down
    tr = bench.emu.plant.trace
    tr.close(bench.emu.clock.now_ns)
    truth_uc = tr.abs_charge_nc / 1000
    assert rec["charge_uc"] == pytest.approx(truth_uc, rel=0.02)
    on_s = (max(t for t, i in zip(tr.t_ns, tr.i_ua) if i) - t0) / S
    assert rec["avg_ua"] == pytest.approx(truth_uc / on_s, rel=0.03)
    assert rec["impedance_ohm"] and all(z == pytest.approx(10_000, rel=0.03) for z in rec["impedance_ohm"])
    assert rec["led_dose_j_cm2"] == 0
    samples = rec["samples"]
    assert 20 <= len(samples) <= 23
    assert [s["t_s"] for s in samples] == sorted(s["t_s"] for s in samples)
    steady = [s for s in samples if 5 <= s["t_s"] <= 19]
    assert steady and all(s["ua"] == pytest.approx(300 * 0.8, rel=0.03) for s in steady)   # lift: 80 % duty
    assert all(s["ohm"] == pytest.approx(10_000, rel=0.03) for s in steady)


def test_record_of_a_combined_session_has_the_dose_of_the_light(bench):
    prog = {"phases": [{"duration_s": 30, "hz": 10, "phase_us": 40000, "gap_us": 200,
                        "current_pct": 100, "red_pct": 50},
                       {"duration_s": 10, "red_pct": 100}]}
    assert bench.request("program_write", name="combo", program=prog)["ok"]
    t0 = bench.emu.clock.now_ns
    assert bench.request("start", program="combo", ua=200)["ok"]
    bench.run(42)
    rec = bench.record()
    truth = bench.emu.periph.led_dose_j_cm2(bench.emu.clock.now_ns, t0)
    assert truth == pytest.approx((7.5 * 30 + 15 * 10) / 1000, rel=1e-3)
    assert rec["led_dose_j_cm2"] == pytest.approx(truth, rel=3e-3)
    assert rec["led_on_s"] == pytest.approx(40, abs=0.01)
    leds = {s["t_s"]: s["led_pct"] for s in rec["samples"]}
    assert leds[10] == 50 and leds[35] == 100
    assert {s["ua"] for s in rec["samples"] if s["t_s"] >= 33} == {0}


def test_faults_end_up_in_the_record(bench):
    bench.start(ua=300, duration_s=60)
    bench.run(4)
    bench.run_until_bridge_on()
    bench.emu.set_fault("electrode_off")
    bench.run(0.5)
    rec = bench.record()
    assert rec["faults"] == ["contact_lost"]
    assert bench.request("log_list")["records"][-1]["faults"] == ["contact_lost"]
    bench.emu.set_fault("electrode_off", False)
    assert bench.request("fault_clear")["ok"]
    bench.start(ua=200, duration_s=60, heartbeat=True)
    bench.run(9)
    assert bench.record()["faults"] == ["heartbeat_lost"]


def test_impedance_trend_has_one_value_per_tenth_of_the_session(bench):
    assert bench.request("start", program="lift", ua=200, duration_s=30)["ok"]
    bench.run(16)
    bench.emu.set_load(r_series_ohm=7000)                       # 15 kOhm from the 16th second
    bench.run(17)
    trend = bench.record()["impedance_ohm"]
    assert 10 <= len(trend) <= 11                               # every 3 s, and the ramp-down's part
    assert all(z == pytest.approx(10_000, rel=0.03) for z in trend[:5])
    assert 10_000 * 1.03 < trend[5] < 15_000 * 0.97             # the bucket of the change
    assert all(z == pytest.approx(15_000, rel=0.03) for z in trend[6:])


def test_samples_stay_bounded_in_a_20_minute_session(fw):
    L = fw("myotone.sessionlog")
    log = L.SessionLog(1000)
    log.begin("lift", 300, RTC_EPOCH_S, 1_200_000)
    second_of_samples = [1000, 1000, 240 * 1000, 240 * 1000, 2400 * 1000, 0, 0, 0, 0]   # fastpath.take's sums
    for second in range(1, 1201):
        log.add(second_of_samples, 0)
        log.sample(second * 1000)
    log.sample(1_200_500, True)
    head, write_body = log.record(RTC_EPOCH_S + 1201, 0, 0, None)
    body = written(write_body)
    ts = [s["t_s"] for s in body["samples"]]
    assert len(ts) <= L.MAX_SAMPLES and ts == sorted(ts) and ts[-1] == 1200
    assert max(b - a for a, b in zip(ts, ts[1:])) <= 4           # ~1 s samples, thinned to every 4 s
    assert body["charge_uc"] == pytest.approx(240 * 1200) and body["avg_ua"] == 240
    assert len(body["impedance_ohm"]) in (10, 11) and set(body["impedance_ohm"]) == {10_000}


# ---- marks: what happened when --------------------------------------------------------

def marks_s(rec):
    """The record's marks as (seconds since the start, mark, its detail)."""
    return [(m["t_ms"] / 1000, m["mark"], m.get("label", m.get("ua", m.get("reason"))))
            for m in rec["marks"]]


def test_record_names_the_firmware_board_and_unit_that_wrote_it(bench):
    hello = bench.request("hello")
    assert bench.request("start", program="lift", ua=200, duration_s=3)["ok"]
    bench.run(6)
    rec = bench.record()
    assert rec["firmware"] == hello["firmware"] and rec["board"] == hello["board"] == "pico-mcp4725"
    assert rec["unit_id"] == hello["unit_id"] == bench.emu.mcu.unique_id.hex()


def test_marks_give_the_pauses_phases_and_setpoints_in_the_samples_time(bench):
    rec = bench.paused_two_phase_record()
    got = marks_s(rec)
    want = [(0, "phase", "warm"), (0, "setpoint", 300), (4, "pause", None), (9, "resume", None),
            (13, "phase", "light"), (13, "setpoint", 150), (19, "stop", None), (20.5, "end", None)]
    assert [(m, d) for _, m, d in got] == [(m, d) for _, m, d in want]
    for (t, _, _), (t_want, _, _) in zip(got, want):
        assert t == pytest.approx(t_want, abs=0.05)          # within a main-loop pass or two
    phase = [m for m in rec["marks"] if m["mark"] == "phase"]
    assert [m["phase"] for m in phase] == [1, 2]


def test_a_fault_is_marked_when_it_latched(bench):
    t_start_ns = bench.emu.clock.now_ns
    bench.start(ua=300, duration_s=60)
    bench.run(4)
    bench.run_until_bridge_on()
    t_inject_s = (bench.emu.clock.now_ns - t_start_ns) / S
    bench.emu.set_fault("electrode_off")
    bench.run(0.5)
    rec = bench.record()
    (fault,) = [m for m in rec["marks"] if m["mark"] == "fault"]
    assert fault["reason"] == "contact_lost" == rec["faults"][0]
    # contact loss is seen within a few bookkeeping ticks; the mark within a main-loop pass of it
    assert t_inject_s - 0.01 <= fault["t_ms"] / 1000 <= t_inject_s + 0.1


def test_marks_stay_bounded_and_say_how_many_were_left_out(fw):
    L = fw("myotone.sessionlog")
    Sn = fw("myotone.session")
    log = L.SessionLog(1000, "pico-mcp4725", "e660583883253b2f")
    log.begin("lift", 300, RTC_EPOCH_S, 600_000, None, ["one"])
    log.watch(0, Sn.RAMP, 0, 300, None)
    for k in range(100):                                    # a hundred pause / resume pairs
        log.watch(1000 + 20 * k, Sn.PAUSING, 0, 300, None)
        log.watch(1010 + 20 * k, Sn.RAMP, 0, 300, None)
    head, write_body = log.record(RTC_EPOCH_S + 600, 0, 0, None)
    body = written(write_body)
    assert len(body["marks"]) == L.MAX_MARKS and body["marks_dropped"] == 2 + 200 - L.MAX_MARKS
    assert body["marks"][:3] == [{"t_ms": 0, "mark": "phase", "phase": 1, "label": "one"},
                                 {"t_ms": 0, "mark": "setpoint", "ua": 300},
                                 {"t_ms": 1000, "mark": "pause"}]
    assert (body["firmware"], body["board"], body["unit_id"]) == ("0.1.0", "pico-mcp4725", "e660583883253b2f")


# ---- the ring ----------------------------------------------------------------------

def test_ring_keeps_the_newest_32_and_deletes_on_request(bench):
    blink_sessions(bench, 34)
    nums = [r["n"] for r in bench.request("log_list")["records"]]
    assert nums == list(range(3, 35))                            # the two oldest went first
    assert sorted(bench.emu.fs.scandir("/log"), key=lambda e: e.name)[0].name == "0003.json"
    assert bench.request("log_read", n=1)["error"] == "not_found"
    assert bench.request("log_delete", n=10)["ok"]
    assert 10 not in [r["n"] for r in bench.request("log_list")["records"]]
    assert bench.request("log_delete", n=10)["error"] == "not_found"
    assert bench.request("log_delete")["error"] == "bad_request"
    assert bench.request("log_delete", n=3, all=True)["error"] == "bad_request"
    assert bench.request("log_delete", all=True)["records"] == 0
    assert bench.request("log_list")["records"] == []
    blink_sessions(bench, 1)
    assert [r["n"] for r in bench.request("log_list")["records"]] == [35]      # numbers are never reused


def test_log_commands_refuse_flash_writes_during_a_session(bench):
    blink_sessions(bench, 1)
    assert bench.request("start", program="lift", ua=100, duration_s=30)["ok"]
    assert bench.request("log_delete", all=True)["error"] == "busy"
    assert bench.request("log_list")["ok"] and bench.request("log_read", n=1)["ok"]   # reading is fine


def test_the_flash_is_written_only_with_the_rail_and_both_bridge_pins_off(bench):
    """SAFETY.md: nothing writes flash while the output stage is on. Every program and erase of
    the flash -- a 130 s session's checkpoints (~60 s, ~120 s) and its final record -- finds the
    plant with the HV rail and both bridge pins off; the checkpoints come during the session."""
    blink_sessions(bench, 1)
    dev, plant, clock = bench.emu.fs.device, bench.emu.plant, clock_of(bench)
    ops = []
    for name in ("prog", "erase"):
        real = getattr(dev, name)

        def watched(*a, real=real):
            ops.append((clock.now_ns, plant.hv_on, plant.bridge_a, plant.bridge_b))
            return real(*a)
        setattr(dev, name, watched)
    t0 = clock.now_ns
    assert bench.request("start", program="lift", ua=200, duration_s=130)["ok"]
    while bench.request("status")["state"] != "done":
        bench.run(0.25)
    bench.run(0.1)
    t_end = clock.now_ns
    during = [op for op in ops if op[0] < t0 + 130 * S]
    assert during and min(op[0] for op in during) >= t0 + 60 * S        # checkpoints, during the session
    assert {op[1:] for op in ops} == {(0, 0, 0)}, [op for op in ops if op[1:] != (0, 0, 0)][:3]
    assert [op for op in ops if op[0] >= t0 + 130 * S] and max(op[0] for op in ops) <= t_end
    assert bench.events("log")[-1]["n"] == 2 and "incomplete" not in bench.record(2)


def clock_of(bench):
    return bench.emu.clock


# ---- power loss ------------------------------------------------------------------------

def boot(image):
    return Bench(fs=Flash.from_image(image))


def check_ring(b, old, new_n):
    """Every record readable and complete; the set is the old one, or the old one plus the new."""
    nums = [r["n"] for r in b.request("log_list")["records"]]
    assert nums in (old, old + [new_n], old[1:], old[1:] + [new_n]), nums
    assert len(nums) <= 32
    for n in nums:
        rec = b.record(n)
        assert KEYS <= set(rec) and rec["n"] == n
    assert not [e.name for e in b.emu.fs.scandir("/log") if e.name.endswith(".tmp")]
    return nums


@pytest.mark.parametrize("torn", ["garbage", "old"])
def test_power_loss_at_every_operation_of_a_log_write(torn):
    b = Bench()
    try:
        blink_sessions(b, 3)
        base = b.emu.fs.image_bytes()
    finally:
        b.close()
    probe = boot(base)
    try:
        ops = probe.emu.fs.ops
        assert probe.request("start", program="blink")["ok"]
        probe.run(1.1)
        total = probe.emu.fs.ops - ops
        assert total >= 2
    finally:
        probe.close()
    seen = set()
    for n in range(1, total + 2):          # total + 1: the power stays on (the new record)
        b = boot(base)
        try:
            assert b.request("start", program="blink")["ok"]
            b.run(0.5)
            b.emu.fs.arm_power_loss(n, torn=torn, seed=n)
            b.run(0.6)
            assert b.emu.fs.powered == (n > total)
            image = b.emu.fs.image_bytes()
        finally:
            b.close()
        after = boot(image)                # mounts, boots, cleans up, serves the log
        try:
            seen.add(tuple(check_ring(after, [1, 2, 3], 4)))
            blink_sessions(after, 1)       # and keeps logging
            assert after.request("log_list")["records"][-1]["n"] in (4, 5)
        finally:
            after.close()
    assert seen == {(1, 2, 3), (1, 2, 3, 4)}


def test_power_loss_while_a_large_record_replaces_the_oldest_in_a_full_ring():
    """Store-level, with the firmware's store.py: a 15 kB record (data blocks, not inline)."""
    emu = Emulator("pico-mcp4725")
    store = emu.runtime.import_module("myotone.store")
    store.recover()

    def body(f):
        f.write('"setpoint_ua":300,"charge_uc":1.0,"avg_ua":1.0,"impedance_ohm":[10000],'
                '"led_dose_j_cm2":0,"samples":[')
        f.write(",".join('{"t_s":%d,"ua":240,"ohm":10000,"led_pct":0}' % i for i in range(300)))
        f.write("]")

    def head(k):
        return {"start_s": RTC_EPOCH_S + k, "end_s": RTC_EPOCH_S + k + 1, "program": "lift", "faults": []}
    for k in range(32):
        store.log_append(head(k), body)
    base = emu.fs.image_bytes()
    emu.close()
    old = list(range(1, 33))

    def attempt(n):
        e = Emulator("pico-mcp4725", fs=Flash.from_image(base))
        st = e.runtime.import_module("myotone.store")
        ops = e.fs.ops
        if n:
            e.fs.arm_power_loss(n, seed=n)
        try:
            st.log_append(head(99), body)
        except PowerLoss:
            pass
        used = e.fs.ops - ops
        image = e.fs.image_bytes()
        e.close()
        return used, image

    total, _ = attempt(0)
    assert total >= 8                      # erases and programs of data blocks, not one commit
    outcomes = set()
    for n in range(1, total + 1):
        _, image = attempt(n)
        e = Emulator("pico-mcp4725", fs=Flash.from_image(image))
        st = e.runtime.import_module("myotone.store")
        st.recover()
        nums = st.log_numbers()
        assert nums in (old, old[1:], old[1:] + [33]), (n, nums)
        for k in nums:
            rec = json.loads(st.log_text(k))
            assert rec["n"] == k and len(rec["samples"]) == 300
        outcomes.add(len(nums))
        e.close()
    assert outcomes >= {31}                 # the cut hit between the trim and the new record too

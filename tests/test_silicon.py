"""The silicon tier: the official MicroPython RP2040 firmware in rp2040js (issue 15).

Two groups: the rig's own fidelity (bare MicroPython, no project firmware: each fix to an
rp2040js gap proven), and the project firmware on the chip (boot, hello, a session whose
edges match the program, an over_current trip, Ctrl-C, a request burst). Everything runs
in lockstep simulated time, so nothing here depends on this machine's speed. Where
today's firmware misses a SAFETY.md bound on the chip, the test is an expected failure
naming the issue that fixes it.
"""
from __future__ import annotations

import json
import os

import pytest

from myotone.emulator.board import load_board

from myotone.emulator import bench as truth
from myotone.emulator.flash import RP2040_PICO_BLOCKS, Flash
from myotone.silicon import SiliconBoard, SiliconUnavailable
from myotone.silicon.assets import bootrom_path, find_uf2, node, rig_script

try:
    node(), rig_script(), bootrom_path(), find_uf2()
except SiliconUnavailable as exc:
    pytestmark = pytest.mark.skip(reason=f"silicon tier unavailable: {exc}")
else:
    pytestmark = pytest.mark.silicon

MS = 1_000_000


def _bare(tmp_path=None, **kw) -> SiliconBoard:
    b = SiliconBoard(firmware=False, flash_path=str(tmp_path / "flash.img") if tmp_path else None, **kw)
    b.write(b"\r")
    b.wait_for(b">>> ", 3)
    return b


# ---- the rig: each rp2040js gap fixed, on bare MicroPython --------------------------------
def test_bare_micropython_runs_code_and_inputs_read_their_pull_resistors():
    with _bare() as b:
        assert b.exec_raw("print(6 * 7)") == "42\r\n"
        out = b.exec_raw("from machine import Pin\n"
                         "print(Pin(13, Pin.IN, Pin.PULL_UP).value(), Pin(14, Pin.IN, Pin.PULL_DOWN).value(),"
                         " Pin(15, Pin.IN).value())")
        assert out.split() == ["1", "0", "0"]            # rp2040js alone reads the pull-up as 0
        b.press_button(True)                             # something outside drives 13 low
        assert b.exec_raw("print(Pin(13).value())").strip() == "0"
        b.press_button(False)
        assert b.exec_raw("print(Pin(13).value())").strip() == "1"


def test_an_output_pin_reads_the_level_the_chip_drives_on_it_gpio_and_pio():
    """The fast path reads the bridge pins (PIO-driven) to know the polarity of its sample:
    a pin's input must read what the chip drives (rp2040js read only the outside or the pull)."""
    with _bare() as b:
        out = b.exec_raw("from machine import Pin\n"
                         "import rp2\n"
                         "p = Pin(16, Pin.OUT, value=1)\n"
                         "print(p.value())\n"
                         "p.value(0)\n"
                         "print(p.value())\n"
                         "@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)\n"
                         "def hi():\n"
                         "    set(pins, 1)\n"
                         "    wrap_target()\n"
                         "    nop()\n"
                         "    wrap()\n"
                         "sm = rp2.StateMachine(0, hi, freq=2000000, set_base=Pin(17))\n"
                         "sm.active(1)\n"
                         "print(Pin(17).value())\n"
                         "sm.active(0)\n"
                         "sm.exec(0xE000)\n"                     # set(pins, 0)
                         "print(Pin(17).value())")
        assert out.split() == ["1", "0", "1", "0"], out


def test_time_runs_on_while_the_core_sleeps_and_a_waiting_usb_read_does_not_wake_it():
    with _bare() as b:
        t0, busy0 = b.clock.now_ns, b.chip.busy_ns
        b.run_for(1.0)                                   # idle at the REPL: nothing pending but the USB read
        assert b.clock.now_ns - t0 == 1000 * MS
        busy_share = (b.chip.busy_ns - busy0) / (b.clock.now_ns - t0)
        assert busy_share < 0.01, busy_share             # an empty read every 10 us kept it busy


def test_flash_writes_reach_the_image_and_survive_a_restart(tmp_path):
    with _bare(tmp_path) as b:
        b.exec_raw("with open('/kept.txt', 'w') as f: f.write('calibrated 1.06')")
        assert any(op == "prog" for _, op, _, _ in b.flash_ops)
        t_prog = [t for t, op, _, _ in b.flash_ops if op == "prog"]
        assert t_prog
    fs = Flash(tmp_path / "flash.img", block_count=RP2040_PICO_BLOCKS, autosave=False)
    assert fs.read_file("/kept.txt") == b"calibrated 1.06"
    with _bare(tmp_path) as b:
        assert b.exec_raw("print(open('/kept.txt').read())").strip() == "calibrated 1.06"


def test_an_expired_watchdog_resets_the_chip_with_its_cause_and_flash_kept(tmp_path):
    with _bare(tmp_path) as b:
        b.exec_raw("open('/before.txt', 'w').write('x')")
        b.write(b"\x01")
        b.wait_for(b">", 1)
        b.write(b"from machine import WDT\nw = WDT(timeout=100)\nwhile True: pass\n\x04")
        b.run_for(0.3)
        assert [why for _, why in b.resets] == ["watchdog"]
        b.write(b"\r")
        b.wait_for(b">>> ", 3)
        out = b.exec_raw("import machine, os; print(machine.reset_cause() == machine.WDT_RESET, os.listdir())")
        assert out.strip() == "True ['before.txt']"


def test_pio_steps_on_the_simulated_clock_at_its_divider_and_a_joined_fifo_holds_eight():
    program = """
import rp2
from machine import Pin
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def square():
    set(pins, 1) [3]
    set(pins, 0) [3]
sm = rp2.StateMachine(0, square, freq=2_000_000, set_base=Pin(10))
@rp2.asm_pio(fifo_join=rp2.PIO.JOIN_TX)
def stall():
    wait(1, gpio, 22)
sm1 = rp2.StateMachine(1, stall, freq=2_000_000)
sm1.active(1)
for i in range(8):
    sm1.put(i)
print('fifo', sm1.tx_fifo())
sm.active(1)
"""
    with _bare() as b:
        out = b.exec_raw(program)
        assert out.strip() == "fifo 8"                   # 4 deep without the join: put() blocks forever
        b.run_for(0.002)
        rises = [t for t, pin, v in b.edges if pin == 10 and v == 1]
        assert len(rises) > 100
        periods = {rises[i + 1] - rises[i] for i in range(len(rises) - 1)}
        assert periods == {4000}                         # 8 PIO cycles at 2 MHz = 4 us, every one


# ---- the project firmware on the chip -----------------------------------------------------
class Fw:
    """The firmware booted on the chip, with JSON-line helpers in simulated time."""

    def __init__(self, **kw):
        self.b = SiliconBoard(**kw)
        self.log: list[tuple[int, dict]] = []
        self._partial = b""
        while not self.events("ready"):                 # to the millisecond: the boot time is a figure
            if self.b.clock.now_ns > 5_000_000_000:
                raise AssertionError(f"no ready event within 5 s of power-on: {self.log}")
            self.run(0.001)
        self.run(0.05)

    def drain(self) -> None:
        """Log every whole line that has come (a line can arrive in pieces)."""
        self._partial += self.b.read()
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            if line.startswith(b"{"):
                self.log.append((self.b.clock.now_ns, json.loads(line)))

    def run(self, seconds: float) -> None:
        self.b.run_for(seconds)
        self.drain()

    def request(self, cmd: str, timeout_s: float = 2.0, **args) -> dict:
        rid = 1000 + len(self.log)
        self.b.send({"id": rid, "cmd": cmd, **args})
        end = self.b.clock.now_ns + int(timeout_s * 1e9)
        while self.b.clock.now_ns < end:
            self.run(0.002)
            for _, m in self.log:
                if m.get("id") == rid:
                    return m
        raise AssertionError(f"no reply to {cmd} within {timeout_s} s")

    def events(self, ev: str) -> list[dict]:
        return [m for _, m in self.log if m.get("ev") == ev]

    def close(self) -> None:
        self.b.close()


@pytest.fixture
def fw():
    f = Fw()
    yield f
    f.close()


def test_runs_are_deterministic_so_a_figure_is_the_same_every_time():
    """Two boards from scratch, the same inputs: the same boot, to the nanosecond and the cycle."""
    runs = []
    for _ in range(2):
        f = Fw()
        try:
            runs.append(([t for t, _ in f.log], f.b.chip.busy_ns, f.b.adc_times[-20:], f.b.edges))
        finally:
            f.close()
    assert runs[0] == runs[1]


def test_the_firmware_boots_on_the_official_micropython_and_says_hello(fw):
    ready = fw.events("ready")
    assert ready and ready[0]["reset_cause"] == "power_on" and ready[0]["board"] == "pico-mcp4725"
    hello = fw.request("hello")
    assert hello["ok"] and hello["mcu"] == "rp2040" and hello["pulse_backend"] == "pio"
    assert hello["limits"]["max_ua"] == 500
    assert len(hello["unit_id"]) == 16 and int(hello["unit_id"], 16) >= 0     # machine.unique_id() on the chip
    assert fw.b.dac_writes and fw.b.dac_writes[-1][1] == 0          # boot wrote the DAC to 0 over I2C


def test_a_session_on_the_chip_plays_the_program_edge_for_edge(fw):
    r = fw.request("start", program="lift", ua=200, duration_s=30)
    assert r["ok"], r
    t0 = fw.b.clock.now_ns
    fw.run(1.2)
    b = fw.b
    pa, pb = b.board["bridge"]["pol_a"], b.board["bridge"]["pol_b"]
    edges = [(t, pin, v) for t, pin, v in b.edges if pin in (pa, pb) and t >= t0]
    highs = {pa: None, pb: None}
    phases = []                                      # (pin, start, width) of each phase
    for t, pin, v in edges:
        if v:
            highs[pin] = t
        elif highs[pin] is not None:
            phases.append((pin, highs[pin], t - highs[pin]))
            highs[pin] = None
    assert len(phases) >= 18                          # lift: 10 Hz, two phases a period
    assert {w for _, _, w in phases} == {40_000_000}  # 40 ms phases, to the nanosecond
    starts = [s for _, s, _ in phases]
    pairs = [(phases[i], phases[i + 1]) for i in range(len(phases) - 1)
             if phases[i + 1][1] - (phases[i][1] + 40_000_000) == 200_000]    # the 200 us inter-phase gap
    assert len(pairs) >= 9
    assert all(a[0] != b_[0] for a, b_ in pairs)      # biphasic: the second phase the other way
    firsts = [a[0] for a, _ in pairs]
    assert all(firsts[i] != firsts[i + 1] for i in range(len(firsts) - 1))   # polarity alternates
    assert {pairs[i + 1][0][1] - pairs[i][0][1] for i in range(len(pairs) - 1)} == {100_000_000}  # 10 Hz, no drift
    assert len(starts) == 2 * len(pairs) or len(starts) == 2 * len(pairs) + 1
    assert b.plant.trace.max_abs_ua <= 200.0 + 1e-6


def _over_current_latency_ms(fw, settle_s: float) -> float:
    b = fw.b
    assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
    fw.run(settle_s)
    t_fault = b.clock.now_ns
    b.set_fault("oc_latch_dead")                   # the firmware's own cut on the chip (not the latch's)
    b.set_fault("dac_stuck_high")
    fw.run(0.05)
    assert [m["reason"] for m in fw.events("fault")] == ["over_current"]
    level_ua = 500 * 1.10 + 10
    onset = truth.onset_ns(b, t_fault, level_ua)
    cut = truth.cut_ns(b, t_fault)
    assert cut is not None and abs(b.plant.current_ua()) == 0.0
    return (cut - onset) / MS


def test_over_current_trips_and_cuts_the_output_on_the_chip(fw):
    latency_ms = _over_current_latency_ms(fw, 2.53)
    assert latency_ms > 0


@pytest.mark.parametrize("offset_ms", [0.0, 0.13, 0.26, 0.39])
def test_over_current_cuts_within_2_ms_of_onset_on_the_chip(offset_ms):
    """SAFETY.md: onset -> output off <= 2 ms (the bound), at onsets spread over one fast-path
    period (0.5 ms at 2 kHz). The 1.5 ms design target is a benchmark figure: bench_silicon
    times 32 onsets (docs/performance.md)."""
    fw = Fw()
    try:
        assert _over_current_latency_ms(fw, 2.5117 + offset_ms / 1000) <= 2.0
    finally:
        fw.close()


def test_ctrl_c_during_a_session_reaches_the_repl_with_the_output_safe(fw):
    assert fw.request("start", program="lift", ua=200, duration_s=60)["ok"]
    fw.run(2.5)
    fw.b.write(b"\x03")
    got = bytearray()
    for _ in range(50):                               # 100 ms of simulated time
        fw.b.run_for(0.002)
        got += fw.b.read()
        if b">>> " in got:
            break
    assert b">>> " in got
    p = fw.b.plant
    assert p.hv_on == 0 and p.bridge_a == p.bridge_b == 0 and p.dac_code == 0


def policy_board_file(tmp_path) -> str:
    """The Pico's board file collecting garbage only with the output off (`supervisor.gc`), as the
    ESP32 does by default: the official MicroPython runs that policy here, on the chip."""
    board = load_board("pico-mcp4725")
    board["supervisor"]["gc"] = "output_off"
    path = tmp_path / "pico-mcp4725-gc.json"
    path.write_text(json.dumps(board))
    return str(path)


def test_a_burst_of_host_requests_during_a_session_does_not_starve_the_watchdog_nor_collect_with_output_on(
        tmp_path):
    """20 requests a second for 3 s fill the heap (each `status` leaves ~1.35 kB of garbage):
    MicroPython's own gc_collect runs, every time with the HV rail off (heap.py: the output stage
    closes after its pair first), never forced (`ev: gc`), and no watchdog reset."""
    fw = Fw(probe="gc_collect", board=policy_board_file(tmp_path))
    try:
        assert fw.request("start", program="lift", ua=200, duration_s=60)["ok"]
        fw.run(2.5)
        t0 = fw.b.clock.now_ns
        for i in range(60):                               # 20 requests per second for 3 s
            fw.b.send({"id": 5000 + i, "cmd": "status"})
            fw.run(0.05)
        fw.run(0.2)
        assert fw.b.resets == []
        answered = {m["id"] for _, m in fw.log if m.get("id", 0) >= 5000}
        assert len(answered) >= 55
        hv = fw.b.board["hv_enable"]
        rail = [(t, level) for t, gpio, level in fw.b.edges if gpio == hv]

        def rail_at(t_ns):
            return next((level for t, level in reversed(rail) if t <= t_ns), 0)
        collections = [t for t, _ in fw.b.probe_calls["gc_collect"] if t >= t0]
        assert [t for t in collections if rail_at(t)] == []
        assert collections, "the burst never filled the heap"
        assert fw.events("gc") == [] and fw.request("status")["state"] == "run"
    finally:
        fw.close()


@pytest.mark.skipif(not os.environ.get("MYOTONE_REALTIME_TESTS"),
                    reason="wall-clock: mpremote's raw-REPL entry on a chip served at ~0.2x real time fails "
                           "now and then under load (1 in ~8 runs); set MYOTONE_REALTIME_TESTS=1 to run it")
def test_served_on_a_socket_the_chip_answers_myotone_mpremote_and_an_unchanged_flash():
    """`myotone emu serve --chip rp2040` in-process: the host's Link, `myotone flash` (which finds
    every file already as it lays them out: the image is exactly its layout) and real mpremote."""
    import subprocess
    import sys
    import threading

    from myotone import flasher
    from myotone.emulator.serve import serve_tcp
    from myotone.link import Link

    b = SiliconBoard()
    ready = threading.Event()
    urls: list[str] = []
    b.serve_realtime(1000.0)                          # as fast as the chip runs
    server = threading.Thread(target=serve_tcp, args=(b, 0), daemon=True,
                              kwargs={"on_ready": lambda url: (urls.append(url), ready.set())})
    server.start()
    try:
        assert ready.wait(30)
        url = urls[0]
        hello = flasher.wait_for_hello(url, wait_s=120)
        assert hello["board"] == "pico-mcp4725" and hello["mcu"] == "rp2040"
        res = flasher.flash_one(url)
        assert res.ok, res.error
        assert res.uploaded == [] and res.unchanged >= 30 and res.mpy == "6.3"
        with Link.open(url) as link:
            assert link.request("status", timeout_s=30)["ok"]
        out = subprocess.run([sys.executable, "-m", "mpremote", "connect", url, "exec",
                              "import sys; print(sys.implementation._mpy)"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.split()[-1] == "4870", out
    finally:
        b.close()
        server.join(timeout=10)


def test_the_probes_time_every_fast_path_call_and_bookkeeping_tick_on_the_chip():
    """bench_silicon's tick figures: the fast path's hard-IRQ calls and the scheduled bookkeeping
    callbacks, timed from the ELF's symbols; every call comes, at its rate (supervisor.hz, and
    BOOKKEEPING_SLICES x BOOKKEEPING_HZ: 400 Hz), idle and in a session."""
    import sys

    from firmware_paths import REPO
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_silicon
    hz = load_board("pico-mcp4725")["supervisor"]["hz"]
    rows = bench_silicon.ticks(0.1)
    for state in ("idle", "session"):
        fast, books = bench_silicon.pick(rows, state, "fast path"), bench_silicon.pick(rows, state, "bookkeeping")
        assert hz * 0.1 - 1 <= fast["calls"] <= hz * 0.1 + 1, fast
        assert 39 <= books["calls"] <= 41, books
        assert 0 < fast["mean_us"] <= fast["max_us"] < 1e6 / hz, fast      # a call ends before the next
        assert 0 < fast["cpu_share"] + books["cpu_share"] < 1.0
    assert bench_silicon.pick(rows, "session", "bookkeeping")["mean_us"] > \
        bench_silicon.pick(rows, "idle", "bookkeeping")["mean_us"]


def test_a_profile_counts_the_probed_calls_cycles_and_names_the_functions_they_ran():
    """SiliconBoard.profile_*: the cycles counted inside a probe's calls are the calls' own time
    (8 ns a cycle at 125 MHz, as the probe times them), named by the ELF: the fast path's ADC
    reads and the VM's attribute lookups are in it; a profile of everything holds more."""
    fw = Fw(probe="alarm_callback")
    try:
        b = fw.b
        b.profile_start("alarm_callback")
        n0 = len(b.calls)
        fw.run(0.1)
        rows = dict(b.profile_take())
        calls = b.calls[n0:]
        assert len(calls) >= 200                          # 2 kHz fast path, 400 Hz soft-timer alarms
        timed_ns = sum(d for _, d in calls)
        profiled_ns = sum(rows.values()) * 8
        assert abs(profiled_ns - timed_ns) <= 0.02 * timed_ns, (profiled_ns, timed_ns)
        assert rows["machine_adc_read_u16"] > 0 and rows["mp_map_lookup"] > 0
        assert rows.get("mp_execute_bytecode", 0) < rows["mp_map_lookup"]   # the path is viper
        b.profile_start()
        fw.run(0.1)
        everything = dict(b.profile_take())
        assert sum(everything.values()) > 1.2 * sum(rows.values())     # the bookkeeping, the main loop
        assert everything["mp_execute_bytecode"] > 10 * rows.get("mp_execute_bytecode", 0)
    finally:
        fw.close()


def test_the_bookkeeping_tick_allocates_nothing_from_a_sessions_start_to_its_end_on_the_chip():
    """A bytecode function whose locals, stack and exception handlers need more than the VM's 11
    words gets its frame from the heap on every call (py/objfun.c, fun_bc_call: m_new_obj_var_maybe,
    and alloca only if that fails -- so micropython.heap_lock() never shows it). PioPulse.finish
    (9 slots and a try) did, in the tick that ends every session: on a fragmented heap that gc_alloc
    took 259 us, a 737 us bookkeeping call. Probed on the chip: no gc_alloc begins inside a
    bookkeeping call through a lift session's ramp, run, stop, ramp-down and end, then a session's
    pause, resume and trip; the main loop's own allocations are seen (the probe works)."""
    import sys

    from firmware_paths import REPO
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_silicon
    fw = Fw(probe=(bench_silicon.BOOK_PROBE, "gc_alloc"))
    try:
        books, allocs = fw.b.probe_calls[bench_silicon.BOOK_PROBE], fw.b.probe_calls["gc_alloc"]
        assert fw.request("start", **bench_silicon.SESSION)["ok"]
        fw.run(2.5)
        assert fw.request("stop")["ok"]
        fw.run(2.5)                                   # the 1.5 s ramp-down, the last pair, the end
        assert [m["state"] for m in fw.events("state")][-1] == "done", fw.events("state")
        assert fw.request("start", **bench_silicon.SESSION)["ok"]
        fw.run(1.0)
        assert fw.request("pause")["ok"]
        fw.run(2.0)                                   # its ramp-down, the last pair, the hold
        assert fw.request("resume")["ok"]
        fw.run(1.0)
        fw.b.set_fault("electrode_off")
        fw.run(0.3)
        assert [m["reason"] for m in fw.events("fault")] == ["contact_lost"]
        assert len(books) > 3000 and len(allocs) > 100
        spans = sorted(books)
        inside = [(t, d) for t, d in allocs if any(t0 <= t <= t0 + d0 for t0, d0 in spans)]
        assert inside == [], f"{len(inside)} allocation(s) inside the tick, the first at {inside[0][0] / 1e9:.4f} s"
    finally:
        fw.close()


@pytest.mark.parametrize("fault, reason", [("electrode_off", "contact_lost"), ("vbus", "charging"),
                                           ("adc_stuck", "sense_fault"), ("thermistor_open", "temp_sensor_fault"),
                                           ("bridge_leg_short", "charge_imbalance"),
                                           ("bridge_leg_open", "contact_lost")])
def test_each_injected_fault_trips_on_the_chip_with_the_output_safe(fault, reason):
    fw = Fw()
    try:
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(2.53)
        t_fault = fw.b.clock.now_ns
        fw.b.set_fault(fault)
        fw.run({"adc_stuck": 0.6, "thermistor_open": 1.2}.get(fault, 0.3))   # a DC fault: in the next POL_B phase
        assert [m["reason"] for m in fw.events("fault")] == [reason]
        p = fw.b.plant
        assert p.hv_on == 0 and p.bridge_a == p.bridge_b == 0 and p.dac_code == 0
        assert truth.cut_ns(fw.b, t_fault) is not None
    finally:
        fw.close()


def test_the_over_current_latch_cuts_a_stuck_dac_in_10_us_and_the_official_firmware_names_it():
    """docs/hardware.md, U10-U13, on the chip: the latch gates the bridge off at once; the firmware
    reads OC_Q at its 100 Hz bookkeeping, says over_current and cuts the rail, and re-arms the
    latch in that cut (a new session runs once the DAC answers again)."""
    from myotone.emulator.plant import OC_LATCH_DELAY_NS
    fw = Fw()
    try:
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(2.53)                                  # inside a phase of the 10 Hz program
        t_fault = fw.b.clock.now_ns
        fw.b.set_fault("dac_stuck_high")
        fw.run(0.1)
        level = 500 * 1.10 + 10
        onset = truth.onset_ns(fw.b, t_fault, level)
        assert onset is not None
        assert fw.b.plant.trace.off_since(fw.b.clock.now_ns) <= onset + OC_LATCH_DELAY_NS + 1000
        assert [m["reason"] for m in fw.events("fault")] == ["over_current"]
        cut = truth.cut_ns(fw.b, t_fault)
        assert cut is not None and cut - onset <= 20_000_000            # the rail, at the bookkeeping
        p = fw.b.plant
        assert p.hv_on == 0 and p.bridge_a == p.bridge_b == 0 and p.dac_code == 0 and p.oc_q_level() == 0
        fw.b.set_fault("dac_stuck_high", False)
        assert fw.request("fault_clear")["ok"]
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(2.6)
        assert fw.request("status")["state"] in ("ramp", "run") and p.hv_on == 1
    finally:
        fw.close()


def test_a_stuck_over_current_latch_is_refused_at_switch_on_on_the_chip():
    fw = Fw()
    try:
        fw.b.set_fault("oc_latch_stuck")
        fw.run(0.01)                                  # an ADC conversion: OC_Q reads the plant
        fw.request("start", program="lift", ua=300, duration_s=60)
        fw.run(0.2)
        assert [m["reason"] for m in fw.events("fault")] == ["oc_latch_fault"]
        assert not [t for t, pin, level in fw.b.edges if pin == fw.b.board["hv_enable"] and level]
        r = fw.request("fault_clear")
        assert r["ok"] is False and r["error"] == "condition_present"
    finally:
        fw.close()


def test_a_dead_over_current_latch_fails_the_switch_on_test_on_the_chip():
    """The switch-on's latch test on the official firmware: OC_TEST up, OC_Q read 50 us later (the
    chip held at each OC_TEST / OC_CLEAR edge while the plant answers), a dead comparator found
    before the rail goes on; a healthy one passes it and is left clear (the session above runs)."""
    fw = Fw()
    try:
        fw.b.set_fault("oc_latch_dead")
        fw.request("start", program="lift", ua=300, duration_s=60)
        fw.run(0.2)
        assert [m["reason"] for m in fw.events("fault")] == ["oc_latch_fault"]
        assert not [t for t, pin, level in fw.b.edges if pin == fw.b.board["hv_enable"] and level]
        test_pin = fw.b.board["oc_latch"]["test_pin"]
        assert [lv for t, pin, lv in fw.b.edges if pin == test_pin][-2:] == [1, 0]
        r = fw.request("fault_clear")
        assert r["ok"] is False and r["error"] == "condition_present"
        fw.b.set_fault("oc_latch_dead", False)
        assert fw.request("fault_clear")["ok"]
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(0.3)
        assert fw.b.plant.hv_on == 1 and fw.b.plant.oc_q_level() == 0
    finally:
        fw.close()


def test_a_hung_firmware_is_reset_by_the_watchdog_and_reports_it_with_the_output_safe():
    fw = Fw()
    try:
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(2.5)
        t_hang = fw.b.clock.now_ns
        fw.b.set_fault("firmware_hang")
        fw.run(2.5)                                   # the 1 s watchdog, then a boot to `ready`
        assert [why for _, why in fw.b.resets] == ["watchdog"]
        t_reset = fw.b.resets[0][0]
        assert t_reset - t_hang <= 1_000_000_000 + 1_000_000          # the 1 s watchdog
        p = fw.b.plant
        assert p.hv_on == 0 and p.bridge_a == p.bridge_b == 0 and p.dac_code == 0
        ready = [m for t, m in fw.log if m.get("ev") == "ready" and t > t_reset]
        assert ready and ready[0]["reset_cause"] == "watchdog"
    finally:
        fw.close()


def test_a_dac_that_leaves_the_bus_is_a_fault_with_the_output_cut():
    """The MCP4725 NACKs (dac_off_bus): the output stage must be cut and a fault latched (SAFETY.md:
    "A DAC that does not answer is a fault")."""
    fw = Fw()
    try:
        assert fw.request("start", program="lift", ua=300, duration_s=60)["ok"]
        fw.run(2.53)
        fw.b.set_fault("dac_off_bus")
        fw.run(0.5)
        p = fw.b.plant
        assert p.hv_on == 0 and p.bridge_a == p.bridge_b == 0
        assert fw.events("fault"), fw.log[-5:]
    finally:
        fw.close()


_EDGES = """
import myotone.app as A
from myotone import session as S
sup = A.supervisor
mon, out = sup.monitor, sup.output
r = []
mon.begin(500)
mon.track(400, 400 * 300, 400 * 28000)     # a late call's sums: mv x 1000 is 1.1e10
r.append(mon.z_ohm)
for k in range(101):                        # 10 s of 1000 Hz pairs at 1100 / 700 uA (1/16 uA)
    got = mon.charge(k * 100, 100 * 16 * 1100, 100, 100 * 16 * 700, 100)
r.append(got)
mon.begin(500)
for k in range(101):
    got = mon.charge(k * 100, 100 * 16 * 1100, 100, 100 * 16 * 1099, 100)
r.append(got)
r.append(S.ramp_down_rate_pa_per_ms(1000000, 1))
lim = out.limit_code
r.append(lim)
r.append(out.code_for_na(1000000))
r.append(out.na_for_code(lim))
r.append(out.ua_for_code(lim))
out.zero()
r.append(out.rise_na(lim))
print(r)
"""


def test_the_viper_arithmetic_holds_at_its_32_bit_edges_on_the_chip():
    """The tick's viper code computes in machine words (32 bits, no big ints): each product it
    makes is kept under 2**31 at the largest inputs the device can give (a late bookkeeping call's
    impedance sums; 10 s of 1000 Hz pairs at the ADC's full scale in the charge window; the
    ramp-down's rate over the whole ceiling in 1 ms; the DAC transfer at the limit code), and
    gives what Python's unbounded integers give. (CPython runs the same source without the
    32-bit words: only the chip can fail this.)"""
    board = load_board("pico-mcp4725")
    fs8 = board["dac"]["vref_mv"] * 1000 // board["v_to_i"]["r_set_ohm"] * 8
    limit_code = min(board["limit_ua"] * 4095 // (fs8 // 8), 4095)
    f = Fw()
    try:
        f.b.write(b"\x03")
        f.b.wait_for(b">>> ", 3)
        got = f.b.exec_raw(_EDGES, timeout_s=30).strip()
    finally:
        f.close()
    na_lim = (limit_code * fs8 + 4094) // 4095 * 125
    assert got == repr([400 * 28000 * 1000 // (400 * 300), "charge_imbalance", None, 1000 * 1000 * 1000 // 1,
                        limit_code, min(1000000 // 125 * 4095 // fs8, limit_code), na_lim,
                        limit_code * (fs8 // 8) // 4095, na_lim]).replace('"', "'"), got

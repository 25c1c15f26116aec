"""The LED driver, the session-log counters and the whole supervisor tick with
them allocate nothing, on real MicroPython under heap_lock (as in an IRQ).

Each test then checks that the code did its work (light, dose, derating,
counts), so "no allocation" is never a vacuous pass.
"""

LED = """
from myotone.led import Led
class FakePwm:
    def __init__(self):
        self.d = 0
        self.n = 0
    def duty_u16(self, d):
        self.d = d
        self.n += 1
    def deinit(self):
        pass
red = FakePwm()
nir = FakePwm()
led = Led(red, nir, 15.0, 12.0, 1000, 20000, 19000)
led.set_percent(80, 40)
"""


def test_led_tick_allocates_nothing(mpvm):
    # the thermistor sweeps through the derating band (20000 .. 19000) and back
    step = "led.tick(20500 - (_mpvm_i % 1500), True)"
    out = mpvm.assert_no_alloc(LED, step, repeat=20000,
                               after="print(led.on_ticks, led.dose_uj, red.n, nir.n, led.derate_permille)")
    on_ticks, dose_uj, red_writes, nir_writes, _ = (int(x) for x in out.split())
    assert on_ticks > 15000 and dose_uj > 100_000, out             # lit, and the dose carried over
    assert red_writes > 1000 and nir_writes > 1000, out            # derating changed the duty


def test_led_tick_at_the_dose_cap_allocates_nothing(mpvm):
    setup = LED + "led.dose_uj = 9_999_000\n"
    out = mpvm.assert_no_alloc(setup, "led.tick(30000, True)", repeat=2000,
                               after="print(led.stopped, red.d, nir.d)")
    assert out.split() == ["dose_cap", "0", "0"], out


def test_session_log_add_allocates_nothing(mpvm):
    setup = """
from array import array
from myotone.sessionlog import SessionLog, C_UA
log = SessionLog(1000)
log.c[C_UA] = (1 << 29) - 100       # the counters wrap inside the tick
d = array("i", [10, 0, 2500, 0, 2500, 0, 0, 0, 0])   # fastpath.take's sums
"""
    # ten samples per bookkeeping tick, (i % 3) of them on
    out = mpvm.assert_no_alloc(setup, "d[1] = _mpvm_i % 3; d[3] = d[1] * 250; log.add(d, 65535)",
                               repeat=21000, after="print(*log.counters())")
    ticks, on, ua, mv, led, zua = (int(x) for x in out.split())
    assert ticks == 210000 and on == 21000 and zua == 21000 * 250, out
    assert ua == ((1 << 29) - 100 + 21000 * 2500) & 0x1FFFFFFF and mv == 21000 * 2500, out
    assert led == (210000 * 4095) & 0x1FFFFFFF, out                 # wrapped, as the main loop expects


SUPERVISOR = LED + """
from array import array
from myotone.supervisor import Supervisor
from myotone.output import Output
from myotone.pulse import Waveform, Playhead
class Dac:
    max_code = 4095
    def __init__(self):
        self.code = 0
    def write(self, code):
        self.code = code
    def check(self):
        pass
class Pin:
    def __init__(self, v=0):
        self.v = v
    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
    def off(self):
        self.v = 0
class PolPin:
    # a bridge pin that follows the fake pulse (the fast path reads the pins)
    def __init__(self, pulse, pol):
        self.p = pulse
        self.pol = pol
    def value(self, v=None):
        if v is None:
            return 1 if self.p.state == self.pol else 0
class Bridge:
    def __init__(self, pulse):
        self.pin_a = PolPin(pulse, 1)
        self.pin_b = PolPin(pulse, 2)
    def off(self):
        pass
class Pulse:
    def __init__(self):
        self.state = 0
        self.in_pair = 0
        self.pairs = 0
        self.settled = True
        self.n = 0
    def prepare(self, wave):
        return wave
    def start(self, table):
        pass
    def stop(self):
        self.state = 0
    def halt(self):
        self.state = 0
    def sample(self):
        self.n += 1
        self.state = 1 if self.n % 100 < 40 else (2 if 50 <= self.n % 100 < 90 else 0)
        self.pairs = self.n // 100
        self.in_pair = 1 if self.n % 100 < 90 else 0
class Sense:
    def __init__(self, pulse):
        self.p = pulse
        self.floor_ua = 0          # the smallest current read as > 0: 0 on a linear ADC (hal/sense.py)
        self.conversions = array("i", [0, 0])   # the raw conversions: a live ADC's noise moves them
    def read_ua(self):
        c = self.conversions
        c[0] = (c[0] + 1) & 0xFF
        return 300 if self.p.state else 0
    def read_mv(self):
        return 3000 if self.p.state else 0
class Hw:
    def __init__(self):
        self.pulse = Pulse()
        self.bridge = Bridge(self.pulse)
        self.output = Output(Dac(), self.bridge, Pin(), 1000, 500)
        self.sense = Sense(self.pulse)
        self.flow_a = PolPin(self.pulse, 1)    # the polarity comparators: the current flows as driven
        self.flow_b = PolPin(self.pulse, 2)
        self.led = led
        self.vbus = Pin(0)
        self.button = None
        self.status_led = None
        self.reset_cause = "power_on"
        self.unit_id = "e660583883253b2f"
    def read_temp_raw(self):
        return 30000
    def start_watchdog(self):
        pass
class Console:
    def write_line(self, text):
        pass
    def has_input(self):
        return False
board = {"name": "vm", "limit_ua": 500, "supervisor": {"hz": 1000, "gc": "output_off"}, "open_ohm": 100000, "compliance_v": 24,
         "electrode_area_cm2": 4.0, "thermistor": {"r_pullup_ohm": 10000, "r25_ohm": 10000, "beta": 3950},
         "led": {"red_pin": 1, "pwm_hz": 2000, "red_mw_cm2_at_100": 15.0}}
sup = Supervisor(board, Hw(), Console())
prog = {"description": "", "phases": [
    {"duration_s": 600, "hz": 10, "phase_us": 40000, "gap_us": 1000, "alternate": True, "burst_on_ms": 0,
     "burst_off_ms": 0, "current_pct": 100, "red_pct": 60, "nir_pct": 10, "label": ""}]}
import time
sup.begin("vm", prog, 300, False, 1000)
"""


def test_the_whole_supervisor_tick_with_led_and_log_allocates_nothing(mpvm):
    after = "print(sup.session.state, sup.output.code, led.on_ticks, sup.log.counters()[1], sup.stage.fault)"
    # the pulse moves on every millisecond; the fast path samples it; the bookkeeping tick
    # (two halves) runs every fifth millisecond
    step = "sup.pulse.sample()\nsup.fast.run(None)\nif _mpvm_i % 5 == 0: sup.tick(None)"
    out = mpvm.assert_no_alloc(SUPERVISOR, step, repeat=25000, after=after)
    state, code, on_ticks, log_on, fault = out.split()
    assert state in ("1", "2") and int(code) > 0, out               # ramping or running, output on
    assert int(on_ticks) > 0 and int(log_on) > 0 and fault == "None", out

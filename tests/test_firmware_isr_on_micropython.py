"""The firmware's interrupt-time code allocates nothing, on real MicroPython.

CPython cannot tell: it allocates for every int.  Here each path runs under
micropython.heap_lock(), as in a hard IRQ, thousands of times, and then the
test checks it really did its work, so "no allocation" is not a vacuous pass.
"""

FAKES = """
from myotone.pulse import Waveform, Playhead
class FakeTimer:
    PERIODIC = 1
    def init(self, **kw):
        self.kw = kw
    def deinit(self):
        pass
class FakePin:
    def __init__(self):
        self.v = 0
        self.edges = 0
    def value(self, v):
        self.edges += v
        self.v = v
"""


def test_timer_pulse_tick_allocates_nothing(mpvm):
    # 100 Hz alternating pulses of 200 us with a 50 us gap, in bursts of
    # 100 ms on / 50 ms off, on a 50 us tick; a second table is swapped in
    # (the swap happens inside the interrupt, at a unit boundary).
    setup = FAKES + """
from myotone.hal.pulse_timer import TimerPulse
a = FakePin()
b = FakePin()
tp = TimerPulse(FakeTimer(), a, b, 50, True, 50)
tp.start(tp.prepare(Waveform(100000, 200, 50, True, 100, 50)))
tp.start(tp.prepare(Waveform(50000, 100, 0, True)))
"""
    after = "print(tp.pairs, a.edges, b.edges, tp._pending)"
    out = mpvm.assert_no_alloc(setup, "tp._tick(None)", repeat=20000, after=after)
    pairs, a_edges, b_edges, pending = out.split()
    assert int(pairs) > 10 and int(a_edges) > 10 and int(b_edges) > 10, out
    assert pending == "False", "the queued table was never swapped in"


def test_playhead_advance_allocates_nothing(mpvm):
    setup = FAKES + """
from myotone.pulse import Table
table = Table().compile(Waveform(100000, 200, 50, True, 100, 50))
ph = Playhead()
ph.start(table, 0)
"""
    out = mpvm.assert_no_alloc(setup, "ph.advance(_mpvm_i * 37)", repeat=20000, after="print(ph.pairs)")
    assert int(out) > 10, out


FASTPATH = """
from myotone.monitor import Monitor
from myotone.fastpath import FastPath
from myotone.measure import Measure
from myotone.session import Session
from array import array
board = {"open_ohm": 100000, "compliance_v": 24}
mon = Monitor(board, 500, 20000)
mon.begin(400)
class Line:                      # the plant as the fast path sees it: pins, current, voltage
    def __init__(self):
        self.bridge = 0
        self.ua = 0
        self.vbus = 0
class Pol:
    def __init__(self, line, pol):
        self.line = line
        self.pol = pol
    def value(self, v=None):
        return 1 if self.line.bridge == self.pol else 0
class Vbus:
    def __init__(self, line):
        self.line = line
    def value(self):
        return self.line.vbus
class Sense:
    def __init__(self, line):
        self.line = line
        self.conversions = array("i", [0, 0])   # the raw conversions: a live ADC's noise moves them
    def read_ua(self):
        c = self.conversions
        c[0] = (c[0] + 1) & 0xFF
        return self.line.ua if self.line.bridge else 0
    def read_mv(self):
        return self.line.ua * 10 if self.line.bridge else 0
class Stage:
    def __init__(self):
        self.state = 2           # ON
        self.out_ua = 300
        self.close_by = 0
        self.cuts = 0
    def fast_cut(self, reason):
        self.cuts += 1
class Out:
    code = 1200
    def latch_tripped(self):
        return 0
line = Line()
stage = Stage()
sess = Session(500)
fp = FastPath(Sense(line), Pol(line, 1), Pol(line, 2), Pol(line, 1), Pol(line, 2), Vbus(line), Out(), stage,
              mon, Measure(), sess)
fp.begin()
sums = bytearray(0)
from array import array
d = array("i", [0] * 9)
trips = [0]
"""


def test_the_fast_path_allocates_nothing(mpvm):
    """FastPath.run (the hard interrupt) and the bookkeeping's take() + charge + track."""
    # alternating polarity at 10 kOhm, 300 uA, with the bridge off a third of the time
    step = ("line.bridge = (_mpvm_i // 40) % 3\n"
            "line.ua = 300\n"
            "fp.run(None)\n"
            "if _mpvm_i % 10 == 0:\n"
            "    fp.take(d)\n"
            "    mon.track(d[1], d[3], d[4])\n"
            "    r = mon.charge(_mpvm_i, d[5], d[6], d[7], d[8])\n"
            "    e = mon.environment(30000, 0)\n"
            "    t = mon.scale(300)\n"
            "    if r is not None or e is not None: trips[0] += 1\n"
            "if fp.reason is not None: trips[0] += 1")
    out = mpvm.assert_no_alloc(FASTPATH, step, repeat=20000,
                               after="print(trips[0], mon.z_ohm, mon._w[2] > 0, mon._w[4] > 0, fp.n, stage.cuts)")
    trips, z_ohm, pos_seen, neg_seen, n, cuts = out.split()
    assert trips == "0" and cuts == "0" and 9000 <= int(z_ohm) <= 11000, out
    assert n == "20000", out
    assert pos_seen == neg_seen == "True", "the charge window never filled: the check did no work"


def test_the_fast_path_that_trips_allocates_nothing(mpvm):
    """The trip path too: over_current confirms with its second conversion, returns its reason
    code and cuts without allocating."""
    step = ("fp.begin()\n"
            "line.bridge = 1\n"
            "line.ua = 900\n"
            "fp.run(None)\n"
            "if fp.reason == 'over_current': trips[0] += 1")
    out = mpvm.assert_no_alloc(FASTPATH, step, repeat=2000, after="print(trips[0], stage.cuts)")
    assert out.split() == ["2000", "2000"], out


def test_session_ramp_step_allocates_nothing(mpvm):
    setup = """
from myotone.session import Session
s = Session(500)
s.begin(400, 600000, 0)
"""
    out = mpvm.assert_no_alloc(setup, "s.step(_mpvm_i)", repeat=20000, after="print(s.state, s.target_na)")
    state, target_na = out.split()
    assert state == "2" and target_na == "400000", out      # RUN at the setpoint


def test_a_followed_back_end_samples_without_allocating(mpvm):
    """PIO and RMT share FollowedPulse.sample(), called in every supervisor tick."""
    out = mpvm.run("""
import micropython, time
from myotone.pulse import Table, Waveform
from myotone.hal.followed import FollowedPulse
p = FollowedPulse()
t = Table()
t.compile(Waveform(100000, 1000, 200, True), 1, 1)
p.head.start(t, time.ticks_us())
p.running = True
states = set()
for _ in range(3):
    micropython.heap_lock()
    try:
        for _ in range(200):
            p.sample()
    finally:
        micropython.heap_unlock()
    states.add(p.state)
    time.sleep_ms(3)
p._played_out()
print(p.running, p.state, p.in_pair, len(states) >= 1)
""")
    assert out.split() == ["False", "0", "0", "True"]

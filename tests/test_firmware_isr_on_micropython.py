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

"""The output stage (firmware/myotone/stage.py) on its own: no interleaving of the
main loop's switch-on and a tick's cut leaves output on; the cut is guarded step
by step; the tick's side of the stage allocates nothing on real MicroPython.
The same rules on the emulator's plant: tests/test_output_stage.py."""
import sys


class FakeDac:
    max_code = 4095

    def __init__(self):
        self.code = 0
        self.answers = True

    def write(self, code):
        if not self.answers:
            raise OSError(5)          # EIO: nobody ACKed (rp2)
        self.code = code

    def check(self):
        if not self.answers:
            raise OSError(5)


class FakePin:
    def __init__(self):
        self.level = 0

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v


class FakeBridge:
    def __init__(self):
        self.pin_a = FakePin()
        self.pin_b = FakePin()

    def off(self):
        self.pin_a.value(0)
        self.pin_b.value(0)


class FakePulse:
    def __init__(self):
        self.running = False
        self.in_pair = 0
        self.pairs = 0
        self.fail_stop = False

    def start(self, table):
        self.running = True

    def sample(self):
        """The bridge state now (the stage asks before it closes)."""

    def finish(self, left_ms=0):
        self.finishing = True

    def finished(self, left_ms=0):
        """The back-end ended by itself after the pair (here: when the test says so)."""
        return not self.running or getattr(self, "ended", False)

    def unfinish(self):
        return self.running and not getattr(self, "ended", False)

    def stop(self):
        if self.fail_stop:
            raise RuntimeError("back-end stuck")
        self.running = False
        self.halted = False

    def halt(self):
        """The fast cut's half: the state machine stopped, both pins low (stop() follows)."""
        self.halted = True


class FakeLed:
    def __init__(self):
        self.dark = False

    def off(self):
        self.dark = True


class Wave:
    period_us = 100_000


def make(fw):
    ST = fw("myotone.stage")
    S = fw("myotone.session")
    O = fw("myotone.output")
    dac, bridge, hv = FakeDac(), FakeBridge(), FakePin()
    out = O.Output(dac, bridge, hv, 1000, 500)
    pulse, led = FakePulse(), FakeLed()
    sess = S.Session(500)
    sess.begin(300, 60_000, 0)
    stage = ST.OutputStage(out, pulse, led, sess)
    return ST, stage, dac, bridge, hv, pulse, led, sess


def _output_off(dac, bridge, hv, pulse):
    return hv.level == 0 and not pulse.running and bridge.pin_a.level == 0 and bridge.pin_b.level == 0 \
        and dac.code == 0


def _switch_on_with_trip_at(fw, k):
    """Run switch_on(), with a trip (as the tick would) before the k-th line it executes."""
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    seen = [0]

    def tracer(frame, event, arg):
        if event == "line":
            seen[0] += 1
            if seen[0] == k:
                sys.settrace(None)
                stage.trip("over_current")     # the tick preempts the main loop here
                sys.settrace(tracer)
        return tracer

    sys.settrace(tracer)
    try:
        ok = stage.switch_on(object(), 10, Wave.period_us)
    finally:
        sys.settrace(None)
    return ST, stage, dac, bridge, hv, pulse, ok, seen[0]


def test_a_cut_at_any_point_of_a_switch_on_leaves_the_output_off(fw):
    """Every line the switch-on runs (its own, the DAC clamp's, the drivers') is a point
    where the tick may cut; at each, output ends off with the fault latched."""
    *_, ok, lines = _switch_on_with_trip_at(fw, 0)
    assert ok and lines > 20                       # without a trip it switches on ...
    for k in range(1, lines + 1):
        ST, stage, dac, bridge, hv, pulse, ok, _ = _switch_on_with_trip_at(fw, k)
        assert _output_off(dac, bridge, hv, pulse), f"output on after a cut at line {k} of the switch-on"
        assert stage.fault == "over_current" and stage.state == ST.OFF and stage.name() == "cut"


def test_switch_on_refuses_with_a_fault_latched_or_the_session_not_running(fw):
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    stage.fault = "charging"
    assert stage.switch_on(object(), 10, 100_000) is False and hv.level == 0 and not pulse.running
    stage.clear()
    sess.request_stop()                              # ramp_down: no switching on
    assert stage.switch_on(object(), 10, 100_000) is False and hv.level == 0
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 10, 100_000) is True and stage.state == ST.ON
    assert stage.switch_on(object(), 10, 100_000) is False      # only from off


def test_the_cut_goes_on_when_a_peripheral_fails(fw):
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    dac.answers = False                              # the DAC leaves the bus ...
    pulse.fail_stop = True                           # ... and the back-end raises too
    stage.trip("charging")
    assert hv.level == 0 and bridge.pin_a.level == 0 and bridge.pin_b.level == 0
    assert stage.fault == "charging" and led.dark and stage.dac_ok == 0
    assert not stage.check_dac()                     # still silent: a present condition
    dac.answers = True
    assert stage.check_dac() and dac.code == 0


def test_a_dac_write_that_fails_in_the_tick_is_dac_fault(fw):
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    dac.answers = False
    stage.set_na(200_000)
    assert stage.fault == "dac_fault" and hv.level == 0 and not pulse.running
    assert sess.state == fw("myotone.session").FAULT


def test_closing_ends_when_the_back_end_ended_after_the_pair_or_at_the_deadline(fw):
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    pulse.in_pair, pulse.pairs = 1, 7
    stage.close(1000)
    assert stage.state == ST.CLOSING and pulse.finishing     # the back-end is asked to end after it
    pulse.pairs = 8                                   # a slice's look: the next pair's count ...
    assert not stage.closed(1050)                     # ... is no reason to cut: the back-end says
    assert stage.keep_on() and stage.state == ST.ON   # taken back while the pair plays
    stage.close(1060)
    pulse.ended = True
    assert not stage.keep_on()                        # committed: no taking back
    # the tick halts (rail off, the back-end halted) and the stage reads CLOSING, so the main loop
    # takes nothing for off, until the next tick call finishes the cut (Supervisor._finish_cut)
    assert stage.closed(1070) and stage.state == ST.CLOSING and stage.halted and hv.level == 0 and pulse.halted
    assert not stage.keep_on()                        # halted: no taking back either
    stage.cut()
    assert stage.state == ST.OFF and not stage.halted and _output_off(dac, bridge, hv, pulse)
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    pulse.in_pair, pulse.pairs = 1, 7
    stage.close(1000)
    assert not stage.closed(1000 + 100 + 9)           # never seen to end ...
    assert stage.closed(1000 + 100 + 10)              # ... halted at one period + the margin
    assert hv.level == 0 and pulse.halted and stage.state == ST.CLOSING
    stage.cut()
    assert _output_off(dac, bridge, hv, pulse)


def test_a_close_from_the_tick_with_no_pair_playing_halts_now_and_the_cut_follows(fw):
    """From the main loop a close with no pair under way is a whole cut; from the tick it is its
    first half (rail off, back-end halted) with the stage reading CLOSING, the DAC written by the
    cut at the next tick call: no tick call makes the whole end."""
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    code = dac.code
    stage.close(1000, True)
    assert stage.state == ST.CLOSING and stage.halted and hv.level == 0 and pulse.halted
    assert dac.code == code and pulse.running          # the rest is the cut's
    stage.cut()
    assert stage.state == ST.OFF and _output_off(dac, bridge, hv, pulse)
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    stage.close(1000)
    assert stage.state == ST.OFF and not stage.halted and _output_off(dac, bridge, hv, pulse)


FAKES = """
from myotone.output import Output
from myotone.session import Session
from myotone.stage import OutputStage
class Dac:
    max_code = 4095
    def __init__(self):
        self.code = 0
    def write(self, code):
        self.code = code
    def check(self):
        pass
class Pin:
    def __init__(self):
        self.v = 0
    def value(self, v):
        self.v = v
class Bridge:
    def __init__(self):
        self.a = Pin()
        self.b = Pin()
    def off(self):
        self.a.value(0)
        self.b.value(0)
class Pulse:
    def __init__(self):
        self.running = False
        self.in_pair = 0
        self.pairs = 0
    def start(self, t):
        self.running = True
    def sample(self):
        pass
    def finish(self, left_ms=0):
        pass
    def finished(self, left_ms=0):
        return not self.in_pair
    def unfinish(self):
        return self.running
    def stop(self):
        self.running = False
class Led:
    def off(self):
        pass
dac = Dac()
hv = Pin()
pulse = Pulse()
sess = Session(500)
sess.begin(300, 600000, 0)
stage = OutputStage(Output(dac, Bridge(), hv, 1000, 500), pulse, Led(), sess)
stage.switch_on(None, 10, 100000)
n = [0, 0]
"""

TICK_SIDE = """
i = _mpvm_i
if stage.state == 0:
    stage.fault = None
    sess.state = 1
    stage.state = 2
    pulse.running = True
stage.set_na((100 + i % 300) * 1000)
pulse.in_pair = i & 4
pulse.pairs = i >> 3
if i % 50 == 0:
    stage.close(i)
if stage.state == 3 and stage.closed(i):
    n[0] += 1
if i % 97 == 0:
    stage.trip('over_current')
    n[1] += 1
"""


def test_the_tick_side_of_the_stage_allocates_nothing(mpvm):
    """set_ua, close, closed, trip and cut: what the supervisor tick calls."""
    out = mpvm.assert_no_alloc(FAKES, TICK_SIDE, repeat=5000,
                               after="print(n[0], n[1], stage.cuts > 0, dac.code >= 0)")
    closed, trips, cut, _ = out.split()
    assert int(closed) > 10 and int(trips) > 10 and cut == "True", out


def test_ticks_diff_matches_the_ports_and_wraps(fw):
    S = fw("myotone.session")
    period, half = 1 << 30, 1 << 29
    for a, b in [(0, 0), (5, 3), (3, 5), (0, period - 1), (period - 1, 0), (half - 1, 0), (half, 0),
                 (100, 100 + half), (123456, 987654321)]:
        want = ((a - b + half) % period) - half
        assert S._ticks_diff(a, b) == want, (a, b)


def test_a_dac_that_fails_at_a_normal_close_ends_the_session_as_a_fault(fw):
    """A pause or a zone change closes the stage with the session still running: a DAC
    that does not answer then latches dac_fault and ends the session, not only the output."""
    ST, stage, dac, bridge, hv, pulse, led, sess = make(fw)
    assert stage.switch_on(object(), 100, 100_000)
    dac.answers = False
    stage.close(1000)                                # not in a pair: off at once
    assert stage.fault == "dac_fault" and sess.state == fw("myotone.session").FAULT and led.dark
    assert hv.level == 0 and not pulse.running

"""One interrupt step of the pulse core on the real MicroPython VM, firmware vs a straightforward version.

Runs in the official MicroPython WebAssembly port (tests/mpvm.py) with fake
pins, a fake timer and a fake rp2 state machine: the firmware's timer-tick
ISR (hal/pulse_timer.py) and PIO FIFO refill (hal/pulse_pio.py), each
against a straightforward implementation of the same job written here (the
way a first version would do it). Each step is timed N times inside the VM
with time.ticks_us, minus an empty loop, best of a few runs; then run once
more under micropython.heap_lock() to see whether it allocates. Both
versions of a job must produce the same output (edges, FIFO words), or the
comparison is refused.
"""
from __future__ import annotations

import os
import re
import textwrap

from firmware_paths import FIRMWARE_DIR
from mpvm import MicroPythonVM
from pulse_ops import opcodes_per_step
import supervisor_step

# the reference session's waveform (benchmarks/session20.py): 100 Hz, 1 ms phases, 200 us gap
WAVE_ARGS = "100000, 1000, 200, True"
TICK_US = 100                      # the timer back-end's tick in the reference session
LATE_TICKS = 19 * 60 * 1_000_000 // TICK_US   # 19 minutes of ticks: t_us past 2**30 (a small int's limit)

# rp2 as PioPulse needs it, with a state machine that counts what it is given
FAKE_RP2 = '''
class PIO:
    OUT_LOW = 0
    SHIFT_RIGHT = 1
    JOIN_TX = 1
def asm_pio(**kw):
    def keep(f):
        return f
    return keep
class StateMachine:
    def __init__(self, *a, **kw):
        self.n = 0          # words in the TX FIFO
        self.words = 0      # words put in all
        self.sum = 0        # their sum (the same job gives the same words)
    def init(self, *a, **kw):
        self.n = 0
    def irq(self, handler=None, hard=False):
        pass
    def active(self, v=None):
        pass
    def restart(self):
        pass
    def tx_fifo(self):
        return self.n
    def put(self, w):
        self.n += 1
        self.words += 1
        self.sum = (self.sum + w) & 0x3FFFFFFF
'''

SETUP = '''
import time, micropython
from myotone.pulse import Waveform, POS, NEG, OFF
class FakeTimer:
    PERIODIC = 1
    def init(self, **kw):
        pass
    def deinit(self):
        pass
class FakePin:
    def __init__(self):
        self.v = 0
        self.edges = 0
    def value(self, v):
        if v != self.v:
            self.edges += 1
        self.v = v


# ---- straightforward implementations (for comparison; not firmware) ----

class StraightforwardTimerPulse:
    """A first version of the timer ISR: where are we in the waveform? Work it
    out from the tick count with division and modulo, every tick, and drive
    the pins to the state found."""
    def __init__(self, pin_a, pin_b, tick_us, wave):
        self.pin_a = pin_a
        self.pin_b = pin_b
        self.tick_us = tick_us
        self.wave = wave
        self.ticks = 0
        self.state = OFF

    def tick(self, _timer):
        w = self.wave
        t_us = self.ticks * self.tick_us
        self.ticks += 1
        period = t_us // w.period_us
        pos_us = t_us % w.period_us
        if w.alternate and period % 2:
            first, second = NEG, POS
        else:
            first, second = POS, NEG
        if pos_us < w.phase_us:
            s = first
        elif pos_us < w.phase_us + w.gap_us:
            s = OFF
        elif pos_us < 2 * w.phase_us + w.gap_us:
            s = second
        else:
            s = OFF
        if s == POS:
            self.pin_b.value(0)
            self.pin_a.value(1)
        elif s == NEG:
            self.pin_a.value(0)
            self.pin_b.value(1)
        else:
            self.pin_a.value(0)
            self.pin_b.value(0)
        self.state = s


class StraightforwardPioFeed:
    """A first version of the PIO refill: build the next segment as a
    (state, us) tuple from the waveform and the segment number, then pack it."""
    def __init__(self, sm, wave):
        self.sm = sm
        self.wave = wave
        self.k = 0

    def next_segment(self):
        w = self.wave
        k = self.k % 8 if w.alternate else self.k % 4
        self.k += 1
        rest_us = w.period_us - 2 * w.phase_us - w.gap_us
        first, second = (NEG, POS) if k >= 4 else (POS, NEG)
        return [(first, w.phase_us), (OFF, w.gap_us), (second, w.phase_us), (OFF, rest_us)][k % 4]

    def feed(self, sm):
        while sm.tx_fifo() < 8:
            state, us = self.next_segment()
            sm.put(((us - 6) << 2) | state)


wave = Waveform(WAVE_ARGS)
# firmware: the timer back-end's tick, as the hardware timer calls it
fw_a, fw_b = FakePin(), FakePin()
fw_timer = TimerPulse(FakeTimer(), fw_a, fw_b, TICK_US, True, TICK_US)
fw_timer.start(fw_timer.prepare(wave))
fw_tick = fw_timer._cb
# firmware: the PIO back-end's refill IRQ (one word drained per segment, then refilled)
fw_pio = PioPulse(0, FakePin(), FakePin(), 20, lambda: 0, lambda irq: None)
fw_pio.start(fw_pio.prepare(wave))
fw_sm = fw_pio._sm
fw_feed = fw_pio._feed_cb
sf_a, sf_b = FakePin(), FakePin()
sf_timer = StraightforwardTimerPulse(sf_a, sf_b, TICK_US, wave)
sf_tick = sf_timer.tick
sf_sm = rp2.StateMachine(1)
sf_pio = StraightforwardPioFeed(sf_sm, wave)
sf_feed = sf_pio.feed
sf_feed(sf_sm)
# the fake hardware alone: what a step spends in Python fakes (C calls on a device)
hw_a, hw_b = FakePin(), FakePin()
hw_sm = rp2.StateMachine(2)
'''

# (implementation, step, statement run per step) in the VM
STEPS = [
    ("firmware", "timer tick (pulse_timer._tick)", "fw_tick(None)"),
    ("straightforward", "timer tick", "sf_tick(None)"),
    ("firmware", "PIO refill (pulse_pio._feed)", "fw_sm.n -= 1\n        fw_feed(fw_sm)"),
    ("straightforward", "PIO refill", "sf_sm.n -= 1\n        sf_feed(sf_sm)"),
    ("fake hardware", "2 pin writes", "hw_a.value(0)\n        hw_b.value(1)"),
    ("fake hardware", "SM drain + refill 1 word", "hw_sm.n -= 1\n        hw_sm.tx_fifo()\n        hw_sm.put(0)\n        hw_sm.tx_fifo()"),
]

SF_TICK = 1                        # index of the straightforward tick in STEPS
assert STEPS[SF_TICK][:2] == ("straightforward", "timer tick")

# what each pair must agree on after the same number of steps
SAME_WORK = [("timer tick", "(fw_a.edges, fw_b.edges)", "(sf_a.edges, sf_b.edges)"),
             ("PIO refill", "(fw_sm.words, fw_sm.sum)", "(sf_sm.words, sf_sm.sum)")]


def _loop(name: str, stmt: str) -> str:
    return f"def {name}(n):\n    for _i in range(n):\n        {stmt}\n"


def _program() -> str:
    """The VM code: fakes installed, firmware pulse back-ends built, loops defined."""
    pio_src = (FIRMWARE_DIR / "myotone" / "hal" / "pulse_pio.py").read_text(encoding="utf-8")
    # as the VM's runner does with the files it installs (tools/mpvm/runner.mjs): the WebAssembly
    # port has no native emitter, so the decorator lines are blanked (line numbers kept)
    pio_src = re.sub(r"^[ \t]*@micropython\.(native|viper)[ \t]*$", "", pio_src, flags=re.M)
    code = [f"open('/rp2.py', 'w').write({FAKE_RP2!r})",
            f"open('/myotone/hal/pulse_pio.py', 'w').write({pio_src!r})",
            "import rp2",
            "from myotone.hal.pulse_timer import TimerPulse",
            "from myotone.hal.pulse_pio import PioPulse",
            SETUP.replace("WAVE_ARGS", WAVE_ARGS).replace("TICK_US", str(TICK_US))]
    code.append(_loop("empty_loop", "pass"))
    for k, (_, _, stmt) in enumerate(STEPS):
        code.append(_loop(f"step_{k}", stmt))
    code.append(textwrap.dedent('''
        def timed_us(f, n):
            t0 = time.ticks_us()
            f(n)
            return time.ticks_diff(time.ticks_us(), t0)

        def allocates(f, n):
            micropython.heap_lock()
            try:
                f(n)
            except MemoryError:
                return True
            finally:
                micropython.heap_unlock()
            return False
        '''))
    return "\n".join(code)


def measure_steps(quick: bool) -> tuple[list[dict], list[str]]:
    """Rows (one per implementation and step) and notes, from the MicroPython VM."""
    steps_n = 20_000 if quick else 100_000
    runs = 3 if quick else 7
    with MicroPythonVM(FIRMWARE_DIR, allow_modules=None, timeout=float(os.environ.get("MYOTONE_MPVM_TIMEOUT", "120"))) as vm:
        # one program so every object stays in one namespace (each run() gets a fresh __main__)
        names = ["empty_loop"] + [f"step_{k}" for k in range(len(STEPS))]
        body = _program() + textwrap.dedent(f'''
            for f in ({", ".join(names)}):
                f(1000)                                   # warm up (the wasm engine compiles)
            best = {{}}
            for run in range({runs}):
                for f in ({", ".join(names)}):
                    us = timed_us(f, {steps_n})
                    k = f.__name__
                    best[k] = us if k not in best else min(best[k], us)
            work = [{", ".join(f"({a}, {b})" for _, a, b in SAME_WORK)}]
            alloc = [allocates(f, 2000) for f in ({", ".join(names[1:])},)]
            sf_timer.ticks = {LATE_TICKS}                   # 19 minutes into a session
            late = allocates(step_{SF_TICK}, 2000)
            print(repr((best, work, alloc, late)))
            ''')
        out = vm.run(body)
        version = vm.version
        supervisor_row = supervisor_step.measure(vm, quick)
    best, work, alloc, late = eval(out.strip().splitlines()[-1], {})      # noqa: S307 (our own repr)
    for (step, _, _), (fw_work, sf_work) in zip(SAME_WORK, work):
        if fw_work != sf_work or not fw_work[0]:
            raise RuntimeError(f"{step}: firmware {fw_work} and straightforward {sf_work} did not do the same work")
    ops = opcodes_per_step(_program(), FAKE_RP2, names[1:])
    base_us = best["empty_loop"] / steps_n
    rows = []
    fw_us = None
    for k, (impl, step, _) in enumerate(STEPS):
        us = max(best[f"step_{k}"] / steps_n - base_us, 0.0)
        if impl == "firmware":
            fw_us = us
        ratio = round(us / fw_us, 2) if fw_us and impl != "fake hardware" else None
        if k == SF_TICK:                # the straightforward tick: also 19 minutes in
            alloc_at_start = alloc[k]
            alloc[k] = alloc[k] or late
        rows.append({"implementation": impl, "step": step, "us_per_step": round(us, 3),
                     "ratio_vs_firmware": ratio, "py_ops_per_step": round(ops[f"step_{k}"], 1),
                     "allocates": alloc[k]})
    rows.append(supervisor_row)
    notes = [f"VM: {version} (WebAssembly under Node) on this host; ticks_us has 1 ms resolution "
             f"there, so each figure is the best of {runs} runs of {steps_n} steps, minus an empty loop "
             f"({base_us:.3f} us/iteration). Wasm timing is a relative figure, not RP2040 microseconds.",
             f"Timer tick: the average over the reference waveform on a {TICK_US} us tick (most ticks only count "
             "down; a segment starts every 2..78 ticks). PIO refill: one word drained, then the IRQ handler refills "
             "the FIFO (one word), with a fake state machine. Both versions of a step produce the same edges / "
             "FIFO words (checked).",
             "py_ops_per_step: CPython bytecodes each step executes, the same program traced on CPython "
             "(pulse_ops.py; the wasm VM cannot trace): compares the two designs instruction by instruction, "
             "fakes included, independent of the host's load.",
             "fake hardware rows: the Python fakes' own cost inside those steps (on a device a pin write or "
             "sm.put is a C call): the firmware tick writes the pins only at an edge, the straightforward one "
             "twice every tick; both refills make the same state machine calls.",
             "allocates: the step run 2000 times under micropython.heap_lock(), as in a hard IRQ; "
             "yes = it raised MemoryError (it could not run as a hard interrupt handler). The straightforward tick "
             f"is also checked 19 minutes into a session: its elapsed time in us passes 2**30 after 17.9 minutes "
             f"and becomes a long int ({'allocates' if late else 'no allocation seen'} there"
             f"{'' if alloc_at_start or not late else ', not at the start'}).",
             "supervisor tick: the whole 1 kHz tick (Output, Monitor, Session, LED, session log; supervisor_step.py) "
             "on fake hardware, for scale: the set-up of tests/test_led_tick_on_micropython.py, ramping then "
             "running at 300 uA.",
             "The straightforward versions play only this waveform (no burst envelope, no table swap at a unit "
             "boundary); the firmware's steps do both."]
    return rows, notes

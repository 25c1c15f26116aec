"""The supervisor's whole 1 kHz tick on the real MicroPython VM: its cost per step, bytecodes, allocation.

The set-up is the one tests/test_led_tick_on_micropython.py proves
allocation-free: the real Supervisor with its Output, Monitor, Session,
LED and session log, on fake hardware (a fake pulse back-end, DAC, pins),
ramping then running a 10 Hz program at 300 uA.
"""
from __future__ import annotations

import textwrap

from pulse_ops import opcodes_per_step
from test_led_tick_on_micropython import SUPERVISOR

PROGRAM = SUPERVISOR + textwrap.dedent('''
    def empty_loop(n):
        for _i in range(n):
            pass
    def sup_tick(n):
        for _i in range(n):
            sup.tick(None)
    ''')


def measure(vm, quick: bool) -> dict:
    """One row: us per supervisor tick (best of a few runs, minus an empty loop), bytecodes, allocates."""
    ticks_n = 2000 if quick else 10_000
    runs = 3 if quick else 5
    out = vm.run(PROGRAM + textwrap.dedent(f'''
        import micropython
        sup_tick(200)
        best = {{}}
        for run in range({runs}):
            for f in (empty_loop, sup_tick):
                t0 = time.ticks_us()
                f({ticks_n})
                us = time.ticks_diff(time.ticks_us(), t0)
                best[f.__name__] = min(best.get(f.__name__, us), us)
        def allocates(n):
            micropython.heap_lock()
            try:
                sup_tick(n)
            except MemoryError:
                return True
            finally:
                micropython.heap_unlock()
            return False
        alloc = allocates(2000)
        print(repr((best, alloc, sup.stage.fault, sup.session.state)))
        '''))
    best, alloc, fault, state = eval(out.strip().splitlines()[-1], {})     # noqa: S307 (our own repr)
    if fault is not None or state not in (1, 2):
        raise RuntimeError(f"the supervisor tick did not run a session (fault {fault}, state {state})")
    us = max((best["sup_tick"] - best["empty_loop"]) / ticks_n, 0.0)
    ops = opcodes_per_step(PROGRAM, "", ["sup_tick"], steps_n=500)["sup_tick"]
    return {"implementation": "firmware", "step": "supervisor tick (whole, fake hardware)",
            "us_per_step": round(us, 3), "ratio_vs_firmware": None, "py_ops_per_step": round(ops, 1),
            "allocates": alloc}

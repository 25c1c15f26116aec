"""Virtual clock: the emulated CPU's time, timer events, and lockstep control.

One thread, the emulated CPU, runs the firmware. Virtual time only moves
when that thread waits (``sleep``, ``poll``, idle REPL) and never past
``limit_ns``: in lockstep the controller raises the limit step by step, in
real-time mode a pacer raises it with the wall clock times a speed factor.
Timer callbacks ("interrupts") run on the CPU thread at their exact
deadlines while it waits. Times are integer nanoseconds.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time


from .repl import Shutdown


class EmulatorStopped(Shutdown):
    """Raised in the CPU thread when the emulator shuts down (the REPL returns)."""


class Event:
    __slots__ = ("t_ns", "fn", "cancelled")

    def __init__(self, t_ns: int, fn):
        self.t_ns = t_ns
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self):
        self.now_ns = 0
        self.limit_ns = 0
        self.stopped = False
        self.in_interrupt = False
        self.hang = False        # fault firmware_hang: the main code stops, interrupts go on
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._gen = 0            # bumped by every controller request
        self._parked_gen = -1    # the request the CPU has finished
        self.cpu_done = False
        self.check_hooks: list = []   # called at every wait: may raise (Ctrl-C, reset)
        self._horizon = 0        # the wait under way fires events up to here
        self._pacer = None
        self.effects_at_ns = 0   # in a charged tick (cost.py): when its outputs take effect
        self.busy_until_ns = 0   # ... and when the last charged tick ends (the next starts then)
        self.tick_start_ns = 0   # ... and when the last one started (or will: it waits for the CPU)
        self.soft_held_until_ns = 0   # a garbage collection runs: no soft callback until then (heap.py)
        self.soft_deferred = 0        # soft callbacks queued meanwhile ...
        self.soft_dropped = 0         # ... and lost, the queue full (since power-on)

    # ---- scheduling (CPU thread, or before it starts) ----
    def schedule(self, t_ns: int, fn) -> Event:
        if t_ns < self.now_ns:
            t_ns = self.now_ns
        ev = Event(t_ns, fn)
        heapq.heappush(self._heap, (t_ns, next(self._seq), ev))
        return ev

    def hold_soft(self, ns: int) -> None:
        """CPU thread, main code: C code runs for `ns` (a garbage collection, a blocking console
        write): time passes, hard interrupts run, soft callbacks wait (machine_shim) until it ends."""
        end = self.now_ns + ns
        self.soft_held_until_ns = max(self.soft_held_until_ns, end)
        self.wait(end)

    def hold_soft_at(self, t_ns: int, ns: int) -> Event:
        """From t_ns the main code is in one C call for `ns` (a `gc_alloc` searching a fragmented
        heap: 0.6-0.95 ms on the RP2040, docs/safety.md): hard interrupts run, soft callbacks wait
        until it ends (machine_shim). For tests that place a hold-off at a chosen moment."""
        def hold():
            self.soft_held_until_ns = max(self.soft_held_until_ns, t_ns + ns)
        return self.schedule(t_ns, hold)

    def reschedule(self, ev: Event, t_ns: int) -> Event:
        """Queue an event that has run (or was cancelled) again at t_ns: a periodic timer."""
        if t_ns < self.now_ns:
            t_ns = self.now_ns
        ev.t_ns, ev.cancelled = t_ns, False
        heapq.heappush(self._heap, (t_ns, next(self._seq), ev))
        return ev

    def next_event_ns(self):
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def quiet_until(self) -> int:
        """In an event: the time before which no other event runs and the waiting code
        does not resume (the next queued event, or the end of the wait)."""
        if not self.in_interrupt:
            return self.now_ns
        nxt = self.next_event_ns()
        return self._horizon if nxt is None or self._horizon < nxt else nxt

    def wait(self, until_ns: int, ready=None) -> bool:
        """CPU thread: let time pass until `until_ns` or until ready() is true.

        Returns True when ready() became true. Runs due timer events.
        """
        if self.in_interrupt:        # a callback that sleeps busy-waits
            self.now_ns = max(self.now_ns, until_ns)
            return bool(ready and ready())
        heap = self._heap
        while True:
            if self.hang:            # the main code never returns from here
                until_ns, ready = 1 << 62, None
            for hook in self.check_hooks:
                hook()
            if self.stopped:
                raise EmulatorStopped()
            if ready is not None and ready():
                return True
            if self.now_ns >= until_ns:
                return False
            horizon = until_ns if until_ns < self.limit_ns else self.limit_ns
            if self.now_ns < horizon:
                # the next due event, fired inline: this loop is the emulator's
                # innermost, thousands of times per virtual second
                self._horizon = horizon
                while heap and heap[0][2].cancelled:
                    heapq.heappop(heap)
                if heap and heap[0][0] <= horizon:
                    t_ns, _, ev = heapq.heappop(heap)
                    if t_ns > self.now_ns:   # (an event due while a charged tick ran comes late)
                        self.now_ns = t_ns
                    self.in_interrupt = True
                    try:
                        ev.fn()
                    finally:
                        self.in_interrupt = False
                else:
                    self.now_ns = horizon
                continue
            self._park(ready)

    def _park(self, ready) -> None:
        with self._cond:
            self._parked_gen = self._gen
            self._cond.notify_all()
            while (self.limit_ns <= self.now_ns and not self.stopped
                   and not (ready is not None and ready()) and not self._hooks_pending()):
                self._cond.wait(0.5)
                if self._parked_gen != self._gen:    # a request that needs no time: still parked here
                    self._parked_gen = self._gen
                    self._cond.notify_all()

    def _hooks_pending(self) -> bool:
        return any(getattr(h, "pending", lambda: False)() for h in self.check_hooks)

    def notify(self) -> None:
        """Something outside the CPU changed (input arrived): wake it."""
        with self._cond:
            self._gen += 1
            self._cond.notify_all()

    # ---- control (other threads) ----
    def run_until(self, t_ns: int, timeout_s: float = 60.0) -> None:
        """Lockstep: let the CPU run to virtual time t_ns and wait until it parks there.

        TimeoutError when virtual time stops moving for `timeout_s` of wall time (a
        firmware loop that never waits); a long run on a loaded host is not one.
        """
        deadline = time.monotonic() + timeout_s
        seen_ns = self.now_ns
        with self._cond:
            self._gen += 1
            gen = self._gen
            self.limit_ns = max(self.limit_ns, t_ns)
            self._cond.notify_all()
            while not self.cpu_done and not (self._parked_gen >= gen and self.now_ns >= t_ns):
                if self.now_ns != seen_ns:           # progress: the CPU is only slow
                    seen_ns = self.now_ns
                    deadline = time.monotonic() + timeout_s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"emulated CPU did not reach t={t_ns / 1e9:.3f} s "
                                       f"(now {self.now_ns / 1e9:.3f} s): a firmware loop that never waits?")
                self._cond.wait(min(left, 0.5))

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()
        if self._pacer is not None:
            self._pacer.join(timeout=2)

    def start_realtime(self, speed: float = 1.0, max_lead_ns: int = 50_000_000) -> None:
        """Pace virtual time at `speed` x the wall clock (for serving)."""
        def pace():
            base_v, base_w = self.now_ns, time.monotonic()
            while not self.stopped:
                base_v, base_w, target = pace_step(base_v, base_w, time.monotonic(), self.now_ns, speed,
                                                   max_lead_ns)
                with self._cond:
                    if target > self.limit_ns:
                        self.limit_ns = target
                        self._cond.notify_all()
                time.sleep(PACE_S)
        self._pacer = threading.Thread(target=pace, name="emu-pacer", daemon=True)
        self._pacer.start()


PACE_S = 0.002          # the pacer's step, wall seconds


def pace_step(base_v: int, base_w: float, wall: float, now_v: int, speed: float,
              max_lead_ns: int) -> tuple[int, int, int]:
    """One pacer step: (base_v, base_w, the virtual time allowed now). When the emulator lags
    the wall clock by more than the lead (the CPU cannot keep up), the base moves to now, so it
    does not burst later. The lead is at least a few pacer steps' worth of virtual time: at a
    high speed one step alone is more than max_lead_ns (at --speed 50, 100 ms a step against 50
    ms: every step counted as lagging and virtual time never moved)."""
    lead_ns = max(max_lead_ns, int(4 * PACE_S * speed * 1e9))
    target = base_v + int((wall - base_w) * speed * 1e9)
    if target - now_v > lead_ns:
        return now_v, wall, now_v
    return base_v, base_w, target

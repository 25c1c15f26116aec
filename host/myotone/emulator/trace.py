"""`Trace`: the electrode current over virtual time, exactly as the plant drove it.

The current is a chain of segments. Segment k starts at ``t_ns[k]`` with
``i_ua[k]``; it is constant unless the source sits at its compliance
voltage, where it relaxes exponentially towards ``i_inf`` with time
constant ``tau_ns``:

    i(t) = i_inf + (i_ua[k] - i_inf) * exp(-(t - t_ns[k]) / tau_ns)

(`exp[k] = (i_inf, tau_ns)` for those few segments). Charge, time "on"
(|I| >= 10 µA) and the peak are integrated in closed form as each
segment ends, so they are exact whatever the step of the caller.
"""
from __future__ import annotations

import bisect
import math
from array import array

ON_UA = 10.0          # |I| at or above this counts as output on (SAFETY.md's smallest program)


class Trace:
    def __init__(self):
        self.t_ns = array("q")
        self.i_ua = array("d")
        self.exp: dict[int, tuple[float, float]] = {}
        self.net_charge_nc = 0.0
        self.abs_charge_nc = 0.0
        self._max_ua = 0.0
        self.output_on_ns = 0
        self.shoot_through = 0

    # ---- building ----
    def record(self, t_ns: int, i_ua: float, i_inf: float | None = None, tau_ns: float = 0.0) -> None:
        """A new segment from t_ns (the previous one ends there)."""
        n = len(self.t_ns)
        if n:
            k = n - 1
            if tau_ns <= 0 and k not in self.exp and i_ua == self.i_ua[k]:
                return                      # nothing changed
            self._integrate(k, t_ns)
            if self.t_ns[k] == t_ns:         # replaced at the same instant
                self.t_ns.pop()
                self.i_ua.pop()
                self.exp.pop(k, None)
                n = k
        self.t_ns.append(t_ns)
        self.i_ua.append(i_ua)
        if tau_ns > 0 and i_inf is not None and i_inf != i_ua:
            self.exp[n] = (i_inf, tau_ns)

    @property
    def max_abs_ua(self) -> float:
        """Largest |I| held for any time (and the present value)."""
        return max(self._max_ua, abs(self.i_ua[-1])) if self.i_ua else 0.0

    def _integrate(self, k: int, t_end: int) -> None:
        dt = t_end - self.t_ns[k]
        if dt <= 0:
            return
        i0 = self.i_ua[k]
        e = self.exp.get(k)
        a = abs(i0)
        if a > self._max_ua:
            self._max_ua = a
        if e is None:
            q = i0 * dt / 1e6                # µA x ns = 1e-6 nC
            on = dt if a >= ON_UA else 0
        else:
            i_inf, tau = e
            decay = math.exp(-dt / tau)
            i1 = i_inf + (i0 - i_inf) * decay
            q = (i_inf * dt + (i0 - i_inf) * tau * (1.0 - decay)) / 1e6
            on = self._on_time(i0, i_inf, tau, dt)
            if abs(i1) > self._max_ua:
                self._max_ua = abs(i1)
        self.net_charge_nc += q
        self.abs_charge_nc += abs(q)         # one sign within a segment
        self.output_on_ns += on

    @staticmethod
    def _on_time(i0: float, i_inf: float, tau: float, dt: int) -> int:
        """Time of [0, dt] with |i| >= ON_UA on a monotone exponential."""
        a0, a_inf = abs(i0), abs(i_inf)
        if (a0 >= ON_UA) == (a_inf >= ON_UA) or a0 == a_inf:
            return dt if a0 >= ON_UA else 0
        t_cross = tau * math.log((a0 - a_inf) / (ON_UA - a_inf))   # |i| crosses ON_UA here
        t_cross = min(max(t_cross, 0.0), dt)
        return int(t_cross) if a0 >= ON_UA else dt - int(t_cross)

    def close(self, t_ns: int) -> None:
        """Integrate up to t_ns (call before reading the totals)."""
        n = len(self.t_ns)
        if n and t_ns > self.t_ns[-1]:
            self.record(t_ns, self.current_at(t_ns), *self._continuation(n - 1, t_ns))

    def _continuation(self, k: int, t_ns: int):
        e = self.exp.get(k)
        return (None, 0.0) if e is None else e

    # ---- reading ----
    def current_at(self, t_ns: int) -> float:
        k = bisect.bisect_right(self.t_ns, t_ns) - 1
        if k < 0:
            return 0.0
        e = self.exp.get(k)
        if e is None:
            return self.i_ua[k]
        i_inf, tau = e
        return i_inf + (self.i_ua[k] - i_inf) * math.exp(-(t_ns - self.t_ns[k]) / tau)

    def segments(self, t_end_ns: int | None = None):
        """(t0_ns, t1_ns, i0_ua, i_inf_ua, tau_ns) per segment; tau 0 = constant."""
        n = len(self.t_ns)
        for k in range(n):
            t1 = self.t_ns[k + 1] if k + 1 < n else (t_end_ns if t_end_ns is not None else self.t_ns[k])
            i_inf, tau = self.exp.get(k, (self.i_ua[k], 0.0))
            yield self.t_ns[k], t1, self.i_ua[k], i_inf, tau

    def _end_value(self, k: int) -> float:
        """The current at the end of segment k (k must not be the last)."""
        e = self.exp.get(k)
        if e is None:
            return self.i_ua[k]
        i_inf, tau = e
        return i_inf + (self.i_ua[k] - i_inf) * math.exp(-(self.t_ns[k + 1] - self.t_ns[k]) / tau)

    def _fall_time(self, k: int) -> int:
        """When segment k, starting at or above ON_UA, decays below it."""
        i_inf, tau = self.exp[k]
        a0, a_inf = abs(self.i_ua[k]), abs(i_inf)
        return self.t_ns[k] + int(tau * math.log((a0 - a_inf) / (ON_UA - a_inf))) + 1

    def off_since(self, t_ns: int) -> int | None:
        """Start of the span with |I| < ON_UA that contains t_ns (None if on at t_ns)."""
        if abs(self.current_at(t_ns)) >= ON_UA:
            return None
        k = bisect.bisect_right(self.t_ns, t_ns) - 1
        if k < 0:
            return 0
        if abs(self.i_ua[k]) >= ON_UA:         # a decay that crossed below inside k
            return self._fall_time(k)
        for j in range(k - 1, -1, -1):
            if abs(self._end_value(j)) >= ON_UA:
                return self.t_ns[j + 1]
            if abs(self.i_ua[j]) >= ON_UA:
                return self._fall_time(j)
        return 0

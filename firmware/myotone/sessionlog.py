# What a session did, for its log record: delivered charge, average current,
# impedance trend (one value per 10 % of the session), LED dose, faults,
# ~1 sample per second (bounded), the marks of what happened when (pause,
# resume, phase, setpoint, stop, fault, end; bounded) and who recorded it
# (firmware, board, unit id).
#
# The bookkeeping tick calls add(): it only adds small integers to
# counters that wrap at 2**29 (no allocation, nothing reset; one int array
# the viper add() writes in place), and the main loop reads their
# differences once a second in sample() -- so neither side
# ever has to wait for the other. The record is assembled and written from the
# main loop with the output stage off: at intervals during the session as a
# checkpoint marked incomplete (checkpoint.py), and after it, complete, under
# the same number (store.log_append, store.log_write). The main loop also calls
# watch() on every pass: it compares four small values with the last ones and
# appends a mark only when one changed.
import micropython
import json
from array import array
from micropython import const
from myotone import VERSION
from myotone import session as S

_MASK = const(0x1FFFFFFF)
MAX_SAMPLES = const(320)       # then every other sample goes and the interval doubles:
                               # a 20 min session keeps one sample per 4 s at worst
TREND_POINTS = const(10)       # impedance trend: one value per 10 % of the planned session
# add()'s counters, slots of SessionLog.c
C_TICKS = const(0)      # samples
C_ON = const(1)         # settled on-samples
C_UA = const(2)         # every sample with a current path: the charge moved
C_ZUA = const(3)        # settled on-samples only: current and voltage for the impedance
C_MV = const(4)
C_LED = const(5)        # the LED duty, weighed by the samples it covered
MAX_MARKS = const(48)          # then later marks are counted (`marks_dropped`), not kept:
                               # 8 phases with a waveform swap each (phase + 2 setpoints) and
                               # 10 pause / resume pairs still fit


class SessionLog:
    def __init__(self, tick_hz, board_name="", unit_id=""):
        self.tick_hz = tick_hz
        self.ident = {"firmware": VERSION, "board": board_name, "unit_id": unit_id}
        self._t = array("i", [0] * MAX_SAMPLES)
        self._ua = array("i", [0] * MAX_SAMPLES)
        self._ohm = array("i", [0] * MAX_SAMPLES)
        self._led = array("i", [0] * MAX_SAMPLES)
        self.c = array("i", [0] * 6)    # tick-side counters (wrapping): C_TICKS .. C_LED
        self.open = False

    # ---- the bookkeeping tick ----
    @micropython.viper
    def add(self, d, led_duty: int):
        """What the fast path summed since the last call (`d`: fastpath.take's array): samples,
        settled on-samples, the current of every sample with a current path (edges included:
        the ADC read the current there was), the settled ones' current and voltage; and the LED
        duty now, weighed by the samples it covered."""
        c = ptr32(self.c)
        s = ptr32(d)
        n = s[0]
        c[C_TICKS] = (c[C_TICKS] + n) & _MASK
        c[C_LED] = (c[C_LED] + (led_duty >> 4) * n) & _MASK
        c[C_UA] = (c[C_UA] + s[2]) & _MASK
        c[C_ON] = (c[C_ON] + s[1]) & _MASK
        c[C_ZUA] = (c[C_ZUA] + s[3]) & _MASK
        c[C_MV] = (c[C_MV] + s[4]) & _MASK

    def counters(self):
        """(samples, on-samples, charge moved, voltage sum, LED, settled current sum) now."""
        c = self.c
        return (c[C_TICKS], c[C_ON], c[C_UA], c[C_MV], c[C_LED], c[C_ZUA])

    # ---- main loop ----
    def on_sums(self, last):
        """(settled on-samples, their current sum, their voltage sum) since `last` (an array
        of 3 this updates): the telemetry's means, from the same counters."""
        c = self.c
        out = ((c[C_ON] - last[0]) & _MASK, (c[C_ZUA] - last[1]) & _MASK, (c[C_MV] - last[2]) & _MASK)
        last[0], last[1], last[2] = c[C_ON], c[C_ZUA], c[C_MV]
        return out

    def _read(self):
        now = self.counters()
        d = [(now[i] - self._last[i]) & _MASK for i in range(6)]
        self._last = now
        return d

    def begin(self, program, setpoint_ua, start_s, duration_ms, study=None, labels=()):
        """`labels`: the program's phase labels (marks name the phase entered)."""
        self.program = program
        self.labels = labels
        self.marks = []
        self.marks_dropped = 0
        self._seen = [-1, -1, -1, None]            # state, phase, setpoint, fault: as last marked
        self.study = study             # a blinded arm's study token: the record is sealed by it
        self.setpoint_ua = setpoint_ua
        self.start_s = start_s
        self.faults = []
        self._last = self.counters()
        self.ticks = self.on = self.sum_ua = 0     # totals (main-loop ints, may grow)
        self._win = [0, 0, 0, 0, 0, 0]             # the current sample window
        self._min = [0, 0]                         # this trend bucket's on-current and on-voltage sums
        self.trend = []
        self.n = 0
        self.every = 1                             # windows per sample (doubles when full)
        self._k = 0
        self.next_ms = 1000                        # session time of the next sample
        self._trend_ms = max(1000, duration_ms // TREND_POINTS)
        self._next_trend_ms = self._trend_ms
        self.open = True

    def clock_moved(self, delta_s):
        """The clock was set during the session: its start moves with it (main loop)."""
        if self.open:
            self.start_s += delta_s

    def watch(self, t_ms, state, phase, setpoint_ua, fault):
        """Main loop, every pass while the log is open (t_ms: the time since begin()): mark a
        pause, a resume, a stop (the ramp-down), the end, a phase entered, a new setpoint, a
        fault latched -- each at the pass that first sees it (within a main-loop pass)."""
        seen = self._seen
        if state != seen[0]:
            was = seen[0]
            seen[0] = state
            if state == S.PAUSING or (state == S.PAUSED and was != S.PAUSING):
                self._mark(t_ms, "pause")
            elif (was == S.PAUSING or was == S.PAUSED) and (state == S.RAMP or state == S.RUN):
                self._mark(t_ms, "resume")
            elif state == S.RAMP_DOWN:
                self._mark(t_ms, "stop")
            elif state == S.DONE or state == S.FAULT:
                self._mark(t_ms, "end")
        if phase != seen[1] and phase >= 0:
            seen[1] = phase
            m = self._mark(t_ms, "phase")
            if m is not None:
                m["phase"] = phase + 1
                m["label"] = self.labels[phase] if phase < len(self.labels) else ""
        if setpoint_ua != seen[2]:
            seen[2] = setpoint_ua
            m = self._mark(t_ms, "setpoint")
            if m is not None:
                m["ua"] = setpoint_ua
        if fault is not None and fault != seen[3]:
            seen[3] = fault
            m = self._mark(t_ms, "fault")
            if m is not None:
                m["reason"] = fault

    def _mark(self, t_ms, what):
        if len(self.marks) >= MAX_MARKS:
            self.marks_dropped += 1
            return None
        m = {"t_ms": t_ms, "mark": what}
        self.marks.append(m)
        return m

    def fault(self, reason):
        if reason not in self.faults:
            self.faults.append(reason)

    def fold(self):
        """Fold the tick's counters into the totals (the charge so far), the sample window and
        the trend bucket, taking no sample: a checkpoint's record has the charge up to now."""
        d = self._read()
        self.ticks += d[0]
        self.on += d[1]
        self.sum_ua += d[2]
        for i in range(6):
            self._win[i] += d[i]
        self._min[0] += d[5]
        self._min[1] += d[3]

    def sample(self, t_ms, final=False):
        """Fold the counters; t_ms is the time since begin() (once a second, and at the end)."""
        self.next_ms += 1000
        self.fold()
        if final or t_ms >= self._next_trend_ms:
            self._next_trend_ms += self._trend_ms
            if self._min[0]:
                self.trend.append(self._min[1] * 1000 // self._min[0])
            self._min = [0, 0]
        self._k += 1
        if self._k < self.every and not final:
            return
        self._k = 0
        w = self._win
        self._win = [0, 0, 0, 0, 0, 0]
        if not w[0]:
            return
        if self.n == MAX_SAMPLES:
            self._decimate()
        i = self.n
        self._t[i] = t_ms // 1000
        self._ua[i] = w[2] // w[0]                         # time-averaged |I|
        self._ohm[i] = w[3] * 1000 // w[5] if w[5] else 0
        self._led[i] = (w[4] * 100 + w[0] * 2047) // (w[0] * 4095)
        self.n = i + 1

    def _decimate(self):
        half = MAX_SAMPLES // 2
        for i in range(half):
            for a in (self._t, self._ua, self._ohm, self._led):
                a[i] = a[2 * i + 1]
        self.n = half
        self.every *= 2

    def record(self, end_s, dose_uj, led_on_s, led_stop, session_s=0, final=True, clock_set=True):
        """(head, write_body) for store.log_append / log_write. `final`: the session's end,
        which closes the log; else a checkpoint of the session so far (main loop, output
        stage off), its head marked `incomplete` -- what stays on the flash if the power goes
        before the end. `clock_set`: whether the device's clock was set (else the times count
        from the port's power-on date: lengths are right, dates are not). A blinded arm's head
        ends at its start plus the session's time (`session_s`), the same for every arm run
        to its end; the output went off later by the arm's last ramp-down (`off_s`, sealed)."""
        if final:
            self.open = False
        body = {}
        if self.study is not None:   # log_read gives the measurements only for this token
            body["study"] = self.study
            body["off_s"] = end_s
            end_s = self.start_s + session_s
        head = {"start_s": self.start_s, "end_s": end_s, "program": self.program, "faults": self.faults,
                "clock_set": clock_set}
        if not final:
            head["incomplete"] = True
        if self.study is not None:
            head["blinded"] = True
        charge_uc = self.sum_ua / self.tick_hz
        body["setpoint_ua"] = self.setpoint_ua
        body["charge_uc"] = round(charge_uc, 2)
        body["avg_ua"] = round(self.sum_ua / self.ticks, 1) if self.ticks else 0
        body["impedance_ohm"] = self.trend
        body["led_dose_j_cm2"] = round(dose_uj / 1000000, 4)
        body["led_on_s"] = led_on_s
        body["led_stop"] = led_stop
        for key in self.ident:
            body[key] = self.ident[key]
        body["marks"] = self.marks
        if self.marks_dropped:
            body["marks_dropped"] = self.marks_dropped

        def write_body(f):
            for key in body:
                f.write('"%s":%s,' % (key, json.dumps(body[key])))
            f.write('"samples":[')
            for i in range(self.n):
                f.write('%s{"t_s":%d,"ua":%d,"ohm":%d,"led_pct":%d}'
                        % ("," if i else "", self._t[i], self._ua[i], self._ohm[i], self._led[i]))
            f.write("]")
        return head, write_body

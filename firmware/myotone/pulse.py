# Waveform -> segment table, compiled outside any interrupt.
#
# A waveform is biphasic and charge-balanced by construction: every positive
# phase is followed by a negative phase of the same width at the same
# current. One "unit" of the table is one period, or two when polarity
# alternates (+- then -+). A burst envelope repeats the unit `reps` times and
# then holds the bridge off for `off` units of time.
#
# The table is preallocated (array + bytearray) so a pulse back-end's
# interrupt only indexes it. Each state byte holds the bridge state and two
# flags that let the supervisor change the amplitude only between pairs, so
# that ramps keep every pair balanced too.
import micropython
from array import array
from micropython import const
from myotone import limits

OFF = const(0)   # both bridge pins low: no current path
POS = const(1)   # POL_A high
NEG = const(2)   # POL_B high
BRIDGE = const(3)     # state & BRIDGE = what the bridge pins do
IN_PAIR = const(4)    # flag: inside a biphasic pair (first phase .. second phase)
PAIR_START = const(8) # flag: the first phase of a pair
MAX_SEGMENTS = const(8)
SETTLE_US = const(20)  # samples this close to an edge are not attributed to a state
# Playhead._h's slots
_H_POS = const(0)       # where the cycle under way is (back-end units)
_H_LAST_US = const(1)   # ticks_us at the last advance
_H_UNIT = const(2)      # the table's length (units)
_H_CYCLE = const(3)     # a whole cycle: the unit, or a burst's units and its off time
_H_REPS = const(4)      # units per burst (0: continuous) ...
_H_OFF = const(5)       # ... and the burst's off time
_H_PPU = const(6)
_H_PPC = const(7)
_H_BASE = const(8)
_H_PLAYING = const(9)
_H_SLOTS = const(10)


class WaveformError(ValueError):
    """A waveform outside SAFETY.md's envelope (-> out_of_range)."""


class TimingUnsupported(ValueError):
    """A waveform the pulse back-end cannot play exactly (-> timing_unsupported)."""


class Waveform:
    def __init__(self, freq_mhz, phase_us, gap_us=0, alternate=True, burst_on_ms=0, burst_off_ms=0):
        self.freq_mhz = freq_mhz
        self.phase_us = phase_us
        self.gap_us = gap_us
        self.alternate = alternate
        self.burst_on_ms = burst_on_ms
        self.burst_off_ms = burst_off_ms
        self.period_us = 1000000000 // freq_mhz if freq_mhz > 0 else 0
        self.check()

    def check(self):
        if not limits.FREQ_MIN_MHZ <= self.freq_mhz <= limits.FREQ_MAX_MHZ:
            raise WaveformError("frequency must be 0.1..1000 Hz")
        if not limits.PHASE_MIN_US <= self.phase_us <= limits.PHASE_MAX_US:
            raise WaveformError("phase_us must be %d..%d" % (limits.PHASE_MIN_US, limits.PHASE_MAX_US))
        if self.gap_us < 0:
            raise WaveformError("gap_us must be >= 0")
        if 2 * self.phase_us + self.gap_us > self.period_us:
            raise WaveformError("2 x phase_us + gap_us must fit in one period (%d us)" % self.period_us)
        if not 0 <= self.burst_on_ms <= 60000 or not 0 <= self.burst_off_ms <= 60000:
            raise WaveformError("burst times must be 0..60000 ms")
        if (self.burst_on_ms == 0) != (self.burst_off_ms == 0):
            raise WaveformError("burst_on_ms and burst_off_ms go together")
        if self.burst_on_ms and self.burst_on_ms * 1000 < self.unit_us():
            raise WaveformError("burst_on_ms shorter than one pulse unit")

    def unit_us(self):
        return self.period_us * (2 if self.alternate else 1)

    def duty_permille(self):
        """Duty of the output in permille (for I_rms = I x sqrt(duty))."""
        duty = 2 * self.phase_us * 1000 // self.period_us
        if self.burst_on_ms:
            reps = self.burst_on_ms * 1000 // self.unit_us()
            on = reps * self.unit_us()
            duty = duty * on // (on + self.burst_off_ms * 1000)
        return duty


class Table:
    """Preallocated segment table: durations in back-end units, bridge states."""

    def __init__(self):
        self.dur = array("i", [0] * MAX_SEGMENTS)
        self.state = bytearray(MAX_SEGMENTS)
        self.n = 0
        self.reps = 0      # units per burst; 0 = continuous
        self.off = 0       # burst off time, back-end units

    def _put(self, dur_us, state, unit_us, min_units):
        if dur_us <= 0:
            return
        if dur_us % unit_us:
            raise TimingUnsupported("%d us is not a multiple of the back-end's %d us step" % (dur_us, unit_us))
        units = dur_us // unit_us
        if units < min_units:
            raise TimingUnsupported("%d us is shorter than the back-end's minimum of %d us" % (dur_us, min_units * unit_us))
        # Merge with the previous segment when the bridge state is unchanged.
        if self.n and self.state[self.n - 1] == state:
            self.dur[self.n - 1] += units
            return
        self.dur[self.n] = units
        self.state[self.n] = state
        self.n += 1

    def compile(self, wave, unit_us=1, min_units=1, max_units=0x3FFFFFFF):
        """Fill this table from `wave` in units of `unit_us` (outside interrupts)."""
        self.n = 0
        rest_us = wave.period_us - 2 * wave.phase_us - wave.gap_us
        first = (POS, NEG, NEG, POS) if wave.alternate else (POS, NEG)
        for k in range(0, len(first), 2):
            self._put(wave.phase_us, first[k] | IN_PAIR | PAIR_START, unit_us, min_units)
            self._put(wave.gap_us, OFF | IN_PAIR, unit_us, min_units)
            self._put(wave.phase_us, first[k + 1] | IN_PAIR, unit_us, min_units)
            self._put(rest_us, OFF, unit_us, min_units)
        self.reps = 0
        self.off = 0
        if wave.burst_on_ms:
            self.reps = wave.burst_on_ms * 1000 // wave.unit_us()
            off_us = wave.burst_off_ms * 1000
            if off_us % unit_us:
                raise TimingUnsupported("burst off time is not a multiple of %d us" % unit_us)
            self.off = off_us // unit_us
        for i in range(self.n):
            if self.dur[i] > max_units:
                raise TimingUnsupported("segment of %d us is longer than the back-end can time" % (self.dur[i] * unit_us))
        return self


class Playhead:
    """Where a free-running back-end (PIO, RMT) is in its table, from time alone.

    Those back-ends play the table in hardware, so the supervisor learns the
    bridge state and the pair flags by following the same schedule:
    advance() is called once per supervisor tick with time.ticks_us() and
    allocates nothing. `pairs` counts the pairs begun since start, from where
    they are in the schedule -- not from the segment changes a call happens to
    see: calls 10 ms apart on a 4.7 ms period often land in the same segment.
    """

    def __init__(self, owner=None):
        self.state = OFF
        self.in_pair = 0
        self.pairs = 0
        self.settled = 0
        # where advance() writes state, in_pair, pairs, settled: here, or the back-end that
        # follows its hardware with this playhead (one store each, no copy on every call)
        self._out = self if owner is None else owner
        self._dur = array("i", [0] * MAX_SEGMENTS)   # the table's arrays: segment durations,
        self._seg = bytearray(MAX_SEGMENTS)           # states
        # the schedule and where it is, in one int array (advance() is viper: a ptr32 slot
        # is one load, an attribute a hash lookup)
        self._h = array("i", [0] * _H_SLOTS)
        self._h[_H_UNIT] = self._h[_H_CYCLE] = 1
        self._pstart = array("i", [0] * MAX_SEGMENTS)   # where the unit's pairs begin

    def start(self, table, now_us):
        unit = 0
        ppu = 0
        for i in range(table.n):
            if table.state[i] & PAIR_START:
                self._pstart[ppu] = unit
                ppu += 1
            unit += table.dur[i]
        h = self._h
        h[_H_UNIT] = unit
        h[_H_CYCLE] = unit * table.reps + table.off if table.reps else unit
        h[_H_REPS] = table.reps
        h[_H_OFF] = table.off
        h[_H_PPU] = ppu                                  # pairs per unit
        h[_H_PPC] = ppu * table.reps if table.reps else ppu   # pairs per cycle (a burst's units)
        h[_H_BASE] = self._out.pairs                     # pairs begun before the cycle under way
        h[_H_POS] = 0
        h[_H_LAST_US] = now_us
        self._dur = table.dur
        self._seg = table.state
        h[_H_PLAYING] = 1

    def stop(self):
        self._h[_H_PLAYING] = 0
        out = self._out
        out.state = OFF
        out.in_pair = 0
        out.settled = 1

    @micropython.viper
    def advance(self, now_us):
        h = ptr32(self._h)
        out = self._out
        if not h[_H_PLAYING]:
            return
        now = int(now_us)
        pos = h[_H_POS] + ((now - h[_H_LAST_US]) & 0x3FFFFFFF)
        h[_H_LAST_US] = now
        cycle = h[_H_CYCLE]
        if pos >= cycle:
            k = pos // cycle
            h[_H_BASE] = (h[_H_BASE] + k * h[_H_PPC]) & 0xFFFF
            pos -= k * cycle
        h[_H_POS] = pos
        unit = h[_H_UNIT]
        reps = h[_H_REPS]
        if reps and pos >= unit * reps:
            out.state = OFF
            out.in_pair = 0
            out.pairs = (h[_H_BASE] + h[_H_PPC]) & 0xFFFF
            u = pos - unit * reps
            out.settled = 1 if SETTLE_US <= u and u <= h[_H_OFF] - SETTLE_US else 0
            return
        u = pos % unit
        ppu = h[_H_PPU]
        n = (pos // unit) * ppu
        pstart = ptr32(self._pstart)
        j = 0
        while j < ppu:
            if pstart[j] <= u:
                n += 1
            j += 1
        out.pairs = (h[_H_BASE] + n) & 0xFFFF
        dur = ptr32(self._dur)
        i = 0
        while u >= dur[i]:
            u -= dur[i]
            i += 1
        s = int(ptr8(self._seg)[i])
        # the hardware's edges and this schedule agree to a few us: keep clear of edges
        out.settled = 1 if SETTLE_US <= u and u <= dur[i] - SETTLE_US else 0
        out.state = s & BRIDGE
        out.in_pair = s & IN_PAIR

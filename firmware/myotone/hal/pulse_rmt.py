# Pulse back-end `rmt` (ESP32): two esp32.RMT channels at 1 us per tick loop
# the whole cycle of the table (burst envelope included), one channel per
# bridge pin. Each channel's edges are exact; the two channels start one
# after the other, so the back-end refuses waveforms without at least
# `dead_us` of "off" between opposite phases (never both pins high).
import esp32
import time
from micropython import const
from myotone.pulse import Table, TimingUnsupported, BRIDGE, OFF, POS, NEG, PAIR_START, IN_PAIR
from myotone.hal.followed import FollowedPulse

_CLOCK_DIV = const(80)        # 80 MHz APB / 80 = 1 us per tick
_MAX_TICKS = const(32767)     # one RMT duration
_MAX_PULSES = const(126)      # one loop must fit the channel's RMT memory


def _levels(table, bit):
    """(durations, levels) for one pin over a whole cycle; long runs are split."""
    runs = []      # [us, level]
    reps = table.reps or 1
    for _ in range(reps):
        for i in range(table.n):
            lvl = 1 if (table.state[i] & BRIDGE) == bit else 0
            if runs and runs[-1][1] == lvl:
                runs[-1][0] += table.dur[i]
            else:
                runs.append([table.dur[i], lvl])
    if table.reps:
        if runs[-1][1] == 0:
            runs[-1][0] += table.off
        else:
            runs.append([table.off, 0])
    durations = []
    levels = []
    for us, lvl in runs:
        while us > 0:
            d = min(us, _MAX_TICKS)
            durations.append(d)
            levels.append(lvl)
            us -= d
    if len(durations) > _MAX_PULSES:
        raise TimingUnsupported("the rmt back-end holds %d pulses per cycle; this waveform needs %d"
                                % (_MAX_PULSES, len(durations)))
    return durations, levels


class RmtPulse(FollowedPulse):
    def __init__(self, pin_a, pin_b, channels=(0, 1), dead_us=200):
        super().__init__()
        self._pins = (pin_a, pin_b)
        self._channels = channels
        self._dead_us = dead_us
        self._rmt = None
        self._tables = (Table(), Table())
        self._t = self._tables[0]
        self._lists = None
        self._pairs_per_cycle = 1
        self._pair_ms = 0
        self._period_ms = 0
        self._pairs0 = 0
        self._close_pairs = 0
        self._looped_off = 0

    def prepare(self, wave):
        table = self._tables[1] if self._t is self._tables[0] else self._tables[0]
        table.compile(wave, 1, 1)
        n = table.n
        for i in range(n):
            a = table.state[i] & BRIDGE
            b = table.state[(i + 1) % n] & BRIDGE
            if a and b and a != b:
                raise TimingUnsupported("the rmt back-end needs >= %d us off between opposite phases" % self._dead_us)
            if a == OFF and table.dur[i] < self._dead_us:
                raise TimingUnsupported("off times must be >= %d us on the rmt back-end" % self._dead_us)
        self._lists = (_levels(table, POS), _levels(table, NEG))
        return table

    def start(self, table):
        if self.running:
            raise TimingUnsupported("the rmt back-end cannot change a running waveform")
        self._t = table
        # the channels loop the whole cycle (a burst's units and its off time): its pairs, how
        # long one pair lasts (its phases and the gap between them) and one period, rounded up
        unit_pairs = max(1, sum(1 for i in range(table.n) if table.state[i] & PAIR_START))
        self._pairs_per_cycle = unit_pairs * (table.reps or 1)
        self._pair_ms = (sum(table.dur[i] for i in range(table.n) if table.state[i] & IN_PAIR)
                         // unit_pairs + 999) // 1000
        self._period_ms = (sum(table.dur[i] for i in range(table.n)) // unit_pairs + 999) // 1000
        self._pairs0 = self.pairs
        self._looped_off = 0
        rmt = []
        for k in range(2):
            r = esp32.RMT(self._channels[k], pin=self._pins[k], clock_div=_CLOCK_DIV, idle_level=False)
            r.loop(True)
            rmt.append(r)
        self._rmt = rmt
        self.head.start(table, time.ticks_us())
        for k in range(2):
            durations, levels = self._lists[k]
            rmt[k].write_pulses(durations, levels)
        self.running = True

    def finish(self, left_ms=0x3FFFFFFF):
        """End by itself after the pair under way (OutputStage.close; `left_ms` until its
        deadline). The channels loop the table's whole cycle: when the loop's pairs from the one
        under way to its last end in time, loop(False) lets the hardware finish them (and the
        off time) and stop."""
        self._close_pairs = self.pairs
        self._looped_off = 0
        self._loop_off_if_last(left_ms)

    def _loop_off_if_last(self, left_ms):
        """loop(False) if the loop's pairs from the one under way to its last end before
        `left_ms` (with alternation the loop is two pairs: the second follows the first)."""
        if self._rmt is None or not self.in_pair:
            return
        after = (self._pairs_per_cycle - ((self.pairs - self._pairs0) & 0xFFFF) % self._pairs_per_cycle) \
            % self._pairs_per_cycle                # pairs of the loop still to begin
        if after * self._period_ms + self._pair_ms >= left_ms:
            return
        for r in self._rmt:
            r.loop(False)
        self._looped_off = 1

    def finished(self, left_ms=0x3FFFFFFF):
        """After finish(): True once the hardware stopped (loop off), or, where the loop goes on
        past the pair, once the playhead shows it over. A later pair seen begun is finished in
        hardware if it is the loop's last and ends in time; otherwise it is cut (True)."""
        if not self.running:
            return True
        if self._looped_off:                 # the loop's last pair over (its off time plays), or all done
            return not self.in_pair or (all(r.wait_done() for r in self._rmt) if self._rmt is not None else True)
        if self.pairs == self._close_pairs:
            return not self.in_pair
        self._loop_off_if_last(left_ms)
        return not self._looped_off

    def unfinish(self):
        """Take finish() back: True unless the channels' loop was already turned off."""
        return self.running and not self._looped_off

    def halt(self):
        """The fast path's cut (the ESP32 runs it from a soft timer): stop() itself."""
        self.stop()

    def stop(self):
        if self._rmt is not None:
            for r in self._rmt:
                r.loop(False)
                r.deinit()
            self._rmt = None
        for p in self._pins:
            p.init(p.OUT, value=0)
        self._played_out()

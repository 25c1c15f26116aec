# The fast safety path (SAFETY.md "Trips" and "The output stage"): at the
# supervisor rate, from a hard timer interrupt where the port has one (rp2),
# so neither the GC nor a busy main loop delays it, it
#   * samples the current, the electrode voltage and the bridge pins (the
#     commanded polarity is read from the pins before and after the
#     conversions, not taken from the schedule: a sample whose pins changed
#     meanwhile belongs to no state), and the polarity comparator of the
#     commanded direction (the current's measured direction: the sense reads
#     |I| only, so a DC fault -- both phases flowing one way, or one phase's
#     current bypassing the electrodes through a shorted bridge leg -- looks
#     balanced to it);
#   * decides every per-sample trip: over_current, high_density,
#     contact_lost, sense_fault (low reading, or current with the bridge off),
#     charge_imbalance for a DC fault (current the sense is sure of, not
#     flowing the way the bridge drives it, on _POLARITY_SAMPLES samples or on
#     a phase's last one),
#     and stops a session when a charger appears (charging),
#     counting only samples taken while current should flow (a sample with
#     the bridge off neither confirms nor resets an on-state rule); a phase
#     that ends with over_current's or the polarity's condition standing on
#     its last sample, or with contact_lost's or sense_fault's on every sample
#     it had, trips
#     when it ends (a short phase at a low frequency carries one or two
#     samples, and its partner may come seconds later: unsupervised() refuses
#     phases too short to carry one);
#   * enforces the closing window's hard deadline;
#   * cuts through GPIO at once (stage.fast_cut: rail, then bridge) and
#     leaves the DAC to the bookkeeping tick (an I2C write has no place in an
#     interrupt);
#   * keeps wrapping counters (samples, per-polarity sums, charge moved) that
#     the bookkeeping tick and the main loop read as differences.
# Integer-only and allocation-free: it runs with the heap locked. The
# thresholds are the Monitor's (monitor.py computes each level once).
import micropython
import time
from array import array
from micropython import const
from myotone import limits
from myotone.monitor import OVER_CURRENT, HIGH_DENSITY, CONTACT_LOST, SENSE_FAULT, CHARGING, CHARGE_IMBALANCE
from myotone.stage import CLOSING
from myotone.session import RUN, _ticks_diff

MASK = const(0x3FFFFFFF)         # counters wrap at 2**30: small ints, no allocation
_IDLE_SAMPLES = const(10)        # current with the bridge off on 10 samples: sense_fault
_PHASE_SAMPLES_MAX = const(4096) # a phase's mean from its first 4096 samples (its sum x 16 stays small)
# A DC fault (SAFETY.md: polarity measured, charge_imbalance <= 1 s): judged on samples whose current
# reads >= 40 uA -- a true current above the polarity comparators' highest switching point (20 uA,
# docs/hardware.md) at every sense calibration corner ((40 - 10) / 1.05 = 28.6 uA) -- and tripped
# on 3 consecutive such samples against the bridge, or on a phase's last one. Module constants:
# free on the tick path (a limits.X lookup is not).
_POLARITY_MIN_UA = const(40)
_POLARITY_SAMPLES = const(3)


def unsupervised(wave, hz):
    """Why the fast path, sampling at `hz`, cannot supervise `wave` (a message), or None.

    Every phase must carry at least one settled sample wherever the samples fall: a
    phase shorter than one sample period plus the sample's window and its jitter
    (limits.SAMPLE_SLACK_US) may never be sampled at all -- at 1 kHz with 100 us
    phases 16 of 20 start offsets saw nothing -- and then no trip can see it."""
    need_us = 1000000 // hz + limits.SAMPLE_SLACK_US
    if wave.phase_us < need_us:
        return ("phase_us %d is too short to supervise: the safety monitor samples at %d Hz "
                "and needs phases of >= %d us to see every one" % (wave.phase_us, hz, need_us))
    return None


class FastPath:
    def __init__(self, sense, pin_a, pin_b, flow_a, flow_b, vbus, output, stage, monitor, measure, session):
        self._read_ua = sense.read_ua
        self._read_mv = sense.read_mv
        self._a = pin_a.value
        self._b = pin_b.value
        self._fa = flow_a.value          # 1 while current flows the POL_A way (E1 -> E2)
        self._fb = flow_b.value          # 1 while it flows the POL_B way
        self._vbus = vbus.value
        self._out = output
        self._stage = stage
        self._mon = monitor
        self._measure = measure
        self._session = session
        self.interrupted = False     # Ctrl-C landed here: the main loop raises it
        self.reason = None           # the trip this path cut for, until the bookkeeping tick takes it
        self.n = 0                   # samples
        self.n_on = 0                # settled samples with a current path
        self.s_ua = 0                # sum of current on every sample with a current path (charge moved)
        self.s_zua = 0               # ... on settled ones, and their voltage (impedance)
        self.s_mv = 0
        # charge balance: each phase's mean current (1/16 uA), summed per polarity over whole
        # pairs, and how many; a phase ends when the pins leave its polarity (an edge sample
        # does not end it)
        self.pos_m = self.pos_k = 0
        self.neg_m = self.neg_k = 0
        self._ph = 0                 # the polarity of the phase under way (0: none)
        self._ph_ua = 0              # ... its samples' current and count
        self._ph_n = 0
        self._held = 0               # the first phase of a pair, waiting for its partner: polarity
        self._held_m = 0             # ... and mean
        self._last = array("i", [0] * 9)   # the counters at the last take()
        self.armed = False
        self._thresholds()
        self.begin()
        self.armed = False

    def _thresholds(self):
        mon = self._mon
        self._over_ua = mon.over_current_ua
        self._open1_ohm = mon.open_ohm + 1
        self._compliance_mv = mon.compliance_mv
        self._sense_min_ua = mon.sense_min_ua

    def begin(self):
        """A session starts: every rule forgets, and the path is armed."""
        self._over = self._dense = self._open = self._idle = self._bad_n = self._wrong = 0
        self._bad_ms = -1
        self._ph = self._ph_ua = self._ph_n = self._held = 0
        self.reason = None
        self.armed = True

    @micropython.native
    def take(self, d):
        """The bookkeeping tick: what was summed since the last take, into `d` (an array):
        samples, settled on-samples, charge moved (uA x samples), their current and voltage,
        POL_A phases' means (1/16 uA) and count, POL_B likewise. Each counter is read once."""
        last = self._last
        v = self.n
        d[0] = (v - last[0]) & MASK
        last[0] = v
        v = self.n_on
        d[1] = (v - last[1]) & MASK
        last[1] = v
        v = self.s_ua
        d[2] = (v - last[2]) & MASK
        last[2] = v
        v = self.s_zua
        d[3] = (v - last[3]) & MASK
        last[3] = v
        v = self.s_mv
        d[4] = (v - last[4]) & MASK
        last[4] = v
        v = self.pos_m
        d[5] = (v - last[5]) & MASK
        last[5] = v
        v = self.pos_k
        d[6] = (v - last[6]) & MASK
        last[6] = v
        v = self.neg_m
        d[7] = (v - last[7]) & MASK
        last[7] = v
        v = self.neg_k
        d[8] = (v - last[8]) & MASK
        last[8] = v

    # ---- the interrupt ----------------------------------------------------
    @micropython.native
    def run(self, _timer):
        try:
            a = self._a()
            b = self._b()
            ua = self._read_ua()
            # the comparator of the direction the bridge drives, read with the current
            fl = self._fa() if a else (self._fb() if b else 0)
            mv = self._read_mv()
            if self._a() != a or self._b() != b:
                br = -1
            elif a:                          # the bridge state: 0 off, 1 POL_A, 2 POL_B, -1 at an
                br = -1 if b else 1          # edge (both high is no valid state either)
            else:
                br = 2 if b else 0
            self.n = (self.n + 1) & MASK
            if br:
                self.s_ua = (self.s_ua + ua) & MASK
            if not self.armed:
                return
            # charging: a charger or a computer on USB (mains leakage): off within 2 ms
            reason = CHARGING if self._vbus() else None
            if br >= 0 and br != self._ph:
                r = self._phase_end(br)
                if reason is None:
                    reason = r
            if br > 0 and reason is None:
                self.n_on = (self.n_on + 1) & MASK
                self.s_zua = (self.s_zua + ua) & MASK
                self.s_mv = (self.s_mv + mv) & MASK
                if self._ph_n < _PHASE_SAMPLES_MAX:
                    self._ph_ua += ua
                    self._ph_n += 1
                reason = self._on(ua, mv, fl)
                m = self._measure
                if m.active and self._session.state == RUN:
                    m.add(br, ua, mv, self._out.code)
            elif br == 0:
                # no current path: what the sense reads must be ~0
                if ua > limits.SENSE_IDLE_UA:
                    self._idle += 1
                    if self._idle >= _IDLE_SAMPLES:
                        reason = SENSE_FAULT
                else:
                    self._idle = 0
            stage = self._stage
            if reason is not None:
                self.reason = reason
                self.armed = False
                stage.fast_cut(reason)
            elif stage.state == CLOSING and _ticks_diff(time.ticks_ms(), stage.close_by) >= 0:
                stage.fast_cut(None)         # the last pair's hard deadline: off regardless
        except KeyboardInterrupt:
            self.interrupted = True
        except Exception:
            # a failing sense must not leave output unsupervised
            self.reason = SENSE_FAULT
            self.armed = False
            self._stage.fast_cut(SENSE_FAULT)

    @micropython.native
    def _phase_end(self, br):
        """The pins left the phase's polarity. Phases are judged in pairs (two opposite
        phases in a row: the same amplitude by construction), so a ramp never weighs one
        polarity with a newer amplitude than the other; a phase whose partner was not
        sampled is replaced by the next of its polarity.
        A phase of current that ends with a trip's condition standing confirms that trip
        (its reason is returned, else None): over_current's and the polarity's (a DC fault)
        on its last sample, contact_lost's and sense_fault's on every sample it had."""
        n = self._ph_n
        ph = self._ph
        reason = None
        if n:
            if self._over:
                reason = OVER_CURRENT
            elif self._open >= n:
                reason = CONTACT_LOST
            elif self._bad_n >= n:
                reason = SENSE_FAULT
            elif self._wrong:
                reason = CHARGE_IMBALANCE
            m = (self._ph_ua << 4) // n
            held = self._held
            if held == 0 or held == ph:
                self._held = ph
                self._held_m = m
            else:
                if ph == 1:
                    self.pos_m = (self.pos_m + m) & MASK
                    self.neg_m = (self.neg_m + self._held_m) & MASK
                else:
                    self.pos_m = (self.pos_m + self._held_m) & MASK
                    self.neg_m = (self.neg_m + m) & MASK
                self.pos_k = (self.pos_k + 1) & MASK
                self.neg_k = (self.neg_k + 1) & MASK
                self._held = 0
        self._ph = br
        self._ph_ua = 0
        self._ph_n = 0
        self._wrong = 0                  # the next phase has the other comparator
        return reason

    @micropython.native
    def _on(self, ua, mv, fl):
        """The rules of a sample taken while current flows (`fl`: the comparator of the
        direction the bridge drives); a reason, or None."""
        self._idle = 0
        if ua > self._over_ua:
            self._over += 1
            if self._over >= limits.OVER_CURRENT_SAMPLES:
                return OVER_CURRENT
        else:
            self._over = 0
        if ua > self._mon.density_ua:            # set by the session's plan (monitor.begin)
            self._dense += 1
            if self._dense >= limits.OVER_CURRENT_SAMPLES:
                return HIGH_DENSITY
        else:
            self._dense = 0
        # a DC fault: current the sense is sure of that does not flow the way the bridge drives
        # it (reversed, or bypassing the electrodes); a smaller reading judges nothing
        if ua >= _POLARITY_MIN_UA:
            if fl:
                self._wrong = 0
            else:
                self._wrong += 1
                if self._wrong >= _POLARITY_SAMPLES:
                    return CHARGE_IMBALANCE
        cmd_ua = self._stage.out_ua
        if cmd_ua < limits.PROGRAM_MIN_UA:
            self._open = self._bad_n = 0     # too little current to judge contact or sense
            return None
        # contact_lost: compliance reached below the setpoint, or impedance above open_ohm
        open_circuit = ((mv >= self._compliance_mv and ua * 10 < cmd_ua * 9)
                        or (ua > 0 and mv * 1000 >= self._open1_ohm * ua))
        if open_circuit:
            self._open += 1
            if self._open >= limits.CONTACT_SAMPLES:
                return CONTACT_LOST
            self._bad_ms = -1
            return None
        self._open = 0
        # sense_fault: commanded >= 50 uA (and twice the sense's floor), measured < 20 % of it,
        # contact good, for 50 ms
        if cmd_ua >= self._sense_min_ua and ua * 100 < cmd_ua * limits.SENSE_FAULT_PERCENT:
            self._bad_n += 1
            now = time.ticks_ms()
            if self._bad_ms < 0:
                self._bad_ms = now
            elif _ticks_diff(now, self._bad_ms) >= limits.SENSE_FAULT_MS:
                return SENSE_FAULT
        else:
            self._bad_ms = -1
            self._bad_n = 0
        return None

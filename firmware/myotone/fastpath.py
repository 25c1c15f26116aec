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
#     balanced to it), and while that one reads high the other (both high
#     cannot be: one is stuck high, which would hide a DC fault its way);
#   * decides every per-sample trip: over_current, high_density,
#     contact_lost, sense_fault (low reading, current with the bridge off --
#     on the sense or on a polarity comparator --, both comparators high on
#     _IDLE_SAMPLES on-samples in a row of one polarity, or conversions frozen),
#     charge_imbalance for a DC fault (current the sense is sure of, not
#     flowing the way the bridge drives it, on _POLARITY_SAMPLES samples or on
#     a phase's last one),
#     and stops a session when a charger appears (charging),
#     counting only samples taken while current should flow (a sample with
#     the bridge off neither confirms nor resets an on-state rule); a phase
#     that ends with the polarity's condition standing on its last sample,
#     or with contact_lost's or sense_fault's on every sample it had, trips
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
# thresholds are the Monitor's (monitor.py computes each level once; the
# session's high_density level is copied at begin(), after Monitor.begin).
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
# reads >= 5 uA above what this unit's sense reads with no current (its bridge-off samples: the
# highest at once, a lower one as a mean), i.e. a true current of (5 - noise) / 1.05 > 2.3 uA, the
# polarity comparators' highest switching point (docs/hardware.md), while two samples' noise
# differs by under 2.5 uA; the soft start (10 uA on the Pico, 7.8 on the ESP32) is judged. The
# offset is measured, not assumed at its worst: a static gate had to sit above the sense's
# offset bound (10 / 0.95 = 10.5 uA) plus noise, and at 13 uA a unit reading 10.5 uA high
# false-tripped at a calibration corner (1.7 uA true read 13). Until a bridge-off sample is seen
# the zero is taken as 13 uA (that bound plus 2.5 uA of noise): an 18 uA gate. Tripped on 3
# consecutive judged samples against the bridge, or on a phase's last one. Module constants:
# free on the tick path (a limits.X lookup is not).
_POLARITY_ABOVE_ZERO_UA = const(5)
_ZERO16_START = const(208)       # 13 uA x 16
_POLARITY_SAMPLES = const(3)
# An ADC that keeps its last conversion (SAFETY.md "ADC stuck"): the current's and the voltage's
# raw conversions (read_u16 / read_uv, before any rounding to uA or mV: Sense.conversions)
# unchanged on 50 judged on-samples in a row (25 ms at 2 kHz, 50 ms at 1 kHz). A live ADC's
# noise (the RP2040's and the ESP32's: more than 1 LSB rms; the plant's 1 LSB) changes one of
# them on ~9 of 10 samples; rounded to whole uA the ESP32's did not (55 uA on 50 samples in a
# row). The idle rule sees a stuck ADC only in off times; a waveform without any (500 Hz, 1 ms
# phases, no gap) or a long phase (240 ms at 2 Hz) had hidden one for seconds.
_FROZEN_SAMPLES = const(50)

# The path's state: one preallocated int array, read and written in place by the viper
# interrupt (a ptr32 load or store is one instruction; an attribute of self is a hash lookup,
# ~1.8 us on the RP2040). Slots 0..8 are the wrapping counters take() hands out.
_N = const(0)          # samples
_N_ON = const(1)       # settled samples with a current path
_S_UA = const(2)       # sum of current on every sample with a current path (charge moved)
_S_ZUA = const(3)      # ... on settled ones, and their voltage (impedance)
_S_MV = const(4)
_POS_M = const(5)      # charge balance: each phase's mean current (1/16 uA), summed per polarity
_POS_K = const(6)      # over whole pairs, and how many (a phase ends when the pins leave its
_NEG_M = const(7)      # polarity; an edge sample does not end it)
_NEG_K = const(8)
_COUNTERS = const(9)
_FROZEN = const(9)     # the rules' consecutive-sample counts
_DENSE = const(10)
_OPEN = const(11)
_IDLE = const(12)
_BAD_N = const(13)
_WRONG = const(14)
_BAD_MS = const(15)    # when sense_fault's condition began (ticks_ms), -1: it does not stand
_PH = const(16)        # the polarity of the phase under way (0: none)
_PH_UA = const(17)     # ... its samples' current and count
_PH_N = const(18)
_HELD = const(19)      # the first phase of a pair, waiting for its partner: polarity
_HELD_M = const(20)    # ... and mean
_ARMED = const(21)
_OVER_UA = const(22)   # the Monitor's levels and limits' counts, copied once (monitor.py, limits.py)
_OPEN1_OHM = const(23)
_COMPLIANCE_MV = const(24)
_SENSE_MIN_UA = const(25)
_DENSE_SAMPLES = const(26)
_CONTACT_SAMPLES = const(27)
_PROGRAM_MIN_UA = const(28)
_SENSE_PERCENT = const(29)
_SENSE_MS = const(30)
_IDLE_UA = const(31)
_LAST_I = const(32)    # the frozen-ADC rule: the last judged on-sample's raw conversions
_LAST_V = const(33)
_ZERO16 = const(34)    # the sense's reading with no current, x 16 (a mean of bridge-off samples)
_HIGH_A = const(35)    # on-samples in a row with FLOW_A high while POL_B flows (FLOW_B high): both
_HIGH_B = const(36)    # comparators high cannot be, one is stuck high; the same for FLOW_B
_MEASURING = const(37) # 1 while a `measure` session sums samples: copied by take() (100 Hz), so the
                       # interrupt reads one slot instead of two attribute lookups (~3.6 us)
_DENSE_UA = const(38)  # high_density's level for the session: copied by begin() (Monitor.begin first)
_SLOTS = const(39)

# stage.CLOSING inlined: the name imported is a global lookup on every armed sample
_STAGE_CLOSING = const(3)
if CLOSING != _STAGE_CLOSING:
    raise ImportError("fastpath: stage.CLOSING is not %d" % _STAGE_CLOSING)

# FastPath._io's items
_IO_A = const(0)       # POL_A's pin (.value)
_IO_B = const(1)
_IO_UA = const(2)      # the sense's current (read_ua)
_IO_MV = const(3)      # ... and voltage
_IO_FA = const(4)      # the polarity comparators
_IO_FB = const(5)
_IO_VBUS = const(6)

# what run() found, as a small int (a viper function keeps ints unboxed); _REASONS names it
_REASONS = (None, OVER_CURRENT, HIGH_DENSITY, CONTACT_LOST, SENSE_FAULT, CHARGING, CHARGE_IMBALANCE)
_R_OVER = const(1)
_R_DENSE = const(2)
_R_CONTACT = const(3)
_R_SENSE = const(4)
_R_CHARGING = const(5)
_R_POLARITY = const(6)


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
        # what the interrupt reads, in one tuple: an item is a subscript, an attribute of self
        # a hash lookup (on the silicon tier, map lookups were a fifth of the path's time)
        # (flow_a reads 1 while current flows the POL_A way, E1 -> E2; flow_b the POL_B way)
        self._io = (pin_a.value, pin_b.value, sense.read_ua, sense.read_mv, flow_a.value,
                    flow_b.value, vbus.value)
        self._conv = sense.conversions   # slots 0, 1: the raw conversions of the last reads
        self._out = output
        self._stage = stage
        self._mon = monitor
        self._measure = measure
        self._session = session
        self.interrupted = False     # Ctrl-C landed here: the main loop raises it
        self.reason = None           # the trip this path cut for, until the bookkeeping tick takes it
        self._st = array("i", [0] * _SLOTS)
        self._last = array("i", [0] * _COUNTERS)   # the counters at the last take()
        st = self._st
        st[_OVER_UA] = monitor.over_current_ua
        st[_OPEN1_OHM] = monitor.open_ohm + 1
        st[_COMPLIANCE_MV] = monitor.compliance_mv
        st[_SENSE_MIN_UA] = monitor.sense_min_ua
        st[_DENSE_SAMPLES] = limits.OVER_CURRENT_SAMPLES
        st[_CONTACT_SAMPLES] = limits.CONTACT_SAMPLES
        st[_PROGRAM_MIN_UA] = limits.PROGRAM_MIN_UA
        st[_SENSE_PERCENT] = limits.SENSE_FAULT_PERCENT
        st[_SENSE_MS] = limits.SENSE_FAULT_MS
        st[_IDLE_UA] = limits.SENSE_IDLE_UA
        st[_ZERO16] = _ZERO16_START
        self.begin()
        self.disarm()

    def begin(self):
        """A session starts: every rule forgets, and the path is armed."""
        st = self._st
        for i in range(_FROZEN, _ARMED):
            st[i] = 0
        st[_BAD_MS] = -1
        st[_HIGH_A] = 0
        st[_HIGH_B] = 0
        st[_DENSE_UA] = self._mon.density_ua     # the session's plan: Monitor.begin ran just before
        self.reason = None
        st[_ARMED] = 1

    def disarm(self):
        """Samples are counted, no rule is judged (no session, or a cut was made)."""
        self._st[_ARMED] = 0

    @property
    def armed(self):
        return self._st[_ARMED] != 0

    @property
    def n(self):
        """Samples taken (wraps at 2**30)."""
        return self._st[_N]

    @micropython.viper
    def take(self, d):
        """The bookkeeping tick: what was summed since the last take, into `d` (an array):
        samples, settled on-samples, charge moved (uA x samples), their current and voltage,
        POL_A phases' means (1/16 uA) and count, POL_B likewise. Each counter is read once."""
        st = ptr32(self._st)
        last = ptr32(self._last)
        out = ptr32(d)
        i = 0
        while i < _COUNTERS:
            v = st[i]
            out[i] = (v - last[i]) & MASK
            last[i] = v
            i += 1
        if self._measure.active:
            st[_MEASURING] = 1
        else:
            st[_MEASURING] = 0

    # ---- the interrupt ----------------------------------------------------
    @micropython.viper
    def run(self, _timer):
        try:
            io = self._io
            a = int(io[_IO_A]())
            b = int(io[_IO_B]())
            ua = int(io[_IO_UA]())
            # the comparator of the direction the bridge drives, read with the current
            fl = 0
            if a:
                fl = int(io[_IO_FA]())
            elif b:
                fl = int(io[_IO_FB]())
            mv = int(io[_IO_MV]())
            br = 0                           # the bridge state: 0 off, 1 POL_A, 2 POL_B, -1 at an
            if int(io[_IO_A]()) != a or int(io[_IO_B]()) != b:   # edge (both high is no valid state either)
                br = -1
            elif a:
                br = -1 if b else 1
            elif b:
                br = 2
            st = ptr32(self._st)
            st[_N] = (st[_N] + 1) & MASK
            if br:
                st[_S_UA] = (st[_S_UA] + ua) & MASK
            elif ua <= st[_IDLE_UA]:
                # no current path: this unit's zero reading (x 16). A higher one is taken at once
                # (it raises the polarity gate: the safe side), a lower one as a mean over ~16
                zero16 = st[_ZERO16]
                if (ua << 4) > zero16:
                    st[_ZERO16] = ua << 4
                else:
                    st[_ZERO16] = zero16 + ua - (zero16 >> 4)
            if not st[_ARMED]:
                return
            stage = self._stage
            # charging: a charger or a computer on USB (mains leakage): off within 2 ms
            reason = _R_CHARGING if int(io[_IO_VBUS]()) else 0
            if br >= 0 and br != st[_PH]:
                # -- phase end: the pins left the phase's polarity. A phase of current that
                # ends with a trip's condition standing confirms that trip: the polarity's (a DC
                # fault) on its last sample, contact_lost's and
                # sense_fault's on every sample it had. Phases are judged in pairs (two
                # opposite phases in a row: the same amplitude by construction), so a ramp
                # never weighs one polarity with a newer amplitude than the other; a phase
                # whose partner was not sampled is replaced by the next of its polarity.
                n = st[_PH_N]
                ph = st[_PH]
                if n:
                    r = 0
                    if st[_OPEN] >= n:
                        r = _R_CONTACT
                    elif st[_BAD_N] >= n:
                        r = _R_SENSE
                    elif st[_WRONG]:
                        r = _R_POLARITY
                    if reason == 0:
                        reason = r
                    m = (st[_PH_UA] << 4) // n
                    held = st[_HELD]
                    if held == 0 or held == ph:
                        st[_HELD] = ph
                        st[_HELD_M] = m
                    else:
                        if ph == 1:
                            st[_POS_M] = (st[_POS_M] + m) & MASK
                            st[_NEG_M] = (st[_NEG_M] + st[_HELD_M]) & MASK
                        else:
                            st[_POS_M] = (st[_POS_M] + st[_HELD_M]) & MASK
                            st[_NEG_M] = (st[_NEG_M] + m) & MASK
                        st[_POS_K] = (st[_POS_K] + 1) & MASK
                        st[_NEG_K] = (st[_NEG_K] + 1) & MASK
                        st[_HELD] = 0
                st[_PH] = br
                st[_PH_UA] = 0
                st[_PH_N] = 0
                st[_WRONG] = 0               # the next phase has the other comparator
            if br > 0 and reason == 0:
                st[_N_ON] = (st[_N_ON] + 1) & MASK
                st[_S_ZUA] = (st[_S_ZUA] + ua) & MASK
                st[_S_MV] = (st[_S_MV] + mv) & MASK
                if st[_PH_N] < _PHASE_SAMPLES_MAX:
                    st[_PH_UA] += ua
                    st[_PH_N] += 1
                # -- on-sample rules: a sample taken while current flows (`fl`: the comparator
                # of the direction the bridge drives); the first that trips names the reason
                # (the idle rule below counts bridge-off samples only: one with current neither
                # confirms nor resets it -- off times shorter than a sample period had let a
                # stuck-high ADC go unseen, each on-sample restarting its count)
                if ua > st[_OVER_UA]:
                    # over_current's second sample, converted at once in this pass (pins
                    # unchanged): one noisy conversion trips nothing, and an onset is cut one
                    # sample period after it at most, leaving half the 2 ms bound for hold-offs
                    # of a soft-timer path (the ESP32) and the path's own time
                    if int(io[_IO_UA]()) > st[_OVER_UA] and int(io[_IO_A]()) == a and int(io[_IO_B]()) == b:
                        reason = _R_OVER
                if ua > st[_DENSE_UA]:
                    st[_DENSE] += 1
                    if st[_DENSE] >= st[_DENSE_SAMPLES] and reason == 0:
                        reason = _R_DENSE
                else:
                    st[_DENSE] = 0
                # a DC fault: current the sense is sure of that does not flow the way the bridge
                # drives it (reversed, or bypassing the electrodes); a smaller reading judges nothing
                if (ua << 4) >= st[_ZERO16] + (_POLARITY_ABOVE_ZERO_UA << 4):
                    if fl:
                        st[_WRONG] = 0
                    else:
                        st[_WRONG] += 1
                        if st[_WRONG] >= _POLARITY_SAMPLES and reason == 0:
                            reason = _R_POLARITY
                # a comparator stuck high, seen on a waveform without off times too: while current
                # flows one way (its comparator high) the other must read low, both high cannot be
                if fl:
                    k = _HIGH_B
                    if br == 1:
                        hi = int(io[_IO_FB]())
                    else:
                        k = _HIGH_A
                        hi = int(io[_IO_FA]())
                    if hi:
                        st[k] += 1
                        if st[k] >= _IDLE_SAMPLES and reason == 0:
                            reason = _R_SENSE
                    else:
                        st[k] = 0
                cmd_ua = int(stage.out_ua)
                # below PROGRAM_MIN_UA (the soft start rounded down, a ramp-down's tail) the
                # sense is too coarse for an impedance or a low reading; compliance reached
                # still says an open electrode at any current
                judged = cmd_ua >= st[_PROGRAM_MIN_UA]
                if cmd_ua > 0 and ((mv >= st[_COMPLIANCE_MV] and ua * 10 < cmd_ua * 9)
                                   or (judged and ua > 0 and mv * 1000 >= st[_OPEN1_OHM] * ua)):
                    # contact_lost: compliance reached below the setpoint, or impedance above open_ohm
                    st[_OPEN] += 1
                    if st[_OPEN] >= st[_CONTACT_SAMPLES] and reason == 0:
                        reason = _R_CONTACT
                    st[_BAD_MS] = -1
                elif not judged:
                    st[_OPEN] = 0
                    st[_BAD_N] = 0
                else:
                    st[_OPEN] = 0
                    # sense_fault: commanded >= 50 uA (and twice the sense's floor), measured
                    # < 20 % of it, contact good, for 50 ms
                    if cmd_ua >= st[_SENSE_MIN_UA] and ua * 100 < cmd_ua * st[_SENSE_PERCENT]:
                        st[_BAD_N] += 1
                        now = int(time.ticks_ms())  # pyright: ignore[reportArgumentType] (a viper cast)
                        if st[_BAD_MS] < 0:
                            st[_BAD_MS] = now
                        elif int(_ticks_diff(now, st[_BAD_MS])) >= st[_SENSE_MS] and reason == 0:
                            reason = _R_SENSE
                    else:
                        st[_BAD_MS] = -1
                        st[_BAD_N] = 0
                    # sense_fault: a frozen ADC (both raw conversions as on the last judged
                    # on-sample; the current's is its last: over_current's second, where taken)
                    conv = ptr32(self._conv)
                    if conv[0] == st[_LAST_I] and conv[1] == st[_LAST_V]:
                        st[_FROZEN] += 1
                        if st[_FROZEN] >= _FROZEN_SAMPLES and reason == 0:
                            reason = _R_SENSE
                    else:
                        st[_FROZEN] = 0
                        st[_LAST_I] = conv[0]
                        st[_LAST_V] = conv[1]
                if st[_MEASURING] and int(self._session.state) == int(RUN):
                    self._measure.add(br, ua, mv, self._out.code)
            elif br == 0:
                # no current path: what the sense reads must be ~0, and neither polarity comparator
                # may say current flows (one stuck high hides a DC fault in its own direction; with
                # the rail on, a session's off times, it reads low unless stuck)
                if ua > st[_IDLE_UA] or int(io[_IO_FA]()) or int(io[_IO_FB]()):
                    st[_IDLE] += 1
                    if st[_IDLE] >= _IDLE_SAMPLES:
                        reason = _R_SENSE
                else:
                    st[_IDLE] = 0
            if reason:
                st[_ARMED] = 0
                self._cut(reason)
            elif int(stage.state) == _STAGE_CLOSING:
                self._deadline()
        except KeyboardInterrupt:
            self.interrupted = True
        except Exception:
            # a failing sense must not leave output unsupervised
            ptr32(self._st)[_ARMED] = 0
            self._cut(_R_SENSE)

    def _cut(self, code):
        """A trip: name it, cut through GPIO now (stage.fast_cut). Where the over-current latch
        gated the bridge off, what this path saw (no current where the bridge drives) is the
        latch's doing: `over_current` (one pin read, on a trip only)."""
        if int(self._out.latch_tripped()):
            code = _R_OVER
        reason = _REASONS[code]
        self.reason = reason
        self._stage.fast_cut(reason)

    def _deadline(self):
        """The closing window's hard deadline: off regardless, no fault."""
        stage = self._stage
        if not stage.halted and _ticks_diff(time.ticks_ms(), stage.close_by) >= 0:
            stage.fast_cut(None)

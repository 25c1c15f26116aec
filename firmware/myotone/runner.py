# Runs a program's phases (zones) from the main loop: sets the LED
# intensity and the microcurrent setpoint of each phase, in session time.
#
# plan() does every check that depends on the board and the pulse
# back-end -- NIR only with eye shields, the per-session LED dose cap, the
# timing of every waveform, the current-density limit -- so a program that
# cannot run as written is refused before any output, never degraded.
#
# Current changes always ramp (Session.change_setpoint). A phase with no
# current ramps down to zero and then asks the output stage (stage.py) to
# close (the pair under way ends, then bridge, rail and DAC off); a phase
# with another waveform passes through zero the same way and starts the new
# waveform from nothing once the stage is off, so every pulse back-end can
# do it and no pair is ever cut while current flows. The runner never
# touches the hardware itself: it asks the stage, which may refuse.
from myotone import limits, programs
from myotone import session as S
from myotone import monitor as M
from myotone.stage import OFF as STAGE_OFF
from myotone.programs import ProgramError
from myotone.pulse import TimingUnsupported
from myotone.fastpath import unsupervised

NIR_UNAVAILABLE = "nir_unavailable"
DOSE_CAP = "dose_cap"


class Plan:
    def __init__(self, name, prog, base_ua, phases, density_ua, dose_uj):
        self.name = name
        self.prog = prog
        self.base_ua = base_ua
        self.phases = phases          # [(end_ms, Waveform or None, wave key, current_pct, red_pct, nir_pct)]
        self.density_ua = density_ua
        self.dose_uj = dose_uj
        self.duration_ms = phases[-1][0]
        self.microcurrent = density_ua > 0


def _wave_key(p):
    return (p["hz"], p["phase_us"], p["gap_us"], p["alternate"], p["burst_on_ms"], p["burst_off_ms"])


def pair_ms(wave):
    """The longest time between two pulse pairs of `wave` (its period, plus a burst's off
    time), rounded up; 0 for no waveform. A rising ramp lasts >= RAMP_MIN_PAIRS of these."""
    return 0 if wave is None else (wave.period_us + wave.burst_off_ms * 1000 + 999) // 1000


def off_short(wave):
    """The off time after a pair of `wave` (its period less both phases and the gap) is shorter
    than an output slice: a slice may not see it (session.ramp_down_ms)."""
    return wave is not None and wave.period_us - 2 * wave.phase_us - wave.gap_us < 1000000 // limits.BOOKKEEPING_HZ


def first_wave(prog):
    """The waveform of a program's first phase with current (None: LED only)."""
    for p in prog["phases"]:
        if p["current_pct"]:
            return programs.waveform(p)
    return None


def phase_ua(base_ua, pct, density_ua):
    if not pct:
        return 0
    return max(limits.PROGRAM_MIN_UA, min(base_ua * pct // 100, density_ua))


def plan(led, pulse, area_cm2, limit_ua, sample_hz, name, prog, base_ua):
    """Check a validated program against this board (its LED, pulse back-end, electrode
    area, limit and the fast path's sampling rate); ProgramError or TimingUnsupported."""
    phases = prog["phases"]
    if any(p["nir_pct"] for p in phases) and not led.has_nir:
        raise ProgramError("NIR light needs a board with the NIR channel and eye shields", NIR_UNAVAILABLE)
    dose_uj = 0
    for p in phases:
        dose_uj += led.planned_uj(p["red_pct"], p["nir_pct"], p["duration_s"])
    if dose_uj > limits.LED_DOSE_MAX_MJ_CM2 * 1000:
        raise ProgramError("LED dose %.2f J/cm2 is above the session cap of %.1f J/cm2"
                           % (dose_uj / 1e6, limits.LED_DOSE_MAX_MJ_CM2 / 1000), DOSE_CAP)
    out = []
    end_ms = 0
    density_ua = 0
    for p in phases:
        wave = None
        if p["current_pct"]:
            wave = programs.waveform(p)
            why = unsupervised(wave, sample_hz)
            if why:
                raise TimingUnsupported(why)
            pulse.prepare(wave)           # TimingUnsupported if the back-end cannot play it
            d = M.max_peak_ua(area_cm2, wave.duty_permille())
            density_ua = d if density_ua == 0 else min(density_ua, d)
        end_ms += p["duration_s"] * 1000
        out.append((end_ms, wave, _wave_key(p), p["current_pct"], p["red_pct"], p["nir_pct"]))
    if density_ua:
        if base_ua is None:
            raise ProgramError("missing field ua (the program has microcurrent)", "bad_request")
        if not limits.PROGRAM_MIN_UA <= base_ua <= limit_ua:
            raise ProgramError("ua must be %d..%d uA" % (limits.PROGRAM_MIN_UA, limit_ua))
        if density_ua < limits.PROGRAM_MIN_UA:
            raise ProgramError("this waveform exceeds 0.5 mA/cm2 rms even at the minimum")
        for k, ph in enumerate(out):
            if ph[3] and min(base_ua * ph[3] // 100, density_ua) < limits.PROGRAM_MIN_UA:
                raise ProgramError("phase %d: %d %% of %d uA is below %d uA"
                                   % (k + 1, ph[3], base_ua, limits.PROGRAM_MIN_UA))
    return Plan(name, prog, base_ua or 0, out, density_ua, dose_uj)


class Runner:
    """The program's phases, with the collaborators they need: the session (time, ramps),
    the output stage (switching), the pulse back-end (compiling a phase's table), the
    LED, the monitor, and `new_zone()`, called when current starts in a zone."""

    def __init__(self, session, stage, pulse, led, monitor, new_zone):
        self.session = session
        self.stage = stage
        self.pulse = pulse
        self.led = led
        self.monitor = monitor
        self.new_zone = new_zone
        self.plan = None
        self.k = -1
        self.mc_on = False
        self._key = None
        self._pending = False
        self._swap = False

    def ua(self, k):
        ph = self.plan.phases[k]
        return phase_ua(self.plan.base_ua, ph[3], self.plan.density_ua)

    def begin(self, p, now_ms):
        """Start plan `p` (the supervisor has checked faults and conditions)."""
        self.plan = p
        self.k = 0
        self._pending = False
        self._swap = False
        self.led.begin()
        ua = self.ua(0)
        self._pair_ms(p.phases[0][1])
        self.session.begin(ua, p.duration_ms, now_ms)
        if ua:
            self._stage_on(0)
        ph = p.phases[0]
        self.led.set_percent(ph[4], ph[5])

    def _pair_ms(self, wave):
        """The session's ramps are timed to this waveform's pairs (Session.pair_ms, off_short)."""
        self.session.timed_to(pair_ms(wave), off_short(wave))

    def _stage_on(self, k):
        ph = self.plan.phases[k]
        self._pair_ms(ph[1])
        table = self.pulse.prepare(ph[1])  # milliseconds on the chip: the tick may trip meanwhile
        self._key = ph[2]
        self.mc_on = True
        # the session's current target (the soft start, at begin) is on the DAC before
        # the first phase: the first pulse is whole and the ramp is timed from it. The
        # stage re-checks the latched fault and the session at the moment it switches on.
        if self.stage.switch_on(table, self.session.target_na // 1000, ph[1].period_us):
            self.new_zone()           # a new zone: a new impedance baseline

    def stage_off(self, now_ms):
        """Zero current reached: the stage closes after the pair under way."""
        self.mc_on = False
        self._key = None
        self.stage.close(now_ms)

    def _enter(self, k):
        sess = self.session
        self.k = k
        self._pending = False
        self._swap = False
        ph = self.plan.phases[k]
        self.led.set_percent(ph[4], ph[5])
        ua = self.ua(k)
        if ua == 0:
            if self.mc_on:
                sess.change_setpoint(0)
        elif not self.mc_on:
            self._swap = True          # switched on by step() once the stage is off
        elif ph[2] == self._key:
            sess.change_setpoint(ua)
        else:                         # another waveform: through zero first
            sess.change_setpoint(0)
            self._pending = True

    def step(self, now_ms):
        """Main loop: follow the session's time through the phases."""
        sess = self.session
        st = sess.state
        if self.plan is None or (st != S.RAMP and st != S.RUN):   # (a tuple here: 16 B a pass)
            return
        if self._swap and self.stage.state == STAGE_OFF:
            self._swap = False         # the old waveform is off: the new one from nothing
            self._stage_on(self.k)
            sess.change_setpoint(self.ua(self.k))
            return
        phases = self.plan.phases
        t = sess.elapsed_ms()
        k = 0
        while k < len(phases) - 1 and t >= phases[k][0]:
            k += 1
        if k != self.k:
            self._enter(k)
        if sess.target_na or sess.state != S.RUN:
            return
        if self._pending:             # at zero: close the old waveform, then swap (above)
            self._pending = False
            self._swap = True
            self.stage_off(now_ms)
        elif self.mc_on and self.ua(self.k) == 0:
            self.stage_off(now_ms)

    def resume(self):
        """A paused session ramps again from the minimum; the phase's waveform restarts
        from its first pair (the stage switches on again, with its checks). False if
        nothing is paused."""
        sess = self.session
        if not sess.resume():
            return False
        # the soft-start current is on the DAC before the first pair (as at start)
        self.reopen()
        return True

    def reopen(self, ramp_down=-1):
        """The phase's waveform on again from its first pair, at the session's target (a
        resume; after a checkpoint held the output: checkpoint.py). Nothing in a phase
        without current; the stage refuses unless the session ramps or runs -- or is still in
        `ramp_down`, the ramp-down a hold began in -- with no fault."""
        if not self.mc_on:
            return False
        return self.stage.switch_on(self.stage.table, self.session.target_na // 1000, self.period_us(),
                                    ramp_down)

    def period_us(self):
        """The period of the waveform of the phase under way (its last pair's deadline)."""
        wave = self.plan.phases[self.k][1] if self.plan is not None else None
        return wave.period_us if wave is not None else 0

    def set_base_ua(self, ua):
        """A new setpoint for the session (the button's intensity step)."""
        if self.plan is None or not self.plan.microcurrent:
            return False
        self.plan.base_ua = ua
        if self.mc_on and not self._pending and self.ua(self.k):
            self.session.change_setpoint(self.ua(self.k))
        return True

    def end(self):
        self.plan = None
        self.mc_on = False
        self._key = None
        self._swap = False

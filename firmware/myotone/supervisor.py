# The supervisor: a ~1 kHz timer tick that samples, ramps, trips and drives
# the LED, and a main loop that serves the protocol, runs the program's
# phases, the button and the status LED, emits events, writes the session
# log (at checkpoints during a session and after it, always with the output
# stage off), and feeds the watchdog.
#
# The tick is a soft timer callback: it preempts the main loop between
# bytecodes, so a long command never delays a trip. It allocates nothing.
# Hardware objects come in through `hw` (see hardware.py).
import micropython
import time
from array import array
from micropython import const
from myotone import VERSION, limits, programs, store
from myotone import protocol as P
from myotone import session as S
from myotone import monitor as M
from myotone import runner as R
from myotone import thermal, clock
from myotone.filecmds import FileCommands, program_error
from myotone.programs import ProgramError
from myotone.pulse import TimingUnsupported
from myotone.sessionlog import SessionLog
from myotone.checkpoint import Checkpoints
from myotone.heap import Heap
from myotone.standalone import Panel
from myotone.report import Report
from myotone.measure import Measure
from myotone.fastpath import FastPath
from myotone.service import PauseResume, Unit, Measuring, ClockSet
from myotone import stage as ST
from myotone.stage import ON as STAGE_ON, OFF as STAGE_OFF, CLOSING as STAGE_CLOSING
from myotone.session import RAMP, RUN, DONE, PAUSED   # one global lookup each on the tick path

# the states the viper output slice compares, inlined (an imported name is a global lookup and an
# object comparison each time); checked against their modules at import
_ST_OFF = const(0)
_ST_ON = const(2)
_ST_CLOSING = const(3)
_S_RAMP = const(1)
_S_RUN = const(2)
_S_DONE = const(4)
_S_PAUSED = const(7)
_S_ACTIVE = const(0xCE)         # session.ACTIVE_MASK
if (STAGE_OFF, STAGE_ON, STAGE_CLOSING, RAMP, RUN, DONE, PAUSED, S.ACTIVE_MASK) != (
        _ST_OFF, _ST_ON, _ST_CLOSING, _S_RAMP, _S_RUN, _S_DONE, _S_PAUSED, _S_ACTIVE):
    raise ImportError("supervisor: a stage or session state's number changed")

BOOKKEEPING_SLICES = const(4)   # output, environment, books, LED: one per bookkeeping call
_DAC_CHECK_EVERY = const(10)    # environment slices (100 Hz) between two DAC checks: 10 Hz
_LOOP_MS = const(20)
_POLL_LINES = const(4)       # lines handled per main-loop pass ...
_POLL_BYTES = const(1024)    # ... and bytes read
_LINE_IDLE_MS = const(2000)  # an unfinished line idle this long is dropped (resync)
_LEDGER_FULL_UA = const(1 << 22)   # moved charge (uA x phases) past which no in-pair rise can
                                   # reach 1 % (all of them: < 1000 uA x phases): the ledger stops
# the output slice's numbers (Supervisor._amp, an int array: the viper slice reads them free)
_A_MOVED_UA = const(0)             # the in-pair ledger (_rise_fits): charge the pairs moved ...
_A_IN_PAIR_NA = const(1)           # ... the rises written inside a pair ...
_A_PAIRS = const(2)                # ... and the pair count it was last brought up to
_A_PERMILLE = const(3)             # limits.IN_PAIR_NET_PERMILLE
_A_PAIRS_SEEN = const(4)           # the pair count the last slice saw
_A_AT_SET = const(5)               # the pair count at the last amplitude step
_A_OFF = const(6)                  # the pair count when a slice last saw an off time
_A_SET_NA = const(7)               # the target the last amplitude step set, and the code it left
_A_SET_CODE = const(8)             # on the DAC (an unchanged pair needs no transfer)
_A_BASELINE_NA = const(9)          # limits.PROGRAM_MIN_UA in nA: the least target a baseline is taken at
_A_PENDING = const(10)             # a code decided inside a pair, written at the next call; -1: none

_START = {
    "program": ("str", True), "ua": ("int", False), "duration_s": ("int", False),
    "hz": ("num", False), "phase_us": ("int", False), "gap_us": ("int", False),
    "alternate": ("bool", False), "burst_on_ms": ("int", False), "burst_off_ms": ("int", False),
    "red_pct": ("int", False), "nir_pct": ("int", False),
    "heartbeat": ("bool", False), "telemetry_ms": ("int", False),
}
# `measure`: start's arguments less the two it sets itself, plus the hold time
_MEASURE = {k: v for k, v in _START.items() if k not in ("duration_s", "heartbeat")}
_MEASURE["hold_s"] = ("int", False)
_MEASURE["program"] = ("str", False)         # lift unless given
_NONE = {}


class Supervisor:
    def __init__(self, board, hw, console):
        self.board = board
        self.hw = hw
        self.console = console
        self.output = hw.output
        self.pulse = hw.pulse
        self.sense = hw.sense
        self.led = hw.led
        self.limit_ua = board["limit_ua"]
        self.hz = board["supervisor"]["hz"]
        self.session = S.Session(self.limit_ua, self.output)   # ramps as the output delivers them
        # the one owner of the rail, the bridge / pulse back-end and the DAC
        self.stage = ST.OutputStage(self.output, self.pulse, self.led, self.session)
        therm = board["thermistor"]
        self.monitor = M.Monitor(board, self.limit_ua, thermal.raw_for_c(therm, limits.OVER_TEMP_C),
                                 self.sense.floor_ua)
        self.runner = R.Runner(self.session, self.stage, self.pulse, self.led, self.monitor, self.rebaseline)
        self.log = SessionLog(self.hz, board["name"], hw.unit_id)   # counters from the fast path, at hz
        # garbage collected only with the output stage off (heap.py)
        self.heap = Heap(console, board["supervisor"]["gc"] == "output_off")
        # the session's record at intervals, written with the output stage off (checkpoint.py);
        # its holds collect the heap too
        self.checkpoints = Checkpoints(self.stage, self.session, self.pulse, self.runner,
                                       self._checkpoint, self.heap, console.has_input)
        try:
            store.recover()
        except OSError:
            pass                     # a read-only or full flash: sessions still work, logs do not
        self.panel = Panel(hw.button, hw.status_led, self.limit_ua, store.settings_load(), self.session,
                           self.stage, self.runner, self.start_program, self.stop, self.fault_clear,
                           self.state_name, console.write_line)
        self.files = FileCommands(self.check_output_off, self.output_busy, self.plan_program, self.limit_ua,
                                  self.session, self.panel)
        # what the host sees (hello, status, telemetry, the state shown) and the service commands
        self.report = Report(board, hw, self.session, self.stage, self.runner, self.led, self.monitor,
                             self.output, self.panel, self.log, self.environment)
        self.measure = Measure()
        self.measuring = Measuring(self.measure, self.session, self.output, self.stage, self.report,
                                   console.write_line, self.files.load_program, self.cmd_start, self.limit_ua,
                                   _MEASURE)
        # where handle() looks for a command after the supervisor's own cmd_*
        self._commands = (self.files, PauseResume(self.session, self.stage, self.runner, self.report,
                                                  self.check_output_allowed),
                          Unit(board, hw, self.output, self.check_output_off), self.measuring,
                          ClockSet(hw, self.log))
        self.env = None              # charging / over_temp right now (refuses starts)
        self.temp_raw = 65535
        self._was_run = False
        # the output slice's numbers (_A_*): the in-pair ledger since the stage switched on -- the
        # charge the pairs moved (uA x phases, saturating) and the worst-case net of the rises
        # written inside a pair (nA x phases: a rise written in the gap between a pair's phases
        # puts it all in one polarity) -- and the pair counts and the last step's target and code
        self._amp = array("i", [0, 0, 0, limits.IN_PAIR_NET_PERMILLE, -1, -1, -1, -1, -1,
                                limits.PROGRAM_MIN_UA * 1000, -1])
        self._dac_n = 0
        self.reader = P.LineReader()
        self._rx_ms = 0              # when input last arrived
        self._fault_sent = False
        self._pending_fault = None   # a reason that latches when ramp-down ends
        self.ticks = 0                  # the bookkeeping tick's slices (a dead tick: no feed) ...
        self.cut_calls = 0              # ... and its calls that finished a cut (_finish_cut)
        self._fed_at_tick = -1
        self._state_sent = -1
        self._shown_sent = None      # the state name last sent (Report.state_shown)
        self._hb_ms = 0
        self._heartbeat = False
        self._telemetry_ms = 1000
        self._telemetry_at = 0
        self._log_t0 = 0
        self.fast = FastPath(self.sense, hw.bridge.pin_a, hw.bridge.pin_b, hw.flow_a, hw.flow_b, hw.vbus,
                             self.output, self.stage, self.monitor, self.measure, self.session)
        self._d = array("i", [0] * 9)   # the fast path's sums since the last bookkeeping tick
        self._fast_cb = self.fast.run   # bound once: the ticks must not allocate
        self._tick_cb = self.tick
        self._interrupted = False       # Ctrl-C caught in the tick, for the main loop to raise

    # ---- the ticks ------------------------------------------------------
    # The fast path (fastpath.py) samples and trips at `hz`, from a hard interrupt on rp2.
    # The bookkeeping tick (a soft timer at BOOKKEEPING_SLICES x BOOKKEEPING_HZ) runs one
    # slice per call, so each slice runs at BOOKKEEPING_HZ and no call holds the main loop
    # off for long: the output (the playhead, the end of the last pair, heartbeat, ramp, the
    # amplitude between pairs, in one slice: the pair state it reads is the one it acts on),
    # the environment (thermistor, charger), the books (the fast path's sums: telemetry,
    # log, impedance, charge balance) and the LED with its dose. A cut begun (the fast path's,
    # or the end of output) is finished first, in a call of its own before the next slice (two
    # for a session's end: _finish_cut). docs/safety.md gives each cadence and why its bounds
    # hold.
    @micropython.native
    def tick(self, _timer):
        try:
            if self.stage.halted:
                self._finish_cut()      # a call of its own; the slices wait a call, none is lost
                return
            self.ticks += 1
            k = self.ticks & 3
            if k == 0:
                self._output_slice(time.ticks_ms())
            elif k == 1:
                self._environment_slice()
            elif k == 2:
                self._books_slice(time.ticks_ms())
            else:
                self._led_slice()
        except KeyboardInterrupt:
            # Ctrl-C landed in the tick: MicroPython would print it and go on, so mpremote
            # would never reach the REPL; the main loop raises it again (main.py: safe first)
            self._interrupted = True

    def _finish_cut(self):
        """A cut's first half was made (stage.halt: the fast path's trip or deadline, or the end
        of output from the output slice): the rest of it -- DAC to 0, the back-end stopped, the
        latch re-armed (stage.cut) -- and, for a session that ended, its end, in two tick calls
        (all in one took 0.66 ms on the RP2040): first the LED and a pending fault (_end_first),
        with the rail and the bridge off and the stage still reading CLOSING, so the main loop
        neither switches on, nor shows `done`, nor writes the record; then the cut and the fast
        path disarmed (_end_last): every trip stays armed until the stage is off."""
        self.cut_calls += 1
        fast = self.fast
        reason = fast.reason
        fast.reason = None
        if reason is not None:
            self._trip(reason)
            return
        stage = self.stage
        if stage.halted == 2:                # the end's first half ran at the last call
            stage.cut()
            self._end_last()
        elif self.session.active():
            stage.cut()                      # a pause's or a hold's last pair, or its deadline
        else:
            stage.halted = 2                 # (stage.py: the end's first half, the cut next call)
            self._end_first()

    @micropython.viper
    def _output_slice(self, now):
        # viper: its own numbers are in an int array (_amp) and its arithmetic is the CPU's; each
        # other object's attribute is read once (on the RP2040 a lookup costs 3-5 us, and this
        # slice made ~60). The pair state is read again where the write is decided: a timer
        # back-end's interrupt moves it.
        amp = ptr32(self._amp)
        pulse = self.pulse
        pulse.sample()
        pairs = int(pulse.pairs)
        out = self.output
        code = int(out.code)                    # the DAC's code: only this slice's write moves it
        if pairs != amp[_A_PAIRS_SEEN]:         # a pair began at the code on the DAC now
            amp[_A_PAIRS_SEEN] = pairs
            out.pair_code = code
        sess = self.session
        stage = self.stage
        sst = int(stage.state)
        if sst == _ST_CLOSING and stage.closed(now):
            return                              # halted: the next tick call finishes the cut
        st = int(sess.state)
        if not (_S_ACTIVE >> st) & 1:           # Session.active(), without a call
            return
        if self._heartbeat and time.ticks_diff(now, self._hb_ms) > limits.HEARTBEAT_TIMEOUT_MS:
            self._heartbeat = False
            self._pending_fault = M.HEARTBEAT_LOST
            sess.request_stop()
            st = int(sess.state)
        live = sst == _ST_ON
        if live:
            if not sess.live:
                # switched on at the target: the first pair is whole
                amp[_A_AT_SET] = pairs
                amp[_A_OFF] = pairs
                amp[_A_SET_NA] = -1             # the stage wrote its own first code
                amp[_A_PENDING] = -1
                amp[_A_MOVED_UA] = 0
                amp[_A_IN_PAIR_NA] = 0
                amp[_A_PAIRS] = pairs
            if st == _S_RAMP:
                if amp[_A_MOVED_UA] < _LEDGER_FULL_UA:
                    amp[_A_MOVED_UA] = amp[_A_MOVED_UA] + ((pairs - amp[_A_PAIRS]) & 0xFFFF) * 2 * int(stage.out_ua)
                amp[_A_PAIRS] = pairs
        if not pulse.in_pair:
            amp[_A_OFF] = pairs                 # an off time this slice saw
        target = int(sess.step(now, live))
        st = int(sess.state)
        if st == _S_RUN and not self._was_run and int(sess.target_na) >= amp[_A_BASELINE_NA]:
            self._was_run = True
            self.monitor.capture_baseline()
        if not live:
            if st == _S_DONE and int(stage.state) == _ST_OFF:
                self._ended()
            return
        if st == _S_DONE or st == _S_PAUSED:
            # the end or a pause: the pair under way finishes (no net charge left behind); if
            # none plays, the rail and the bridge go off now and the next tick call finishes
            stage.close(now, True)
            return
        in_pair = int(pulse.in_pair)
        pairs = int(pulse.pairs)
        if in_pair and (pairs == amp[_A_AT_SET] or ((pairs - amp[_A_OFF]) & 0xFFFF) < 2):
            return
        # amplitude changes only between pairs (ramps stay charge-balanced): in an off time a
        # slice sees; when a whole pair went by without one (no off time, or one too short for
        # the 10 ms slices) at each new pair, one ramp step inside it
        amp[_A_AT_SET] = pairs
        mon = self.monitor
        if int(mon.scale_pct) < 100:            # engaged (one attribute when not: no call)
            sp = int(sess.setpoint_ua)
            cap = int(mon.scale(sp))
            if cap < sp and cap < target:
                # scaling engaged: the target falls at once; un-scaling comes back as a ramp,
                # never a step. (A lower setpoint alone -- a phase change, stop -- is a ramp
                # down, not a cap.)
                sess.limit_to(cap)
        na = int(sess.target_na)
        if na != amp[_A_SET_NA] or code != amp[_A_SET_CODE]:
            new = int(out.code_for_na(na))
            if new != code:
                if in_pair:
                    if new > code and not self._rise_fits(out, new):
                        sess.hold_at(out.na_for_code(code))   # the rise waits: a later pair, an off time
                        return
                    # inside a pair (the ledger has it): written by the next bookkeeping call, in
                    # this pair, a later one or an off time alike (_write_pending), so no call
                    # makes both the step and the write (~90 us: I2C and three calls)
                    amp[_A_PENDING] = new
                    amp[_A_SET_NA] = na
                    amp[_A_SET_CODE] = new
                    return
                stage.set_code(new)
                code = int(out.code)
            amp[_A_SET_NA] = na
            amp[_A_SET_CODE] = code
        if in_pair and code > int(out.pair_code):
            out.pair_code = code                # written inside the pair under way: it plays it

    @micropython.viper
    def _rise_fits(self, out, code) -> bool:
        """A rise (to `code`, above the DAC's) written inside a pair leaves up to its step x one
        phase of net charge: it is written only while the ledger's rises stay within
        IN_PAIR_NET_PERMILLE of the charge the pairs moved since switch-on (an 8-bit DAC's first
        step from the soft start is 50 % of it: one in the first pairs was 3 % of a 10 s window).
        Falls always fit (not asked): they undo the rises' net (the later phase carries the newer
        amplitude) or end the output."""
        amp = ptr32(self._amp)
        moved = amp[_A_MOVED_UA]
        if moved >= _LEDGER_FULL_UA:
            return True
        rise = int(out.rise_na(code))
        if amp[_A_IN_PAIR_NA] + rise > moved * amp[_A_PERMILLE]:
            return False
        amp[_A_IN_PAIR_NA] = amp[_A_IN_PAIR_NA] + rise
        return True

    @micropython.viper
    def _write_pending(self):
        """The amplitude step the output slice decided inside a pair (its rise already in the
        in-pair ledger), 2.5 ms later: written only while the stage is on (a cut or a close
        meanwhile: nothing, and the next output slice works it out again). The pair it lands in
        plays it, or the next one does (an off time): either way no pair plays more than it."""
        amp = ptr32(self._amp)
        code = amp[_A_PENDING]
        amp[_A_PENDING] = -1
        stage = self.stage
        if int(stage.state) != _ST_ON:
            return
        stage.set_code(code)
        out = self.output
        c = int(out.code)
        if c > int(out.pair_code):
            out.pair_code = c

    @micropython.native
    def _environment_slice(self):
        if self._amp[_A_PENDING] >= 0:
            self._write_pending()
        hw = self.hw
        self.temp_raw = hw.read_temp_raw()
        self.env = env = self.monitor.environment(self.temp_raw, hw.vbus.value())
        # every trip stays armed until the output stage is off, the last pair included
        if env is not None and (self.session.active() or self.stage.state == STAGE_CLOSING):
            self._trip(env)
            return
        if self.stage.latched():            # the over-current latch gated the bridge off
            self._trip(M.OVER_CURRENT)
            return
        self._dac_n += 1
        if self._dac_n >= _DAC_CHECK_EVERY:
            self._dac_n = 0
            self.stage.verify_dac()         # a DAC that left the bus is a fault within 100 ms

    @micropython.native
    def _books_slice(self, now):
        d = self._d
        self.fast.take(d)
        led = self.led
        self.log.add(d, led.red_duty if led.red_duty >= led.nir_duty else led.nir_duty)
        if not self.session.active() and self.stage.state != STAGE_CLOSING:
            return
        mon = self.monitor
        mon.track(d[1], d[3], d[4])
        reason = mon.charge(now, d[5], d[6], d[7], d[8])
        if reason is not None:
            self._trip(reason)

    @micropython.native
    def _led_slice(self):
        sess = self.session
        if sess.active():
            self.led.tick(self.temp_raw, sess.state == RAMP or sess.state == RUN)

    def state_name(self):
        """The state as the host sees it (Report.state_shown: a blinded arm's is `run` between)."""
        return self.report.state_name()

    def environment(self):
        """The environment slice's last reading: (thermistor raw, charging / over_temp or None)."""
        return self.temp_raw, self.env

    # No properties on this class (tests/test_layers.py): on MicroPython a class with one makes
    # every `self.x = ...` first look x up in the class's table (a setter?), which the
    # bookkeeping tick pays on each of its stores -- ~50 us a call with `fault` and
    # `interrupted` as properties. The latched fault is self.stage.fault.

    def _ended(self):
        """The session is done and the output stage off: the LED dark, a pending fault latched
        (or the one the cut found), the fast path disarmed."""
        self._end_first()
        self._end_last()

    def _end_first(self):
        """A session's end, first half (the rail and the bridge off): the LED dark, a pending
        fault latched -- its trip cuts, and disarms, at once."""
        self.led.off()
        pending = self._pending_fault
        if pending is not None:
            self._trip(pending)

    def _end_last(self):
        """A session's end, second half (the output stage off): the fast path disarmed; a fault
        the cut latched (the DAC did not answer) ends the session as a fault."""
        self.fast.disarm()
        if self.stage.fault is not None:
            self.session.trip()

    def _trip(self, reason):
        self._pending_fault = None
        self.fast.disarm()
        self.stage.trip(reason)

    def _end_now(self):
        """stop / fault_clear while the last pair plays: the session ends now."""
        if self.stage.state == ST.CLOSING and not self.session.active():
            self.stage.cut()
            self._ended()

    def rebaseline(self):
        """The runner started the current in a new zone: capture a new baseline."""
        self._was_run = False

    # ---- commands (main loop) -------------------------------------------
    def handle(self, line):
        if len(line) > P.LIVE_MAX_LINE and self.stage.state != ST.OFF:
            # parsing it would hold the ESP32's fast path off for ms (protocol.quick_id), and
            # nothing that long runs while the output is on: the flash commands wait for it off
            return P.error(P.quick_id(line), P.BUSY, "the output is on: a request longer than %d bytes"
                           " waits until it is off" % P.LIVE_MAX_LINE)
        req_id = None
        try:
            req_id, cmd, args = P.parse(line)
            name = "cmd_" + cmd
            fn = getattr(self, name, None)
            for part in self._commands:
                if fn is not None:
                    break
                fn = getattr(part, name, None)
            if fn is None:
                raise P.ProtocolError(P.UNKNOWN_CMD, "unknown command " + P.shown(cmd))
            out = fn(args)
            if isinstance(out, P.Raw):
                return P.reply_raw(req_id, out)
            return P.reply(req_id, **out)
        except P.ProtocolError as e:
            if req_id is None:
                req_id = P.request_id(line)
            return P.error(req_id, e.code, e.message)
        except MemoryError:          # the heap's estimate fell short: run() collects (heap.py)
            raise
        except Exception as e:       # a bug must not stop the device serving: fail safe, say so
            if not self.session.active():
                self.stage.cut()
            if req_id is None:
                req_id = P.request_id(line)
            return P.error(req_id, P.INTERNAL_ERROR, ("%s: %s" % (type(e).__name__, e))[:80])

    def cmd_hello(self, args):
        P.check_args(args, _NONE)
        return self.report.hello()

    def cmd_status(self, args):
        P.check_args(args, _NONE)
        return self.report.status()

    def plan_program(self, name, prog, ua):
        return R.plan(self.led, self.pulse, self.board["electrode_area_cm2"], self.limit_ua, self.hz,
                      name, prog, ua)

    def cmd_start(self, args):
        P.check_args(args, _START)
        self.check_can_start()
        prog = self.files.load_program(args["program"])
        try:
            prog = programs.with_overrides(args["program"], prog, args)
        except ProgramError as e:
            raise program_error(e)
        telemetry_ms = P.in_range("telemetry_ms", args.get("telemetry_ms", 1000), 100, 60000, " ms")
        plan = self.begin(args["program"], prog, args.get("ua"), args.get("heartbeat", False), telemetry_ms)
        hide = self.report.blinded()
        return {"state": self.state_name(), "program": plan.name,
                "setpoint_ua": plan.base_ua if hide else min(plan.base_ua, plan.density_ua) if plan.microcurrent else 0,
                "duration_s": plan.duration_ms // 1000,
                "density_limited": None if hide else plan.base_ua > plan.density_ua > 0,
                "led_dose_j_cm2": round(plan.dose_uj / 1e6, 3)}

    def check_can_start(self):
        if self.session.active():
            raise P.ProtocolError(P.BUSY, "a session is running: stop it first")
        self.check_output_allowed("start")

    def check_output_allowed(self, verb):
        """The one refusal check before output is asked for (start, resume, the button)."""
        if self.stage.fault is not None:
            raise P.ProtocolError(P.FAULTED, "fault latched (%s): send fault_clear" % self.stage.fault)
        if self.stage.state != ST.OFF:
            raise P.ProtocolError(P.BUSY, "the last pulse pair is finishing: try again shortly")
        if self.env is not None:
            raise P.ProtocolError(self.env, "cannot %s: %s" % (verb, self.env.replace("_", " ")))

    def output_busy(self):
        """A session runs, or the output stage is not off yet."""
        return self.session.active() or self.stage.state != ST.OFF

    def check_output_off(self):
        """Nothing writes flash or changes calibration unless the output stage is off."""
        if self.output_busy():
            raise P.ProtocolError(P.BUSY, "a session is running: the flash is written only between sessions")

    def begin(self, name, prog, ua, heartbeat, telemetry_ms):
        """Plan (every check), then start the outputs. ProtocolError if refused; for a
        blinded study arm without saying which check (it would name a phase or a waveform)."""
        blind = programs.is_blinded(prog)
        if blind and ua is None:
            raise P.ProtocolError(P.BAD_REQUEST, "missing field ua (a blinded study arm always takes one)")
        try:
            plan = self.plan_program(name, prog, ua)
        except (ProgramError, TimingUnsupported) as e:
            if blind:
                raise P.ProtocolError(P.OUT_OF_RANGE, "%s (a blinded study arm) cannot run at %d uA on this board: "
                                      "the study key gives the setpoints every arm takes" % (name, ua))
            if isinstance(e, ProgramError):
                raise program_error(e)
            raise P.ProtocolError(P.TIMING_UNSUPPORTED, str(e))
        if self.log.open:
            self._finish_log()
        self.hw.start_watchdog()
        self._was_run = False
        self._pending_fault = None
        self._heartbeat = heartbeat
        now = time.ticks_ms()
        self._hb_ms = now
        self._telemetry_ms = telemetry_ms
        self._telemetry_at = time.ticks_add(now, telemetry_ms)
        self.session.clear()
        self.monitor.begin(plan.density_ua or limits.ABS_CEILING_UA)   # its levels, then the fast path's copy
        self.fast.begin()
        self.report.begin(plan.base_ua if blind else None)
        self.panel.run_level = self.panel.level(False)
        self.log.begin(name, min(plan.base_ua, plan.density_ua) if plan.microcurrent else 0, clock.now_s(),
                       plan.duration_ms, prog.get("study"), [p.get("label", "") for p in prog["phases"]])
        self._log_t0 = now
        self.checkpoints.begin()
        self.runner.begin(plan, now)
        return plan

    def start_program(self, name, ua):
        """The button's start: the `start` command's checks, then program `name` at `ua`
        (no heartbeat, telemetry every second)."""
        self.check_can_start()
        return self.begin(name, self.files.load_program(name), ua, False, 1000)

    def cmd_stop(self, args):
        P.check_args(args, _NONE)
        return self.stop()

    def stop(self):
        self.session.request_stop()
        self._end_now()
        # the state as it is, blinded arm or not: every arm ramps down from a stop
        return {"state": S.NAMES[self.report.state_code()]}

    def cmd_heartbeat(self, args):
        P.check_args(args, _NONE)
        self._hb_ms = time.ticks_ms()
        return {}

    def cmd_fault_clear(self, args):
        P.check_args(args, _NONE)
        return self.fault_clear()

    def fault_clear(self):
        """Clear the latched fault; refused while its condition lasts or the DAC does not answer."""
        if self.env is not None:
            raise P.ProtocolError(P.CONDITION_PRESENT, "cannot clear: " + self.env.replace("_", " ") + " still present")
        self._end_now()
        if not self.stage.check_dac():
            raise P.ProtocolError(P.CONDITION_PRESENT, "cannot clear: the DAC does not answer")
        if not self.stage.check_latch():
            raise P.ProtocolError(P.CONDITION_PRESENT, "cannot clear: the over-current latch fails its test"
                                  " (it does not set, or does not clear, with the output off)")
        self.stage.clear()
        self._fault_sent = False
        self.session.clear()
        return {"state": self.state_name()}

    # ---- main loop ------------------------------------------------------
    def poll(self, wait_ms=_LOOP_MS):
        con = self.console
        if con.wait(wait_ms):
            # a bounded share of input per pass: a flooding host cannot delay
            # events or starve the watchdog feed below
            lines = n = 0
            while lines < _POLL_LINES and n < _POLL_BYTES and con.wait(0):
                n += 1
                line = self.reader.feed(con.read_byte())
                if line is P.LINE_TOO_LONG:
                    lines += 1
                    con.write_line(P.error(None, P.LINE_TOO_LONG, "line longer than %d bytes" % P.MAX_LINE))
                elif line is not None:
                    lines += 1
                    con.write_line(self.handle(line))
            self._rx_ms = time.ticks_ms()
        elif self.reader.pending() and time.ticks_diff(time.ticks_ms(), self._rx_ms) >= _LINE_IDLE_MS:
            # a line left unfinished (noise, a host that died mid-write) would
            # swallow the next request: drop it, and say so
            con.write_line(P.event("dropped", reason="partial_line", bytes=self.reader.drop()))
        now = time.ticks_ms()
        self.runner.step(now)
        self.panel.poll(now)
        if self.log.open:
            t = time.ticks_diff(now, self._log_t0)
            s = self.session
            self.log.watch(t, s.state, self.runner.k, s.setpoint_ua, self.stage.fault)
            if t >= self.log.next_ms and s.active():
                self.log.sample(t)
            if s.active():
                self.checkpoints.poll(t, now)
        self._emit_events()
        self._collect_if_due(now)
        self._feed_if_ticking()

    def _feed_if_ticking(self):
        """Feed the watchdog only if the tick ran since the last feed (a dead tick resets)."""
        if self.ticks != self._fed_at_tick:
            self._fed_at_tick = self.ticks
            self.hw.feed_watchdog()

    def _out_of_memory(self, now):
        """An allocation failed: the heap's estimate fell short (heap.py). Collected with the
        output stage off -- at once if it is off; in a session, in a hold (checkpoint.py: the
        stage closes after the pair under way, every trip armed, and switches on again after
        the collection), meanwhile the main loop only keeps the watchdog fed (its allocations
        keep failing: requests then go unanswered). Forced, with the output on, only where no
        hold can come (the stage on with no logged session active)."""
        heap = self.heap
        heap.spent()
        if self.log.open and self.session.active():
            # a hold begins (the stage on), or collects (the stage off), or switches on again
            try:
                self.checkpoints.poll(time.ticks_diff(now, self._log_t0), now)
            except MemoryError:                 # its write after the collection: the next pass
                pass
        if self.stage.state == ST.OFF:
            if heap.free_b == 0:                # not collected by the hold
                heap.collect(now)
            return
        if self.checkpoints.held or self.stage.state == ST.CLOSING:
            self._feed_if_ticking()
            time.sleep_ms(1)
            return
        self._collect_if_due(now, True)

    def _collect_if_due(self, now, failed=False):
        """The heap's budget spent: collect with the output stage off (in a session with the
        output on, the checkpoints' hold does, below the floor in a ramp-down too:
        checkpoint.py); after an allocation failed (`failed`), or below the floor with the
        stage on and no hold under way, at once, and say so (heap.py)."""
        heap = self.heap
        if not failed and not heap.low(now):
            return
        if self.stage.state == ST.OFF:
            heap.collect(now)
        elif failed or (heap.exhausted(now) and self.stage.state == ST.ON and not self.checkpoints.held):
            heap.collect(now, True)
            self.console.write_line(P.event("gc", output=self.stage.name(), forced=heap.forced,
                                            free_b=heap.free_b))

    def _finish_log(self):
        """After a session, from the main loop with the output off: write its record."""
        log = self.log
        log.sample(time.ticks_diff(time.ticks_ms(), self._log_t0), True)
        fault = self.stage.fault
        if fault is not None:
            log.fault(fault)
        self.runner.end()
        n = self._write_log(True)
        if n:
            self.console.write_line(P.event("log", n=n))

    def _checkpoint(self, due_ms):
        """During a session, from the main loop with the output stage off (checkpoint.py):
        its record so far, marked incomplete. A blinded arm's ends at the time the checkpoint
        was due (`due_ms`, the log's time), the same for every arm: when it was written
        depends on the arm's waveform (a hold waits for the pair under way)."""
        self.log.fold()
        self._write_log(False, due_ms // 1000)

    def _write_log(self, final, session_s=-1):
        """The session's record: its first write allocates the number, the later ones replace
        that record whole. Returns the number, or 0 (and an event) if the flash refused."""
        led = self.led
        cp = self.checkpoints
        head, body = self.log.record(clock.now_s(), led.dose_uj, round(led.on_ticks / led.tick_hz, 1),
                                     led.stopped, self.session.elapsed_ms() // 1000 if session_s < 0 else session_s,
                                     final, clock.is_set())
        try:
            if cp.n:
                store.log_write(cp.n, head, body)
            else:
                cp.n = store.log_append(head, body)
        except (OSError, ValueError) as e:
            self.console.write_line(P.event("log", error=str(e)))
            return 0
        return cp.n

    def _emit_events(self):
        con = self.console
        s = self.session
        # read before the fault: a trip latches its fault before it ends the session, so a
        # session seen ended here has its fault seen below, and a trip landing later leaves
        # `active` true for this pass -- the record is never written before the fault's event
        active = s.active()
        fault = self.stage.fault
        if fault is not None and not self._fault_sent:
            self._fault_sent = True
            con.write_line(P.event("fault", reason=fault))
        rep = self.report
        st = rep.state_code()
        if st != self._state_sent:
            self._state_sent = st
            shown = self.state_name()
            if shown != self._shown_sent:          # a blinded arm's state changes only as its arms' do
                self._shown_sent = shown
                con.write_line(P.event("state", state=shown, setpoint_ua=rep.setpoint_shown()))
            if st in (S.DONE, S.FAULT):
                self._telemetry(time.ticks_ms())
                if self.measure.active:
                    self.measuring.done()
        if active:
            now = time.ticks_ms()
            if time.ticks_diff(now, self._telemetry_at) >= 0:
                self._telemetry_at = time.ticks_add(self._telemetry_at, self._telemetry_ms)
                # a blinded arm's last ramp-down lasts as long as its last phase had current: unshown
                if st != S.RAMP_DOWN or not rep.blinded():
                    self._telemetry(now)
        elif self.log.open and self.stage.state == ST.OFF:   # the output is off: the flash may be written
            self._finish_log()

    def _telemetry(self, now):
        self.console.write_line(self.report.telemetry(now))

    def interrupted(self):
        """Ctrl-C landed in the fast path or the bookkeeping tick."""
        return self._interrupted or self.fast.interrupted

    def run(self):
        self.heap.start(time.ticks_ms())     # from here on, collections only as heap.py says
        self.hw.start_ticks(self._fast_cb, self._tick_cb, BOOKKEEPING_SLICES * limits.BOOKKEEPING_HZ)
        self.console.write_line(P.event("ready", firmware=VERSION, board=self.board["name"],
                                        reset_cause=self.hw.reset_cause))
        try:
            while True:
                if self.interrupted():
                    raise KeyboardInterrupt
                try:
                    self.poll()
                except MemoryError:
                    self._out_of_memory(time.ticks_ms())
        finally:
            self.heap.stop()                 # the REPL after us collects as MicroPython does

# The supervisor: a ~1 kHz timer tick that samples, ramps and trips, and a
# main loop that serves the protocol, emits events and feeds the watchdog.
#
# The tick is a soft timer callback: it preempts the main loop between
# bytecodes, so a long command never delays a trip. It allocates nothing.
# Hardware objects come in through `hw` (see hardware.py).
import time
from micropython import const
from myotone import VERSION, PROTOCOL, limits, programs
from myotone import protocol as P
from myotone import session as S
from myotone import monitor as M
from myotone import thermal
from myotone.measure import Measure
from myotone import service
from myotone.pulse import Waveform, WaveformError, TimingUnsupported

_LOOP_MS = const(20)

_START = {
    "program": ("str", True), "ua": ("int", True), "duration_s": ("int", False),
    "hz": ("num", False), "phase_us": ("int", False), "gap_us": ("int", False),
    "alternate": ("bool", False), "burst_on_ms": ("int", False), "burst_off_ms": ("int", False),
    "heartbeat": ("bool", False), "telemetry_ms": ("int", False),
}
_NONE = {}


class Supervisor:
    def __init__(self, board, hw, console):
        self.board = board
        self.hw = hw
        self.console = console
        self.output = hw.output
        self.pulse = hw.pulse
        self.sense = hw.sense
        self.limit_ua = board["limit_ua"]
        self.session = S.Session(self.limit_ua)
        therm = board["thermistor"]
        self.monitor = M.Monitor(board, self.limit_ua, thermal.raw_for_c(therm, limits.OVER_TEMP_C))
        self.env = None              # charging / over_temp right now (refuses starts)
        self.temp_raw = 65535
        self._was_run = False
        self._pairs_at_set = -1
        self.reader = P.LineReader()
        self.fault = None            # latched reason code
        self._fault_sent = False
        self._pending_fault = None   # a reason that latches when ramp-down ends
        self.ticks = 0
        self._fed_at_tick = -1
        self._state_sent = -1
        self._hb_ms = 0
        self._heartbeat = False
        self._telemetry_ms = 1000
        self._telemetry_at = 0
        self._sum_ua = 0
        self._sum_mv = 0
        self._n_on = 0
        self.last_ua = 0
        self.last_ohm = 0
        self.measure = Measure()
        self.wave_table = None
        self._closing = False
        self._tick_cb = self.tick    # bound once: the tick must not allocate

    # ---- the tick (timer callback) ------------------------------------
    def tick(self, _timer):
        now = time.ticks_ms()
        self.ticks += 1
        hw = self.hw
        pulse = self.pulse
        pulse.sample()
        # a sample right at an edge belongs to no state: -1 = unknown
        bridge = pulse.state if pulse.settled else -1
        ua = self.sense.read_ua()
        mv = self.sense.read_mv()
        self.temp_raw = hw.read_temp_raw()
        if bridge > 0:
            self._sum_ua += ua
            self._sum_mv += mv
            self._n_on += 1
        mon = self.monitor
        self.env = mon.environment(self.temp_raw, hw.vbus.value())
        sess = self.session
        if self._closing:
            # a normal end waits for the pair under way to finish: no net charge left behind
            if not pulse.in_pair or pulse.pairs != self._pairs_at_set:
                self._close()
            elif self.env is not None:
                self._trip(self.env)
            return
        if not sess.active():
            return
        if self.env is not None:
            self._trip(self.env)
            return
        reason = mon.sample(now, bridge, pulse.pairs, ua, mv, self.output.ua_for_code(self.output.code))
        if reason is not None:
            self._trip(reason)
            return
        if self._heartbeat and time.ticks_diff(now, self._hb_ms) > limits.HEARTBEAT_TIMEOUT_MS:
            self._heartbeat = False
            self._pending_fault = M.HEARTBEAT_LOST
            sess.request_stop()
        if bridge and self.measure.active and sess.state == S.RUN:
            self.measure.add(bridge, ua, mv, self.output.code)
        target = sess.step(now)
        if sess.state == S.RUN and not self._was_run:
            self._was_run = True
            mon.capture_baseline()
        if sess.state == S.DONE:
            self._closing = True
            self._pairs_at_set = pulse.pairs
            if not pulse.in_pair:
                self._close()
        elif sess.state == S.PAUSED:
            if pulse.running and (not pulse.in_pair or pulse.pairs != self._pairs_at_set):
                pulse.stop()              # paused: hold at zero with the bridge off, between pairs
        elif not self.pulse.in_pair or self.pulse.pairs != self._pairs_at_set:
            # amplitude changes only between pairs: ramps stay charge-balanced
            self._pairs_at_set = self.pulse.pairs
            self.output.set_ua(mon.scale(target))

    def state_code(self):
        """The session state as the host sees it: a session finishing its last
        pair is still ramping down, and says `done` only once the output is off."""
        return S.RAMP_DOWN if self._closing else self.session.state

    def state_name(self):
        return S.NAMES[self.state_code()]

    def _cut(self):
        self._closing = False
        self.output.off()
        self.pulse.stop()

    def _close(self):
        """The session's normal end (or a ramp-down trip's): cut, then latch any pending fault."""
        self._cut()
        if self._pending_fault is not None:
            self.session.trip()
            self.fault = self._pending_fault
            self._pending_fault = None

    def _trip(self, reason):
        self._cut()
        self.session.trip()
        self.fault = reason

    # ---- commands (main loop) -------------------------------------------
    def handle(self, line):
        req_id = None
        try:
            req_id, cmd, args = P.parse(line)
            fn = getattr(self, "cmd_" + cmd, None)
            if fn is None:
                raise P.ProtocolError(P.UNKNOWN_CMD, "unknown command " + cmd[:32])
            return P.reply(req_id, **fn(args))
        except P.ProtocolError as e:
            if req_id is None:
                req_id = P.request_id(line)
            return P.error(req_id, e.code, e.message)

    def cmd_hello(self, args):
        P.check_args(args, _NONE)
        b = self.board
        return {"protocol": PROTOCOL, "firmware": VERSION, "board": b["name"], "mcu": b["mcu"],
                "pulse_backend": b["pulse"]["backend"], "reset_cause": self.hw.reset_cause,
                "limits": {"max_ua": self.limit_ua, "min_ua": limits.PROGRAM_MIN_UA,
                           "soft_start_ua": self.session.min_ua, "ceiling_ua": limits.ABS_CEILING_UA,
                           "session_max_s": limits.SESSION_MAX_MS // 1000,
                           "hz": [limits.FREQ_MIN_MHZ / 1000, limits.FREQ_MAX_MHZ / 1000],
                           "phase_us": [limits.PHASE_MIN_US, limits.PHASE_MAX_US]}}

    def cmd_status(self, args):
        P.check_args(args, _NONE)
        s = self.session
        return {"state": self.state_name(), "setpoint_ua": s.setpoint_ua, "target_ua": s.target_na // 1000,
                "measured_ua": self.last_ua, "impedance_ohm": self.last_ohm,
                "elapsed_s": s.elapsed_ms // 1000, "duration_s": s.duration_ms // 1000,
                "fault": self.fault, "reset_cause": self.hw.reset_cause, "condition": self.env,
                "temp_c": round(thermal.c_for_raw(self.board["thermistor"], self.temp_raw), 1)}

    def cmd_programs(self, args):
        P.check_args(args, _NONE)
        return {"programs": [programs.describe(n) for n in programs.names()]}

    def cmd_start(self, args):
        P.check_args(args, _START)
        if self.fault is not None:
            raise P.ProtocolError(P.FAULTED, "fault latched (%s): send fault_clear" % self.fault)
        if self.session.active():
            raise P.ProtocolError(P.BUSY, "a session is running: stop it first")
        if self._closing:
            raise P.ProtocolError(P.BUSY, "the last pulse pair is finishing: try again shortly")
        if self.env is not None:
            raise P.ProtocolError(self.env, "cannot start: " + self.env.replace("_", " "))
        try:
            wave, minutes, _ = programs.get(args["program"])
        except KeyError:
            raise P.ProtocolError(P.OUT_OF_RANGE, "program must be one of " + ", ".join(programs.names()))
        ua = P.in_range("ua", args["ua"], limits.PROGRAM_MIN_UA, self.limit_ua, " uA")
        duration_s = P.in_range("duration_s", args.get("duration_s", minutes * 60), 1,
                                limits.SESSION_MAX_MS // 1000, " s")
        telemetry_ms = P.in_range("telemetry_ms", args.get("telemetry_ms", 1000), 100, 60000, " ms")
        try:
            wave = Waveform(int(args["hz"] * 1000) if "hz" in args else wave.freq_mhz,
                            args.get("phase_us", wave.phase_us), args.get("gap_us", wave.gap_us),
                            args.get("alternate", wave.alternate), args.get("burst_on_ms", wave.burst_on_ms),
                            args.get("burst_off_ms", wave.burst_off_ms))
            table = self.pulse.prepare(wave)
        except TimingUnsupported as e:
            raise P.ProtocolError(P.TIMING_UNSUPPORTED, str(e))
        except WaveformError as e:
            raise P.ProtocolError(P.OUT_OF_RANGE, str(e))
        # high_density: the peak whose rms density fits the electrode area
        density_ua = M.max_peak_ua(self.board["electrode_area_cm2"], wave.duty_permille())
        density_limited = ua > density_ua
        if density_limited:
            if density_ua < limits.PROGRAM_MIN_UA:
                raise P.ProtocolError(P.OUT_OF_RANGE, "this waveform exceeds 0.5 mA/cm2 rms even at the minimum")
            ua = density_ua
        self.hw.start_watchdog()
        self.monitor.begin(density_ua)
        self._was_run = False
        self._heartbeat = args.get("heartbeat", False)
        self._hb_ms = time.ticks_ms()
        self._telemetry_ms = telemetry_ms
        self._telemetry_at = time.ticks_add(time.ticks_ms(), telemetry_ms)
        self.session.clear()
        self.output.enable()
        self.wave_table = table               # resume plays it again
        self.pulse.start(table)
        self.session.begin(ua, duration_s * 1000, time.ticks_ms())
        return {"state": self.state_name(), "setpoint_ua": ua, "duration_s": duration_s,
                "density_limited": density_limited}

    def cmd_stop(self, args):
        P.check_args(args, _NONE)
        self.session.request_stop()
        return {"state": self.state_name()}

    def cmd_heartbeat(self, args):
        P.check_args(args, _NONE)
        self._hb_ms = time.ticks_ms()
        return {}

    def cmd_fault_clear(self, args):
        P.check_args(args, _NONE)
        if self.env is not None:
            raise P.ProtocolError(P.CONDITION_PRESENT, "cannot clear: " + self.env.replace("_", " ") + " still present")
        self.fault = None
        self._fault_sent = False
        self.session.clear()
        return {"state": self.state_name()}

    def cmd_pause(self, args):
        return service.pause(self, args)

    def cmd_resume(self, args):
        return service.resume(self, args)

    def cmd_board(self, args):
        return service.board(self, args)

    def cmd_calib_get(self, args):
        return service.calib_get(self, args)

    def cmd_calib_set(self, args):
        return service.calib_set(self, args)

    def cmd_measure(self, args):
        return service.measure(self, args)

    # ---- main loop ------------------------------------------------------
    def poll(self, wait_ms=_LOOP_MS):
        con = self.console
        if con.wait(wait_ms):
            while con.wait(0):
                line = self.reader.feed(con.read_byte())
                if line is P.LINE_TOO_LONG:
                    con.write_line(P.error(None, P.LINE_TOO_LONG, "line longer than %d bytes" % P.MAX_LINE))
                elif line is not None:
                    con.write_line(self.handle(line))
        self._emit_events()
        if self.ticks != self._fed_at_tick:     # the tick is alive: feed
            self._fed_at_tick = self.ticks
            self.hw.feed_watchdog()

    def _emit_events(self):
        con = self.console
        s = self.session
        if self.fault is not None and not self._fault_sent:
            self._fault_sent = True
            con.write_line(P.event("fault", reason=self.fault))
        st = self.state_code()
        if st != self._state_sent:
            self._state_sent = st
            con.write_line(P.event("state", state=S.NAMES[st], setpoint_ua=s.setpoint_ua))
            if st in (S.DONE, S.FAULT):
                self._telemetry(time.ticks_ms())
                if self.measure.active:
                    service.measure_done(self)
        if s.active():
            now = time.ticks_ms()
            if time.ticks_diff(now, self._telemetry_at) >= 0:
                self._telemetry_at = time.ticks_add(self._telemetry_at, self._telemetry_ms)
                self._telemetry(now)

    def _telemetry(self, now):
        n, sum_ua, sum_mv = self._n_on, self._sum_ua, self._sum_mv
        self._n_on = self._sum_ua = self._sum_mv = 0
        if n:
            self.last_ua = sum_ua // n
            self.last_ohm = sum_mv * 1000 // sum_ua if sum_ua else 0
        else:
            self.last_ua = 0
        s = self.session
        self.console.write_line(P.event(
            "telemetry", t_ms=now, state=self.state_name(), setpoint_ua=s.setpoint_ua,
            target_ua=s.target_na // 1000, measured_ua=self.last_ua, impedance_ohm=self.last_ohm,
            baseline_ohm=self.monitor.z_base_ohm, output_ua=self.output.ua_for_code(self.output.code),
            temp_c=round(thermal.c_for_raw(self.board["thermistor"], self.temp_raw), 1),
            elapsed_s=s.elapsed_ms // 1000))

    def run(self):
        self.hw.start_tick(self._tick_cb)
        self.console.write_line(P.event("ready", firmware=VERSION, board=self.board["name"],
                                        reset_cause=self.hw.reset_cause))
        while True:
            self.poll()

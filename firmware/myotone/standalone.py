# Standalone use, without a computer: one button and one status LED.
#
# Button (active low, polled by the main loop every ~20 ms and debounced):
#   idle / done     short press  -> start the default program at the saved level
#   running         short press  -> next intensity level (1..LEVELS, then 1 again)
#                   long press   -> stop (ramp-down)
#   fault latched   long press   -> clear the fault (refused while the condition lasts)
# Status LED: idle = a 100 ms blink every 2 s; running = on; fault = 2 Hz blink.
# Nothing is remembered about a running session: power-on never resumes one.
import time
from micropython import const
from myotone import programs
from myotone import protocol as P
from myotone.session import RAMP_DOWN

SHORT = "short"
LONG = "long"
LEVELS = const(5)          # intensity level k sets the current to k/LEVELS of the board limit
LONG_MS = const(1500)
DEBOUNCE_MS = const(30)

IDLE = const(0)
RUNNING = const(1)
FAULT = const(2)


def level_ua(limit_ua, level):
    return limit_ua * level // LEVELS


def status_level(kind, now_ms):
    """The status LED's level for `kind` (IDLE, RUNNING, FAULT) at `now_ms`."""
    if kind == RUNNING:
        return 1
    if kind == FAULT:
        return 1 if now_ms % 500 < 250 else 0
    return 1 if now_ms % 2000 < 100 else 0


class Button:
    """Debounced press classification: update() returns SHORT, LONG or None."""

    def __init__(self, long_ms=LONG_MS, debounce_ms=DEBOUNCE_MS):
        self.long_ms = long_ms
        self.debounce_ms = debounce_ms
        self._raw = False
        self._raw_at = 0
        self.down = False          # the debounced state
        self._down_at = 0
        self._long_sent = False

    def update(self, now_ms, pressed):
        if pressed != self._raw:
            self._raw = pressed
            self._raw_at = now_ms
            return None
        if pressed != self.down and time.ticks_diff(now_ms, self._raw_at) >= self.debounce_ms:
            self.down = pressed
            if pressed:
                self._down_at = now_ms
                self._long_sent = False
            elif not self._long_sent:
                return SHORT
        if self.down and not self._long_sent and time.ticks_diff(now_ms, self._down_at) >= self.long_ms:
            self._long_sent = True
            return LONG
        return None


class Panel:
    """The button and the status LED. It acts through what it is given: the session
    (active, state), the output stage (its latched fault), the runner (a level steps the
    setpoint), `start(name, ua)` (the `start` command's checks, then the program),
    `stop()`, `fault_clear()` (refused while the condition lasts), `state_name()` (the
    state as the host sees it) and `say(line)` (the console)."""

    def __init__(self, button_pin, status_pin, limit_ua, settings, session, stage, runner,
                 start, stop, fault_clear, state_name, say):
        self._pin = button_pin
        self._status = status_pin
        self._limit_ua = limit_ua
        self.settings = settings    # default_program and level, as /settings.json holds them
        self._session = session
        self._stage = stage
        self._runner = runner
        self._start = start
        self._stop = stop
        self._fault_clear = fault_clear
        self._state_name = state_name
        self._say = say
        self.button = Button()
        self._shown = -1
        self.run_level = 1          # the running session's level (the button steps it)

    def poll(self, now_ms):
        if self._pin is not None:
            action = self.button.update(now_ms, self._pin.value() == 0)
            if action is not None:
                self.act(action)
        if self._status is not None:
            if self._stage.fault is not None:
                kind = FAULT
            else:
                kind = RUNNING if self._session.active() else IDLE
            level = status_level(kind, now_ms)
            if level != self._shown:
                self._shown = level
                self._status.value(level)

    def level(self, session_active):
        """The intensity level: the session's, else the saved one."""
        if session_active:
            return self.run_level
        lv = self.settings.get("level", 1)
        return lv if isinstance(lv, int) and 1 <= lv <= LEVELS else 1

    def settings_view(self, session_active):
        return {"default_program": self.settings.get("default_program", programs.DEFAULT),
                "level": self.level(session_active), "levels": LEVELS,
                "level_ua": [level_ua(self._limit_ua, k) for k in range(1, LEVELS + 1)]}

    def act(self, action):
        """What a press does (see the table at the top)."""
        s = self._session
        try:
            if self._stage.fault is not None:
                if action == LONG:
                    self._fault_clear()
            elif s.active():
                if action == LONG:
                    self._stop()
                elif s.state != RAMP_DOWN:
                    nxt = self.run_level % LEVELS + 1
                    if self._runner.set_base_ua(level_ua(self._limit_ua, nxt)):
                        self.run_level = nxt
            elif action == LONG:
                self._stop()               # the last pair of a session that ended: off now
            elif action == SHORT:
                name = self.settings.get("default_program", programs.DEFAULT)
                self._start(name, level_ua(self._limit_ua, self.level(False)))
        except P.ProtocolError as e:
            self._say(P.event("button", action=action, refused=e.code, message=e.message))
            return
        self._say(P.event("button", action=action, state=self._state_name(),
                          level=self.level(s.active())))

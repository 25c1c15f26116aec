# Protocol commands over the device's files: programs, the session log,
# settings. Names are validated before they become paths (store.py builds
# every path); sizes are bounded; nothing here executes code or writes a
# file the caller names. Every write is refused during a session (a flash
# write stalls interrupts on the RP2040, and with them the supervisor tick).
from myotone import programs, store
from myotone import protocol as P
from myotone.programs import ProgramError
from myotone.pulse import TimingUnsupported
from myotone.standalone import LEVELS

_NAME = {"name": ("str", True)}
_WRITE = {"name": ("str", True), "program": ("obj", True)}
_N = {"n": ("int", False), "all": ("bool", False)}
_READ = {"n": ("int", True), "study": ("str", False)}
_SETTINGS = {"default_program": ("str", False), "level": ("int", False)}
_NONE = {}


def program_error(e):
    return P.ProtocolError(e.code, e.message)


class FileCommands:
    """The file commands, with what they need: `check_output_off()` (raises busy unless
    the output stage is off and no session runs: every flash write asks it first),
    `output_busy()`, `plan(name, prog, ua)` (the board checks of a program), the
    board limit, the session (for the level shown) and the panel (the settings)."""

    def __init__(self, check_output_off, output_busy, plan, limit_ua, session, panel):
        self._check_output_off = check_output_off
        self._output_busy = output_busy
        self._plan = plan
        self._limit_ua = limit_ua
        self._session = session
        self._panel = panel

    def _not_running(self):
        self._check_output_off()

    # ---- programs ----
    def load_program(self, name):
        """A validated program, built-in or user; ProtocolError otherwise."""
        if programs.is_builtin(name):
            return programs.builtin(name)
        try:
            programs.check_name(name)
            raw = store.program_load(name)
        except (ProgramError, OSError):
            raise P.ProtocolError(P.OUT_OF_RANGE, "program must be one of " + ", ".join(self.names()))
        except ValueError:
            raise P.ProtocolError(P.BAD_PROGRAM, "program file " + name + " is not valid JSON")
        try:
            return programs.validate(raw)
        except ProgramError as e:
            raise P.ProtocolError(P.BAD_PROGRAM, "program file " + name + ": " + e.message)

    def names(self):
        return programs.builtin_names() + store.program_names()

    def cmd_programs(self, args):
        P.check_args(args, _NONE)
        out = []
        for name in self.names():
            try:
                prog = self.load_program(name)
            except P.ProtocolError as e:
                out.append({"name": name, "builtin": False, "error": e.message})
                continue
            item = programs.summary(name, prog, programs.is_builtin(name))
            item["available"] = self._available(name, prog)
            out.append(item)
        return {"programs": out}

    def _available(self, name, prog):
        """Would it start on this board? (None during a session: no compiling then.)"""
        if self._output_busy():
            return None
        try:
            self._plan(name, prog, self._limit_ua)
            return True
        except (ProgramError, TimingUnsupported):
            return False

    def cmd_program_read(self, args):
        P.check_args(args, _NAME)
        prog = self.load_program(args["name"])
        if programs.is_blinded(prog):
            return {"program": programs.blinded(args["name"], prog)}
        prog["name"] = args["name"]
        prog["builtin"] = programs.is_builtin(args["name"])
        return {"program": prog}

    def cmd_program_write(self, args):
        P.check_args(args, _WRITE)
        self._not_running()
        try:
            name = programs.check_name(args["name"])
            if programs.is_builtin(name):
                raise ProgramError("%s is a built-in program" % name, P.READ_ONLY)
            prog = programs.validate(args["program"])
            self._plan(name, prog, None if not _has_current(prog) else self._limit_ua)
        except ProgramError as e:
            raise program_error(e)
        except TimingUnsupported as e:
            raise P.ProtocolError(P.TIMING_UNSUPPORTED, str(e))
        try:
            store.program_save(name, prog)
        except ValueError as e:
            raise P.ProtocolError(P.OUT_OF_RANGE, str(e))
        return {"name": name, "duration_s": programs.duration_s(prog)}

    def cmd_program_delete(self, args):
        P.check_args(args, _NAME)
        self._not_running()
        try:
            name = programs.check_name(args["name"])
        except ProgramError as e:
            raise program_error(e)
        if programs.is_builtin(name):
            raise P.ProtocolError(P.READ_ONLY, "%s is a built-in program" % name)
        try:
            store.program_delete(name)
        except OSError:
            raise P.ProtocolError(P.NOT_FOUND, "no user program " + name)
        return {"name": name}

    # ---- session log ----
    def cmd_log_list(self, args):
        P.check_args(args, _NONE)
        out = []
        for n in store.log_numbers():
            try:
                out.append(store.log_head(n))
            except (OSError, ValueError):
                out.append({"n": n, "error": "unreadable"})
        return {"records": out}

    def cmd_log_read(self, args):
        """Record n. A blinded arm's record is its head alone (n, times, code, faults,
        `blinded`) unless `study` is its study's token: its measurements would unblind."""
        P.check_args(args, _READ)
        try:
            text = store.log_text(args["n"])
        except OSError:
            raise P.ProtocolError(P.NOT_FOUND, "no log record %d" % args["n"])
        try:
            head = store.log_head(args["n"])
        except (OSError, ValueError):   # a head that does not parse: the text as it is
            head = {}
        study = args.get("study")
        if head.get("blinded") and (study is None or ('"study":"%s"' % study) not in text):
            return {"record": head}
        return P.Raw("record", text)

    def cmd_log_delete(self, args):
        P.check_args(args, _N)
        self._not_running()
        if ("n" in args) == bool(args.get("all")):
            raise P.ProtocolError(P.BAD_REQUEST, "give n, or all: true")
        try:
            store.log_delete(args.get("n"))
        except OSError:
            raise P.ProtocolError(P.NOT_FOUND, "no log record %d" % args["n"])
        return {"records": len(store.log_numbers())}

    # ---- settings (standalone use) ----
    def cmd_settings(self, args):
        P.check_args(args, _SETTINGS)
        panel = self._panel
        new = dict(panel.settings)
        if "default_program" in args:
            self.load_program(args["default_program"])
            new["default_program"] = args["default_program"]
        if "level" in args:
            new["level"] = P.in_range("level", args["level"], 1, LEVELS)
        if new != panel.settings:
            self._not_running()
            store.settings_save(new)
            panel.settings = new
        return panel.settings_view(self._session.active())


def _has_current(prog):
    return any(p["current_pct"] for p in prog["phases"])

# JSON-lines protocol (docs/protocol.md): line assembly with a bounded
# buffer, request parsing, argument checking and reply formatting.
# The host is not trusted: every value is checked here against a schema and
# then against the limits by the code that enforces them.
import io
import json
import micropython
from micropython import const

MAX_LINE = const(1536)      # a user program (8 phases) fits in one line
MAX_DEPTH = const(4)
LIVE_MAX_LINE = const(256)  # while the output stage is on, longer lines are refused unparsed (quick_id)

BAD_JSON = "bad_json"
UNKNOWN_CMD = "unknown_cmd"
OUT_OF_RANGE = "out_of_range"
BAD_REQUEST = "bad_request"
LINE_TOO_LONG = "line_too_long"
TIMING_UNSUPPORTED = "timing_unsupported"
FAULTED = "faulted"
BUSY = "busy"
CONDITION_PRESENT = "condition_present"
INTERNAL_ERROR = "internal_error"    # a firmware bug caught in a command: output made safe
BAD_PROGRAM = "bad_program"          # a program file on the device fails validation
READ_ONLY = "read_only"              # built-in programs cannot be written or deleted
NOT_FOUND = "not_found"


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class LineReader:
    """Assembles bytes into lines in a fixed buffer; over-long lines are dropped."""

    def __init__(self, size=MAX_LINE):
        self._buf = bytearray(size)
        self._n = 0
        self._overflow = False

    def feed(self, byte):
        """Returns None, a complete line (bytes), or LINE_TOO_LONG."""
        if byte == 10 or byte == 13:
            if self._overflow:
                self._overflow = False
                self._n = 0
                return LINE_TOO_LONG
            if self._n == 0:
                return None
            line = bytes(self._buf[: self._n])
            self._n = 0
            return line
        if self._overflow:
            return None
        if self._n >= len(self._buf):
            self._overflow = True
            return None
        self._buf[self._n] = byte
        self._n += 1
        return None

    def pending(self):
        """How many bytes of an unfinished line are held (0: none)."""
        return len(self._buf) if self._overflow else self._n

    def drop(self):
        """Forget an unfinished line (resync); returns how many bytes it held."""
        n = self.pending()
        self._n = 0
        self._overflow = False
        return n


@micropython.native
def _depth(line):
    """Nesting depth of a JSON line (bytes), ignoring brackets inside strings. Over the
    bytes, not the decoded text: iterating a str makes a string per character (a 26-byte
    `status` took 3.6 ms here on the RP2040; docs/performance.md)."""
    depth = worst = 0
    in_str = esc = False
    for c in line:
        if in_str:
            if esc:
                esc = False
            elif c == 92:                # backslash
                esc = True
            elif c == 34:                # "
                in_str = False
        elif c == 34:
            in_str = True
        elif c == 123 or c == 91:        # { [
            depth += 1
            if depth > worst:
                worst = depth
        elif c == 125 or c == 93:        # } ]
            depth -= 1
    return worst


def parse(line):
    """bytes -> (id, cmd, args dict). Raises ProtocolError."""
    try:
        text = line.decode("utf-8")
    except Exception:
        raise ProtocolError(BAD_JSON, "line is not UTF-8")
    if _depth(line) > MAX_DEPTH:
        raise ProtocolError(BAD_JSON, "nested deeper than %d" % MAX_DEPTH)
    try:
        msg = json.loads(text)
    except Exception:
        raise ProtocolError(BAD_JSON, "line is not JSON")
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_JSON, "line is not a JSON object")
    for key in msg:              # MicroPython's json takes {1: 2}; JSON does not
        if not isinstance(key, str):
            raise ProtocolError(BAD_JSON, "object keys must be strings")
    req_id = msg.pop("id", None)
    if req_id is not None and not _good_id(req_id):
        raise ProtocolError(BAD_REQUEST, "id must be an integer or up to 32 printable ASCII characters")
    cmd = msg.pop("cmd", None)
    if not isinstance(cmd, str):
        raise ProtocolError(BAD_REQUEST, "cmd must be a string")
    return req_id, cmd, msg


def _good_id(req_id):
    if isinstance(req_id, bool):
        return False
    if isinstance(req_id, int):
        return True
    return isinstance(req_id, str) and shown(req_id) == req_id


def shown(text):
    """A host string as a reply may echo it: printable ASCII, at most 32 characters.

    MicroPython's json.dumps writes non-ASCII (even a lone surrogate) as raw
    bytes, so anything else is replaced rather than sent back.
    """
    text = text[:32]
    for ch in text:
        if not " " <= ch <= "~":
            return "(not printable)"
    return text


def request_id(line):
    """Best-effort id of a line that failed to parse, for the error reply."""
    try:
        msg = json.loads(line.decode("utf-8"))     # decoded as parse() does
        rid = msg.get("id") if isinstance(msg, dict) else None
        if _good_id(rid):
            return rid
    except Exception:
        pass
    return None


def quick_id(line):
    """The id of a request line without parsing all of it: json.loads of a 1.5 kB line is one
    C call of ~7 ms on the RP2040, during which no soft callback runs (on the ESP32 the fast
    path is one). The value of the first "id" key, if it ends (",", "}") within 40 bytes and
    is a good id; else None."""
    i = line.find(b'"id"')
    j = -1
    while i >= 0:                   # the key "id": a colon after it, spaces aside
        j = i + 4
        while j < len(line) and line[j] == 32:
            j += 1
        if j < len(line) and line[j] == 58:
            break
        i = line.find(b'"id"', i + 4)
    if i < 0:
        return None
    k = j + 1
    while 0 < k < len(line) and k - j < 40 and line[k] != 44 and line[k] != 125:   # "," "}"
        k += 1
    if j < 0 or k >= len(line) or k - j >= 40:
        return None                 # no value, or no end to it within 40 bytes: no good id
    try:
        rid = json.loads(line[j + 1:k])
    except Exception:
        return None
    return rid if _good_id(rid) else None


def type_ok(kind, v):
    """The one type rule for values from outside (requests, the calibration file):
    kind is "int", "num" (finite, not bool), "bool", "str" (<= 32 characters) or "obj"."""
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "num":
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
                and v not in (float("inf"), float("-inf")))
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str) and len(v) <= 32
    if kind == "obj":
        return isinstance(v, dict)
    return False


def check_args(args, schema):
    """Check `args` against {name: (kind, required)}; unknown fields refused.

    kind is "int", "num", "bool", "str" (<= 32 characters) or "obj" (a JSON
    object, checked by its own validator). Returns args with defaults absent.
    """
    for name in args:
        if name not in schema:
            raise ProtocolError(BAD_REQUEST, "unknown field " + shown(name))
    for name in schema:
        kind, required = schema[name]
        if name not in args:
            if required:
                raise ProtocolError(BAD_REQUEST, "missing field " + name)
            continue
        ok = type_ok(kind, args[name])
        if not ok:
            raise ProtocolError(BAD_REQUEST, name + " must be " + ("an object" if kind == "obj" else kind))
    return args


def in_range(name, value, lo, hi, unit=""):
    if not lo <= value <= hi:
        raise ProtocolError(OUT_OF_RANGE, "%s must be %s..%s%s" % (name, lo, hi, unit))
    return value


class Raw:
    """A reply whose one field is JSON text already (a log record read from flash)."""

    def __init__(self, key, text):
        self.key = key
        self.text = text


def _line_stream():
    """What a reply is written into: a byte stream on MicroPython, whose json writes to any
    stream; CPython's json (the emulator) writes str only."""
    try:
        json.dump(0, io.BytesIO())
        return io.BytesIO
    except TypeError:
        return io.StringIO


_OUT = _line_stream()()     # every line is written here from the start, then read back (main loop only)
_KEY_TEXT = {}              # a key -> its JSON and ": ": the firmware's own names, a few dozen
_KEY_TEXT_MAX = const(96)


def dumps(obj):
    """Dict `obj` as one JSON line, the text json.dumps writes, a value at a time.

    json.dumps is one C call, and no soft callback runs during one (the VM runs them only at
    a jump; on the ESP32 the fast path is one): a `status` reply's took 1.5 ms on the RP2040
    (~4 us a byte: json writes a string a character at a time), and the str it makes is
    then looked up among the interned strings (qstr_find_strn, ~0.2 ms whatever its length).
    Here each C call writes one value, the loop jumps between them, a key's text is made
    once and kept, and on MicroPython the line is bytes (a new str would be looked up). The
    stream is kept and grows once: a line leaves only itself as garbage, as json.dumps did."""
    # (seek, tell and read are in MicroPython's objstringio.c; its type stubs leave them out)
    out = _OUT
    out.seek(0)  # pyright: ignore[reportAttributeAccessIssue]
    _dump(obj, out)
    n = out.tell()  # pyright: ignore[reportAttributeAccessIssue]
    out.seek(0)  # pyright: ignore[reportAttributeAccessIssue]
    return out.read(n)  # pyright: ignore[reportAttributeAccessIssue]


def _dump(obj, out):
    w = out.write
    sep = "{"
    for k in obj:
        w(sep)
        t = _KEY_TEXT.get(k)
        if t is None:
            t = json.dumps(k) + ": "
            if len(_KEY_TEXT) < _KEY_TEXT_MAX:
                _KEY_TEXT[k] = t
        w(t)
        v = obj[k]
        if isinstance(v, dict):
            _dump(v, out)
        else:
            json.dump(v, out)
        sep = ", "
    w("{}" if sep == "{" else "}")


def reply(req_id, **fields):
    fields["id"] = req_id
    fields["ok"] = True
    return dumps(fields)


def reply_raw(req_id, raw):
    """The reply as pieces written one after the other: no copy of a large text."""
    return ('{"id": %s, "ok": true, "%s": ' % (json.dumps(req_id), raw.key), raw.text, "}")


def error(req_id, code, message):
    return dumps({"id": req_id, "ok": False, "error": code, "message": message})


def event(name, **fields):
    fields["ev"] = name
    return dumps(fields)

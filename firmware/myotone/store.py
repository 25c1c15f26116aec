# Files the firmware writes: the session log ring, user programs, settings.
#
# Every write is atomic (SAFETY.md "Bad input"): the content goes to
# `name.tmp`, which then replaces `name` with os.rename -- one littlefs
# metadata commit -- so a power loss at any instant leaves the old or the
# new file, never a broken one. Leftover .tmp files are removed by
# recover(). Paths are built here from validated names and numbers only:
# no protocol command can name a file.
#
# Flash writes block interrupts on the RP2040 (XIP is off while it
# programs), so nothing here may run while the output stage is on: the
# supervisor calls it from the main loop with the output stage off (after a
# session, or at a session's checkpoint: checkpoint.py).
import json
import os
from micropython import const

LOG_DIR = "/log"
LOG_MAX = const(32)            # the ring: at most 32 records, the oldest goes first
PROG_DIR = "/programs"
PROG_MAX = const(16)           # user programs on the device
PROG_MAX_BYTES = const(2048)   # a program file larger than this is not read
SETTINGS = "/settings.json"
_EEXIST = const(17)            # MicroPython's errno.EEXIST
_SEQ = "/log/seq"              # the last record number, kept when records are deleted


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass       # exists


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def write_atomic(path, write_fn):
    """The one writer of the device's files (logs, programs, settings, calibration):
    write_fn(file) writes the content; it appears under `path` all at once."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        write_fn(f)
    try:
        os.rename(tmp, path)   # littlefs: replaces an existing `path` atomically
    except OSError as e:
        if e.args[0] != _EEXIST:
            raise
        # FAT cannot rename onto an existing file: not atomic there (docs/cli.md)
        os.remove(path)
        os.rename(tmp, path)


def write_json(path, obj):
    write_atomic(path, lambda f: f.write(json.dumps(obj)))


def read_json(path, max_bytes=0):
    """The object in `path`; OSError if absent, ValueError if broken or too big."""
    if max_bytes and os.stat(path)[6] > max_bytes:
        raise ValueError("file too large")
    with open(path) as f:
        return json.loads(f.read())


def recover():
    """At boot: remove what an interrupted write left behind; create the folders."""
    for d in (LOG_DIR, PROG_DIR):
        _mkdir(d)
        for name in os.listdir(d):
            if name.endswith(".tmp"):
                os.remove(d + "/" + name)
    for name in os.listdir("/"):            # settings, calibration
        if name.endswith(".tmp"):
            os.remove("/" + name)
    trim_log(LOG_MAX)


# ---- session log ---------------------------------------------------------
def _log_path(n):
    return "%s/%04d.json" % (LOG_DIR, n)


def log_numbers():
    """Record numbers on the flash, oldest first."""
    out = []
    for name in os.listdir(LOG_DIR):
        if name.endswith(".json") and name[:-5].isdigit():
            out.append(int(name[:-5]))
    out.sort()
    return out


def _last_seq():
    try:
        with open(_SEQ) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def trim_log(keep):
    nums = log_numbers()
    while len(nums) > keep:
        os.remove(_log_path(nums.pop(0)))


def log_append(head, write_body):
    """Add a record; return its number. The oldest goes first when the ring is full.

    The file is one JSON object whose first line holds `head` (n, start_s,
    end_s, program, faults) so that log_list reads only that line;
    write_body(f) writes the remaining `"key":value` pairs.
    """
    nums = log_numbers()
    n = max(nums[-1] if nums else 0, _last_seq()) + 1
    trim_log(LOG_MAX - 1)
    log_write(n, head, write_body)
    return n


def log_write(n, head, write_body):
    """Write record n (new, or replacing it whole: a session's checkpoints and its final
    record share one number), atomically: a power loss leaves the old record or the new."""
    head["n"] = n

    def write(f):
        f.write(json.dumps(head)[:-1])
        f.write(",\n")
        write_body(f)
        f.write("}")
    write_atomic(_log_path(n), write)


def log_head(n):
    """The summary line of record n (n, start_s, end_s, program, faults)."""
    with open(_log_path(n)) as f:
        line = f.readline().rstrip()
    if line.endswith(","):
        line = line[:-1]
    return json.loads(line + "}")


def log_text(n):
    """Record n as one line of JSON text; OSError if there is none."""
    with open(_log_path(n)) as f:
        return f.read().replace("\n", "")


def log_delete(n=None):
    """Delete record n, or every record (n None). Numbers are never reused."""
    nums = log_numbers()
    if n is not None and n not in nums:
        raise OSError(2)
    if nums and nums[-1] > _last_seq():
        write_atomic(_SEQ, lambda f: f.write(str(nums[-1])))
    for k in nums:
        if n is None or k == n:
            os.remove(_log_path(k))


# ---- user programs ---------------------------------------------------------
def _prog_path(name):
    return "%s/%s.json" % (PROG_DIR, name)


def program_names():
    out = [name[:-5] for name in os.listdir(PROG_DIR) if name.endswith(".json")]
    out.sort()
    return out


def program_load(name):
    """The raw object of user program `name` (validate it!); OSError if absent."""
    return read_json(_prog_path(name), PROG_MAX_BYTES)


def program_save(name, prog):
    text = json.dumps(prog)
    if len(text) > PROG_MAX_BYTES:
        raise ValueError("program larger than %d bytes" % PROG_MAX_BYTES)
    if name not in program_names() and len(program_names()) >= PROG_MAX:
        raise ValueError("already %d user programs: delete one first" % PROG_MAX)
    write_atomic(_prog_path(name), lambda f: f.write(text))


def program_delete(name):
    os.remove(_prog_path(name))


# ---- settings -------------------------------------------------------------
def settings_load():
    try:
        s = read_json(SETTINGS, 512)
        return s if isinstance(s, dict) else {}
    except (OSError, ValueError):
        return {}


def settings_save(settings):
    write_json(SETTINGS, settings)

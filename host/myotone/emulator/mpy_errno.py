"""MicroPython's errno numbers and its flavour of OSError.

Numbers are MicroPython's `py/mperrno.h` (Linux values). Only the names in
`ERRNO_NAMES` are known to the `errno` module of a default MicroPython
build (`py/moderrno.c`), so only those print as "[Errno 2] ENOENT"; any
other code prints bare, e.g. "OSError: 39" for ENOTEMPTY from littlefs.
"""

from __future__ import annotations

EPERM = 1
ENOENT = 2
EIO = 5
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EACCES = 13
EEXIST = 17
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
EFBIG = 27
ENOSPC = 28
ESPIPE = 29
EROFS = 30
ENAMETOOLONG = 36
ENOTEMPTY = 39
ENODATA = 61
EOPNOTSUPP = 95
EADDRINUSE = 98
ECONNABORTED = 103
ECONNRESET = 104
ENOBUFS = 105
ENOTCONN = 107
ETIMEDOUT = 110
ECONNREFUSED = 111
EHOSTUNREACH = 113
EALREADY = 114
EINPROGRESS = 115

# MICROPY_PY_ERRNO_LIST default: the names `errno` knows and OSError prints.
ERRNO_NAMES = {
    EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EBADF: "EBADF",
    EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EEXIST: "EEXIST",
    ENODEV: "ENODEV", EISDIR: "EISDIR", EINVAL: "EINVAL",
    EOPNOTSUPP: "EOPNOTSUPP", EADDRINUSE: "EADDRINUSE",
    ECONNABORTED: "ECONNABORTED", ECONNRESET: "ECONNRESET",
    ENOBUFS: "ENOBUFS", ENOTCONN: "ENOTCONN", ETIMEDOUT: "ETIMEDOUT",
    ECONNREFUSED: "ECONNREFUSED", EHOSTUNREACH: "EHOSTUNREACH",
    EALREADY: "EALREADY", EINPROGRESS: "EINPROGRESS",
}


def oserror_text(args: tuple) -> str:
    """What MicroPython prints after "OSError: " for these exception args."""
    if 0 < len(args) < 3 and type(args[0]) is int and args[0] in ERRNO_NAMES:
        text = "[Errno %d] %s" % (args[0], ERRNO_NAMES[args[0]])
        if len(args) > 1:
            text += ": " + str(args[1])
        return text
    if not args:
        return ""
    if len(args) == 1:
        return str(args[0])
    return repr(tuple(args))


class MpOSError(OSError):
    """OSError as MicroPython raises it: `OSError(errno)` with one argument.

    CPython gives `OSError(2).errno` as None; MicroPython gives 2, and
    firmware relies on it (`e.errno == errno.ENOENT`). Shown as "OSError".
    """

    @property
    def errno(self):  # type: ignore[override]
        return self.args[0] if self.args else None

    def __str__(self) -> str:
        return oserror_text(self.args)


MpOSError.__name__ = "OSError"
MpOSError.__qualname__ = "OSError"


def mp_oserror(code: int) -> MpOSError:
    return MpOSError(code)

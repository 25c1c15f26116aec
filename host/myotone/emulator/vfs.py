"""MicroPython's `os` module and `open()` over a `Flash` (extmod/vfs_lfsx).

Behaviour follows MicroPython's littlefs VFS mounted at "/": errors are
`OSError(errno)` with littlefs's (= MicroPython's) errno numbers; `remove`
and `rmdir` are both littlefs's remove (each also removes the other kind,
as on the board); `chdir` to something that is not a directory is ENOENT;
`stat` gives the 10-tuple with the mtime attribute MicroPython stores;
files are unbuffered littlefs files. Text files do no newline translation.
"""

from __future__ import annotations

import codecs
import os as _host_os
from collections import namedtuple
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from littlefs import lfs

from .mpy_errno import EBADF, EINVAL, ENOENT, EPERM, MpOSError

if TYPE_CHECKING:
    from .flash import Flash

S_IFDIR, S_IFREG = 0x4000, 0x8000
NAME_MAX = 255
_O_RDONLY, _O_WRONLY, _O_RDWR = 1, 2, 3
_O_CREAT, _O_EXCL, _O_TRUNC, _O_APPEND = 0x100, 0x200, 0x400, 0x800
_CHUNK = 256

uname_result = namedtuple("uname_result", "sysname nodename release version machine")


def abspath(flash: "Flash", path) -> str:
    """Resolve `path` against the current directory, "." and ".." removed."""
    if isinstance(path, bytes):
        path = path.decode()
    if not isinstance(path, str):
        raise TypeError("can't convert '%s' object to str implicitly" % type(path).__name__)
    full = path if path.startswith("/") else flash.cwd.rstrip("/") + "/" + path
    parts: list[str] = []
    for part in full.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _parse_mode(mode: str) -> tuple[int, bool]:
    """(littlefs flags, is_text) as vfs_lfsx_file.c parses the mode."""
    flags, text = 0, True
    for ch in mode:
        new = {"r": _O_RDONLY, "w": _O_WRONLY | _O_CREAT | _O_TRUNC,
               "x": _O_WRONLY | _O_CREAT | _O_EXCL,
               "a": _O_WRONLY | _O_CREAT | _O_APPEND}.get(ch, 0)
        if ch == "+":
            flags |= _O_RDWR
        elif ch == "b":
            text = False
        elif ch == "t":
            text = True
        if new:
            if flags:
                raise ValueError
            flags = new
    return flags or _O_RDONLY, text


class FileIO:
    """A binary littlefs file, as MicroPython's io.FileIO."""

    def __init__(self, flash: "Flash", path: str, flags: int):
        self._flash, self._path = flash, path
        self._fh = flash.call(lfs.file_open, path, flags)
        self._written = False
        self._readable = bool(flags & _O_RDONLY)
        self._writable = bool(flags & _O_WRONLY)

    def _lfs(self, fn, *args):
        if self._fh is None:
            raise ValueError("I/O operation on closed file")
        return self._flash.call(fn, self._fh, *args)

    def _read_bytes(self, n: int = -1) -> bytes:
        # littlefs asserts (aborting the host process) on reading a write-only
        # file and writing a read-only one; the board's build has no asserts
        # and MicroPython checks nothing: here it is OSError(EBADF).
        if not self._readable and self._fh is not None:
            raise MpOSError(EBADF)
        if n is None or n < 0:
            n = self._lfs(lfs.file_size) - self._lfs(lfs.file_tell)
        return self._lfs(lfs.file_read, max(n, 0))

    def _readline_bytes(self, limit: int = -1) -> bytes:
        line = b""
        while limit < 0 or len(line) < limit:
            chunk = self._read_bytes(_CHUNK if limit < 0 else min(_CHUNK, limit - len(line)))
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                self._lfs(lfs.file_seek, nl + 1 - len(chunk), 1)
                return line + chunk[:nl + 1]
            line += chunk
        return line

    def read(self, n: int = -1):
        return self._read_bytes(n)

    def readinto(self, buf, n: int | None = None) -> int:
        view = memoryview(buf).cast("B")
        size = len(view) if n is None else min(n, len(view))
        data = self._read_bytes(size)
        view[:len(data)] = data
        return len(data)

    def readline(self, limit: int = -1):
        return self._readline_bytes(limit)

    def readlines(self) -> list:
        lines = []
        while line := self.readline():
            lines.append(line)
        return lines

    def write(self, data) -> int:
        data = data.encode() if isinstance(data, str) else bytes(data)
        if not self._writable and self._fh is not None:
            raise MpOSError(EBADF)
        n = self._lfs(lfs.file_write, data)
        self._written = True
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._lfs(lfs.file_seek, offset, whence)

    def tell(self) -> int:
        return self._lfs(lfs.file_tell)

    def flush(self) -> None:
        self._lfs(lfs.file_sync)

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            self._flash.call(lfs.file_close, fh)
            if self._written and self._flash.time_ns:
                self._flash.set_mtime(self._path)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __del__(self):
        # MicroPython closes files when collected; never raise from here.
        try:
            if self._fh is not None and self._flash.powered:
                self.close()
        except BaseException:
            pass

    def __repr__(self) -> str:
        return "<io.%s %x>" % (type(self).__name__, id(self) & 0xFFFFFFFF)


class TextIOWrapper(FileIO):
    """A text littlefs file: str in and out, UTF-8, no newline translation."""

    def read(self, n: int = -1) -> str:
        if n is None or n < 0:
            return self._read_bytes().decode("utf-8", "replace")
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        out = ""
        while len(out) < n:
            chunk = self._read_bytes(n - len(out))
            if not chunk:
                out += decoder.decode(b"", final=True)
                break
            out += decoder.decode(chunk)
        return out

    def readline(self, limit: int = -1) -> str:
        return self._readline_bytes(limit).decode("utf-8", "replace")


def make_open(flash: "Flash") -> Callable:
    """The builtin open() for device code: files on `flash`."""

    def open(file, mode="r", buffering=-1, encoding=None):  # noqa: A001
        flags, text = _parse_mode(mode)
        cls = TextIOWrapper if text else FileIO
        return cls(flash, abspath(flash, file), flags)

    return open


class VfsLfs2:
    """The object mounted at "/" (only what `vfs.mount()` listing needs)."""

    def __repr__(self) -> str:
        return "<VfsLfs2>"


def make_vfs_module(flash: "Flash") -> ModuleType:
    """`vfs` (MicroPython >= 1.23): mount() lists the littlefs at "/"."""
    root = VfsLfs2()

    def mount(*args, **kwargs):
        if args or kwargs:
            raise MpOSError(EPERM)  # only the flash at "/" is emulated
        return [(root, "/")]

    mod = ModuleType("vfs")
    mod.__dict__.update(mount=mount, umount=mount, VfsLfs2=VfsLfs2)
    return mod


def make_os_module(flash: "Flash", *, sysname: str = "rp2",
                   machine: str = "Raspberry Pi Pico with RP2040", release: str = "1.29.0",
                   version: str = "v1.29.0 on 2026-01-01 (GNU 14.2.0 MinSizeRel)") -> ModuleType:
    """MicroPython's `os` (the filesystem part plus uname/urandom)."""
    path_of = lambda p: abspath(flash, p)  # noqa: E731

    def ilistdir(path=None):
        as_bytes = isinstance(path, bytes)
        entries = flash.scandir(flash.cwd if path is None else path_of(path))
        for e in entries:
            name = e.name.encode() if as_bytes else e.name
            yield (name, S_IFDIR if e.type == 2 else S_IFREG, 0, e.size if e.type == 1 else 0)

    def listdir(path=None):
        return [entry[0] for entry in ilistdir(path)]

    def stat(path):
        full = path_of(path)
        info = flash.call(lfs.stat, full)
        is_dir = info.type == 2
        mtime = 0 if is_dir else flash.mtime(full)
        return (S_IFDIR if is_dir else S_IFREG, 0, 0, 0, 0, 0,
                0 if is_dir else info.size, mtime, mtime, mtime)

    def statvfs(path):
        bs, count = flash.lfs.cfg.block_size, flash.lfs.cfg.block_count
        free = count - flash.used_blocks()
        return (bs, bs, count, free, free, 0, 0, 0, 0, NAME_MAX)

    def chdir(path):
        full = path_of(path)
        if full != "/":
            try:
                info = flash.call(lfs.stat, full)
            except OSError:
                info = None
            if info is None or info.type != 2:
                raise MpOSError(ENOENT)
        flash.cwd = full

    def rename(old, new):
        flash.call(lfs.rename, path_of(old), path_of(new))

    def remove(path):
        full = path_of(path)
        if full == "/":
            raise MpOSError(EINVAL)
        flash.call(lfs.remove, full)

    def mount(*args, **kwargs):
        raise MpOSError(EPERM)  # only the flash at "/" is emulated

    return_uname = uname_result(sysname, sysname, release, version, machine)
    mod = ModuleType("os")
    mod.__dict__.update(
        sep="/", listdir=listdir, ilistdir=ilistdir, stat=stat, statvfs=statvfs,
        mkdir=lambda path: flash.call(lfs.mkdir, path_of(path)), rmdir=remove,
        remove=remove, rename=rename, getcwd=lambda: flash.cwd, chdir=chdir,
        uname=lambda: return_uname, urandom=_host_os.urandom, sync=lambda: None,
        mount=mount, umount=mount, dupterm=lambda *a: None)
    return mod

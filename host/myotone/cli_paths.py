"""Path options and arguments of the `myotone` command, checked before any work
starts (a session, a scenario, a pull), and refused in one line in the user's
terms: `Error: cannot write out.png: the folder results/ does not exist`.

click.Path's own refusals are usage errors (exit 2, cli_usage.py); a path is
a value, not a usage mistake, so these are exit 1 like every other bad file
(docs/cli.md, exit codes). `file_errors` is the net under them: an OSError
with a file name that still happens while writing (a full disk, a folder
removed meanwhile) becomes the same kind of line.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import click


class PathProblem(click.ClickException):
    """A path the command cannot use (one line, exit code 1)."""


def _why_not_writable_file(p: Path) -> str | None:
    if p.is_dir():
        return "it is a folder; give a file name"
    parent = p.parent
    if not parent.exists():
        return f"the folder {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if p.exists() and not os.access(p, os.W_OK):
        return "permission denied"
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"permission denied in {parent}"
    return None


def _why_not_readable_file(p: Path) -> str | None:
    if not p.exists():
        return "no such file"
    if p.is_dir():
        return "it is a folder, not a file"
    if not os.access(p, os.R_OK):
        return "permission denied"
    return None


def _why_not_folder(p: Path) -> str | None:
    """A folder to write in, made (with its parents) if missing."""
    if p.exists():
        if not p.is_dir():
            return "it is a file, not a folder"
        return None if os.access(p, os.W_OK | os.X_OK) else "permission denied"
    up = p.parent
    while not up.exists():
        up = up.parent
    if not up.is_dir():
        return f"{up} is a file, not a folder"
    return None if os.access(up, os.W_OK | os.X_OK) else f"permission denied in {up}"


class _Checked(click.ParamType):
    verb = "use"

    def __init__(self, dash: bool = False):
        self.dash = dash              # "-": stdout / stdin

    def why_not(self, p: Path) -> str | None:
        raise NotImplementedError

    def convert(self, value, param, ctx):
        if isinstance(value, Path):
            value = str(value)
        if self.dash and value == "-":
            return value
        if not value:
            raise PathProblem(f"{_hint(param)}: an empty path")
        why = self.why_not(Path(value))
        if why:
            raise PathProblem(f"cannot {self.verb} {value}: {why}")
        return Path(value)


class OutFile(_Checked):
    """A file the command writes (its folder must exist)."""
    name, verb = "file", "write"

    def why_not(self, p):
        return _why_not_writable_file(p)


class InFile(_Checked):
    """A file the command reads."""
    name, verb = "file", "read"

    def why_not(self, p):
        return _why_not_readable_file(p)


class ImageFile(_Checked):
    """A file read if it is there and written (made when new): an emulator's flash image."""
    name, verb = "file", "use"

    def why_not(self, p):
        if p.exists():
            return _why_not_readable_file(p) or (None if os.access(p, os.W_OK) else "permission denied")
        return _why_not_writable_file(p)


class OutFolder(_Checked):
    """A folder the command writes files in (made if missing)."""
    name, verb = "folder", "write in"

    def why_not(self, p):
        return _why_not_folder(p)


def _hint(param) -> str:
    if param is None:
        return "path"
    return param.opts[0] if getattr(param, "opts", None) and param.opts[0].startswith("-") else param.name.upper()


def file_errors(f):
    """A file that fails while being read or written: one line, exit code 1."""
    @functools.wraps(f)
    def wrapper(*args, **kw):
        try:
            return f(*args, **kw)
        except OSError as exc:
            if getattr(exc, "filename", None) is None:
                raise
            raise PathProblem(f"{exc.filename}: {exc.strerror or exc}") from exc
    return wrapper


@contextlib.contextmanager
def written_whole(path):
    """Yield a temporary path beside `path` (same suffix: writers pick the format by it);
    it becomes `path` only when the body finishes. Interrupted or failing, the old file
    (or no file) stays, never half of a new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename) == tmp:
            exc.filename = str(path)            # the user's name for it in the one-line error
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()

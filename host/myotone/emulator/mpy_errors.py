"""Print exceptions the way MicroPython does.

`format_exception(exc)` gives the text `mp_obj_print_exception()` prints:

    Traceback (most recent call last):
      File "<stdin>", line 1, in <module>
    NameError: name 'x' isn't defined

Lines end in "\\n"; the REPL turns them into "\\r\\n" on the wire, as the
board's cooked stdout does. Only frames of device code are listed (host
frames of the emulator itself are dropped), CPython-only exception types
are shown as the MicroPython type that would have been raised, and the
common CPython messages are reworded as MicroPython words them.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Callable

from .mpy_errno import oserror_text

# CPython type -> the MicroPython type name shown instead.
_TYPE_NAMES = {
    "ModuleNotFoundError": "ImportError",
    "RecursionError": "RuntimeError",
    "UnboundLocalError": "NameError",
    "FileNotFoundError": "OSError", "FileExistsError": "OSError",
    "IsADirectoryError": "OSError", "NotADirectoryError": "OSError",
    "PermissionError": "OSError", "TimeoutError": "OSError",
    "BlockingIOError": "OSError", "ConnectionError": "OSError",
    "BrokenPipeError": "OSError", "ConnectionResetError": "OSError",
    "ConnectionRefusedError": "OSError", "ConnectionAbortedError": "OSError",
    "InterruptedError": "OSError", "ProcessLookupError": "OSError",
    "ChildProcessError": "OSError", "TabError": "IndentationError",
    "UnicodeDecodeError": "UnicodeError", "UnicodeEncodeError": "UnicodeError",
    "FloatingPointError": "ArithmeticError",
}

_BINOPS = {
    "+": "__add__", "-": "__sub__", "*": "__mul__", "/": "__truediv__",
    "//": "__floordiv__", "%": "__mod__", "**": "__pow__", "@": "__matmul__",
    "&": "__and__", "|": "__or__", "^": "__xor__", "<<": "__lshift__",
    ">>": "__rshift__", "<": "__lt__", ">": "__gt__", "<=": "__le__",
    ">=": "__ge__", "divmod()": "__divmod__",
}
for _op, _name in list(_BINOPS.items()):
    if _op[0] not in "<>" or _op in ("<<", ">>"):
        _BINOPS[_op + "="] = "__i" + _name[2:]


def _binop(m: re.Match) -> str:
    op = _BINOPS.get(m.group(1), m.group(1))
    return "unsupported types for %s: '%s', '%s'" % (op, m.group(2), m.group(3))


# (CPython message regex, MicroPython replacement) tried in order.
_MESSAGES: list[tuple[re.Pattern, object]] = [(re.compile(p), r) for p, r in [
    (r"^name '(.+)' is not defined$", r"name '\1' isn't defined"),
    (r"^cannot access local variable '.+' where it is not associated with a value$",
     "local variable referenced before assignment"),
    (r"^local variable '.+' referenced before assignment$",
     "local variable referenced before assignment"),
    (r"^No module named '([^']+)'.*$", r"no module named '\1'"),
    (r"^cannot import name '([^']+)' from .*$", r"can't import name \1"),
    (r"^module '.+' has no attribute '(.+)'$", r"'module' object has no attribute '\1'"),
    (r"^'(.+)' object is not (callable|subscriptable|iterable)$", r"'\1' object isn't \2"),
    (r"^'(.+)' object does not support item assignment$",
     r"'\1' object doesn't support item assignment"),
    (r"^'(.+)' object does not support item deletion$",
     r"'\1' object doesn't support item deletion"),
    (r"^unsupported operand type\(s\) for (\S+): '(.+)' and '(.+)'$", _binop),
    (r"^'(\S+)' not supported between instances of '(.+)' and '(.+)'$", _binop),
    (r'^can only concatenate str \(not "(.+)"\) to str$',
     r"can't convert '\1' object to str implicitly"),
    (r"^(?:\S+\(\) )?takes (\d+) positional arguments? but (\d+) (?:was|were) given$",
     r"function takes \1 positional arguments but \2 were given"),
    (r"^\S+\(\) missing (\d+) required positional arguments?: .*$",
     r"function missing \1 required positional arguments"),
    (r"^\S+\(\) got an unexpected keyword argument '(.+)'$",
     r"unexpected keyword argument '\1'"),
    (r"^(?:integer |float )?(?:division|modulo|divmod)(?: or modulo)? by zero$", "divide by zero"),
    (r"^float (?:floor )?division(?: or modulo)? by zero$", "divide by zero"),
    (r"^invalid literal for int\(\) with base (\d+): .*$",
     r"invalid syntax for integer with base \1"),
    (r"^could not convert string to float: .*$", "invalid syntax for number"),
    (r"^list\.(?:remove|index)\(x\): x not in list$", "object not in sequence"),
    (r"^not enough values to unpack \(expected \d+, got (\d+)\)$",
     r"need more than \1 values to unpack"),
    (r"^maximum recursion depth exceeded.*$", "maximum recursion depth exceeded"),
    (r"^list assignment index out of range$", "list index out of range"),
]]

# SyntaxErrors the MicroPython *compiler* raises (these carry a block name);
# everything else is a parse error, "invalid syntax", without one.
_COMPILE_ERRORS = [(re.compile(p), r) for p, r in [
    (r"^'(break|return|yield|await|yield from)' outside (loop|function)$", r"'\1' outside \2"),
    (r"^'continue' not properly in loop$", "'continue' outside loop"),
    (r"^cannot (?:assign|delete) to .*$", None),
    (r"^non-default argument follows default argument$", "non-default argument follows default argument"),
    (r"^parameter without a default follows parameter with a default$",
     "non-default argument follows default argument"),
    (r"^duplicate argument '.+' in function definition$", "name reused for argument"),
    (r"^nonlocal declaration not allowed at module level$", "can't declare nonlocal in outer code"),
    (r"^no binding for nonlocal '.+' found$", "no binding for nonlocal found"),
]]


def is_device_frame(filename: str) -> bool:
    """Default rule for which traceback frames belong to device code.

    Host code lives in real files on the host; device code is compiled from
    strings with names like "<stdin>", "main.py" or "/lib/x.py" that are not
    host files. Python's own import machinery ("<frozen ...>") is dropped.
    """
    if filename.startswith("<frozen "):
        return False
    return not (os.path.isabs(filename) and os.path.isfile(filename))


def exception_type_name(exc: BaseException) -> str:
    name = type(exc).__name__
    return _TYPE_NAMES.get(name, name)


def _reword(message: str) -> str:
    for pattern, repl in _MESSAGES:
        m = pattern.match(message)
        if m:
            return repl(m) if callable(repl) else m.expand(repl)
    return message


def exception_message(exc: BaseException) -> str:
    """The text after "Type: " (empty for exceptions without arguments)."""
    if isinstance(exc, OSError):
        args = exc.args
        if type(exc) is not OSError and type(exc).__name__ != "OSError" and exc.errno:
            args = (exc.errno,)  # host FileNotFoundError(2, '...') -> OSError(2)
        elif len(args) == 2 and type(args[0]) is int and exc.errno is not None:
            args = (args[0],)  # CPython's strerror is not MicroPython's
        return oserror_text(tuple(args))
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])  # MicroPython prints str(arg), CPython repr
    args = exc.args
    if not args:
        return ""
    if len(args) == 1:
        return _reword(str(args[0]))
    return repr(tuple(args))


def _syntax_error_lines(exc: SyntaxError) -> tuple[str, str, str]:
    """(frame line, type name, message) for a SyntaxError from compile()."""
    msg = exc.msg or ""
    filename = exc.filename or "<stdin>"
    where = '  File "%s", line %d' % (filename, exc.lineno or 1)
    if isinstance(exc, IndentationError):
        if msg.startswith("unexpected indent"):
            return where, "IndentationError", "unexpected indent"
        if msg.startswith("unindent does not match"):
            return where, "IndentationError", "unindent doesn't match any outer indent level"
        return where, "SyntaxError", "invalid syntax"
    for pattern, repl in _COMPILE_ERRORS:
        m = pattern.match(msg)
        if m:
            text = m.expand(repl) if repl else (
                "can't delete expression" if "delete" in msg else "can't assign to expression")
            return where + ", in <module>", "SyntaxError", text
    return where, "SyntaxError", "invalid syntax"


def format_exception(exc: BaseException,
                     device_frame: Callable[[str], bool] = is_device_frame) -> str:
    """MicroPython's printout of an uncaught exception, "\\n"-terminated lines."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if device_frame(f.filename)]
    lines = []
    if isinstance(exc, SyntaxError) and not frames:
        where, name, message = _syntax_error_lines(exc)
        lines = ["Traceback (most recent call last):", where]
        return "\n".join(lines) + "\n%s: %s\n" % (name, message)
    if frames:
        lines.append("Traceback (most recent call last):")
        for f in frames:
            lines.append('  File "%s", line %d, in %s' % (f.filename, f.lineno or 0, f.name))
    lines.append("%s: %s" % (exception_type_name(exc), exception_message(exc)))
    return "\n".join(lines) + "\n"

"""Compile and run device source the way MicroPython's `pyexec.c` does.

Helpers a Runtime can use to implement `exec_source(source, mode)`:

* `compile_source(source, mode)` — mode "exec" compiles a file; mode
  "single" compiles REPL input. MicroPython compiles REPL input (a friendly
  line, or a whole paste-mode buffer) with `is_repl` set, which makes every
  module-level expression statement print its repr through the builtin
  `__repl_print__`. CPython's own "single" mode would use the process-wide
  `sys.displayhook` and refuses several statements, so instead the syntax
  tree is rewritten to call `__repl_print__(value)`.
* `make_repl_print(write, builtins_dict)` — that builtin: prints
  `repr(value)` + "\\n" unless the value is None, and stores it as `_`.
* `run_file_if_exists(...)` — `pyexec_file_if_exists()` for boot.py/main.py.
"""

from __future__ import annotations

import ast
import warnings
from types import CodeType
from typing import Callable

REPL_PRINT = "__repl_print__"


def normalize_newlines(source: str) -> str:
    """MicroPython's lexer reads "\\r\\n" and a lone "\\r" as newlines."""
    return source.replace("\r\n", "\n").replace("\r", "\n")


class _ReplPrinter(ast.NodeTransformer):
    """Wrap module-level expression statements in __repl_print__(...)."""

    def visit_Expr(self, node: ast.Expr) -> ast.Expr:
        call = ast.Call(func=ast.Name(id=REPL_PRINT, ctx=ast.Load()),
                        args=[node.value], keywords=[])
        return ast.copy_location(ast.Expr(value=ast.copy_location(call, node)), node)

    # Expressions inside functions and classes are not at module level.
    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef


def compile_source(source: str, mode: str, filename: str = "<stdin>") -> CodeType:
    """Compile device source; raises SyntaxError like compile() does."""
    if mode not in ("exec", "single"):
        raise ValueError("mode must be 'exec' or 'single'")
    source = normalize_newlines(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CPython's SyntaxWarnings: not MicroPython's
        if mode == "exec":
            return compile(source, filename, "exec", dont_inherit=True)
        tree = ast.parse(source, filename, "exec")
        tree = ast.fix_missing_locations(_ReplPrinter().visit(tree))
        return compile(tree, filename, "exec", dont_inherit=True)


def make_repl_print(write: Callable[[str], None], builtins_dict: dict) -> Callable:
    """The `__repl_print__` builtin, writing through `write` (cooked text)."""

    def __repl_print__(value):
        if value is not None:
            write(repr(value) + "\n")
            builtins_dict["_"] = value

    return __repl_print__


def run_file_if_exists(path: str, read_file: Callable[[str], bytes | None],
                       exec_code: Callable[[CodeType], None],
                       write_error: Callable[[BaseException], None]) -> bool:
    """Run one script file, as `pyexec_file_if_exists()`.

    Returns True if it ran to the end (or does not exist: `read_file`
    returns None then), False if an exception, KeyboardInterrupt included,
    stopped it; the exception is reported with `write_error`. Ports differ:
    rp2 runs main.py whatever boot.py did, esp32 only if boot.py succeeded.
    SystemExit (soft reset request) and other BaseExceptions (hard reset,
    power loss) propagate.
    """
    data = read_file(path)
    if data is None:
        return True
    try:
        exec_code(compile_source(data.decode("utf-8", "replace"), "exec", path))
    except (KeyboardInterrupt, Exception) as exc:
        write_error(exc)
        return False
    return True

"""The firmware's own numbers, read from firmware/myotone/limits.py (SAFETY.md's numbers are
written once, there): the CLI's value ranges come from here, so the host never repeats a limit
it could get wrong. The firmware range-checks every value itself; these only give the user an
early, clear message."""
from __future__ import annotations

import ast
import functools

from . import paths


@functools.cache
def constants(module: str = "limits") -> dict[str, int]:
    """Every `NAME = const(N)` of the firmware's limits.py (or another of its modules)."""
    tree = ast.parse((paths.firmware_dir() / "myotone" / f"{module}.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "const"):
            out[node.targets[0].id] = ast.literal_eval(node.value.args[0])
    return out


def ceiling_ua() -> int:
    """The absolute current ceiling (no board file can raise it)."""
    return constants()["ABS_CEILING_UA"]


def program_min_ua() -> int:
    return constants()["PROGRAM_MIN_UA"]


def session_max_s() -> int:
    return constants()["SESSION_MAX_MS"] // 1000


def _firmware_loader(fw_dir):
    """Load firmware modules (pure logic: `myotone.*`, with `micropython.const`) from `fw_dir`
    under CPython, apart from the host's own imports: each load has its own module table."""
    import builtins
    import types

    micropython = types.ModuleType("micropython")
    micropython.const = lambda value: value
    micropython.native = micropython.viper = lambda fn: fn
    modules = {"micropython": micropython}

    def load(name):
        if name in modules:
            return modules[name]
        path = fw_dir.joinpath(*name.split(".")).with_suffix(".py")
        is_package = not path.is_file()
        if is_package:
            path = fw_dir.joinpath(*name.split("."), "__init__.py")
        module = types.ModuleType(name)
        module.__dict__["__builtins__"] = dict(vars(builtins), __import__=import_)
        if is_package:
            module.__path__ = []
        modules[name] = module
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
        return module

    def import_(name, globals=None, locals=None, fromlist=(), level=0):
        if name != "micropython" and name != "myotone" and not name.startswith("myotone."):
            return builtins.__import__(name, globals, locals, fromlist, level)
        module = load(name)
        for sub in fromlist or ():
            if name == "myotone" and not hasattr(module, sub):
                setattr(module, sub, load("myotone." + sub))
        if not fromlist and "." in name:
            return load(name.split(".")[0])
        return module

    return load


def board_error(board: dict, fw_dir=None) -> str | None:
    """What the firmware's own board.check() (in `fw_dir`, default this checkout's) says of a
    board file at boot: None if it takes it, else its reason."""
    import copy
    load = _firmware_loader(fw_dir or paths.firmware_dir())
    check = load("myotone.board")
    try:
        check.check(copy.deepcopy(board))
    except check.BoardError as exc:
        return str(exc)
    return None

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

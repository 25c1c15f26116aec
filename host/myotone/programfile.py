"""A user program from a JSON or YAML file, for `myotone programs write`.

The file holds what the protocol's `program_write` takes as `program`
(`description`, `phases`), optionally with its `name`. Only the shape is
checked here (so a typo is one clear line before anything is sent); the
device checks everything else (ranges, timing, dose) and its answer is the
verdict. The request must fit one protocol line (512 bytes): fields equal
to the firmware's defaults are left out to make room.
"""
from __future__ import annotations

import json
from pathlib import Path

LINE_MAX = 512                       # the firmware's protocol line limit (docs/protocol.md)
# phase fields the firmware fills in when they are missing (firmware/myotone/programs.py)
PHASE_DEFAULTS = {"label": "", "current_pct": 0, "hz": 0, "phase_us": 0, "gap_us": 0, "alternate": True,
                  "burst_on_ms": 0, "burst_off_ms": 0, "red_pct": 0, "nir_pct": 0}


class ProgramFileError(Exception):
    """A program file that cannot be read or is not a program."""


def read(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProgramFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ProgramFileError(f"{path} is a directory, not a program file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramFileError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ProgramFileError("reading YAML needs PyYAML: pip install 'myotone[yaml]' "
                                   "(or write the program as JSON)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ProgramFileError(f"{path} is not valid YAML{where}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProgramFileError(f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')}: "
                                   f"{getattr(exc, 'msg', exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("phases"), list):
        raise ProgramFileError(f"{path}: a program is an object with a list of `phases` "
                               "(see docs/protocol.md#program_write)")
    return data


def request_args(data: dict, name: str | None, path: Path) -> dict:
    """The arguments of program_write: the name (given, else the file's, else its stem)."""
    prog = {k: v for k, v in data.items() if k != "name"}
    name = name or data.get("name") or Path(path).stem
    if isinstance(prog.get("phases"), list):
        prog["phases"] = [{k: v for k, v in ph.items() if PHASE_DEFAULTS.get(k, object()) != v}
                          if isinstance(ph, dict) else ph for ph in prog["phases"]]
    args = {"name": name, "program": prog}
    size = len(json.dumps({"id": 99999, "cmd": "program_write", **args}, separators=(",", ":")).encode())
    if size > LINE_MAX:
        raise ProgramFileError(f"the program is {size} bytes as one protocol line, the device takes "
                               f"{LINE_MAX}: shorten the description or the labels")
    return args

"""`myotone hil`: run the HIL suite (hil_tests/, docs/hil.md) with pytest.

Without a port (or with `emu[:BOARD]`) the suite runs on the emulator; with a
device path or pyserial URL it runs on that board. Everything after `--` goes
to pytest unchanged (`--junitxml`, `-k`, `-n`, `--rig`, `--slow`, ...).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from . import paths


class HilError(Exception):
    """The suite cannot be run from here."""


def suite_dir() -> Path:
    return paths.repo_root() / "hil_tests"


def pytest_argv(port: str | None, board: str | None, pytest_args: list[str], control: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "pytest", str(suite_dir())]
    if port and (port == "emu" or port.startswith("emu:")):
        board = board or port.partition(":")[2] or None
        port = None
    if port:
        argv += ["--port", port]
    if board:
        argv += ["--board", board]
    if control:
        argv += ["--control", control]
    return argv + list(pytest_args)


def run_suite(port: str | None, board: str | None, pytest_args: list[str], control: str | None = None) -> int:
    """Run pytest on the suite in a child process; its exit code is ours."""
    if not (suite_dir() / "conftest.py").is_file():
        raise HilError(f"no HIL suite at {suite_dir()}: run from a Myotone checkout (or set MYOTONE_ROOT)")
    if board:
        from .emulator import EmulatorError
        from .emulator.board import load_board
        try:
            load_board(board)
        except EmulatorError as exc:
            raise HilError(str(exc)) from None
    if importlib.util.find_spec("pytest") is None:
        raise HilError("pytest is not installed: pip install 'myotone[test]'")
    env = dict(os.environ)
    host = str(Path(__file__).resolve().parents[1])        # this very package, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (host, env.get("PYTHONPATH")) if p)
    if control and not port:
        raise HilError("--control goes with --port: the URL of the served board it controls")
    return subprocess.call(pytest_argv(port, board, pytest_args, control), cwd=str(paths.repo_root()), env=env)

"""Shared helpers of the CLI tests: a served emulator subprocess and a CLI runner."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from myotone.cli import main

REPO = Path(__file__).resolve().parents[1]


class Served:
    """`myotone emu serve --tcp 0` in a subprocess: its serial URL and control URL."""

    def __init__(self, board="pico-mcp4725", speed=5.0, root=None):
        env = dict(os.environ, PYTHONPATH=str(REPO / "host"))
        if root is not None:
            env["MYOTONE_ROOT"] = str(root)
        self.proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--board", board,
                                      "--tcp", "0", "--speed", str(speed)],
                                     stdout=subprocess.PIPE, text=True, env=env)
        first = self.proc.stdout.readline().split()
        second = self.proc.stdout.readline().split()
        assert first[0] == "serving" and second[0] == "control", (first, second)
        self.url, self.control_url = first[1], second[1]

    def control(self):
        from myotone.emulator.control import ControlClient
        return ControlClient(self.control_url)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def cli(*args, env=None, input=None):
    """Run `myotone ARGS` in-process; returns click's Result."""
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def one_line_error(result, *fragments):
    """A user mistake: non-zero exit, one error line on stderr (after any progress
    lines), no traceback."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output, result.output
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert not any(ln.startswith(("Usage:", "Try ")) for ln in lines), result.stderr
    assert sum(1 for ln in lines if ln.startswith("Error")) == 1 and not lines[-1].endswith(":"), result.stderr
    err = lines[-1]
    for f in fragments:
        assert f in err, err
    return err


def usage_error(result, command, *fragments):
    """A usage mistake (click's or ours): exit code 2 and exactly one line on stderr,
    `Error: COMMAND: … (see COMMAND --help)`, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr
    line = lines[0]
    assert line.startswith(f"Error: {command}: ") and line.endswith(f" (see {command} --help)"), line
    assert result.stdout == "", result.stdout
    for f in fragments:
        assert f in line, line
    return line


def copy_tree(tmp_path: Path) -> Path:
    """A private copy of firmware/ and boards/ (MYOTONE_ROOT) to change files in."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "firmware", root / "firmware", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "boards", root / "boards")
    return root


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

"""`myotone --help` stays cheap: the modules only some commands need are imported by those commands."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("serial", "mpremote", "myotone.emulator", "myotone.flasher", "myotone.monitor", "myotone.plot",
         "matplotlib", "numpy", "littlefs")


def loaded_by(*argv: str) -> set:
    """The HEAVY modules (and their submodules) in sys.modules after `myotone ARGV` ran."""
    code = ("import sys, runpy\nsys.argv = ['myotone'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('myotone', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('--- modules:', *sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO / "host")))
    assert r.returncode == 0, r.stderr
    names = r.stdout.rpartition("--- modules:")[2].split()
    return {m for m in names if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def test_help_imports_no_serial_tools_emulator_or_plotting():
    assert loaded_by("--help") == set()
    assert loaded_by("emu", "--help") == set()


def test_the_check_sees_what_a_command_imports():
    # the same probe run on a command that needs the emulator finds it: the check can fail
    assert "myotone.emulator" in loaded_by("emu", "run", "--help") | loaded_by("hello", "--port", "emu")

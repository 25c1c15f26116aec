"""Usage mistakes (click's own and our `click.UsageError`s): one line on stderr that
names the command and its --help, exit code 2, never click's three-line block
nor a traceback. A walk gives every command and group an unknown option, so a new
one cannot be added without it."""
import os
import subprocess
import sys

import pytest

from cli_helpers import REPO, cli, usage_error
from myotone.cli import main

SCENARIO = str(REPO / "docs" / "scenarios" / "host-gone.json")

P = pytest.param
CASES = [
    # argv, the command the line names, what it says
    P(["session", "start", "--foo"], "myotone session start", ["no such option --foo"], id="unknown-option"),
    P(["hello", "--jsn"], "myotone hello", ["no such option --jsn; did you mean --json?"], id="unknown-option-near"),
    P(["--foo", "hello"], "myotone", ["no such option --foo"], id="unknown-option-of-myotone"),
    P(["sesion", "start"], "myotone", ["no such command sesion; did you mean session?"], id="unknown-command"),
    P(["emu", "nope"], "myotone emu", ["no such command nope"], id="unknown-command-of-a-group"),
    P(["programs", "show"], "myotone programs show", ["missing argument NAME"], id="missing-argument"),
    P(["plot", "3"], "myotone plot", ["missing option --out"], id="missing-option"),
    P(["calibrate", "--port", "emu"], "myotone calibrate", ["missing option --load-ohm"], id="missing-option-2"),
    P(["session", "start", "--port"], "myotone session start", ["option --port requires an argument"],
      id="option-without-value"),
    P(["hello", "extra"], "myotone hello", ["got unexpected extra argument (extra)"], id="extra-argument"),
    P(["emu", "serve", "--chip", "z80", "--tcp", "0"], "myotone emu serve",
      ["invalid value for --chip: 'z80' is not one of 'python', 'rp2040'"], id="bad-choice"),
    P(["demo", "--ua", "lots"], "myotone demo", ["invalid value for --ua: 'lots' is not a valid integer"],
      id="bad-int"),
    P(["settings", "--port", "emu", "--level", "9"], "myotone settings",
      ["invalid value for --level: 9 is not in the range 1<=x<=5"], id="int-out-of-range"),
    P(["emu", "scope", SCENARIO, "--out", "x.png", "--from-s", "-1"], "myotone emu scope",
      ["invalid value for --from-s"], id="float-out-of-range"),
    # ours: the click.UsageError and click.BadParameter the commands raise
    P(["emu", "serve"], "myotone emu serve", ["give exactly one of --tcp PORT or --pty"], id="ours-tcp-or-pty"),
    P(["emu", "serve", "--tcp", "0", "--uf2", SCENARIO], "myotone emu serve", ["--uf2 goes with --chip rp2040"],
      id="ours-uf2-needs-rp2040"),
    P(["logs", "pull", "--port", "emu"], "myotone logs pull", ["give log numbers (see `myotone logs list`) or --all"],
      id="ours-logs-pull"),
    P(["session", "start", "--port", "emu", "--ua", "100", "--hz", "10"], "myotone session start",
      ["give --program, or an explicit waveform", "--phase-us"], id="ours-waveform"),
    P(["selftest", "--port", "emu", "--load", "5x"], "myotone selftest",
      ["invalid value for --load: comma-separated ohms"], id="ours-bad-load"),
]


@pytest.mark.parametrize("argv, command, fragments", CASES)
def test_a_usage_mistake_is_one_line(argv, command, fragments):
    usage_error(cli(*argv), command, *fragments)


def test_a_usage_mistake_with_json_is_still_one_line_and_no_json():
    usage_error(cli("status", "--json", "--port"), "myotone status", "option --port requires an argument")


def commands(group=main, prefix=("myotone",)):
    """Every group and command, by its path."""
    for name, cmd in sorted(group.commands.items()):
        path = prefix + (name,)
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from commands(cmd, path)


def test_every_command_says_a_usage_mistake_in_one_line():
    walked = 0
    for path, cmd in [(("myotone",), main), *commands()]:
        if cmd.context_settings.get("ignore_unknown_options"):     # `hil`: unknown options go to pytest
            continue
        usage_error(cli(*path[1:], "--no-such-option"), " ".join(path), "no such option --no-such-option")
        walked += 1
    assert walked > 30


def test_help_is_still_help():
    r = cli("session", "start", "--help")
    assert r.exit_code == 0 and r.stdout.startswith("Usage: myotone session start [OPTIONS]\n") and not r.stderr
    r = cli("session")                              # a group without its command: its help, as click gives it
    assert r.exit_code == 2 and r.output.startswith("Usage: myotone session [OPTIONS] COMMAND") and "Commands:" in r.output


def test_the_installed_command_says_it_in_one_line_too():
    """The console script's path (interrupt handlers installed, click's standalone mode, the
    program name from argv): one line on stderr and exit code 2."""
    r = subprocess.run([sys.executable, "-m", "myotone", "session", "start", "--foo"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO / "host")))
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.splitlines() == ["Error: python -m myotone session start: no such option --foo "
                                     "(see python -m myotone session start --help)"], r.stderr

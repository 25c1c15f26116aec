"""Shell completion (click's): the script, and completion of commands, boards and ports."""
from click.testing import CliRunner

from myotone.cli import main


def complete(words: str) -> list:
    """Candidates for the last word of `words` (a trailing space starts a new, empty one)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_MYOTONE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    r = CliRunner().invoke(main, [], env=env, prog_name="myotone")
    return [line.split(",", 1)[1] for line in r.output.splitlines() if "," in line]


def test_bash_source_script():
    r = CliRunner().invoke(main, [], env={"_MYOTONE_COMPLETE": "bash_source"}, prog_name="myotone")
    assert r.exit_code == 0 and "_myotone_completion" in r.output and "complete " in r.output


def test_completes_commands_boards_and_ports():
    assert {"flash", "selftest", "session", "monitor"} <= set(complete("myotone "))
    assert complete("myotone flash --board pi") == ["pico-mcp4725"]
    assert complete("myotone hello --port emu:e") == ["emu:esp32-devkit"]
    assert set(complete("myotone session ")) >= {"start", "stop", "pause", "resume"}

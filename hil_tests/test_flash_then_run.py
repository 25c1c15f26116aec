"""Flash, reset, run: what `myotone flash` puts on the board is what runs after its reset.

The board runs this checkout's firmware (the suite is for a freshly flashed
board). The test flashes a changed firmware (another version string, from a
copy of the checkout) with a changed board file (a limit 10 uA lower: the
board's over-current latch is set for its limit, and board.check refuses a
limit it does not fit, docs/boards.md), checks that
`hello` reports both and that the new limit is enforced, then flashes this
checkout with the board file that was on the board before, and checks that
too. On the emulator it gets an emulator of its own behind a TCP port.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from myotone import paths

pytestmark = pytest.mark.flash

INIT = "myotone/__init__.py"

LOWER_BY_UA = 10      # within the reference latch's window: 530 uA +- 2.5 % fits limits 485..506 uA


def myotone_flash(port, board_file, root=None):
    """`myotone flash --json` of `root` (a checkout) with `board_file`; its result for the board."""
    env = dict(os.environ, MYOTONE_ROOT=str(root or paths.repo_root()))
    r = subprocess.run([sys.executable, "-m", "myotone", "flash", "--port", port, "--board", str(board_file),
                        "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f"myotone flash failed:\n{r.stdout}{r.stderr}"
    (result,) = json.loads(r.stdout.strip().splitlines()[-1])["results"]
    return result


def board_json_on(port):
    """The board file on the board now (read with mpremote, which writes nothing)."""
    exe = shutil.which("mpremote") or os.path.join(os.path.dirname(sys.executable), "mpremote")
    r = subprocess.run([exe, "connect", port, "fs", "cat", ":board.json", "+", "reset"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"mpremote could not read /board.json:\n{r.stdout}{r.stderr}"
    return json.loads(r.stdout)


def checkout_version():
    return re.search(r'VERSION = "([^"]+)"', (paths.firmware_dir() / INIT).read_text()).group(1)


def test_flash_then_run(dut, tmp_path):
    hello = dut.request("hello", timeout_s=10)
    assert hello["firmware"] == checkout_version(), (
        f"the board runs firmware {hello['firmware']}, this checkout is {checkout_version()}: flash it first")
    limit_ua = hello["limits"]["max_ua"]
    with dut.released() as port:
        kept = board_json_on(port)
    (tmp_path / "kept.json").write_text(json.dumps(kept))
    (tmp_path / "lower.json").write_text(json.dumps(dict(kept, limit_ua=limit_ua - LOWER_BY_UA)))
    changed = tmp_path / "checkout"
    shutil.copytree(paths.firmware_dir(), changed / "firmware")
    shutil.copytree(paths.boards_dir(), changed / "boards")
    init = changed / "firmware" / INIT
    init.write_text(init.read_text().replace(f'"{checkout_version()}"', '"hil-flash-test"'))
    try:
        with dut.released() as port:
            result = myotone_flash(port, tmp_path / "lower.json", root=changed)
        assert "/board.json" in result["uploaded"] and result["firmware"] == "hil-flash-test", result
        flashed = dut.request("hello", timeout_s=10)
        assert flashed["firmware"] == "hil-flash-test"
        assert flashed["limits"]["max_ua"] == limit_ua - LOWER_BY_UA
        r = dut.refusal("start", ua=limit_ua - LOWER_BY_UA + 1, **dut.session_args())
        assert r["error"] == "out_of_range" and f"..{limit_ua - LOWER_BY_UA} uA" in r["message"]
    finally:
        with dut.released() as port:
            myotone_flash(port, tmp_path / "kept.json")
    back = dut.request("hello", timeout_s=10)
    assert back["firmware"] == hello["firmware"] and back["limits"]["max_ua"] == limit_ua

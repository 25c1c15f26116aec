"""Flash, reset, run: files copied with mpremote are what the board runs after a reset.

The board runs this checkout's firmware (the suite is for a freshly flashed
board). The test then copies a changed board file (a lower limit) and a
changed firmware file (another version string), resets, and checks that
`hello` reports both and that the new limit is enforced. It puts back what
was on the board before and checks that too. On the emulator it gets an
emulator of its own behind a TCP port, which real mpremote flashes.
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


def mpremote_exe():
    exe = shutil.which("mpremote") or os.path.join(os.path.dirname(sys.executable), "mpremote")
    if not os.path.exists(exe):
        pytest.skip("mpremote is not installed")
    return exe


def mpremote(port, *args):
    r = subprocess.run([mpremote_exe(), "connect", port, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"mpremote {' '.join(args)} failed:\n{r.stdout}{r.stderr}"
    return r.stdout


def checkout_version():
    text = (paths.firmware_dir() / INIT).read_text()
    return re.search(r'VERSION = "([^"]+)"', text).group(1)


def test_flash_then_run(dut, tmp_path):
    hello = dut.request("hello", timeout_s=10)
    assert hello["firmware"] == checkout_version(), (
        f"the board runs firmware {hello['firmware']}, this checkout is {checkout_version()}: flash it first")
    limit_ua = hello["limits"]["max_ua"]
    kept = tmp_path / "kept"
    kept.mkdir()
    with dut.released() as port:             # what is on the board now, to put back afterwards
        mpremote(port, "fs", "cp", ":board.json", str(kept / "board.json"),
                 "+", "fs", "cp", ":" + INIT, str(kept / "__init__.py"), "+", "reset")
    board = json.loads((kept / "board.json").read_text())
    lower = dict(board, limit_ua=limit_ua - 100)
    (tmp_path / "board.json").write_text(json.dumps(lower))
    init = (kept / "__init__.py").read_text()
    (tmp_path / "__init__.py").write_text(init.replace(f'"{hello["firmware"]}"', '"hil-flash-test"'))
    try:
        with dut.released() as port:
            mpremote(port, "fs", "cp", str(tmp_path / "board.json"), ":board.json",
                     "+", "fs", "cp", str(tmp_path / "__init__.py"), ":" + INIT, "+", "reset")
        flashed = dut.request("hello", timeout_s=10)
        assert flashed["firmware"] == "hil-flash-test"
        assert flashed["limits"]["max_ua"] == limit_ua - 100
        r = dut.refusal("start", ua=limit_ua - 99, **dut.session_args())
        assert r["error"] == "out_of_range" and f"..{limit_ua - 100} uA" in r["message"]
    finally:
        with dut.released() as port:
            mpremote(port, "fs", "cp", str(kept / "board.json"), ":board.json",
                     "+", "fs", "cp", str(kept / "__init__.py"), ":" + INIT, "+", "reset")
    back = dut.request("hello", timeout_s=10)
    assert back["firmware"] == hello["firmware"] and back["limits"]["max_ua"] == limit_ua

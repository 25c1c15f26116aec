"""`myotone emu serve --flash FILE`: real mpremote works on a board whose flash is a file."""
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from myotone.emulator.flash import Flash

MPREMOTE = shutil.which("mpremote") or str(Path(sys.executable).with_name("mpremote"))


class Served:
    def __init__(self, flash: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--tcp", "0",
                                      "--speed", "3", "--flash", str(flash)], stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[1]

    def mp(self, *args):
        r = subprocess.run([MPREMOTE, "connect", self.url, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_mpremote_exec_eval_fs_and_reset_on_a_flash_file_that_outlives_the_server(tmp_path):
    flash = tmp_path / "pico.img"
    data = tmp_path / "cal.json"
    data.write_text('{"gain": 1.02}\n')
    board = Served(flash)
    try:
        assert board.mp("eval", "1 + 2").strip() == "3"
        assert board.mp("exec", "import sys; print(sys.platform)").strip() == "rp2"
        board.mp("fs", "mkdir", ":logs")
        board.mp("fs", "cp", str(data), ":logs/cal.json")
        out = board.mp("fs", "sha256sum", ":logs/cal.json")   # "sha256sum :logs/cal.json\n<hex>  ..."
        assert hashlib.sha256(data.read_bytes()).hexdigest() in out.split()
        board.mp("fs", "cp", str(data), ":scratch.txt")
        board.mp("fs", "rm", ":scratch.txt")
        assert "scratch.txt" not in board.mp("fs", "ls")
        board.mp("reset")
    finally:
        board.close()
    image = Flash(flash)                          # the file is a littlefs image of the board
    assert image.read_file("/logs/cal.json") == data.read_bytes() and not image.exists("/scratch.txt")
    board = Served(flash)                         # and the next server boots from it
    try:
        assert "cal.json" in board.mp("fs", "ls", ":logs")
        assert "main.py" in board.mp("fs", "ls")
    finally:
        board.close()


def test_the_pacer_moves_virtual_time_at_any_speed_and_rebases_only_when_the_emulator_lags():
    """At --speed 50 one 2 ms pacer step is 100 ms of virtual time, more than the 50 ms lead:
    every step counted as lagging and a served emulator never advanced. Pure arithmetic here:
    no wall clock."""
    import pytest

    from myotone.emulator.clock import PACE_S, pace_step
    for speed in (0.25, 1.0, 5.0, 50.0, 500.0):
        base_v, base_w, now_v, wall = 0, 100.0, 0, 100.0
        for _ in range(100):                         # an emulator that keeps up: it runs to the limit
            wall += PACE_S
            base_v, base_w, target = pace_step(base_v, base_w, wall, now_v, speed, 50_000_000)
            now_v = target
        assert now_v == pytest.approx(100 * PACE_S * speed * 1e9, rel=1e-6), speed
    # an emulator that stands still (the CPU lags): the base moves, no burst builds up
    base_v, base_w, target = pace_step(0, 0.0, 10.0, 0, 1.0, 50_000_000)
    assert (base_v, base_w, target) == (0, 10.0, 0)

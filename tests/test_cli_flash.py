"""`myotone flash` against served emulators (real mpremote transport), and the
mpy-cross build for both board architectures."""
import json
import shutil

import pytest

from cli_helpers import Served, cli, copy_tree, one_line_error
from myotone import build, flasher
from myotone.link import Link

MPY_RP2 = 6 | 3 << 8 | 4 << 10      # sys.implementation._mpy of MicroPython 1.29 on an RP2040 (armv6m)
MPY_ESP32 = 6 | 3 << 8 | 10 << 10   # ... on an ESP32 (xtensawin)


@pytest.fixture
def root(tmp_path):
    return copy_tree(tmp_path)


@pytest.fixture
def served(root):
    s = Served(root=root)
    yield s
    s.close()


def flash_json(*args, root):
    r = cli("flash", *args, "--json", env={"MYOTONE_ROOT": str(root)})
    return r, json.loads(r.stdout.strip().splitlines()[-1])


def test_flash_uploads_only_what_changed_resets_and_checks_hello(served, root):
    # a fresh emulator holds the same firmware; only the board file's bytes differ
    r, out = flash_json("--port", served.url, root=root)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""                                      # --json: no progress output
    res = out["results"][0]
    assert res["ok"] and res["uploaded"] == ["/board.json"] and res["mpy"] is None
    assert res["firmware"] == "0.1.0" and res["board"] == "pico-mcp4725" and res["unchanged"] >= 25

    r, out = flash_json("--port", served.url, root=root)          # nothing left to do
    assert out["results"][0]["uploaded"] == []

    init = root / "firmware" / "myotone" / "__init__.py"
    init.write_text(init.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.1.1-test"'))
    (root / "firmware" / "myotone" / "extra.py").write_text("X = 1\n")
    r, out = flash_json("--port", served.url, "--dry-run", root=root)
    res = out["results"][0]
    assert res["dry_run"] and sorted(res["uploaded"]) == ["/myotone/__init__.py", "/myotone/extra.py"]
    with Link.open(served.url) as link:                        # a dry run writes nothing
        assert link.request("hello", timeout_s=10)["firmware"] == "0.1.0"

    r, out = flash_json("--port", served.url, root=root)
    res = out["results"][0]
    assert res["ok"] and sorted(res["uploaded"]) == ["/myotone/__init__.py", "/myotone/extra.py"]
    assert res["firmware"] == "0.1.1-test"                     # what hello says after the reset

    (root / "firmware" / "myotone" / "extra.py").unlink()
    r, out = flash_json("--port", served.url, root=root)
    res = out["results"][0]
    assert res["ok"] and res["uploaded"] == [] and res["deleted"] == ["/myotone/extra.py"]


def test_flash_text_output_and_progress(served, root):
    init = root / "firmware" / "myotone" / "limits.py"
    init.write_text(init.read_text() + "\n# touched\n")
    r = cli("flash", "--port", served.url, env={"MYOTONE_ROOT": str(root)})
    assert r.exit_code == 0, r.output
    assert "uploaded /board.json, /myotone/limits.py" in r.stdout and "hello: firmware 0.1.0" in r.stdout
    assert "uploading" in r.stderr                             # the progress bar, on stderr


def test_flash_several_boards_in_parallel_one_result_each(root):
    a, b = Served(root=root), Served(board="esp32-devkit", root=root)
    try:
        r, out = flash_json("--port", a.url, "--port", b.url, "--port", "socket://127.0.0.1:1", root=root)
        assert r.exit_code == 1                                # one board failed: not a success
        ok_a, ok_b, bad = out["results"]
        assert ok_a["ok"] and ok_a["board"] == "pico-mcp4725" and ok_a["port"] == a.url
        assert ok_b["ok"] and ok_b["board"] == "esp32-devkit" and ok_b["port"] == b.url
        assert not bad["ok"] and "nothing is listening" in bad["error"]
    finally:
        a.close()
        b.close()


def test_flash_refuses_the_in_process_emulator_and_a_mismatched_board(served, root):
    r = cli("flash", "--port", "emu")
    assert r.exit_code == 1 and "emu serve" in r.stdout and "Traceback" not in r.output
    r, out = flash_json("--port", served.url, "--board", "esp32-devkit", root=root)
    assert r.exit_code == 1 and "is for esp32, the device is rp2" in out["results"][0]["error"]
    r, out = flash_json("--port", served.url, "--board", "nope", root=root)
    assert "unknown board 'nope'" in out["results"][0]["error"]
    one_line_error(cli("flash"), "no port")


def test_flash_refuses_a_board_file_the_firmware_would_refuse_before_uploading_anything(served, root, tmp_path):
    """A limit the board's over-current latch does not fit (docs/boards.md): refused by the
    firmware's own board.check() on the host, with its reason; the board keeps what it had and
    still answers."""
    board = json.loads((root / "boards" / "pico-mcp4725.json").read_text())
    (tmp_path / "lower.json").write_text(json.dumps(dict(board, limit_ua=300)))
    r, out = flash_json("--port", served.url, "--board", str(tmp_path / "lower.json"), root=root)
    res = out["results"][0]
    assert r.exit_code == 1 and res["uploaded"] == [] and "Traceback" not in r.output
    assert res["error"].startswith("the firmware refuses board file lower: board: the over-current latch sets at")
    with Link.open(served.url) as link:
        assert link.request("hello")["limits"]["max_ua"] == 500


def test_flash_plans_mpy_for_a_board_that_loads_them(served, root, monkeypatch):
    """A board whose MicroPython loads .mpy v6.3 gets the package compiled, and the
    source files it had are removed (a .py next to its .mpy would win the import)."""
    real_info = flasher.Board.info
    monkeypatch.setattr(flasher.Board, "info", lambda self: {**real_info(self), "mpy": MPY_RP2})
    res = flasher.flash_one(served.url, dry_run=True, firmware_dir=root / "firmware")
    assert res.ok and res.mpy == "6.3", res.error
    assert "/myotone/pulse.mpy" in res.uploaded and "/myotone/pulse.py" in res.deleted
    assert "/myotone/__init__.py" not in res.uploaded          # packages' __init__ stay source
    assert "/boot.py" not in res.uploaded and "/main.py" not in res.uploaded
    assert not any(p.endswith(".mpy") for p in res.deleted)


# ---- the build --------------------------------------------------------------------
def test_mpy_target_from_sys_implementation():
    assert build.mpy_target(MPY_RP2, "rp2040") == build.MpyTarget(6, 3, "armv6m")
    assert build.mpy_target(MPY_ESP32, "esp32") == build.MpyTarget(6, 3, "xtensawin")
    assert build.mpy_target(6 | 3 << 8, "esp32") == build.MpyTarget(6, 3, "xtensawin")   # no arch: the MCU's
    assert build.mpy_target(0, "rp2040") is None and build.mpy_target(None, "esp32") is None


@pytest.mark.parametrize("mpy,arch", [(MPY_RP2, "armv6m"), (MPY_ESP32, "xtensawin")])
def test_package_compiles_for_both_architectures(root, mpy, arch):
    board = "pico-mcp4725" if arch == "armv6m" else "esp32-devkit"
    target = build.mpy_target(mpy, "rp2040" if arch == "armv6m" else "esp32")
    pkg = build.build(root / "firmware", root / "boards" / f"{board}.json", target)
    mpys = [p for p in pkg.files if p.endswith(".mpy")]
    assert "/myotone/supervisor.mpy" in mpys and "/myotone/hal/dac.mpy" in mpys
    for p in mpys:
        head = pkg.files[p][:4]
        assert head[0] == ord("M") and head[1] == 6 and head[3] <= 31, (p, head)
        assert head[2] >> 2 in (0, build.ARCHS.index(arch))  # bytecode only, or this arch's native code
    assert pkg.files["/boot.py"].startswith(b"#") and pkg.files["/main.py"].startswith(b"#")
    assert json.loads(pkg.files["/board.json"])["name"] == board


@pytest.mark.parametrize("arch,byte2", [("armv6m", 0x13), ("xtensawin", 0x2B)])
def test_native_code_carries_the_architecture_in_its_header(tmp_path, arch, byte2):
    src = tmp_path / "fast.py"
    src.write_text("import micropython\n@micropython.native\ndef f(x):\n    return x + 1\n")
    target = build.MpyTarget(6, 3, arch)
    data = build.compile_mpy(src, "fast.py", target)
    assert data[:4] == bytes([0x4D, 6, byte2, 31])
    build.check_mpy_header(data, target)
    other = build.MpyTarget(6, 3, "xtensawin" if arch == "armv6m" else "armv6m")
    with pytest.raises(build.BuildError, match="built for"):
        build.check_mpy_header(data, other)


def test_an_older_board_gets_its_own_mpy_version(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = build.MpyTarget(6, 2, "armv6m")                 # MicroPython 1.22
    exe = build.compiler_for(target)
    assert build._emits(exe) == "6.2"
    src = tmp_path / "m.py"
    src.write_text("X = [1, 2, 3]\n")
    assert build.compile_mpy(src, "m.py", target)[:2] == b"M\x06"
    with pytest.raises(build.BuildError, match="v9.9"):
        build.compiler_for(build.MpyTarget(9, 9, "armv6m"))


def test_compiled_modules_come_from_the_cache_until_source_name_or_target_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "m.py"
    src.write_text("X = 1\n")
    rp2 = build.MpyTarget(6, 3, "armv6m")
    first = build.compile_mpy(src, "m.py", rp2)
    runs = []
    real_run = build.subprocess.run
    monkeypatch.setattr(build.subprocess, "run", lambda cmd, **kw: (runs.append(cmd), real_run(cmd, **kw))[1])
    assert build.compile_mpy(src, "m.py", rp2) == first and runs == []          # no mpy-cross run
    assert len(list((tmp_path / "cache" / "myotone" / "mpy").glob("*.mpy"))) == 1
    src.write_text("X = 2\n")
    second = build.compile_mpy(src, "m.py", rp2)
    assert second != first and len(runs) == 1
    build.compile_mpy(src, "n.py", rp2)                                         # the name is in the .mpy
    build.compile_mpy(src, "n.py", build.MpyTarget(6, 3, "xtensawin"))
    assert len(runs) == 3
    assert build.compile_mpy(src, "m.py", rp2) == second and len(runs) == 3
    shutil.rmtree(tmp_path / "cache" / "myotone" / "mpy")                       # a cache it cannot write
    (tmp_path / "cache" / "myotone" / "mpy").write_text("not a directory")
    assert build.compile_mpy(src, "m.py", rp2) == second and len(runs) == 4


def test_plan_uploads_missing_and_changed_files_and_removes_stale_ones():
    pkg = build.Package(files={"/boot.py": b"b", "/main.py": b"m", "/board.json": b"{}",
                               "/myotone/__init__.py": b"i", "/myotone/hal/dac.mpy": b"d"})
    remote = {"/boot.py": pkg.digest("/boot.py"), "/main.py": "00", "/myotone/__init__.py": pkg.digest(
        "/myotone/__init__.py"), "/myotone/hal/dac.py": "aa", "/myotone/old.py": "bb"}
    plan = flasher.make_plan(pkg, remote, {"/myotone"})
    assert plan.upload == ["/board.json", "/myotone/hal/dac.mpy", "/main.py"]     # main.py last
    assert plan.mkdir == ["/myotone/hal"] and plan.delete == ["/myotone/hal/dac.py", "/myotone/old.py"]
    assert sorted(plan.unchanged) == ["/boot.py", "/myotone/__init__.py"]


def test_a_reset_mid_flash_leaves_whole_files_and_the_flash_resumes(served, root, monkeypatch):
    """The board resets after the first file (an ESP32 watchdog after Ctrl-C, a cable):
    files are renamed into place whole, and the flash goes on from where it was."""
    from mpremote.transport import TransportError
    for name in ("limits.py", "pulse.py"):
        f = root / "firmware" / "myotone" / name
        f.write_text(f.read_text() + "\n# changed\n")
    real_apply = flasher.Board.apply
    calls = []

    def apply_then_reset(self, pkg, plan, progress=None, done=None):
        calls.append(list(plan.upload))
        if len(calls) == 1:
            first = flasher.Plan(upload=plan.upload[:1], mkdir=plan.mkdir)
            real_apply(self, pkg, first, progress, done)
            # the reset comes in the middle of the next file: only its .tmp is written
            self.t.fs_writefile(plan.upload[1] + ".tmp", b"half")
            raise TransportError("could not enter raw repl")
        return real_apply(self, pkg, plan, progress, done)
    monkeypatch.setattr(flasher.Board, "apply", apply_then_reset)
    monkeypatch.setattr(flasher, "RETRY_AFTER_S", 0.1)
    res = flasher.flash_one(served.url, firmware_dir=root / "firmware")
    assert res.ok, res.error
    assert calls[0] == ["/board.json", "/myotone/limits.py", "/myotone/pulse.py"]
    assert calls[1] == ["/myotone/limits.py", "/myotone/pulse.py"]       # board.json was already whole
    assert res.uploaded == calls[0] and "resumed" in res.note
    again = flasher.flash_one(served.url, dry_run=True, firmware_dir=root / "firmware")
    assert again.uploaded == [] and again.deleted == []                   # no .tmp left behind


def test_flash_after_a_session_on_an_esp32(root):
    """After a session the ESP32 task watchdog runs and resets the board about 1 s
    after the Ctrl-C that stops the firmware: whenever that lands, the flash ends well."""
    s = Served(board="esp32-devkit", speed=2, root=root)
    try:
        with Link.open(s.url) as link:
            link.request("start", program="gentle", ua=100, duration_s=2, timeout_s=10)
        f = root / "firmware" / "myotone" / "limits.py"
        f.write_text(f.read_text() + "\n# changed\n")
        res = flasher.flash_one(s.url, firmware_dir=root / "firmware")
        assert res.ok, res.error
        assert "/myotone/limits.py" in res.uploaded and res.firmware == "0.1.0"
    finally:
        s.close()


def test_an_unchanged_reflash_soft_resets_and_a_changed_one_resets_the_board(served, root, monkeypatch):
    """Nothing to change: leave the raw REPL with a soft reset, as mpremote does (no USB
    re-enumeration), and ask hello on the port still open; anything changed:
    machine.reset(), and hello on the port opened again. Either way hello is checked."""
    ends = []
    for name in ("reset", "restart"):
        real = getattr(flasher.Board, name)
        monkeypatch.setattr(flasher.Board, name, lambda self, _r=real, _n=name: (ends.append(_n), _r(self))[1])
    real_open = Link.open.__func__
    monkeypatch.setattr(Link, "open", classmethod(lambda cls, port: (ends.append("open"), real_open(cls, port))[1]))
    fw = root / "firmware"
    first = flasher.flash_one(served.url, firmware_dir=fw)          # uploads /board.json
    assert first.ok and first.uploaded == ["/board.json"], first.error
    assert ends == ["reset", "open"]
    again = flasher.flash_one(served.url, firmware_dir=fw)
    assert again.ok and again.uploaded == [] and again.firmware == "0.1.0", again.error
    assert ends == ["reset", "open", "restart"]
    with Link.open(served.url) as link:                             # the firmware runs, the port is free
        assert link.request("status", timeout_s=10)["state"] == "idle"


def test_after_the_reset_hello_is_asked_again_when_the_firmware_says_ready(served, monkeypatch):
    """The host's hello reaches the board before its reset (and may die with it): the
    `ready` the firmware writes when it boots makes the flasher ask again at once
    (silence alone would only after HELLO_RESEND_S, here longer than the test may take)."""
    monkeypatch.setattr(flasher, "HELLO_RESEND_S", 600.0)
    sent = []
    real_send = Link.send
    monkeypatch.setattr(Link, "send", lambda self, msg: (sent.append(msg), real_send(self, msg))[1])
    dev = flasher.Board(served.url)
    # the board resets on the first byte the host sends after this (Link.open's newline),
    # so the first hello is on its way before the reset, whatever the machine's load
    dev.t.exec_raw_no_follow("import sys, machine; sys.stdin.read(1); machine.reset()")
    dev.close()
    hello = flasher.wait_for_hello(served.url, wait_s=120)
    assert hello["firmware"] == "0.1.0" and hello["reset_cause"] == "hard"
    assert [m["cmd"] for m in sent] == ["hello", "hello"] and hello["id"] in (1, 2)


def test_the_hosts_board_check_is_the_firmwares_own(fw, root):
    """fwlimits.board_error runs the firmware's board.py under CPython, apart from the host's
    imports: it says what the firmware says at boot (here under the emulator's runtime), for a
    good board of each MCU and for refused ones, from whichever firmware tree it is given."""
    from myotone import fwlimits, paths
    B = fw("myotone.board")
    pico = json.loads((paths.boards_dir() / "pico-mcp4725.json").read_text())
    esp32 = json.loads((paths.boards_dir() / "esp32-devkit.json").read_text())
    cases = [pico, esp32, dict(pico, limit_ua=300), dict(pico, oc_latch={**pico["oc_latch"], "q_pin": 10}),
             {k: v for k, v in esp32.items() if k != "watchdog_ms"}, dict(pico, mcu="avr")]
    for board in cases:
        try:
            B.check(json.loads(json.dumps(board)))
            want = None
        except B.BoardError as exc:
            want = str(exc)
        assert fwlimits.board_error(board) == want
        assert fwlimits.board_error(board, root / "firmware") == want
    assert [fwlimits.board_error(b) is None for b in cases] == [True, True, False, False, False, False]
    assert "myotone.board" not in __import__("sys").modules


def test_a_board_whose_ctrl_c_lands_in_boot_py_still_gives_its_raw_repl(root):
    """MicroPython (pyexec) runs main.py after a Ctrl-C stopped boot.py, and main.py then reads the
    Ctrl-A that was to enter the raw REPL as input: mpremote's one try times out ("could not enter
    raw repl"). Seen under load (a slow boot). A slow boot.py makes the race certain here: the
    board must still answer, the second Ctrl-C interrupting main.py."""
    from myotone import devicefs
    boot = root / "firmware" / "boot.py"
    boot.write_text("import time\ntime.sleep(20)\n" + boot.read_text())
    s = Served(root=root)
    try:
        board = devicefs.Board(s.url)
        try:
            assert board.info()["platform"] == "rp2"
        finally:
            board.t.close()
    finally:
        s.close()

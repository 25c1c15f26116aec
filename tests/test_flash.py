"""The littlefs flash image, MicroPython's os/open over it, power cuts."""

import os

import pytest

from myotone.emulator.flash import (ESP32_BLOCKS, RP2040_PICO_BLOCKS, RP2040_PICO_W_BLOCKS,
                                    Flash, FlashCorrupt, PowerLoss, make_open, make_os_module)


@pytest.fixture
def flash():
    return Flash(block_count=32, time_ns=lambda: 1_700_000_000 * 10**9)


@pytest.fixture
def dev(flash):
    """(os, open) as device code sees them."""
    return make_os_module(flash), make_open(flash)


def errno_of(fn, *args):
    with pytest.raises(OSError) as info:
        fn(*args)
    assert info.type.__name__ == "OSError"  # no CPython subclasses
    return info.value.errno


def test_board_sizes():
    assert RP2040_PICO_BLOCKS * 4096 == 1408 * 1024
    assert RP2040_PICO_W_BLOCKS * 4096 == 848 * 1024
    assert ESP32_BLOCKS * 4096 == 2 * 1024 * 1024
    flash = Flash()
    assert len(flash.image_bytes()) == 1408 * 1024
    assert make_os_module(flash).statvfs("/")[:3] == (4096, 4096, 352)


def test_files_and_dirs(dev, flash):
    os_, open_ = dev
    with open_("a.txt", "w") as f:
        assert f.write("héllo\nworld\n") == 13  # bytes written, as MicroPython
    os_.mkdir("lib")
    with open_("/lib/b.bin", "wb") as f:
        f.write(b"\x00\x01\x02")
    assert os_.listdir() == ["a.txt", "lib"]
    assert list(os_.ilistdir("/")) == [("a.txt", 0x8000, 0, 13), ("lib", 0x4000, 0, 0)]
    assert os_.listdir(b"/lib") == [b"b.bin"]
    assert os_.stat("a.txt") == (0x8000, 0, 0, 0, 0, 0, 13, 1_700_000_000, 1_700_000_000,
                                 1_700_000_000)
    assert os_.stat("lib")[0] == 0x4000
    bsize, frsize, blocks, bfree, bavail, *_, namemax = os_.statvfs("/")
    assert (bsize, blocks, namemax) == (4096, 32, 255) and 0 < bfree == bavail < 32
    os_.chdir("lib")
    assert os_.getcwd() == "/lib"
    with open_("../a.txt") as f:
        assert f.read() == "héllo\nworld\n"
    os_.rename("b.bin", "/c.bin")
    os_.chdir("/")
    assert sorted(os_.listdir()) == ["a.txt", "c.bin", "lib"]
    os_.remove("c.bin")
    os_.rmdir("lib")
    assert os_.listdir() == ["a.txt"]
    assert flash.read_file("/a.txt") == "héllo\nworld\n".encode()
    assert os_.sep == "/" and os_.uname().sysname == "rp2"


def test_errors_carry_micropython_errnos(dev):
    os_, open_ = dev
    os_.mkdir("d")
    open_("d/f", "w").close()
    assert errno_of(open_, "nope") == 2          # ENOENT
    assert errno_of(os_.mkdir, "d") == 17        # EEXIST
    assert errno_of(open_, "d") == 21            # EISDIR
    assert errno_of(os_.listdir, "d/f") == 20    # ENOTDIR
    assert errno_of(os_.rmdir, "d") == 39        # ENOTEMPTY
    assert errno_of(os_.remove, "/") == 22       # EINVAL
    assert errno_of(os_.chdir, "d/f") == 2       # chdir to a file: ENOENT on MicroPython
    assert errno_of(open_, "d/f", "x") == 17
    with open_("d/f") as f:
        assert errno_of(f.write, "x") == 9       # EBADF: not open for writing
    try:
        open_("nope")
    except OSError as e:
        assert str(e) == "[Errno 2] ENOENT" and e.args == (2,)


def test_file_object_api(dev):
    _, open_ = dev
    with open_("f.txt", "w") as f:
        f.write("one\ntwo\nthree")
    with open_("f.txt") as f:
        assert f.readline() == "one\n"
        assert f.tell() == 4
        assert list(f) == ["two\n", "three"]
        f.seek(0)
        assert f.read(3) == "one"
        assert f.seek(-5, 2) == 8 and f.read() == "three"
    with open_("f.txt", "a") as f:
        f.write(b"!")  # bytes into a text file: fine on MicroPython
    with open_("f.txt", "rb") as f:
        buf = bytearray(4)
        assert f.readinto(buf) == 4 and buf == b"one\n"
        assert f.readlines() == [b"two\n", b"three!"]
    with open_("f.txt", "r+b") as f:
        f.seek(4)
        f.write(b"TWO")
        f.flush()
    with open_("f.txt") as f:
        assert f.read() == "one\nTWO\nthree!"
    f.close()
    with pytest.raises(ValueError):
        f.read()
    with pytest.raises(ValueError):
        open_("f.txt", "rw")


def test_persistence_across_reload(tmp_path):
    path = tmp_path / "flash.img"
    flash = Flash(path, block_count=32)
    assert path.stat().st_size == 32 * 4096  # formatted and saved when new
    make_os_module(flash).mkdir("/data")
    with make_open(flash)("/data/log.txt", "w") as f:
        f.write("kept")
    # saved on every littlefs sync: no explicit save needed, no temp left over
    assert os.listdir(tmp_path) == ["flash.img"]
    again = Flash(path)
    assert again.read_file("/data/log.txt") == b"kept"
    assert list(again.walk()) == [("/", ["data"], []), ("/data", [], ["log.txt"])]
    assert again.image_bytes() == flash.image_bytes()


def test_host_helpers(flash):
    flash.write_file("/lib/pkg/mod.py", b"x = 1\n", makedirs=True)
    assert flash.read_file("/lib/pkg/mod.py") == b"x = 1\n"
    assert flash.exists("/lib/pkg") and not flash.exists("/nope")
    with pytest.raises(OSError):
        flash.write_file("/no/dir/file", b"")


def test_unmountable_image_is_reported():
    with pytest.raises(FlashCorrupt):
        Flash.from_image(b"\x00" * 4096 * 16)
    assert Flash(image=b"\xff" * 4096 * 16).exists("/")  # blank flash: formatted, as _boot.py


def _write_new_file(flash):
    with make_open(flash)("/new.txt", "w") as f:
        f.write("n" * 9000)


@pytest.mark.parametrize("torn", ["old", "garbage"])
def test_power_loss_at_every_operation_leaves_mountable_image(torn):
    base = Flash(block_count=32)
    base.write_file("/keep.txt", b"keep" * 300)
    image = base.image_bytes()
    probe = Flash.from_image(image)
    before = probe.ops
    _write_new_file(probe)
    total = probe.ops - before
    assert total >= 5
    for n in range(1, total + 1):
        flash = Flash.from_image(image)
        flash.arm_power_loss(n, torn=torn, seed=n)
        try:
            _write_new_file(flash)
        except Exception:  # noqa: BLE001 - PowerLoss must not be an Exception
            pytest.fail("PowerLoss caught as Exception")
        except PowerLoss:
            pass
        else:
            pytest.fail("no power loss at op %d of %d" % (n, total))
        assert not flash.powered
        with pytest.raises(PowerLoss):
            flash.read_file("/keep.txt")  # dead until remounted
        after = Flash.from_image(flash.image_bytes())
        assert after.read_file("/keep.txt") == b"keep" * 300
        if after.exists("/new.txt"):
            assert after.read_file("/new.txt") in (b"", b"n" * 9000)
        after.write_file("/later.txt", b"ok")  # still writable
        assert after.read_file("/later.txt") == b"ok"


def test_power_loss_persists_image_at_the_cut(tmp_path):
    path = tmp_path / "flash.img"
    flash = Flash(path, block_count=32)
    flash.write_file("/a", b"1")
    flash.arm_power_loss(1, torn="old")
    with pytest.raises(PowerLoss):
        flash.write_file("/b", b"2")
    assert Flash.from_image(path.read_bytes()).read_file("/a") == b"1"


def test_blocks_behave_like_nor_flash(flash):
    device, cfg = flash.device, flash.lfs.cfg
    free = next(b for b in range(32) if flash.image_bytes()[b * 4096:(b + 1) * 4096]
                == b"\xff" * 4096)
    device.prog(cfg, free, 0, b"\x0f\xf0")
    device.prog(cfg, free, 0, b"\xff\x3c")  # programming cannot set bits
    assert device.read(cfg, free, 0, 2) == b"\x0f\x30"
    device.erase(cfg, free)
    assert device.read(cfg, free, 0, 2) == b"\xff\xff"

"""The MicroPython-like modules device code and mpremote's snippets import."""

import pytest

from myotone.emulator import mpy_stdlib
from myotone.emulator.mpy_errno import MpOSError
from myotone.emulator.mpy_errors import format_exception


class FakeClock:
    def __init__(self):
        self.us = 0

    def ticks_us(self):
        return self.us

    def sleep_us(self, us):
        self.us += us

    def time_ns(self):
        return 1_700_000_000 * 10**9 + self.us * 1000


def test_hashlib_sha256_is_final_after_digest():
    h = mpy_stdlib.make_hashlib_module().sha256(b"ab")
    h.update(memoryview(b"c"))
    assert h.digest().hex().startswith("ba7816bf")  # sha256("abc")
    with pytest.raises(ValueError):
        h.update(b"more")
    assert not hasattr(h, "hexdigest")


def test_binascii():
    b = mpy_stdlib.make_binascii_module()
    assert b.hexlify(b"\x01\xab") == b"01ab" and b.hexlify(b"\x01\xab", ":") == b"01:ab"
    assert b.unhexlify("01ab") == b"\x01\xab"
    assert b.b2a_base64(b"hi") == b"aGk=\n" and b.b2a_base64(b"hi", newline=False) == b"aGk="
    assert b.a2b_base64(b"aGk=") == b"hi"


def test_time_follows_the_clock_and_ticks_wrap():
    clock = FakeClock()
    t = mpy_stdlib.make_time_module(clock)
    start = t.ticks_ms()
    t.sleep_ms(250)
    assert t.ticks_diff(t.ticks_ms(), start) == 250
    assert t.ticks_diff(t.ticks_add(2**30 - 1, 2), 2**30 - 1) == 2  # across the wrap
    assert t.time() == 1_700_000_000 and t.gmtime(0)[:3] == (1970, 1, 1)
    assert mpy_stdlib.make_time_module(clock, epoch_year=2000).gmtime(0)[:3] == (2000, 1, 1)


def test_machine_reset_and_soft_reset():
    m = mpy_stdlib.make_machine_module()
    with pytest.raises(mpy_stdlib.MachineReset):
        m.reset()
    with pytest.raises(SystemExit):
        m.soft_reset()
    assert not issubclass(mpy_stdlib.MachineReset, Exception)


def test_stdout_cooks_text_but_not_buffer():
    out = bytearray()
    stdout = mpy_stdlib.UartStdout(out.extend)
    mpy_stdlib.make_print(stdout)("a", 1, sep="-")
    stdout.buffer.write(b"x\ny")
    assert bytes(out) == b"a-1\r\nx\ny"
    sys_mod = mpy_stdlib.make_sys_module(stdout)
    assert sys_mod.implementation.name == "micropython" and sys_mod.platform == "rp2"


def test_errno_and_micropython_oserror():
    errno = mpy_stdlib.make_errno_module()
    assert (errno.ENOENT, errno.EEXIST, errno.errorcode[2]) == (2, 17, "ENOENT")
    e = MpOSError(errno.ENOENT)
    assert (e.errno, str(e), type(e).__name__) == (2, "[Errno 2] ENOENT", "OSError")
    assert format_exception(MpOSError(39)) == "OSError: 39\n"

"""A bare emulated board (no firmware on its flash) driven through the raw REPL, in lockstep."""
from myotone.emulator import Emulator
from myotone.emulator.flash import ESP32_BLOCKS, Flash


class RawRepl:
    """`exec(code)` -> (stdout, error text) as mpremote sees them, in virtual time."""

    def __init__(self, board="pico-mcp4725", fs=None, **kw):
        if fs is None:
            fs = Flash(block_count=64 if board.startswith("pico") else ESP32_BLOCKS, autosave=False,
                       prog_size=256 if board.startswith("pico") else 32)
        self.emu = Emulator(board, fs=fs, **kw).start()
        self.emu.run_for(0.05)
        self.emu.read()
        self.enter()

    def enter(self):
        self.emu.write(b"\r\x01")
        self.emu.run_for(0.02)
        out = self.emu.read()
        assert out.endswith(b"raw REPL; CTRL-B to exit\r\n>"), out

    def exec(self, code: str, dt: float = 0.02):
        """Run code; returns (stdout, error) once it finished within dt of virtual time."""
        self.emu.write(code.encode() + b"\x04")
        self.emu.run_for(dt)
        return self.finish()

    def start(self, code: str, dt: float = 0.02) -> None:
        """Run code that does not finish (it is interrupted later with `interrupt`)."""
        self.emu.write(code.encode() + b"\x04")
        self.emu.run_for(dt)
        assert self.emu.read() == b"OK"

    def interrupt(self, dt: float = 0.02):
        self.emu.write(b"\x03")
        self.emu.run_for(dt)
        return self.finish(ok=False)

    def finish(self, ok=True):
        out = self.emu.read()
        if ok:
            assert out.startswith(b"OK"), out
            out = out[2:]
        assert out.endswith(b"\x04>"), out
        stdout, err = out[:-2].split(b"\x04")[:2]
        return stdout.decode(), err.decode()

    def value(self, expr: str):
        out, err = self.exec("print(repr(%s))" % expr)
        assert not err, err
        return eval(out.strip())

    def soft_reset(self, dt: float = 0.05) -> None:
        """Ctrl-D on an empty raw REPL line: a soft reset, back into the raw REPL."""
        self.emu.write(b"\x04")
        self.emu.run_for(dt)
        out = self.emu.read()
        assert b"MPY: soft reboot" in out and out.endswith(b"raw REPL; CTRL-B to exit\r\n>"), out

    def reset(self, code="import machine\nmachine.reset()", dt: float = 0.05) -> bytes:
        """Run code that resets the board; back into the raw REPL after the reboot."""
        self.emu.write(code.encode() + b"\x04")
        self.emu.run_for(dt)
        out = self.emu.read()
        self.enter()
        return out

    def close(self):
        self.emu.close()

"""Interim REPL: Ctrl-D soft-resets, everything else is ignored."""
from .runtime import SoftReset


class MiniRepl:
    def __init__(self, console, runtime):
        self.console = console
        self.runtime = runtime

    def run(self):
        self.runtime.write_text(">>> ")
        while True:
            b = self.console.read_byte()
            if b is None:
                return
            if b == 4:
                raise SoftReset()

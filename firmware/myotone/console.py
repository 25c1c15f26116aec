# The USB serial console as a byte stream for the protocol: non-blocking
# reads through select.poll, one JSON line per write. Ctrl-C still raises
# KeyboardInterrupt (the firmware never disables it), so mpremote can always
# break into the REPL.
import sys
import select


class Console:
    def __init__(self):
        self._in = getattr(sys.stdin, "buffer", sys.stdin)
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)

    def wait(self, ms):
        """Wait up to `ms` for input; True if a byte is ready."""
        return bool(self._poll.poll(ms))

    def read_byte(self):
        b = self._in.read(1)
        if isinstance(b, str):
            return ord(b) if b else -1
        return b[0] if b else -1

    def write_line(self, text):
        """One line; `text` may be a tuple of pieces (a large reply, not copied)."""
        if isinstance(text, tuple):
            for piece in text:
                sys.stdout.write(piece)
        else:
            sys.stdout.write(text)
        sys.stdout.write("\n")

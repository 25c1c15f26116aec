# The USB serial console as a byte stream for the protocol: non-blocking
# reads through select.poll, one JSON line per write. Per byte nothing is
# allocated (ipoll, readinto): a request is read a byte at a time, and a list
# and a bytes object per byte made reading a 26-byte `status` cost ~9 ms on the
# RP2040 during a session. Ctrl-C still raises
# KeyboardInterrupt (the firmware never disables it), so mpremote can always
# break into the REPL.
import sys
import select


class Console:
    def __init__(self):
        self._in = sys.stdin.buffer
        self._one = bytearray(1)
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self.lines = 0              # lines written and bytes read or written: what the main
        self.bytes = 0              # loop allocates for (heap.py estimates from them)

    def wait(self, ms):
        """Wait up to `ms` for input; True if a byte is ready."""
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def read_byte(self):
        if self._in.readinto(self._one) != 1:
            return -1
        self.bytes += 1
        return self._one[0]

    def write_line(self, text):
        """One line; `text` may be a tuple of pieces (a large reply, not copied)."""
        n = 1
        if isinstance(text, tuple):
            for piece in text:
                sys.stdout.write(piece)
                n += len(piece)
        else:
            sys.stdout.write(text)
            n += len(text)
        sys.stdout.write("\n")
        self.lines += 1
        self.bytes += n

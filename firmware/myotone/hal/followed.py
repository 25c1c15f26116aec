# A pulse back-end that plays its table in hardware (PIO, RMT) tells the CPU
# nothing while it plays: the supervisor follows the same schedule with a
# Playhead, from time alone. What the PIO and RMT back-ends share.
import micropython
import time
from myotone.pulse import Playhead, OFF


class FollowedPulse:
    def __init__(self):
        self.running = False
        self.head = Playhead(self)
        self._advance = self.head.advance   # bound once, with the clock: sample() makes 2
        self._now_us = time.ticks_us        # lookups, not 4 (the output slice calls it at 100 Hz)
        self.state = OFF
        self.in_pair = 0
        self.pairs = 0
        self.settled = 1

    @micropython.native
    def sample(self):
        """Bridge state and pair flags now (once per supervisor tick; allocates nothing)."""
        self._advance(self._now_us())   # sets state, in_pair, pairs, settled here

    def _played_out(self):
        """The hardware no longer plays: nothing to follow (Playhead.stop sets state OFF,
        in_pair 0 and settled here)."""
        self.running = False
        self.head.stop()

# A pulse back-end that plays its table in hardware (PIO, RMT) tells the CPU
# nothing while it plays: the supervisor follows the same schedule with a
# Playhead, from time alone. What the PIO and RMT back-ends share.
import micropython
import time
from myotone.pulse import Playhead, OFF


class FollowedPulse:
    def __init__(self):
        self.running = False
        self.head = Playhead()
        self.state = OFF
        self.in_pair = 0
        self.pairs = 0
        self.settled = 1

    @micropython.native
    def sample(self):
        """Bridge state and pair flags now (once per supervisor tick; allocates nothing)."""
        h = self.head
        h.advance(time.ticks_us())
        self.state = h.state
        self.in_pair = h.in_pair
        self.pairs = h.pairs
        self.settled = h.settled

    def _played_out(self):
        """The hardware no longer plays: nothing to follow."""
        self.running = False
        self.head.stop()
        self.state = OFF
        self.in_pair = 0

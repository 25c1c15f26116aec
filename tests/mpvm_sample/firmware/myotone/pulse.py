# Pure logic: imports nothing hardware, so it runs under CPython (emulator)
# and in the real MicroPython VM of the test suite.
from array import array
from micropython import const

_PHASES = const(4)
PHASE_POS = const(0)
PHASE_GAP1 = const(1)
PHASE_NEG = const(2)
PHASE_REST = const(3)
MAX_UA = const(500)


class PulseTrain:
    """Biphasic microcurrent pulse train, advanced one tick per interrupt."""

    def __init__(self, width_ticks, rest_ticks):
        # Everything step() touches is allocated here, never in step().
        self.lengths = array("H", (width_ticks, 1, width_ticks, rest_ticks))
        self.levels = array("h", (1, 0, -1, 0))
        self.amplitude_ua = 0
        self.phase = PHASE_REST
        self.left = 0
        self.out = 0

    def set_amplitude(self, ua):
        if ua < 0 or ua > MAX_UA:
            raise ValueError("amplitude out of range")
        self.amplitude_ua = ua

    def step(self, _timer=None):
        # Interrupt-safe: only small-int arithmetic and array item stores.
        if self.left == 0:
            self.phase = (self.phase + 1) % _PHASES
            self.left = self.lengths[self.phase]
        self.left -= 1
        self.out = self.levels[self.phase] * self.amplitude_ua
        return self.out

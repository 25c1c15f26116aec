# The over-current latch (docs/hardware.md, U10-U13): a comparator on the
# current sense sets it within microseconds of a current above its threshold,
# and its Q gates both bridge inputs off whatever the MCU drives, until the MCU
# clears it. OC_Q reads 1 while it holds; OC_CLEAR (active high) clears it,
# unless the comparator sets it again (set wins). OC_TEST (active high) drives
# the comparator's input over its threshold through R37 / D6, so the firmware
# can see the comparator set the latch and a re-arm clear it, with no current.
import time

# OC_TEST -> Q: U10's propagation at 0.5 V of overdrive (~5 us) and the node's RC (ns), with room;
# and after OC_TEST falls, U10's output must fall before a clear can win over its preset
TEST_SETTLE_US = 50


class OcLatch:
    def __init__(self, q, clear, test):
        self.tripped = q.value     # () -> 1 while the latch holds the bridge off (one pin read)
        self._clear = clear
        self._test = test
        clear.value(0)
        test.value(0)

    def rearm(self):
        """Clear it (with the bridge off: no current can set it again meanwhile)."""
        self._clear.value(1)
        self._clear.value(0)

    def self_test(self):
        """Output off (main loop): True if the test input sets it and a re-arm then clears it.

        A comparator or flip-flop that cannot set (dead) or cannot clear (stuck) fails. The
        test input is low again whatever happens, and the latch is left re-armed."""
        test = self._test
        try:
            test.value(1)
            time.sleep_us(TEST_SETTLE_US)
            sets = self.tripped() == 1
        finally:
            test.value(0)
        time.sleep_us(TEST_SETTLE_US)
        self.rearm()
        return sets and self.tripped() == 0

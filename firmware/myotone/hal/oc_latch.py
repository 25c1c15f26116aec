# The over-current latch (docs/hardware.md, U10-U13): a comparator on the
# current sense sets it within microseconds of a current above its threshold,
# and its Q gates both bridge inputs off whatever the MCU drives, until the MCU
# clears it. OC_Q reads 1 while it holds; OC_CLEAR (active high) clears it,
# unless the comparator sets it again (set wins).
class OcLatch:
    def __init__(self, q, clear):
        self.tripped = q.value     # () -> 1 while the latch holds the bridge off (one pin read)
        self._clear = clear
        clear.value(0)

    def rearm(self):
        """Clear it (with the bridge off: no current can set it again meanwhile)."""
        self._clear.value(1)
        self._clear.value(0)

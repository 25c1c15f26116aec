# Trip conditions evaluated on every supervisor sample (SAFETY.md "Trips").
# Pure integer logic; sample() allocates nothing and returns a reason code
# (an interned string constant) or None.
from myotone import limits

OVER_CURRENT = "over_current"


class Monitor:
    def __init__(self, limit_ua):
        # SAFETY.md: measured |I| > limit x 1.10 + 10 uA on 2 consecutive samples
        self.over_current_ua = limit_ua * limits.OVER_CURRENT_PERMILLE // 1000 + limits.OVER_CURRENT_MARGIN_UA
        self._over = 0

    def reset(self):
        self._over = 0

    def sample(self, bridge_on, meas_ua, meas_mv, cmd_ua):
        if meas_ua > self.over_current_ua:
            self._over += 1
            if self._over >= limits.OVER_CURRENT_SAMPLES:
                return OVER_CURRENT
        else:
            self._over = 0
        return None

# The output stage: the one and only place that writes the DAC.
#
# SAFETY.md "DAC clamp": every write goes through Output.set_ua(), which
# clamps to `limit_code`, computed once at construction from the board limit
# (already clamped to limits.ABS_CEILING_UA by board.check). No other code
# path holds the DAC driver.
from myotone import limits


class Output:
    def __init__(self, dac, bridge, hv_enable, full_scale_ua, limit_ua):
        if limit_ua > limits.ABS_CEILING_UA:
            raise ValueError("limit above the firmware's absolute ceiling")
        self._dac = dac
        self._bridge = bridge
        self._hv = hv_enable
        self._max_code = dac.max_code
        self._fs_ua = full_scale_ua
        # floor: the limit code never commands more than the limit
        self.limit_code = limit_ua * dac.max_code // full_scale_ua
        self.code = -1
        self.off()

    def code_for_ua(self, ua):
        """DAC code nearest to `ua`, clamped to 0..limit_code."""
        code = (ua * self._max_code + self._fs_ua // 2) // self._fs_ua
        if code > self.limit_code:
            return self.limit_code
        if code < 0:
            return 0
        return code

    def ua_for_code(self, code):
        return code * self._fs_ua // self._max_code

    def set_ua(self, ua):
        code = self.code_for_ua(ua)
        if code != self.code:
            self._dac.write(code)
            self.code = code

    def enable(self):
        self._hv.value(1)

    def off(self):
        """Cut output at once: DAC 0, bridge off, high-voltage rail off."""
        self._dac.write(0)
        self.code = 0
        self._bridge.off()
        self._hv.value(0)

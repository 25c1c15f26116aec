# The DAC clamp and the output pins: the one and only place that writes the
# DAC. Only the output stage (stage.py) calls it, and safe_boot / safe_off.
#
# SAFETY.md "DAC clamp": every write goes through Output.write_code(), which
# clamps to `limit_code`, computed from the board limit (already clamped to
# limits.ABS_CEILING_UA by board.check) whenever the transfer is set. No
# other code path holds the DAC driver.
#
# Transfer: uA = code x fs_ua / max_code + offset_ua. Nominal: the board
# file's full scale, offset 0. A unit calibration (calib.py) replaces
# fs_ua and offset_ua; the limit code is the floor of the calibrated
# transfer at the limit and never above the nominal limit code, so a
# calibration can only lower the most the DAC may command.
#
# Every code is rounded DOWN (SAFETY.md: the soft start is rounded down, never
# up): the DAC never commands more than it is asked for. A calibration is a
# claim the firmware cannot check, so what the session ramps through must
# keep SAFETY.md's numbers whether the claim is true (the calibrated
# transfer) or the unit is as designed (the nominal one): soft_start_ua(),
# ceiling_ua(), step_ua and ramp_permille tell the session how (session.py).
import micropython
from array import array
from micropython import const
from myotone import limits

# the transfer in one int array (Output._t), so the tick's conversions are viper arithmetic over
# it: one lookup a call, not one per field (on the RP2040 code_for_na went from 32 to ~10 us)
_T_FS8 = const(0)        # calibrated full scale in 1/8 uA
_T_MAX = const(1)        # the DAC's max code
_T_OFF_NA = const(2)     # calibrated offset in nA
_T_LIMIT = const(3)      # the limit code
_T_FS_UA = const(4)      # calibrated full scale in uA
_T_OFF_UA = const(5)     # calibrated offset in uA


def _never():
    return 0


class Output:
    def __init__(self, dac, bridge, hv_enable, full_scale_ua, limit_ua, latch=None):
        if limit_ua > limits.ABS_CEILING_UA:
            raise ValueError("limit above the firmware's absolute ceiling")
        self._dac = dac
        self._bridge = bridge
        self._hv = hv_enable
        self._latch = latch            # the over-current latch (hal/oc_latch.py); None at safe boot
        # () -> 1 while it holds the bridge off: the pin's own read, bound once (the bookkeeping
        # reads it at 100 Hz)
        self.latch_tripped = latch.tripped if latch is not None else _never
        self._max_code = dac.max_code
        self._nominal_fs_ua = full_scale_ua
        self._limit_ua = limit_ua
        # floor: the limit code never commands more than the limit
        self.nominal_limit_code = min(limit_ua * dac.max_code // full_scale_ua, dac.max_code)
        self._t = array("i", [0] * 6)
        self.calibrate(1.0, 0)
        self.code = -1
        # the highest code the last pulse pair begun plays (the supervisor records it at each
        # pair's start and at a write inside a pair; stage.switch_on for the first): a
        # ramp-down starts no higher (Session._from_delivered)
        self.pair_code = 0
        self.off()

    def calibrate(self, gain, offset_ua):
        """Set the unit's transfer (floats here, never in the tick). Only with output off."""
        fs = int(self._nominal_fs_ua * gain + 0.5)
        off = int(offset_ua + 0.5) if offset_ua >= 0 else -int(-offset_ua + 0.5)
        if fs <= 0:
            raise ValueError("calibrated full scale must be > 0")
        code = (self._limit_ua - off) * self._max_code // fs
        self.limit_code = max(0, min(code, self.nominal_limit_code))
        # the same transfer in 1/8 uA (125 nA) for targets in nA: every product stays a small
        # int on a 16-bit DAC (8 x 1200 uA x 65535 < 2**30), so the tick allocates nothing
        t = self._t
        t[_T_FS8] = fs * 8
        t[_T_MAX] = self._max_code
        t[_T_OFF_NA] = off * 1000
        t[_T_LIMIT] = self.limit_code
        t[_T_FS_UA] = fs
        t[_T_OFF_UA] = off
        # one DAC step in uA, rounded up, on whichever transfer has the larger one
        self.step_ua = (max(fs, self._nominal_fs_ua) + self._max_code - 1) // self._max_code
        # a calibration that says the unit under-delivers (gain < 1) makes the codes climb
        # faster than the target: on a unit that is in fact nominal, the current would too
        self.ramp_permille = min(1000, fs * 1000 // self._nominal_fs_ua)

    def code_for_ua(self, ua):
        """code_for_na for a target in whole uA (main loop: soft start, ceiling, switch-on)."""
        return self.code_for_na(ua * 1000)

    @micropython.viper
    def code_for_na(self, na) -> int:
        """The highest DAC code that commands at most `na` on the calibrated transfer (rounded
        down, never up), clamped to 0..limit_code; 0 for a target of 0 or less, whatever the
        offset. In nA, so a ramp's slow steps are delivered in DAC steps, not in whole uA (at
        25 uA/s a whole uA is 4 codes of the Pico's DAC in one step)."""
        n = int(na)
        if n <= 0:
            return 0
        t = ptr32(self._t)
        v = (n - t[_T_OFF_NA]) // 125
        if v <= 0:
            return 0
        if v >= t[_T_FS8]:
            return t[_T_LIMIT]
        code = v * t[_T_MAX] // t[_T_FS8]
        if code > t[_T_LIMIT]:
            return t[_T_LIMIT]
        return code

    @micropython.viper
    def na_for_code(self, code) -> int:
        """What `code` commands on the calibrated transfer, in nA, rounded up to 1/8 uA: the least
        target code_for_na() turns into `code` again. Rounded down, the round trip lost a code (44
        -> 10.625 uA -> 43 on the Pico), so a ramp-down timed from what the output delivers began
        with a fall of two codes (0.48 uA in one pair where 0.3 was allowed) and a rise waiting at
        the code written named the code below it."""
        c = int(code)
        if c <= 0:
            return 0
        t = ptr32(self._t)
        return (c * t[_T_FS8] + t[_T_MAX] - 1) // t[_T_MAX] * 125 + t[_T_OFF_NA]

    def soft_start_ua(self, min_ua):
        """The largest target (uA) whose code delivers at most `min_ua` both on the calibrated
        transfer (code_for_ua rounds down) and on the nominal one: the soft start holds whether
        the calibration is true or the unit is as designed. Main loop only."""
        ua = min_ua
        while ua > 0 and self.code_for_ua(ua) * self._nominal_fs_ua > min_ua * self._max_code:
            ua -= 1
        return ua

    def ceiling_ua(self):
        """The smallest target that commands the limit code: above it the current no longer rises
        (a ramp must reach it, not the setpoint, in >= RAMP_MIN_MS). Main loop only."""
        code = self.limit_code
        ua = max(0, self.ua_for_code(code))
        while self.code_for_ua(ua) < code:
            ua += 1
        while ua > 0 and self.code_for_ua(ua - 1) >= code:
            ua -= 1
        return ua

    @micropython.viper
    def ua_for_code(self, code) -> int:
        c = int(code)
        if c <= 0:
            return 0
        t = ptr32(self._t)
        return c * t[_T_FS_UA] // t[_T_MAX] + t[_T_OFF_UA]

    def nominal_ua_for_code(self, code):
        """The board file's transfer, without calibration (for fitting one)."""
        return code * self._nominal_fs_ua // self._max_code

    def set_ua(self, ua):
        code = self.code_for_ua(ua)
        if code != self.code:
            self.write_code(code)

    @micropython.viper
    def write_code(self, code):
        """The one DAC write: clamped to 0..limit_code whatever the caller computed."""
        t = ptr32(self._t)
        c = int(code)
        if c > t[_T_LIMIT]:
            c = t[_T_LIMIT]
        elif c < 0:
            c = 0
        self._dac.write(c)
        self.code = c

    @micropython.viper
    def rise_na(self, code) -> int:
        """na_for_code(code) - na_for_code(self.code): what a rise from the code on the DAC to
        `code` adds, in nA (the tick's in-pair ledger: one call, not two)."""
        t = ptr32(self._t)
        fs8 = t[_T_FS8]
        mx = t[_T_MAX]
        c = int(code)
        hi = (c * fs8 + mx - 1) // mx * 125 if c > 0 else 0
        c = int(self.code)
        lo = (c * fs8 + mx - 1) // mx * 125 if c > 0 else 0
        return hi - lo

    def check(self):
        """OSError if the DAC does not answer; nothing written."""
        self._dac.check()

    def enable(self):
        self._hv.value(1)

    def rail_off(self):
        self._hv.value(0)

    def bridge_off(self):
        self._bridge.off()

    def rearm_latch(self):
        """Clear the over-current latch; only with the bridge off."""
        if self._latch is not None:
            self._latch.rearm()

    def test_latch(self):
        """Output off: True if the over-current latch sets on its test input and clears on a
        re-arm (hal/oc_latch.py); True with no latch (safe boot, which never switches on)."""
        return self._latch is None or self._latch.self_test()

    def zero(self):
        """DAC to 0, written whatever the last code was (OSError if the DAC does not answer)."""
        self.code = -1
        self._dac.write(0)
        self.code = 0

    def off(self):
        """Safe state at once: rail off, bridge off, then DAC 0 -- every step tried -- and the
        over-current latch re-armed.

        Raises the first error only after all the steps (a DAC off its bus
        must not leave the rail on)."""
        err = None
        for step in (self.rail_off, self.bridge_off, self.zero, self.rearm_latch):
            try:
                step()
            except Exception as e:
                if err is None:
                    err = e
        if err is not None:
            raise err

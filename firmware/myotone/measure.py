# Measurement of a short session (the `measure` command, for `myotone
# calibrate` and `myotone selftest`): while the session runs at its
# setpoint, every supervisor sample with the bridge on is summed per
# polarity. The tick calls add(), which allocates nothing (small ints only);
# result() builds the reply in the main loop.
class Measure:
    def __init__(self):
        self.active = False
        self.begin()
        self.active = False

    def begin(self):
        self.active = True
        self.n_pos = self.n_neg = 0
        self.sum_pos_ua = self.sum_neg_ua = 0
        self.sum_mv = 0
        self.max_ua = 0
        self.max_mv = 0
        self.code = 0
        self._prev = 0

    def add(self, bridge, ua, mv, code):
        """One sample with the bridge on (1: POL_A, 2: POL_B); the first of each phase is skipped."""
        prev = self._prev
        self._prev = bridge
        if bridge != prev:
            return
        if bridge == 1:
            self.sum_pos_ua += ua
            self.n_pos += 1
        else:
            self.sum_neg_ua += ua
            self.n_neg += 1
        self.sum_mv += mv
        if ua > self.max_ua:
            self.max_ua = ua
        if mv > self.max_mv:
            self.max_mv = mv
        self.code = code

    def result(self):
        n = self.n_pos + self.n_neg
        pos = self.sum_pos_ua / self.n_pos if self.n_pos else 0.0
        neg = self.sum_neg_ua / self.n_neg if self.n_neg else 0.0
        mean = (self.sum_pos_ua + self.sum_neg_ua) / n if n else 0.0
        mv = self.sum_mv / n if n else 0.0
        return {"n": n, "mean_ua": round(mean, 2), "pos_ua": round(pos, 2), "neg_ua": round(neg, 2),
                "mean_mv": round(mv, 1), "max_ua": self.max_ua, "max_mv": self.max_mv,
                "impedance_ohm": int(mv * 1000 / mean) if mean > 0 else 0, "code": self.code}

# H-bridge: POL_A high drives current one way, POL_B high the other way,
# both low means no current path. Both high is never allowed (shoot-through).
class HBridge:
    def __init__(self, pin_a, pin_b):
        self.pin_a = pin_a
        self.pin_b = pin_b
        self.off()

    def off(self):
        self.pin_a.value(0)
        self.pin_b.value(0)

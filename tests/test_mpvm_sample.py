"""The gate's interrupt-safety check, shown on the sample firmware.

assert_no_alloc passes for the sample's step function and fails for variants
that allocate: a passing check is evidence, not an accident.
"""

import pytest

SETUP = """
from myotone.pulse import PulseTrain
train = PulseTrain(3, 2)
train.set_amplitude(120)
"""


def test_pulse_train_shape_on_micropython(sample_mpvm):
    out = sample_mpvm.run(SETUP + "print([train.step() for _ in range(10)])")
    assert out == "[120, 120, 120, 0, -120, -120, -120, 0, 0, 120]\n"


def test_step_allocates_nothing(sample_mpvm):
    sample_mpvm.assert_no_alloc(SETUP, "train.step()", repeat=1000)


@pytest.mark.parametrize("bad_step", [
    "return [self.out]",                       # new list
    "return self.out * 0.5",                   # float result
    "self.cb = self.step\n        return 0",   # bound method object
    "return self.out << 40",                   # big int
])
def test_allocating_step_is_caught(sample_mpvm, bad_step):
    setup = SETUP + f"""
class Bad(PulseTrain):
    def step(self, _timer=None):
        PulseTrain.step(self)
        {bad_step}
train = Bad(3, 2)
train.set_amplitude(120)
"""
    with pytest.raises(AssertionError, match="allocates on the heap"):
        sample_mpvm.assert_no_alloc(setup, "train.step()", repeat=10)

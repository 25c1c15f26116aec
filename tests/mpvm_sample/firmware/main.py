# Sample firmware main.py: wire the pure-logic pulse generator to the hal.
from myotone.hal import make_output
from myotone.pulse import PulseTrain


def run():
    train = PulseTrain(40, 8)
    out = make_output()
    out.start(train)


run()

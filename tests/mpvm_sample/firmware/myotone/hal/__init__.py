# Hardware abstraction: picks the pulse output for the port we run on.
import sys


def make_output():
    if sys.platform == "rp2":
        from myotone.hal.pulse_pio import PioOutput

        return PioOutput(0)
    from myotone.hal.pulse_rmt import RmtOutput

    return RmtOutput(0)

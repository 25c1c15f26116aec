# Every number of SAFETY.md that the firmware enforces, in one place.
# Each is *enforced* in exactly one function elsewhere (see docs/safety.md);
# this module only names them.
from micropython import const

ABS_CEILING_UA = const(1000)        # absolute current ceiling (board may lower)
PROGRAM_MIN_UA = const(10)          # lowest setpoint a program may ask for
SOFT_START_PERCENT = const(2)       # minimum setting / soft start: <= 2 % of limit
RAMP_MIN_MS = const(2000)           # ramp-up lasts at least 2 s ...
RAMP_MAX_NA_PER_MS = const(250)     # ... and never faster than 250 uA/s
RAMP_DOWN_MS = const(1500)          # ramp-down on stop: >= 1 s (1.5 s used)
FREQ_MIN_MHZ = const(100)           # 0.1 Hz, in mHz
FREQ_MAX_MHZ = const(1000000)       # 1000 Hz, in mHz
PHASE_MIN_US = const(20)
PHASE_MAX_US = const(5000000)
SESSION_MAX_MS = const(1200000)     # microcurrent: no program longer than 20 min
LED_MAX_MS = const(600000)          # LED: no program longer than 10 min
OVER_CURRENT_PERMILLE = const(1100) # trip above limit x 1.10 ...
OVER_CURRENT_MARGIN_UA = const(10)  # ... + 10 uA
OVER_CURRENT_SAMPLES = const(2)     # on 2 consecutive supervisor samples
HEARTBEAT_TIMEOUT_MS = const(5000)  # host-driven session without heartbeat
WATCHDOG_MAX_MS = const(1000)       # hung supervisor reset within 1 s

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
RAMP_STEP_MAX_MS = const(10)        # a ramp moves at most one output slice's time per step
                                    # (1000 / BOOKKEEPING_HZ): a late slice slows it, never steps it
RAMP_MIN_PAIRS = const(20)          # a rising ramp is carried by >= 20 pulse pairs (each step
                                    # <= 5 % of the span): at a low frequency or with bursts it
                                    # lasts 20 pair intervals (project choice, docs/safety.md)
IN_PAIR_NET_PERMILLE = const(10)    # a ramp's rises written inside a pair (no off time the
                                    # output slice sees): worst-case net <= 1 % of the charge
                                    # moved since switch-on, half charge_imbalance's 2 %
FREQ_MIN_MHZ = const(100)           # 0.1 Hz, in mHz
FREQ_MAX_MHZ = const(1000000)       # 1000 Hz, in mHz
PHASE_MIN_US = const(20)
PHASE_MAX_US = const(5000000)
SESSION_MAX_MS = const(1200000)     # microcurrent: no program longer than 20 min
LED_MAX_MS = const(600000)          # LED: no program longer than 10 min; auto-off at 10 min of light
LED_PWM_MIN_HZ = const(1000)        # LED PWM at >= 1 kHz: no visible flicker
LED_DOSE_MAX_MJ_CM2 = const(10000)  # per-session LED dose cap, red + NIR: 10 J/cm2 (project choice)
LED_IRRADIANCE_MAX_MW_CM2 = const(100)  # a board's calibration above this is refused (a typo, not a mask)
OVER_CURRENT_PERMILLE = const(1100) # trip above limit x 1.10 ...
OVER_CURRENT_MARGIN_UA = const(10)  # ... + 10 uA
OVER_CURRENT_SAMPLES = const(2)     # on 2 consecutive supervisor samples (over_current's second is
                                    # converted at once in the same pass: fastpath.py; high_density's
                                    # 2 in a row)
HEARTBEAT_TIMEOUT_MS = const(5000)  # host-driven session without heartbeat
CONTACT_SAMPLES = const(3)          # contact_lost: 3 consecutive samples (stop <= 10 ms)
COMPLIANCE_PERMILLE = const(900)    # "compliance reached": electrode V >= 90 % of the rail
SENSE_FAULT_MIN_UA = const(50)      # sense_fault: commanded >= 50 uA ...
SENSE_FAULT_PERCENT = const(20)     # ... but measured < 20 % of it
SENSE_FAULT_MS = const(50)          # ... for 50 ms (stop <= 100 ms)
SENSE_IDLE_UA = const(20)           # current measured with the bridge off = sense fault
DENSITY_MAX_UA_PER_CM2 = const(500) # 0.5 mA/cm2 rms (1/4 of the 2 mA/cm2 warning level)
CHARGE_WINDOW_MS = const(10000)     # net charge over a sliding 10 s window ...
CHARGE_BUCKET_MS = const(100)       # ... kept in 100 ms buckets, checked every bucket
CHARGE_IMBALANCE_PERMILLE = const(20)  # ... above 2 % of the charge moved
CHARGE_JUDGE_MIN_UA = const(50)     # ... or of two phases at 50 uA where less moved: the sense's
                                    # resolution (whole-uA readings, one sample a phase: a pair's
                                    # two phases differ by up to 1 uA; 2 % of 100 uA is 2 uA)
OVER_TEMP_C = const(41)             # skin-side thermistor: stop at 41 C
LED_DERATE_C = const(40)            # LED derates linearly from 40 C
OVER_TEMP_SAMPLES = const(10)       # debounce: 10 bookkeeping samples, 100 ms (stop <= 1 s)
TEMP_SENSOR_OPEN_C = const(-30)     # the thermistor reads colder than this: open or unplugged, so
                                    # over_temp could never trip: temp_sensor_fault (stop <= 1 s)
IMPEDANCE_ADAPT_RATIO = const(2)    # scale current down above 2 x the session baseline
BOOKKEEPING_HZ = const(100)         # ramps, LED and dose, charge balance, temperature, log: each
                                    # at 100 Hz; the per-sample trips run at supervisor.hz (fastpath)
SAMPLE_SLACK_US = const(250)       # a phase must outlast one fast-path sample period by this
                                    # (fastpath.unsupervised): a sample's window, pins before to
                                    # pins after, 81..94 us on the RP2040 tier, plus a sample
                                    # held off by another interrupt
CLOSE_MARGIN_MS = const(10)         # the last pair's hard deadline: one period + this (stage.py)

# Trip bounds: how soon after onset each trip must have cut the output (SAFETY.md
# "Trips"). Met by the sampling and debounce above; named here so the tests and
# benchmarks/bench_trips.py hold the trips to one set of numbers.
OVER_CURRENT_STOP_MS = const(2)     # over_current: output off <= 2 ms after onset
CONTACT_STOP_MS = const(10)         # contact_lost: stop <= 10 ms
CHARGE_IMBALANCE_STOP_MS = const(1000)  # charge_imbalance: stop <= 1 s
SENSE_FAULT_STOP_MS = const(100)    # sense_fault: stop <= 100 ms
OVER_TEMP_STOP_MS = const(1000)     # over_temp: stop <= 1 s
WATCHDOG_MAX_MS = const(1000)       # hung supervisor reset within 1 s

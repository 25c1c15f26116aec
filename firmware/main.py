# main.py -- starts the supervisor. Whatever ends it (a fault, Ctrl-C from
# mpremote, a soft reset), the `finally` puts the output in its safe state
# and deinitialises timers, PWM and pulse back-ends before the REPL runs.
from myotone import app

try:
    app.run()
finally:
    app.safe_off()

# main.py -- starts the supervisor. Whatever ends it (a fault, Ctrl-C from
# mpremote, a soft reset), the output is put in its safe state and timers,
# PWM and pulse back-ends are deinitialised before the REPL runs.
from myotone import app

try:
    app.run()
except KeyboardInterrupt:
    app.safe_off()            # safe first ...
    app.release_watchdog()    # ... then let the REPL live (mpremote)
    raise
finally:
    app.safe_off()

# boot.py -- runs first on every power-up and reset.
# Before anything else: every output to its safe level (DAC 0, bridge off,
# LEDs off, high-voltage rail off). Nothing here may turn output on.
try:
    from myotone import safe_boot
    safe_boot.enter()
except Exception as exc:  # a broken board file must not stop the REPL
    print("boot: safe state from pin defaults only:", exc)

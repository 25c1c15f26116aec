# The device's calendar clock, for the session log's timestamps: Unix
# seconds (UTC) on every port, and whether it was ever set.
#
# MicroPython's epoch is the port's: 1970 on rp2, 2000 on esp32 (time.gmtime(0)
# says which). Nothing sets the RTC at power-on: rp2 starts it at 2021-01-01,
# esp32 at 2000-01-01; it keeps time through soft and hard resets, not power
# loss. A clock earlier than this firmware (VALID_FROM_S) was never set: the
# host sets it (`clock_set`, docs/protocol.md), and `hello` says which it is.
# Main loop only (gmtime allocates). Pure logic: the RTC comes in from hardware.py.
import time

VALID_FROM_S = 1767225600      # 2026-01-01T00:00:00Z: no real clock reads earlier
VALID_UNTIL_S = 4102444800     # 2100-01-01: a time beyond it is a host's mistake
# the Unix time of the port's epoch (not a const(): it does not fit a small int)
EPOCH_UNIX_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


def now_s():
    """The device's time, Unix seconds (UTC)."""
    return time.time() + EPOCH_UNIX_S


def is_set():
    """False until something set the RTC (a power-on clock reads before VALID_FROM_S)."""
    return now_s() >= VALID_FROM_S


def rtc_tuple(unix_s):
    """machine.RTC().datetime()'s argument for Unix time `unix_s`:
    (year, month, day, weekday, hours, minutes, seconds, subseconds)."""
    y, mo, d, h, mi, s, wd = time.gmtime(unix_s - EPOCH_UNIX_S)[:7]
    return (y, mo, d, wd, h, mi, s, 0)

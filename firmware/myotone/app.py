# Wiring: board file -> hardware -> supervisor. main.py calls run() and, in
# its `finally`, safe_off().
from myotone import board as board_mod

_hw = None
supervisor = None      # the running Supervisor (the emulator's tests read its state)


def run():
    global _hw, supervisor
    from myotone.hardware import Hardware
    from myotone.console import Console
    from myotone.supervisor import Supervisor
    from myotone import calib
    board = board_mod.load()
    cal, source = calib.load(limit_ua=board["limit_ua"])
    _hw = Hardware(board, cal, source)
    pace = board.get("console", {})          # a UART console is paced (console.py)
    supervisor = Supervisor(board, _hw, Console(pace.get("tx_fifo_b", 0), pace.get("tx_bytes_per_s", 0)))
    supervisor.run()


def release_watchdog():
    if _hw is not None:
        _hw.release_watchdog()


def safe_off():
    if _hw is not None:
        _hw.safe_off()
        return
    from myotone import safe_boot
    try:
        safe_boot.enter()
    except board_mod.BoardError:
        pass     # refused at boot too (boot.py kept the pins' safe defaults): run()'s error says why

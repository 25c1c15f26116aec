"""How the `myotone` command ends when it is told to: Ctrl-C (SIGINT), SIGTERM,
SIGHUP, or a reader that went away (a broken pipe: `… | head -3`).

Each becomes an exception where the command is (`Interrupted`, a
KeyboardInterrupt, so every `except KeyboardInterrupt` and `finally` that
makes a device safe runs for all of them alike; BrokenPipeError from a
write), the command leaves the device safe in its own way and says what it
did (`tell`), and the top level prints that in one line and exits with the
shell's code: 128 + the signal (130 SIGINT, 129 SIGHUP, 143 SIGTERM, 141 a
broken pipe).

`shielded()` holds signals off while something that must not be cut in
half runs (putting a calibration back); they take effect when it ends.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
EXIT_BROKEN_PIPE = 128 + 13      # SIGPIPE's code, what a shell shows for `… | head`

_shield: list | None = None      # signals that came while shielded (None: not shielded)
last_signal: int | None = None   # the latest one (click.prompt turns any into its Abort)


class Interrupted(KeyboardInterrupt):
    """A signal that ends the command (SIGINT, SIGTERM, SIGHUP)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, _frame):
    global last_signal
    last_signal = signum
    if _shield is not None:
        _shield.append(signum)
        return
    raise Interrupted(signum)


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise Interrupted (the `myotone` entry point)."""
    for s in SIGNALS:
        signal.signal(s, _handler)


@contextlib.contextmanager
def shielded():
    """Run the body whole: a signal meanwhile is raised when it ends."""
    global _shield
    outer = _shield
    _shield = [] if outer is None else outer
    try:
        yield
    finally:
        came, _shield = _shield, outer
        if outer is None and came:
            raise Interrupted(came[0])


def from_abort() -> "Interrupted":
    """click.prompt answers Ctrl-C (or our SIGTERM) with its Abort: the signal it was."""
    return Interrupted(last_signal or signal.SIGINT)


def is_interruption(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, BrokenPipeError))


def tell(exc: BaseException, what: str) -> BaseException:
    """Attach what the command did about it (one clause, e.g. "the session was stopped")."""
    exc.myotone_detail = what          # type: ignore[attr-defined]
    return exc


def name_of(exc: BaseException) -> str:
    if isinstance(exc, BrokenPipeError):
        return "a closed pipe"
    if isinstance(exc, Interrupted):
        return {signal.SIGINT: "Ctrl-C"}.get(exc.signum, signal.Signals(exc.signum).name)
    return "Ctrl-C"


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, BrokenPipeError):
        return EXIT_BROKEN_PIPE
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def message(exc: BaseException) -> str:
    detail = getattr(exc, "myotone_detail", None) or "stopped before it finished"
    return f"Interrupted by {name_of(exc)}: {detail}"


def stdout_gone(exc: BaseException) -> bool:
    """A closed pipe, or a hang-up (the terminal that was stdout is gone)."""
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, Interrupted)
                                                and exc.signum == getattr(signal, "SIGHUP", None))


def silence_stdout() -> None:
    """After a broken pipe: further output (and the exit's flush) goes nowhere, quietly."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


def say(text: str) -> None:
    """One line on stderr; a terminal that is gone (SIGHUP) is not a second error."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass

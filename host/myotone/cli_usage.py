"""Usage mistakes of the `myotone` command (an unknown option, a missing argument,
a bad value, a `click.UsageError` of our own) said in one line on stderr that
names the command and where its help is, exit code 2:

    Error: myotone session start: no such option --foo (see myotone session start --help)

click's own form is three lines (usage, "Try … --help", "Error: …"). Every
usage error of every command passes through the root group's `make_context`
or `invoke`, so the root (`OneLineUsageGroup`) is the one place that turns
them into this line. Its commands and groups only make sure that an error
found while parsing their arguments knows which command it is about (click
leaves a few without: `--port` given no value). A group given no command
(`myotone session`) still shows its help, as click does.
"""
from __future__ import annotations

import contextlib
import re

import click

NoSuchCommand = getattr(click.exceptions, "NoSuchCommand", None)             # click >= 8.4
NoArgsIsHelpError = getattr(click.exceptions, "NoArgsIsHelpError", None)     # click >= 8.2


class UsageLine(click.UsageError):
    """A usage error already put in its one line (exit code 2)."""

    def show(self, file=None):
        click.ClickException.show(self, file)       # `Error: …`, as every other error


_AS_THEY_ARE = tuple(c for c in (UsageLine, NoArgsIsHelpError) if c)


def usage_line(exc: click.UsageError, ctx: click.Context | None = None) -> str:
    """`myotone CMD: what is wrong (see myotone CMD --help)`, from click's error and
    the context of the command it is about (else `ctx`)."""
    ctx = exc.ctx or ctx
    if ctx is None:
        return _what(exc)
    command = ctx.command_path
    names = ctx.help_option_names
    see = f" (see {command} {max(names, key=len)})" if names else ""
    return f"{command}: {_what(exc)}{see}"


def _what(exc: click.UsageError) -> str:
    """click's message in our terms: names unquoted (`--chip`, `NAME`; a value keeps its
    quotes), one line, one clause per sentence, no capital or full stop (as our own errors)."""
    unknown = _unknown_name(exc)
    if unknown:
        kind, name = unknown
        text = f"no such {kind} {name}"
        if exc.possibilities:
            text += f"; did you mean {' or '.join(sorted(exc.possibilities))}?"
        return text
    text = " ".join(exc.format_message().split())            # click's choices come one per line
    for quoted in _quoted_names(exc):
        text = text.replace(quoted, quoted.replace("'", ""))
    text = re.sub(r"\. ([A-Z][a-z])", lambda m: "; " + m.group(1).lower(), text)
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text.removesuffix(".")


def _unknown_name(exc) -> tuple[str, str] | None:
    if isinstance(exc, click.NoSuchOption):
        return "option", exc.option_name
    if NoSuchCommand and isinstance(exc, NoSuchCommand):
        return "command", exc.command_name
    return None


def _quoted_names(exc: click.UsageError) -> list[str]:
    """The option and argument names click quoted in its message."""
    quoted = [repr(exc.option_name)] if isinstance(exc, click.BadOptionUsage) else []
    if isinstance(exc, click.BadParameter):
        hint = exc.param_hint
        if hint is None and exc.param is not None:
            hint = exc.param.get_error_hint(exc.ctx)
        if isinstance(hint, str):
            quoted.append(hint)
        elif hint is not None:
            quoted += [repr(h) for h in hint]
    return quoted


@contextlib.contextmanager
def one_line_usage(ctx: click.Context | None = None):
    """A usage error raised inside leaves as a `UsageLine`; a group's no-arguments help stays help."""
    try:
        yield
    except _AS_THEY_ARE:
        raise
    except click.UsageError as exc:
        raise UsageLine(usage_line(exc, ctx), exc.ctx or ctx) from exc


class _KnowsItsUsageErrors:
    """A usage error found while parsing this command's arguments names this command."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


class Command(_KnowsItsUsageErrors, click.Command):
    """A `myotone` command."""


class Group(_KnowsItsUsageErrors, click.Group):
    """A `myotone` command group (`session`, `emu`, …): its commands and groups are these too."""
    command_class = Command


Group.group_class = Group


class OneLineUsageGroup(Group):
    """The root group: where every usage error becomes one line."""

    def make_context(self, info_name, args, parent=None, **extra):
        with one_line_usage():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        with one_line_usage(ctx):
            return super().invoke(ctx)

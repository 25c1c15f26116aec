"""The friendly REPL's line editor, after MicroPython's `shared/readline`.

Echo, backspace (one auto-indent level at a time), cursor keys, Home/End,
Delete, history (up/down), the Emacs keys of an EXTRA_FEATURES build
(Ctrl-B/F/D/K/N/P/U with a non-empty line), auto-indent, and Tab expanding
to four spaces after whitespace. Tab completion of names is not emulated.

`continue_with_input()` is `mp_repl_continue_with_input()` from `py/repl.c`:
whether the REPL asks for a "... " continuation line.
"""

from __future__ import annotations

from typing import Callable

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
CTRL_F, CTRL_K, CTRL_N, CTRL_P, CTRL_U = 6, 11, 14, 16, 21
HISTORY_SIZE = 8

_COMPOUND = ("if", "while", "for", "try", "with", "def", "class", "async")


def _starts_with_word(text: str, word: str) -> bool:
    if not text.startswith(word):
        return False
    rest = text[len(word):]
    return rest == "" or not (rest[0].isalnum() or rest[0] == "_")


def continue_with_input(text: str) -> bool:
    """True if the REPL should read another line before compiling `text`."""
    if not text:
        return False
    compound = text[0] == "@" or any(_starts_with_word(text, w) for w in _COMPOUND)
    paren = brack = brace = 0
    quote = None  # one of ' " ''' """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            if quote in (None, c * 3) and text[i:i + 3] == c * 3:
                quote = None if quote else c * 3
                i += 2
            elif quote in (None, c):
                quote = None if quote else c
        elif c == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
            if quote is not None:
                i += 1
        elif quote is None:
            paren += (c == "(") - (c == ")")
            brack += (c == "[") - (c == "]")
            brace += (c == "{") - (c == "}")
        i += 1
    if quote is not None and len(quote) == 3:
        return True
    if (paren > 0 or brack > 0 or brace > 0) and quote is None:
        return True
    if text.endswith("\\"):
        return True
    return compound and not text.endswith("\n")


class LineEditor:
    """One instance per REPL; `start()` then `process()` every input byte."""

    def __init__(self, write: Callable[[bytes], None]):
        self.write = write
        self.history: list[bytes] = []
        self.line = bytearray()
        self.orig = 0
        self.cursor = 0
        self.esc = ""
        self.hist_cur = -1
        self.auto_indent = 0  # bit 0: enabled, bit 1: just added
        self.prompt = b""

    def start(self, line: bytearray, prompt: bytes) -> None:
        """`readline_init()`: continue editing `line` after `prompt`."""
        self.line, self.orig, self.cursor = line, len(line), len(line)
        self.esc, self.hist_cur, self.prompt = "", -1, prompt
        self.write(prompt)
        if not line:
            self.auto_indent = 1
        self._auto_indent()

    def _auto_indent(self) -> None:
        line = self.line
        if not self.auto_indent & 1 or len(line) < 2 or line[-1] != 0x0A:
            return
        i = len(line) - 1
        while i > 0 and line[i - 1] != 0x0A:
            i -= 1
        j = i
        while j < len(line) and line[j] == 0x20:
            j += 1
        if i > 0 and j + 1 == len(line):  # previous line is all spaces
            k = i - 1
            while k > 0:
                if line[k - 1] == 0x0A:
                    return  # ... and so is the one before: no indent
                if line[k - 1] != 0x20:
                    break
                k -= 1
        levels = (j - i) // 4 + (line[-2] == ord(":"))
        for _ in range(levels):
            line += b"    "
            self.write(b"    ")
            self.cursor += 4
            self.auto_indent |= 2

    def process(self, c: int) -> int:
        """Feed one byte; -1 while editing, else 0 (Enter) or a control code."""
        line = self.line
        last_len = len(line)
        back = fwd = 0
        redraw = False
        if self.esc == "":
            if CTRL_A <= c <= CTRL_E and len(line) == self.orig:
                return c
            if c == CTRL_C:
                return c
            if c == 0x0D:
                self.write(b"\r\n")
                self._push_history(bytes(line[self.orig:]))
                return 0
            if c == 27:
                self.esc = "esc"
            elif c in (8, 127):
                if self.cursor > self.orig:
                    before = line[self.orig:self.cursor]
                    n = 4 if len(before) >= 4 and before.strip(b" ") == b"" else 1
                    del line[self.cursor - n:self.cursor]
                    back, redraw = n, True
            elif self.auto_indent & 2 and c in (9, 32):
                self.auto_indent = 0
                if c == 32:
                    back = 3
                    del line[len(line) - 3:]
            elif c == 9:
                if line and line[self.cursor - 1:self.cursor].isspace():
                    line[self.cursor:self.cursor] = b"    "
                    redraw, fwd = True, 4
            elif 32 <= c <= 126:
                line.insert(self.cursor, c)
                redraw, fwd = True, 1
            elif c == CTRL_A:
                back = self.cursor - self.orig
            elif c == CTRL_B:
                back = 1 if self.cursor > self.orig else 0
            elif c == CTRL_D:
                redraw = self._delete_at_cursor()
            elif c == CTRL_E:
                fwd = len(line) - self.cursor
            elif c == CTRL_F:
                fwd = 1 if self.cursor < len(line) else 0
            elif c == CTRL_K:
                del line[self.cursor:]
                redraw = True
            elif c == CTRL_U:
                back = self.cursor - self.orig
                del line[self.orig:self.cursor]
                redraw = True
            elif c in (CTRL_N, CTRL_P):
                back, redraw, fwd = self._history(1 if c == CTRL_P else -1)
        else:
            back, redraw, fwd = self._escape(c)
        self._redraw(last_len, back, redraw, fwd)
        self.auto_indent &= ~2
        return -1

    def _escape(self, c: int) -> tuple[int, bool, int]:
        state, self.esc = self.esc, ""
        ch = chr(c)
        if state == "esc":
            self.esc = {"[": "[", "O": "O"}.get(ch, "")
        elif state == "[":
            if ch.isdigit():
                self.esc = "[" + ch
            elif ch in "AB":
                return self._history(1 if ch == "A" else -1)
            elif ch == "C" and self.cursor < len(self.line):
                return 0, False, 1
            elif ch == "D" and self.cursor > self.orig:
                return 1, False, 0
            elif ch == "H":
                return self.cursor - self.orig, False, 0
            elif ch == "F":
                return 0, False, len(self.line) - self.cursor
        elif state.startswith("[") and ch == "~":
            digit = state[1]
            if digit in "17":
                return self.cursor - self.orig, False, 0
            if digit in "48":
                return 0, False, len(self.line) - self.cursor
            if digit == "3":
                return 0, self._delete_at_cursor(), 0
        elif state == "O" and ch in "HF":
            return self._escape_home_end(ch)
        return 0, False, 0

    def _escape_home_end(self, ch: str) -> tuple[int, bool, int]:
        if ch == "H":
            return self.cursor - self.orig, False, 0
        return 0, False, len(self.line) - self.cursor

    def _delete_at_cursor(self) -> bool:
        if self.cursor < len(self.line):
            del self.line[self.cursor]
            return True
        return False

    def _history(self, step: int) -> tuple[int, bool, int]:
        new = self.hist_cur + step
        if step > 0 and new >= len(self.history) or step < 0 and self.hist_cur < 0:
            return 0, False, 0
        self.hist_cur = new
        back = self.cursor - self.orig
        del self.line[self.orig:]
        if new >= 0:
            self.line += self.history[new]
        return back, True, len(self.line) - self.orig

    def _push_history(self, entry: bytes) -> None:
        if entry and (not self.history or self.history[0] != entry):
            self.history.insert(0, entry)
            del self.history[HISTORY_SIZE:]

    def _redraw(self, last_len: int, back: int, redraw: bool, fwd: int) -> None:
        """The cursor-movement output of `readline_process_char()`."""
        line = self.line
        if back > 0:
            self._move_back(back)
            self.cursor -= back
        if redraw:
            if len(line) < last_len:
                self.write(b"\x1b[K")
            self.write(bytes(line[self.cursor:]))
            self._move_back(len(line) - (self.cursor + fwd))
            self.cursor += fwd
        elif fwd > 0:
            self.write(bytes(line[self.cursor:self.cursor + fwd]))
            self.cursor += fwd

    def _move_back(self, n: int) -> None:
        if n <= 0:
            return
        self.write(b"\b" * n if n <= 4 else b"\x1b[%dD" % n)

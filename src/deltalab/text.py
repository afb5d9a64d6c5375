"""Text from a file, made safe to show in a terminal.

A title, name or description can hold control characters and terminal escape sequences
(ESC [ 31 m, OSC 0 ; … BEL, a carriage return, bidirectional overrides): printed raw they would
recolour, retitle or rewrite the user's terminal.  They are shown escaped, as Python writes
them in a string literal (``\\x1b``, ``\\u202e``).  And how wide that terminal is
(:func:`terminal_columns`).
"""
from __future__ import annotations

import os
import re
import sys

# C0 and C1 controls, DEL, and the bidirectional embedding / override / isolate marks
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_KEEP_LINES = {"\n", "\t"}


def _escape(match) -> str:
    char = match.group(0)
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character escaped except newline and tab (a description)."""
    return _CONTROL.sub(lambda m: m.group(0) if m.group(0) in _KEEP_LINES else _escape(m), text)


def one_line(text: str) -> str:
    """``text`` as one line: every control character escaped, newlines and tabs too (a message, a title)."""
    return _CONTROL.sub(_escape, text)


def terminal_columns(fallback: int = 80) -> int:
    """``shutil.get_terminal_size((fallback, 24)).columns``: ``COLUMNS`` when set, else standard
    output's terminal, else ``fallback`` -- without importing shutil (with the bz2, lzma and zlib
    it loads: 2-3 ms of every ``deltalab`` start)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = fallback
        columns = columns or fallback
    return columns

"""Text from a file, made safe to show in a terminal.

A title, name or description can hold control characters and terminal escape sequences
(ESC [ 31 m, OSC 0 ; … BEL, a carriage return, bidirectional overrides): printed raw they would
recolour, retitle or rewrite the user's terminal.  They are shown escaped, as Python writes
them in a string literal (``\\x1b``, ``\\u202e``).
"""
from __future__ import annotations

import re

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

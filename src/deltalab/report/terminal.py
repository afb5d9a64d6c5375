"""The worked solution for a terminal: section rules, aligned matrices, a check table; colour with rich.

The text is laid out here (no rich needed for :func:`render`); :func:`print_terminal` prints it as
one rich ``Text`` so that only ``rich.console`` and ``rich.text`` are imported (start-up time).
"""
from __future__ import annotations

import textwrap

from ..text import one_line
from ._common import chain_lines
from .document import build

_NODE = r"(?:δ|[A-Za-z]+)\[[^\]]*\](?:\([^)]*\))?"
_PARAMETER = r"\b(?:[A-Z]|b)[0-9]+(?![A-Za-z0-9_])"
_DERIVATIVE = r"∂E/∂\S+"


def _table_lines(headers, rows) -> list:
    """A plain aligned table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[j])) for r in [headers] + rows) for j in range(len(headers))]

    def line(cells):
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))

    return [line(headers), "  ".join("─" * w for w in widths)] + [line(r) for r in rows]


def wrapped(text: str, width: int, first: str = "", rest: str = "") -> list:
    """``text`` in lines of at most ``width`` characters, broken at spaces only (a number or a
    name is never split; one longer than the line stays whole)."""
    return textwrap.wrap(text, width=max(width, 20), initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def lines(trace, decimals: int = 4, width: int = 80) -> list:
    """(text, style) lines of the solution, ``width`` columns wide (only a single number, matrix
    or name wider than that overflows); style is None or a rich style for the whole line."""
    out = []

    def blank():
        if out and out[-1][0]:
            out.append(("", None))

    for block in build(trace, decimals):
        if block.kind == "title":
            out += [(line, "bold underline") for line in wrapped(block.text, width)]
        elif block.kind == "heading":
            if block.level <= 2:
                blank()
                heading = wrapped(block.text, width - 4)
                out += [(line, "bold") for line in heading[:-1]]
                out.append((heading[-1] + " " + "─" * max(3, width - len(heading[-1]) - 1), "bold"))
            else:
                out += [(line, "bold") for line in wrapped(block.text, width)]
        elif block.kind == "text":
            out += [(line, None) for line in wrapped(block.text, width)]
        elif block.kind == "list":
            for item in block.items:
                out += [(line, None) for line in wrapped(item, width, "  • ", "    ")]
        elif block.kind == "equations":
            out.append((block.text, "bold"))
            for equation in block.items:
                out += [(line, None) for line in wrapped(equation, width, "  ", "      ")]
        elif block.kind == "chains":
            for chain in block.items:
                chain_text = chain_lines(chain, decimals, width - 2)
                if len(chain_text) > 1:
                    blank()
                out += [(f"  {line}".rstrip(), None) for line in chain_text]
                if len(chain_text) > 1:
                    blank()
        elif block.kind == "table":
            table = _table_lines(block.headers, block.items)
            out.append(("  " + table[0], "bold"))
            out += [("  " + line, None) for line in table[1:]]
            blank()
    while out and not out[-1][0]:
        out.pop()
    # a title or name from the file may hold terminal escape sequences: shown escaped, never sent raw
    return [(one_line(text), style) for text, style in out]


def styled_text(trace, decimals: int = 4, width: int = 80):
    """The whole solution as one rich Text (one print call: fast)."""
    from rich.text import Text

    text = Text()
    for line, style in lines(trace, decimals, width):
        text.append(line, style=style)
        text.append("\n")
    text.highlight_regex(_DERIVATIVE, "bold magenta")
    text.highlight_regex(_NODE, "bold cyan")
    text.highlight_regex(r"(?<![\w\]])[ytE]\((?:\d+|t)\)", "bold cyan")
    text.highlight_regex(_PARAMETER, "bold yellow")
    text.highlight_regex(r"✓", "bold green")
    text.highlight_regex(r"✗", "bold red")
    return text


def print_terminal(trace, decimals: int = 4, console=None) -> None:
    """Print the solution to ``console`` (default: a rich Console on a TTY, plain text when piped)."""
    if console is None:
        import sys

        if not sys.stdout.isatty():  # piped or redirected: no colour, so no need to import rich
            from ..text import terminal_columns

            sys.stdout.write(render(trace, decimals, terminal_columns(80)))
            return
        from rich.console import Console

        console = Console()
    console.print(styled_text(trace, decimals, console.width), markup=False, highlight=False,
                  overflow="ignore", crop=False, soft_wrap=True, end="")


def render(trace, decimals: int = 4, width: int = 80) -> str:
    """The terminal output as plain text (no colour), ``width`` columns."""
    return "\n".join(line for line, _ in lines(trace, decimals, width)) + "\n"

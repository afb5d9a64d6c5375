"""The worked solution for a terminal: section rules, aligned matrices, a check table; colour with rich.

The text is laid out here (no rich needed for :func:`render`); :func:`print_terminal` prints it as
one rich ``Text`` so that only ``rich.console`` and ``rich.text`` are imported (start-up time).
"""
from __future__ import annotations

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


def lines(trace, decimals: int = 4, width: int = 100) -> list:
    """(text, style) lines of the solution; style is None or a rich style for the whole line."""
    out = []

    def blank():
        if out and out[-1][0]:
            out.append(("", None))

    for block in build(trace, decimals):
        if block.kind == "title":
            out.append((block.text, "bold underline"))
        elif block.kind == "heading":
            if block.level <= 2:
                blank()
                out.append((block.text + " " + "─" * max(3, width - len(block.text) - 1), "bold"))
            else:
                out.append((block.text, "bold"))
        elif block.kind == "text":
            out.append((block.text, None))
        elif block.kind == "list":
            out += [(f"  • {line}", None) for line in block.items]
        elif block.kind == "equations":
            out.append((block.text, "bold"))
            out += [(f"  {line}", None) for line in block.items]
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


def styled_text(trace, decimals: int = 4, width: int = 100):
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
            import shutil

            sys.stdout.write(render(trace, decimals, shutil.get_terminal_size((80, 24)).columns))
            return
        from rich.console import Console

        console = Console()
    console.print(styled_text(trace, decimals, console.width), markup=False, highlight=False,
                  overflow="ignore", crop=False, soft_wrap=True, end="")


def render(trace, decimals: int = 4, width: int = 100) -> str:
    """The terminal output as plain text (no colour), ``width`` columns."""
    return "\n".join(line for line, _ in lines(trace, decimals, width)) + "\n"

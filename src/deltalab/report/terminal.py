"""The worked solution for a terminal, with rich: rules for sections, aligned matrices, a check table."""
from __future__ import annotations

import io

from ._common import chain_lines
from .document import build

_NODE = r"(?:δ|[A-Za-z]+)\[[^\]]*\](?:\([^)]*\))?"
_PARAMETER = r"\b(?:[A-Z]|b)[0-9]+\b"
_DERIVATIVE = r"∂E/∂\S+"


def _styled(line: str):
    from rich.text import Text

    text = Text(line)
    text.highlight_regex(_DERIVATIVE, "bold magenta")
    text.highlight_regex(_NODE, "bold cyan")
    text.highlight_regex(_PARAMETER, "bold yellow")
    text.highlight_regex(r"✓", "bold green")
    text.highlight_regex(r"✗", "bold red")
    return text


def renderables(trace, decimals: int = 4, width: int = 100):
    """Rich renderables of the solution, in order (never two blank lines in a row)."""
    from rich.text import Text

    previous_blank = True
    for item in _renderables(trace, decimals, width):
        blank = isinstance(item, Text) and not item.plain
        if not (blank and previous_blank):
            yield item
        previous_blank = blank


def _renderables(trace, decimals, width):
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    for block in build(trace, decimals):
        if block.kind == "title":
            yield Text(block.text, style="bold underline")
        elif block.kind == "heading":
            if block.level <= 2:
                yield Text("")
                yield Rule(Text(block.text, style="bold"), align="left")
            else:
                yield Text(block.text, style="bold")
        elif block.kind == "text":
            yield _styled(block.text)
        elif block.kind == "list":
            for line in block.items:
                yield _styled(f"  • {line}")
        elif block.kind == "equations":
            yield Text(block.text, style="bold")
            for line in block.items:
                yield _styled(f"  {line}")
        elif block.kind == "chains":
            for chain in block.items:
                lines = chain_lines(chain, decimals, width - 2)
                if len(lines) > 1:
                    yield Text("")
                for line in lines:
                    yield _styled(f"  {line}")
                if len(lines) > 1:
                    yield Text("")
        elif block.kind == "table":
            table = Table(show_edge=True, header_style="bold")
            for header in block.headers:
                table.add_column(header, justify="left" if header in ("Method", "Parameter") else "right")
            for row in block.items:
                table.add_row(*[_styled(cell) for cell in row])
            yield table


def print_terminal(trace, decimals: int = 4, console=None) -> None:
    """Print the solution to ``console`` (default: a new rich Console; colour when it is a TTY)."""
    if console is None:
        from rich.console import Console

        console = Console()
    for item in renderables(trace, decimals, console.width):
        console.print(item, markup=False, highlight=False, overflow="ignore", crop=False, soft_wrap=True) \
            if hasattr(item, "plain") else console.print(item)


def render(trace, decimals: int = 4, width: int = 100) -> str:
    """The terminal output as plain text (no colour), ``width`` columns."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, no_color=True,
                      legacy_windows=False)
    print_terminal(trace, decimals, console)
    return buffer.getvalue()

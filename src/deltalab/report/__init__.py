"""Reports: a recorded :class:`~deltalab.trace.Trace` as a worked solution, in five formats.

Reports only format what the recorder stored; they never call the engine or recompute.

- ``terminal`` (rich; :func:`print_terminal` prints it in colour on a TTY)
- ``markdown`` (GitHub-flavoured: headings, tables, fenced matrices)
- ``latex`` (a complete document for pdflatex); ``markdown`` with ``maths=True``: Markdown
  headings with ``$$\\begin{aligned} … \\end{aligned}$$`` blocks for KaTeX/MathJax
- ``json`` (the contract in :mod:`deltalab.report.json_report`; full precision)
- ``html`` (one self-contained page, no scripts or external resources)

All formats render one format-neutral document (:mod:`deltalab.report.document`), so they
show the same content. Imports are lazy: rich is imported only for the terminal format.
"""
from __future__ import annotations

import importlib

FORMATS = ("terminal", "markdown", "latex", "json", "html")
_MODULES = {"terminal": "terminal", "markdown": "markdown", "markdown-maths": "markdown_math", "latex": "latex",
            "json": "json_report",
            "html": "html_report"}


def render(trace, fmt: str = "terminal", decimals: int = 4, maths: bool = False, figure: bool = True) -> str:
    """The worked solution of ``trace`` as text in ``fmt`` with ``decimals`` decimals (JSON: full
    precision); ``maths``: Markdown with ``$$`` maths for KaTeX/MathJax instead of fenced text;
    ``figure``: HTML with the picture of the computation graph (``False``: a page without it,
    e.g. one of many variants of the same network)."""
    if maths and fmt == "markdown":
        fmt = "markdown-maths"
    if fmt not in FORMATS and fmt != "markdown-maths":
        raise ValueError(f"render: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 17:
        raise ValueError(f"render: decimals must be an integer from 0 to 17, got {decimals!r}")
    from ..text import printable

    module = importlib.import_module(f".{_MODULES[fmt]}", __name__)
    options = {"figure": figure} if fmt == "html" else {}
    return printable(module.render(trace, decimals=decimals, **options))  # control characters from the file, escaped


def print_terminal(trace, decimals: int = 4, console=None) -> None:
    """Print the solution with rich to ``console`` (default: a new Console; colour on a TTY)."""
    from .terminal import print_terminal as _print

    _print(trace, decimals, console)


__all__ = ["FORMATS", "print_terminal", "render"]

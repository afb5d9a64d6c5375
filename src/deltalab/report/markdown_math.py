"""The worked solution as Markdown with maths for KaTeX / MathJax: Markdown headings and
``$$ … $$`` display blocks (``solve --format markdown --maths``, and a notebook's Markdown).

Paste it into anything that renders Markdown with maths (Jupyter, GitHub, Obsidian, a KaTeX
page). Each display block is ``\\begin{aligned}`` with matrices as ``bmatrix``; only macros
KaTeX supports are used, and every block is checked with KaTeX in the tests.
Notation: ``z^{[1]}(t)``, ``x^{[0]}(t)``, ``\\delta^{[1]}(2)``, parameters ``W^{[1]}``.
"""
from __future__ import annotations

from ._common import as_array, cells, latex, layer_notation, marked_slices, number
from .document import build
from .markdown import prose_lines, table

def maths_mark(text: str, marked: bool) -> str:
    """A marked entry (a pooling window's winner) bold and underlined."""
    return r"\underline{\mathbf{" + text + "}}" if marked else text


def matrix(value, decimals: int, keep_decimals: bool = False, marks=None) -> str:
    """An array as ``bmatrix``: a vector as one row, as the terminal and HTML pages write it;
    ``marks``: entries written bold and underlined."""
    array = as_array(value)
    if array.ndim == 0:
        return number(array, decimals)
    if array.ndim <= 2:
        rows = cells(array, decimals, keep_decimals, marks, maths_mark) if array.size else []
        return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(r) for r in rows) + r"\end{bmatrix}"
    parts = [r"\underset{\text{" + label + "}}{" + matrix(part, decimals, keep_decimals, part_marks) + "}"
             for label, part, part_marks in marked_slices(array, marks)]
    return r",\;".join(parts)


def _term(term, decimals, layers=True):
    if isinstance(term.content, str):
        body = latex(term.content, layers)
    else:
        body = matrix(term.content, decimals, term.keep_decimals, term.marked)
    op = {"": "", "+": "+", "−": "-", "·": r"\cdot"}.get(term.op, latex(term.op))
    return body if not op else f"{op} {body}"


def chain(c, decimals, layers=True) -> list:
    lines = []
    for i, row in enumerate(c.rows):
        head = latex(c.lhs, layers) if i == 0 else ""
        body = " ".join(_term(t, decimals, layers) for t in row)
        lines.append(f"{head} &= {body}")
    return lines


def display(lines) -> list:
    return ["$$", r"\begin{aligned}", " \\\\\n".join(lines), r"\end{aligned}", "$$", ""]


def equation_lines(equations, layers=True) -> list:
    """``lhs &= rhs`` lines of an aligned block for the model's equations."""
    lines = []
    for equation in equations:
        lhs, eq, rhs = equation.partition("=")
        lines.append(f"{latex(lhs.strip(), layers)} &= {latex(rhs.strip(), layers)}" if eq
                     else f"&{latex(equation, layers)}")
    return lines


def render(trace, decimals: int = 4) -> str:
    out = []
    layers = layer_notation(trace)
    for block in build(trace, decimals):
        prose = prose_lines(block)
        if prose is not None:
            out += prose
        elif block.kind == "equations":
            out += display(equation_lines(block.items, layers))
        elif block.kind == "chains":
            lines = []
            for c in block.items:
                lines += chain(c, decimals, layers)
            out += display(lines)
        elif block.kind == "table":
            out += table(block.headers, block.items) + [""]
    return "\n".join(out).rstrip() + "\n"

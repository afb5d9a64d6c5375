"""The worked solution as Markdown with maths for KaTeX / MathJax: Markdown headings and
``$$ … $$`` display blocks (``solve --format markdown --maths``, and a notebook's Markdown).

Paste it into anything that renders Markdown with maths (Jupyter, GitHub, Obsidian, a KaTeX
page). Each display block is ``\\begin{aligned}`` with matrices as ``bmatrix``; only macros
KaTeX supports are used, and every block is checked with KaTeX in the tests.
Notation: ``z^{[1]}(t)``, ``x^{[0]}(t)``, ``\\delta^{[1]}(2)``, parameters ``W^{[1]}``.
"""
from __future__ import annotations

from ._common import as_array, cells, latex, number, slices
from .document import build
from .markdown import prose_lines, table

COLUMN_VECTOR_MAX = 8  # longer vectors are written as a transposed row


def matrix(value, decimals: int) -> str:
    array = as_array(value)
    if array.ndim == 0:
        return number(array, decimals)
    if array.ndim == 1:
        if array.size == 0:
            return r"\begin{bmatrix}\end{bmatrix}"
        entries = [number(v, decimals) for v in array]
        if array.size <= COLUMN_VECTOR_MAX:
            return r"\begin{bmatrix}" + r" \\ ".join(entries) + r"\end{bmatrix}"
        return r"\begin{bmatrix}" + " & ".join(entries) + r"\end{bmatrix}^{\top}"
    if array.ndim == 2:
        rows = cells(array, decimals)
        return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(r) for r in rows) + r"\end{bmatrix}"
    parts = [r"\underset{\text{" + label + "}}{" + matrix(part, decimals) + "}" for label, part in slices(array)]
    return r",\;".join(parts)


def _term(term, decimals):
    if isinstance(term.content, str):
        body = latex(term.content)
    else:
        body = matrix(term.content, decimals)
    op = {"": "", "+": "+", "−": "-", "·": r"\cdot"}.get(term.op, latex(term.op))
    return body if not op else f"{op} {body}"


def chain(c, decimals) -> list:
    lines = []
    for i, row in enumerate(c.rows):
        head = latex(c.lhs) if i == 0 else ""
        body = " ".join(_term(t, decimals) for t in row)
        lines.append(f"{head} &= {body}")
    return lines


def display(lines) -> list:
    return ["$$", r"\begin{aligned}", " \\\\\n".join(lines), r"\end{aligned}", "$$", ""]


def equation_lines(equations) -> list:
    """``lhs &= rhs`` lines of an aligned block for the model's equations."""
    lines = []
    for equation in equations:
        lhs, eq, rhs = equation.partition("=")
        lines.append(f"{latex(lhs.strip())} &= {latex(rhs.strip())}" if eq else f"&{latex(equation)}")
    return lines


def render(trace, decimals: int = 4) -> str:
    out = []
    for block in build(trace, decimals):
        prose = prose_lines(block)
        if prose is not None:
            out += prose
        elif block.kind == "equations":
            out += display(equation_lines(block.items))
        elif block.kind == "chains":
            lines = []
            for c in block.items:
                lines += chain(c, decimals)
            out += display(lines)
        elif block.kind == "table":
            out += table(block.headers, block.items) + [""]
    return "\n".join(out).rstrip() + "\n"

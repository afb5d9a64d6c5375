"""The worked solution as a complete LaTeX document that compiles with pdflatex.

Only packages of a basic TeX installation are used (amsmath, amssymb, geometry, graphicx).
Equation chains are ``align*`` blocks; a row too wide for the page is broken before a term
(``&\\quad + …``), and a single matrix wider than the page is scaled to its width.  Text is
escaped, and every non-ASCII symbol is written as maths (δ → ``$\\delta$``).
The Markdown-with-maths flavour for KaTeX/MathJax is :mod:`.markdown_math`.
"""
from __future__ import annotations

import unicodedata

from ._common import LATEX_CHARS, SUPERSCRIPTS, as_array, latex, layer_notation
from .document import build
from .markdown_math import equation_lines, matrix

# Larger arrays are named by their shape only (TeX's memory holds a few thousand matrix
# entries per display, and a matrix has at most MaxMatrixCols columns: a larger count makes
# every matrix slow); the JSON output has every value.
ARRAY_ENTRIES = 2500
ARRAY_COLUMNS = 200

# Characters of maths per line of the page (11pt, 2 cm margins), estimated from the widths
# of the numbers written: a row longer than this is broken before a term.
LINE_CHARACTERS = 70

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage[margin=2cm]{geometry}
\setcounter{MaxMatrixCols}{200}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5em}
"""

_TEXT_SPECIALS = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%",
                  "&": r"\&", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def text(s: str) -> str:
    """Plain text for a paragraph or heading: LaTeX's specials escaped, symbols as maths."""
    out = []
    for c in s:
        if c in _TEXT_SPECIALS:
            out.append(_TEXT_SPECIALS[c])
        elif c.isascii():
            out.append(c if c.isprintable() or c == "\n" else " ")
        elif c in SUPERSCRIPTS:
            out.append("$^{" + SUPERSCRIPTS[c] + "}$")
        elif c in LATEX_CHARS:
            out.append("$" + LATEX_CHARS[c] + "$")
        elif unicodedata.category(c).startswith("L") and ord(c) < 0x180:
            out.append(c)  # accented Latin letters: inputenc knows them
        elif unicodedata.combining(c):
            continue
        else:
            out.append("?")
    return "".join(out)


def _too_large(content) -> bool:
    array = as_array(content)
    return array.size > ARRAY_ENTRIES or (array.ndim >= 1 and array.shape[-1] > ARRAY_COLUMNS)


def _width(content) -> int:
    """Rough printed width of a term in characters."""
    if isinstance(content, str):
        return len(content)
    array = as_array(content)
    if _too_large(array):
        return 40
    if array.ndim == 0:
        return 7
    if array.ndim == 1:
        return 8 * array.size + 2  # a row, as in the other formats
    columns = array.shape[-1]
    slices = 1 if array.ndim == 2 else int(array.size // (array.shape[-2] * columns))
    return (8 * columns + 2) * slices


def _term(term, decimals, layers=True):
    content = term.content
    if isinstance(content, str):
        body = latex(content, layers)
    elif _too_large(content):
        shape = "×".join(str(n) for n in as_array(content).shape)
        body = r"\text{(" + shape + r" values: every one is in the JSON output)}"
    else:
        body = matrix(content, decimals, term.keep_decimals, term.marked).replace(r" \\ ", " \\\\\n")  # a matrix row per source line
        if _width(content) > LINE_CHARACTERS:
            body = r"\resizebox{0.95\linewidth}{!}{$\displaystyle " + body + "$}"
    op = {"": "", "+": "+", "−": "-", "·": r"\cdot"}.get(term.op, latex(term.op))
    return body if not op else f"{op} {body}"


def _split_long_notation(row):
    """A notation term too long for a line (a path's product of factors) as several terms,
    broken before a ·."""
    out = []
    for term in row:
        content = term.content
        if not isinstance(content, str) or len(content) <= LINE_CHARACTERS or "·" not in content:
            out.append(term)
            continue
        pieces = content.split("·")
        out.append(type(term)(term.op, pieces[0]))
        out += [type(term)("·", piece) for piece in pieces[1:]]
    return out


def chain_lines(chain, decimals, layers=True) -> list:
    """``lhs &= row`` lines of an align* block, long rows broken before a term."""
    lines = []
    for i, row in enumerate(chain.rows):
        row = _split_long_notation(row)
        head = latex(chain.lhs, layers) if i == 0 else ""
        parts, width = [], 0
        current = f"{head} &= "
        for term in row:
            w = min(_width(term.content), LINE_CHARACTERS)
            if parts and width + w > LINE_CHARACTERS and term.op:
                lines.append(current + " ".join(parts))
                current, parts, width = r"&\quad ", [], 0
            parts.append(_term(term, decimals, layers))
            width += w
        lines.append(current + " ".join(parts))
    return lines


def _align(lines) -> list:
    return [r"\begin{align*}", " \\\\\n".join(lines), r"\end{align*}", ""]


def _table(headers, rows) -> list:
    spec = "|" + "|".join("l" if i == 0 else "r" for i in range(len(headers))) + "|"
    out = [r"\begin{center}", r"\begin{tabular}{" + spec + "}", r"\hline",
           " & ".join(text(h) for h in headers) + r" \\", r"\hline"]
    out += [" & ".join(text(str(c)) for c in row) + r" \\" for row in rows]
    out += [r"\hline", r"\end{tabular}", r"\end{center}", ""]
    return out


def render(trace, decimals: int = 4) -> str:
    out = [PREAMBLE, r"\begin{document}", ""]
    layers = layer_notation(trace)
    for block in build(trace, decimals):
        if block.kind == "title":
            out += [r"\section*{" + text(block.text) + "}", ""]
        elif block.kind == "heading":
            command = r"\subsection*" if block.level <= 2 else r"\subsubsection*"
            out += [command + "{" + text(block.text) + "}", ""]
        elif block.kind == "text":
            out += [text(block.text), ""]
        elif block.kind == "list":
            out += [r"\begin{itemize}"] + [r"\item " + text(line) for line in block.items] + [r"\end{itemize}", ""]
        elif block.kind == "equations":
            out += _align(equation_lines(block.items, layers))
        elif block.kind == "chains":
            lines = []
            for c in block.items:
                lines += chain_lines(c, decimals, layers)
            out += _align(lines)
        elif block.kind == "table":
            out += _table(block.headers, block.items)
    out += [r"\end{document}"]
    return "\n".join(out).rstrip() + "\n"

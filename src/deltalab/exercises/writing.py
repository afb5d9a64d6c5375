"""Numbers and arrays as each output format writes them (sheets, keys, quiz)."""
from __future__ import annotations

import html
import re

import numpy as np


def given_text(value) -> str:
    """A given number as the template drew it: 0.5, −2, 1.25 (no trailing zeros)."""
    v = float(value)
    text = f"{0.0 if v == 0 else v:.10g}"
    return text.replace("-", "−")


def bracket_text(array, number) -> str:
    """[[1, 0.5], [−0.5, −1]] with ``number(v)`` for each entry."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        return number(float(a))
    return "[" + ", ".join(bracket_text(row, number) for row in a) + "]"


def latex_array(array, number) -> str:
    """A bmatrix (a vector as a column); arrays of more axes as a row of labelled slices."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        return latex_number(number(float(a)))
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim == 2:
        rows = [" & ".join(latex_number(number(float(v))) for v in row) for row in a]
        return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"
    parts = []
    for index in np.ndindex(a.shape[:-2]):
        label = ",".join(str(i + 1) for i in index)
        parts.append(r"\underset{[" + label + r"]}{" + latex_array(a[index], number) + "}")
    return r"\;".join(parts)


def latex_number(text: str) -> str:
    text = text.replace("−", "-")
    match = re.fullmatch(r"(-?)(\d+)/(\d+)", text)
    if match:
        return rf"{match.group(1)}\tfrac{{{match.group(2)}}}{{{match.group(3)}}}"
    return text


def html_array(array, number) -> str:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        return html.escape(number(float(a)))
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim == 2:
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(number(float(v)))}</td>" for v in row) + "</tr>" for row in a)
        return f'<table class="m">{rows}</table>'
    parts = []
    for index in np.ndindex(a.shape[:-2]):
        label = ", ".join(str(i + 1) for i in index)
        parts.append(f'<span class="slice"><small>[{label}]</small>{html_array(a[index], number)}</span>')
    return "".join(parts)


# characters the reports use, as LaTeX that compiles with pdflatex in text and in maths
_LATEX_CHARACTERS = {
    "δ": r"\delta", "η": r"\eta", "σ": r"\sigma", "Σ": r"\Sigma", "∂": r"\partial", "θ": r"\theta",
    "→": r"\to", "←": r"\leftarrow", "⊙": r"\odot", "ᵀ": r"^{T}", "−": "-", "×": r"\times", "½": r"\tfrac{1}{2}",
    "²": r"^{2}", "³": r"^{3}", "⋆": r"\star", "∘": r"\circ", "′": r"'", "·": r"\cdot", "≤": r"\le", "≥": r"\ge",
    "≈": r"\approx", "≠": r"\ne", "‖": r"\|", "∗": r"\ast", "ₙ": r"_{n}", "ₖ": r"_{k}", "…": r"\dots",
    "∈": r"\in", "∇": r"\nabla", "ε": r"\varepsilon", "λ": r"\lambda", "α": r"\alpha", "β": r"\beta",
    "γ": r"\gamma", "μ": r"\mu", "π": r"\pi", "τ": r"\tau", "φ": r"\varphi", "ω": r"\omega", "Δ": r"\Delta",
    "ŷ": r"\hat{y}", "ĉ": r"\hat{c}", "c̃": r"\tilde{c}", "✓": r"\checkmark", "✗": r"\times", "⁻": r"^{-}",
    "¹": r"^{1}", "⁰": r"^{0}", "ᵢ": r"_{i}", "ₜ": r"_{t}", "∑": r"\sum", "√": r"\surd", "±": r"\pm",
    "∞": r"\infty", "⟨": r"\langle", "⟩": r"\rangle", "⌊": r"\lfloor", "⌋": r"\rfloor",
}
_TEXT_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_DASHES = {"–": "--", "—": "---", "“": "``", "”": "''", "’": "'", "‘": "`"}


def latex_characters(text: str) -> str:
    """Non-ASCII characters as LaTeX commands that work in text and maths (\\ensuremath)."""
    out = []
    i = 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in _LATEX_CHARACTERS:
            out.append(r"\ensuremath{" + _LATEX_CHARACTERS[pair] + "}")
            i += 2
            continue
        c = text[i]
        if ord(c) < 128:
            out.append(c)
        elif c in _DASHES:
            out.append(_DASHES[c])
        elif c in _LATEX_CHARACTERS:
            out.append(r"\ensuremath{" + _LATEX_CHARACTERS[c] + "}")
        elif c == "\u0303":  # combining tilde left over
            pass
        else:
            out.append(f"[U+{ord(c):04X}]")
        i += 1
    return "".join(out)


def latex_text(text: str) -> str:
    """Plain text for LaTeX: specials escaped, then non-ASCII characters mapped."""
    escaped = "".join(_TEXT_SPECIALS.get(c, c) for c in text)
    return latex_characters(escaped)


def markdown_math_to_latex(markdown: str, level: int = 1) -> str:
    """The ``latex`` report (Markdown headings, lists and ``$$`` blocks) as LaTeX body text.

    ``level``: the LaTeX sectioning depth of the report's ``#`` heading (1 = \\subsection*).
    """
    sections = ["section", "subsection", "subsubsection", "paragraph", "subparagraph"]
    out, in_math, in_list, table = [], False, False, []

    def close_list():
        nonlocal in_list
        if in_list:
            out.append(r"\end{itemize}")
            in_list = False

    def flush_table():
        if table:
            columns = max(len(r) for r in table)
            out.append(r"\begin{tabular}{" + "l" * columns + "}")
            out.extend(" & ".join(_inline(c) for c in row) + r" \\" for row in table)
            out.append(r"\end{tabular}\par")
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if in_math:
            if stripped == "$$":
                out.append(r"\]")
                in_math = False
            else:
                out.append(latex_characters(line))
            continue
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                table.append(cells)
            continue
        flush_table()
        if stripped == "$$":
            close_list()
            out.append(r"\[")
            in_math = True
        elif stripped.startswith("#"):
            close_list()
            hashes = len(stripped) - len(stripped.lstrip("#"))
            name = sections[min(level + hashes - 1, len(sections) - 1)]
            out.append(f"\\{name}*{{{_inline(stripped[hashes:].strip())}}}")
        elif stripped.startswith("- "):
            if not in_list:
                out.append(r"\begin{itemize}")
                in_list = True
            out.append(r"\item " + _inline(stripped[2:]))
        elif not stripped:
            close_list()
            out.append("")
        else:
            close_list()
            out.append(_inline(stripped))
    flush_table()
    close_list()
    if in_math:
        out.append(r"\]")
    return "\n".join(out)


def _inline(text: str) -> str:
    """A Markdown text line: inline $maths$ kept, the rest unescaped and written as LaTeX text."""
    parts = re.split(r"(\$[^$]+\$)", text)
    out = []
    for part in parts:
        if part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(latex_characters(part))
        else:
            plain = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>~])", r"\1", part).replace("**", "").replace("`", "")
            out.append(latex_text(plain))
    return "".join(out)

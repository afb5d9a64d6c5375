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

"""What every format shares: number and matrix layout, grouping a step by time, symbol conversion.

Nothing here computes maths: values come from the recorded :class:`~deltalab.trace.Trace`.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import field

import numpy as np

from ..records import dataclass


# ---------------------------------------------------------------- numbers and arrays

LARGE = 1e15
"""From here on a number is written in scientific notation (1.2346e+20), not as a 21-digit integer."""


def number(value, decimals: int) -> str:
    """``value`` with ``decimals`` decimals; a value that rounds to zero loses its minus sign.

    A value of magnitude LARGE or more is written in scientific notation with ``decimals``
    decimals in its mantissa (fixed notation would print up to 309 digits).
    """
    value = float(value)
    if abs(value) >= LARGE and np.isfinite(value):
        return f"{value:.{decimals}e}"
    text = f"{value:.{decimals}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return text


def written(value, decimals: int) -> np.ndarray:
    """Each entry of ``value`` as :func:`number` writes it, read back (−0.02156 → −0.0216): what a
    reader adds up when a sum is on screen."""
    array = np.asarray(value, dtype=float)
    return np.vectorize(lambda v: float(number(v, decimals)), otypes=[float])(array) if array.size else array


def as_array(value) -> np.ndarray:
    return np.asarray(value, dtype=float)


def slices(array: np.ndarray):
    """(label, array of ≤ 2 dimensions) pairs: a 3-D array by channel, a 4-D one by kernel and channel."""
    if array.ndim <= 2:
        yield "", array
    elif array.ndim == 3:
        for c in range(array.shape[0]):
            yield f"channel {c + 1}", array[c]
    elif array.ndim == 4:
        for o in range(array.shape[0]):
            for i in range(array.shape[1]):
                yield f"kernel {o + 1}, channel {i + 1}", array[o, i]
    else:
        for index in np.ndindex(array.shape[:-2]):
            yield "[" + ",".join(str(i + 1) for i in index) + "]", array[index]


def integral(array: np.ndarray) -> bool:
    """Every entry a (not huge) whole number: shown without decimals, as the lecture writes images."""
    return bool(array.size) and bool(np.all(np.isfinite(array))) and bool(np.all(np.abs(array) < 1e15)) \
        and bool(np.all(array == np.round(array)))


def text_mark(text: str, marked: bool) -> str:
    """A marked entry in plain text (a pooling window's winner): ``46*``; the others get a space
    so the columns stay aligned."""
    return text + ("*" if marked else " ")


def cells(array: np.ndarray, decimals: int, keep_decimals: bool = False, marks=None, mark=text_mark) -> list:
    """Rows of formatted numbers of an array of ≤ 2 dimensions (a vector is one row).

    An array of whole numbers (an image, a one-hot target) is written without decimals,
    unless ``keep_decimals`` (it stands beside arrays with decimals). ``marks`` (booleans of
    the array's shape, or None): the entries written through ``mark(text, marked)``.
    """
    array = np.atleast_2d(array)
    places = 0 if integral(array) and not keep_decimals else decimals
    rows = [[number(v, places) for v in row] for row in array]
    if marks is None:
        return rows
    marks = np.atleast_2d(np.asarray(marks, dtype=bool))
    return [[mark(text, bool(m)) for text, m in zip(row, mark_row)] for row, mark_row in zip(rows, marks)]


def marked_slices(array: np.ndarray, marks):
    """:func:`slices` of an array with the matching slices of its marks (None: no marks)."""
    if marks is None:
        for label, part in slices(array):
            yield label, part, None
        return
    for (label, part), (_, part_marks) in zip(slices(array), slices(np.asarray(marks, dtype=bool))):
        yield label, part, part_marks


def text_block(value, decimals: int, keep_decimals: bool = False, width: int | None = None, marks=None) -> list:
    """Lines of a readable matrix: ``[a  b]`` for a vector, ⎡⎢⎣ brackets for rows aligned by column.

    ``width``: a matrix wider than that is written in blocks of columns, one under the other,
    each headed "columns 1–8" (as NumPy prints a wide array), so no line is longer.
    ``marks``: entries to mark (``46*``), booleans of the value's shape."""
    array = as_array(value)
    if array.ndim == 0:
        return [number(array, decimals)]
    if array.ndim > 2:
        lines = Stacked()
        for i, (label, part, part_marks) in enumerate(marked_slices(array, marks)):
            block = text_block(part, decimals, keep_decimals, None if width is None else width - len(label) - 2,
                               part_marks)
            if i == 0:
                lines.anchor = getattr(block, "anchor", (len(block) - 1) // 2)
            elif len(block) > 1 or len(lines[-1]) > 1:
                lines.append("")
            lines.extend(hcat([f"{label}: ", block]))
        return lines
    rows = cells(array, decimals, keep_decimals, marks)
    if not rows or not rows[0]:
        return ["[]"]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    groups = _column_groups(widths, width)
    if len(groups) > 1:
        lines = Stacked()
        for k, (start, stop) in enumerate(groups):
            part = array[..., start:stop]
            kind = "entries" if array.ndim == 1 else "columns"
            lines.append(f"{kind} {start + 1}–{stop}" if stop - start > 1 else f"{kind[:-1] if kind == 'columns' else 'entry'} {start + 1}")
            lines.extend(text_block(part, decimals, keep_decimals or not integral(array) and integral(part),
                                    marks=None if marks is None else np.asarray(marks, dtype=bool)[..., start:stop]))
        lines.anchor = 0
        return lines
    bodies = ["  ".join(cell.rjust(widths[j]) for j, cell in enumerate(row)) for row in rows]
    if len(bodies) == 1 and array.ndim == 1:
        return ["[" + bodies[0] + "]"]
    if len(bodies) == 1:
        return ["[ " + bodies[0] + " ]"]
    lines = []
    for i, body in enumerate(bodies):
        left, right = ("⎡", "⎤") if i == 0 else ("⎣", "⎦") if i == len(bodies) - 1 else ("⎢", "⎥")
        lines.append(f"{left} {body} {right}")
    return lines


def _column_groups(widths, width) -> list:
    """[(start, stop)] column ranges whose bracketed rows fit in ``width`` (one group: no limit)."""
    if width is None or sum(widths) + 2 * len(widths) + 2 <= width:
        return [(0, len(widths))]
    groups, start, used = [], 0, 4  # "⎡ " and " ⎤"
    for j, w in enumerate(widths):
        if j > start and used + w > width:
            groups.append((start, j))
            start, used = j, 4
        used += w + 2
    groups.append((start, len(widths)))
    return groups


class Stacked(list):
    """Lines of several slices stacked; ``anchor`` is the row a label beside it goes on."""

    anchor = 0


def hcat(parts) -> list:
    """Place text blocks (a str is a one-line block) side by side, vertically centred."""
    blocks = [[p] if isinstance(p, str) else p for p in parts]
    anchors = [getattr(b, "anchor", (len(b) - 1) // 2) for b in blocks]
    anchor = max(anchors)
    height = max(anchor - a + len(b) for a, b in zip(anchors, blocks))
    out = [""] * height
    for block, own in zip(blocks, anchors):
        width = max((len(line) for line in block), default=0)
        top = anchor - own
        for row in range(height):
            i = row - top
            text = block[i] if 0 <= i < len(block) else ""
            out[row] += text.ljust(width)
    return [line.rstrip() for line in out]


def width_of(lines) -> int:
    return max((len(line) for line in lines), default=0)


# ---------------------------------------------------------------- one step, grouped for display

@dataclass
class TimeGroup:
    """The forward values, outputs, targets and error of one time step (t None: no time axis)."""

    step: int | None
    forward: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    error: tuple | None = None  # ("E(1)", value)
    sequence: int | None = None  # n of a batch of sequences (None: one sequence)


def time_groups(step) -> tuple:
    """(groups in time order -- a batch of sequences: sequence by sequence --, errors not tied to
    a group) for one StepTrace."""
    groups: dict = {}

    def group(value):
        place = (getattr(value, "sequence", None), value.step)
        if place not in groups:
            groups[place] = TimeGroup(value.step, sequence=place[0])
        return groups[place]

    for value in step.forward:
        group(value).forward.append(value)
    for value in step.outputs:
        group(value).outputs.append(value)
    for value in step.targets:
        group(value).targets.append(value)
    loose = []
    places = getattr(step, "error_places", {})
    for name, value in step.errors.items():
        # the recorder's time step of this error (None: per sample); a batch: (sequence, step)
        place = places.get(name) or (None, step.error_steps.get(name))
        if place in groups and groups[place].error is None:
            groups[place].error = (name, value)
        else:
            loose.append((name, value))
    ordered = sorted(groups.values(), key=lambda g: (g.sequence or 0, -1 if g.step is None else g.step))
    return ordered, loose


def delta_groups(step) -> list:
    """[(t or None, [Value])] in recorded order of first appearance (backward order)."""
    groups: dict = {}
    for value in step.deltas:
        groups.setdefault(value.step, []).append(value)
    return list(groups.items())


def general_formula(contributions) -> str | None:
    """``δ[1](t) · x[1](t−1)ᵀ`` when every step's formula is this one with its own t, else None
    (each contribution carries its formula at step t, as the recorder wrote it)."""
    generals = {c.general for c in contributions}
    if len(generals) == 1 and contributions:
        general = generals.pop()
        return general if "(t" in general else None
    return None


def parameter_names(step) -> list:
    """Parameter names in a stable order: as recorded before the step, then any others."""
    names = list(step.parameters_before)
    for source in (step.gradients, step.parameters_after):
        names += [n for n in source if n not in names]
    return names


# ---------------------------------------------------------------- symbols → LaTeX / HTML

_GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\varepsilon", "ζ": r"\zeta",
    "η": r"\eta", "θ": r"\theta", "ι": r"\iota", "κ": r"\kappa", "λ": r"\lambda", "μ": r"\mu",
    "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho", "σ": r"\sigma", "τ": r"\tau", "υ": r"\upsilon",
    "φ": r"\varphi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega", "Γ": r"\Gamma", "Δ": r"\Delta",
    "Θ": r"\Theta", "Λ": r"\Lambda", "Π": r"\Pi", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
}
_LATEX_CHARS = {
    **_GREEK,
    "Σ": r"\sum", "∑": r"\sum", "∏": r"\prod", "½": r"\tfrac{1}{2}", "‖": r"\|", "−": "-", "–": "-",
    "·": r"\cdot", "⋅": r"\cdot", "∘": r"\circ", "⊙": r"\odot", "⊗": r"\otimes", "×": r"\times",
    "→": r"\to", "←": r"\leftarrow", "⇒": r"\Rightarrow", "≈": r"\approx", "≤": r"\le", "≥": r"\ge",
    "≠": r"\ne", "∈": r"\in", "ℝ": r"\mathbb{R}", "⌊": r"\lfloor", "⌋": r"\rfloor", "⌈": r"\lceil",
    "⌉": r"\rceil", "…": r"\ldots", "∂": r"\partial", "∇": r"\nabla", "∞": r"\infty", "√": r"\surd",
    "⋆": r"\star", "∗": r"\ast", "★": r"\star", "⊛": r"\circledast", "⊕": r"\oplus", "∼": r"\sim",
    "≡": r"\equiv", "∝": r"\propto", "∀": r"\forall", "∃": r"\exists", "ℓ": r"\ell", "∅": r"\emptyset",
    "⊤": r"\top", "↦": r"\mapsto", "⟶": r"\longrightarrow", "∪": r"\cup", "∩": r"\cap", "ˆ": r"\wedge",
    "′": "'", "ŷ": r"\hat{y}", "✓": r"\checkmark", "±": r"\pm", "⟨": r"\langle", "⟩": r"\rangle",
    "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "{": r"\{", "}": r"\}", "~": r"\sim",
    "\\": r"\backslash", "^": r"\wedge", "_": r"\_", " ": " ", "\u00a0": " ",
}
_SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7",
                 "⁸": "8", "⁹": "9", "⁻": "-", "⁺": "+", "ᵀ": r"\top", "ⁿ": "n", "ᵗ": "t", "⁽": "(", "⁾": ")"}
_SUBSCRIPTS = {"₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7",
               "₈": "8", "₉": "9", "₋": "-", "₊": "+", "ₜ": "t", "ₙ": "n"}
_ACCENTS = {"\u0303": r"\tilde", "\u0302": r"\hat", "\u0304": r"\bar", "\u0307": r"\dot", "\u0308": r"\ddot"}
FUNCTIONS = ("tanh", "sigmoid", "softmax", "relu", "ReLU", "log", "exp", "conv2d", "max_pool2d",
             "avg_pool2d", "flatten", "identity", "max", "min", "mean", "diag", "sum", "where", "transpose", "step",
             "half_squared_error", "squared_error", "mse", "cross_entropy", "binary_cross_entropy")

_MARK = "(?:⁽[⁰¹²³⁴⁵⁶⁷⁸⁹ⁿ]+⁾)"  # a batch's sequence n on a symbol: x[0]⁽ⁿ⁾(t)


@functools.cache
def _token():
    """:func:`latex`'s tokenizer, compiled on first use (about 2 ms: only LaTeX and maths output need it)."""
    return re.compile(
        r"(?P<deriv>∂(?P<of>[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*" + _MARK + r"?(?:\([^()]*\))?)/∂(?P<by>(?:[A-Za-zδ]+[0-9]?\[[^\[\]]*\]" + _MARK + r"?(?:\([^()]*\))?|[A-Za-z]+[0-9]*(?:_[A-Za-z0-9]+)*(?:\([^()]*\))?)))"
        r"|(?P<node>(?P<name>[A-Za-z]+[0-9]?|[δŷ])\[(?P<layer>[^\[\]]*)\](?P<sequence>" + _MARK + r")?(?:\((?P<step>[^()]*)\))?)"
        r"|(?P<func>\b(?:" + "|".join(sorted(FUNCTIONS, key=len, reverse=True)) + r")\b)"
        r"|(?P<param>\b(?:[A-Z]|b)[0-9]+(?![A-Za-z0-9_]))"
        r"|(?P<sub>_(?:\{[^{}]*\}|[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*))"
        r"|(?P<sup>[" + "".join(_SUPERSCRIPTS) + r"]+)"
        r"|(?P<subs>[" + "".join(_SUBSCRIPTS) + r"]+)"
        r"|(?P<power>\^[0-9]+)"
        r"|(?P<word>[A-Za-z]{2,}(?:_[A-Za-z0-9]+)*(?: +[A-Za-z]{2,}\b(?![(_\[]))*)"
        r"|(?P<char>.)",
        re.S,
    )


def _latex_name(name: str) -> str:
    if name in _LATEX_CHARS:
        return _LATEX_CHARS[name]
    if len(name) == 1:
        return name
    return r"\mathrm{" + name + "}"


def layer_notation(trace) -> bool:
    """Whether ``W1``, ``b1``, ``H1`` name layer 1's parameters (written W^[1]): in the layered
    models, where the number is the layer; an equations problem's names (``w1``, ``b1``) are
    the student's own and are written as typed."""
    from ..problems.kinds import MODEL_TYPES, kind_named

    model_type = getattr(trace, "model_type", "")
    return model_type not in MODEL_TYPES or kind_named(model_type).layer_names


def latex(text: str, layers: bool = True) -> str:
    """Plain-text lecture notation (``δ[1](t) · x[1](t−1)ᵀ``, ``W1``, ``½ Σ_t``) as KaTeX-safe LaTeX.

    Nodes become ``{\\delta^{[1]}}(t)``, parameters ``{W^{[1]}}`` (``layers``: else as typed);
    ``w_xi`` is w with the subscript xi, a longer name with underscores (``loss_steps``) is text;
    unknown characters go in ``\\text{}``; every macro is followed by a space so it never runs
    into the next letter.
    """
    out = []
    for m in _token().finditer(text):
        kind = m.lastgroup
        if m.group("deriv"):
            out.append(r"\frac{\partial " + latex(m.group("of"), layers) + r"}{\partial "
                       + latex(m.group("by"), layers) + "}")
        elif kind in ("node", "name", "layer", "step"):
            sequence = m.group("sequence")  # x[0]⁽²⁾ as x^{[0](2)}: layer and sequence in one superscript
            mark = "" if not sequence else "(" + "".join(_SUPERSCRIPTS[c] for c in sequence[1:-1]) + ")"
            base = "{" + _latex_name(m.group("name")) + "^{[" + latex(m.group("layer"), layers) + "]" + mark + "}}"
            if m.group("step") is not None:
                base += "(" + latex(m.group("step"), layers) + ")"
            out.append(base)
        elif kind == "func":
            out.append(r"\operatorname{" + m.group().replace("_", r"\_") + "}")
        elif kind == "param":
            p = m.group()
            out.append("{" + p[0] + "^{[" + p[1:] + "]}}" if layers else p)
        elif kind == "sub":
            body = m.group()[1:]
            if body.startswith("{"):
                body = body[1:-1]
            out.append("_{" + latex(body, layers) + "}")
        elif kind == "sup":
            out.append("^{" + " ".join(_SUPERSCRIPTS[c] for c in m.group()) + "}")
        elif kind == "subs":
            out.append("_{" + "".join(_SUBSCRIPTS[c] for c in m.group()) + "}")
        elif kind == "power":
            out.append("^{" + m.group()[1:] + "}")
        elif kind == "word":
            out.append(r"\text{" + m.group().replace("_", r"\_") + "}")
        else:
            c = m.group()
            if unicodedata.combining(c):
                accent = _ACCENTS.get(c)
                if accent and out:
                    out[-1] = accent + "{" + out[-1] + "}"
            elif c in _LATEX_CHARS:
                mapped = _LATEX_CHARS[c]
                out.append(mapped + " " if mapped.startswith("\\") and mapped[-1].isalpha() else mapped)
            elif c.isascii():
                out.append(c if c.isprintable() else " ")
            else:
                out.append(r"\text{" + c + "}")
    return "".join(out)


@functools.cache
def _html_notation():
    """The notation :func:`html_symbol` marks up, compiled on first use (HTML output only)."""
    return re.compile(
        r"(?P<name>[A-Za-z]+[0-9]?|[δŷ])\[(?P<layer>[^\[\]]*)\]"
        r"|(?P<param>\b(?:[A-Z]|b)[0-9]+(?![A-Za-z0-9_]))"
        r"|(?<![A-Za-z0-9_])(?P<base>[A-Za-zΣΠ][A-Za-z0-9]?)_(?P<sub>\{[^{}]*\}|[A-Za-z0-9]+)(?![A-Za-z0-9_{])"
        r"|(?P<word>[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+)"
        r"|(?P<power>\^(?P<exponent>[0-9]+))")


@functools.cache
def _html_minus():
    """The hyphens :func:`html_minus` sets as minus signs, compiled on first use (HTML output only)."""
    return re.compile(
        r"(?:(?<=^)|(?<=[\s(\[{,=]))-(?=[0-9.])"  # a number's sign: -0.5, (-2, 3), x = -1
        r"|(?<=[0-9.][eE])-(?=[0-9])"  # an exponent's sign: 1e-06
        r"|(?<=[\[({][A-Za-z])-(?=[0-9])"  # an index: z2[t-1], h_{t-1}
        r"|(?<![A-Za-z]{2}) - (?![A-Za-z]{2})")  # a difference a - b; "well - known" between two words is prose


def html_minus(text: str) -> str:
    """ASCII hyphens that are minus signs (-0.5, 1e-06, x[t-1], a - b) as U+2212, as maths is
    typeset; a hyphen in a word ("cross-entropy", "many-to-many", "max-pool") or between two
    words of free text stays a hyphen."""
    return _html_minus().sub(lambda m: " − " if m.group() == " - " else "−", text)


def html_symbol(text: str, layers: bool = True) -> str:
    """Plain-text notation as escaped HTML with ``z<sup>[1]</sup>(2)`` and ``W<sup>[1]</sup>``
    (``layers``: else W1 as typed); ``w_xi`` as w<sub>xi</sub>, a longer name with underscores
    (``half_squared_error``) as typed; minus signs as U+2212."""
    from html import escape

    def plain(part):
        return escape(html_minus(part))

    out = []
    pos = 0
    for m in _html_notation().finditer(text):
        out.append(plain(text[pos:m.start()]))
        if m.group("name"):
            out.append(f"{escape(m.group('name'))}<sup>[{escape(m.group('layer'))}]</sup>")
        elif m.group("param"):
            p = m.group("param")
            out.append(f"{p[0]}<sup>[{p[1:]}]</sup>" if layers else p)
        elif m.group("base"):
            out.append(f"{escape(m.group('base'))}<sub>{plain(m.group('sub').strip('{}'))}</sub>")
        elif m.group("word"):
            out.append(escape(m.group("word")))
        else:
            out.append(f"<sup>{m.group('exponent')}</sup>")
        pos = m.end()
    out.append(plain(text[pos:]))
    return "".join(out)


# ---------------------------------------------------------------- chains as plain text

def term_block(term, decimals: int) -> list:
    if isinstance(term.content, str):
        return [term.content]
    return text_block(term.content, decimals, term.keep_decimals, marks=term.marked)


def _row_parts(row, decimals, first_symbol):
    parts = []
    for i, term in enumerate(row):
        symbol = first_symbol if i == 0 else f" {term.op} " if term.op else " "  # "(−0.5)" after "·": one space
        if i == 0 and term.op:
            symbol = f"{first_symbol}{term.op} "
        parts += [symbol, term_block(term, decimals)]
    return parts


def chain_lines(chain, decimals: int, width: int) -> list:
    """``lhs = row₁ = row₂`` on one line if it fits in ``width``; else a row per line, a row too
    wide filled line by line with whole terms (a number or matrix is never split; a long product
    of factors is broken before a ``·``). Only a single term wider than ``width`` overflows."""
    parts = [chain.lhs]
    for row in chain.rows:
        parts += _row_parts(row, decimals, " = ")
    lines = hcat(parts)
    if width_of(lines) <= width:
        return lines
    if len(chain.rows) == 1 and len(chain.rows[0]) == 1:
        term = chain.rows[0][0]
        if isinstance(term.content, str):
            return lines
        return hcat([chain.lhs, " = ", text_block(term.content, decimals, term.keep_decimals, width - len(chain.lhs) - 3,
                                                  term.marked)])
    indent = " " * len(chain.lhs)
    out = []
    for i, row in enumerate(chain.rows):
        head = chain.lhs if i == 0 else indent
        lines = hcat([head] + _row_parts(row, decimals, " = "))
        if width_of(lines) > width and len(row) == 1 and not isinstance(row[0].content, str):
            lines = hcat([head, " = ", text_block(row[0].content, decimals, row[0].keep_decimals,
                                                  width - len(head) - 3, row[0].marked)])
        if width_of(lines) <= width or len(row) == 1 and not _breakable(row[0], width - len(head) - 3):
            out += lines
            continue
        out += _filled(row, decimals, head, indent, width)
    return out


def _breakable(term, room) -> bool:
    return isinstance(term.content, str) and len(term.content) > room and "·" in term.content


def _pieces(row, room, decimals):
    """(operator, block, kind) for each term of a row, kind "term", "first factor" or "factor":
    a notation term longer than ``room`` (a product of many factors) comes as several pieces,
    broken before each ``·``; a term without an operator (a label such as "(4 more paths)", a
    number in a substituted formula) stays with the one before it unless it starts with + or −."""
    pieces = []  # [op, [blocks], kind]
    for j, term in enumerate(row):
        op = "=" if j == 0 else term.op
        content = term.content
        if isinstance(content, str) and len(content) > room and "·" in content:
            factors = content.split(" · ") if " · " in content else content.split("·")
            for k, factor in enumerate(factors):
                pieces.append([op if k == 0 else "·", [factor.strip()], "factor" if k else "first factor"])
        elif not op and pieces and isinstance(content, str) and content.strip()[:1] in ("+", "−"):
            pieces.append([content.strip()[0], [content.strip()[1:].strip()] if content.strip()[1:].strip() else [],
                           "term"])
        elif not op and pieces:
            blocks = pieces[-1][1]
            if blocks and not (isinstance(content, str) and content.startswith((" ", ")"))):
                label = isinstance(content, str) and content.startswith("(") and not isinstance(row[j - 1].content, str)
                blocks.append(" " if not isinstance(content, str) or label else "")  # "0.0001 (24 more paths)"
            blocks.append(term_block(term, decimals))
        else:
            pieces.append([op, [term_block(term, decimals)], "term"])
    return [(op, hcat(blocks) if blocks else [""], kind) for op, blocks, kind in pieces]


def _filled(row, decimals, head, indent, width) -> list:
    """A row too wide for one line, filled greedily: each line starts with an operator; a term
    written as several lines of factors starts and ends its own lines."""
    out, current, in_factors = [], None, False
    for op, block, kind in _pieces(row, width - len(indent) - 3, decimals):
        if current is not None:
            fresh = kind == "first factor" or (in_factors and kind == "term")
            candidate = current + [f" {op} ", block]
            if not fresh and width_of(hcat(candidate)) <= width:
                current = candidate
                continue
            out += hcat(current)
        lead = head if current is None and not out else indent
        current = [lead + ("   " if kind == "factor" else "") + f" {op} ", block]
        in_factors = kind != "term"
    if current is not None:
        out += hcat(current)
    return out


# public names of the symbol tables, for the renderers
LATEX_CHARS = _LATEX_CHARS
SUPERSCRIPTS = _SUPERSCRIPTS

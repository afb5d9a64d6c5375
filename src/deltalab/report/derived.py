"""A derivation node as a worked line: formula → the same formula with the numbers put in →
value, as the lecture writes a delta or a gradient on the board."""
from __future__ import annotations

import numpy as np

from ..derivation.expressions import Const, Op, Ref

# Numbers written out in the substituted row at most (larger nets: formula and value only);
# matrices are not substituted until the layout can stack them beside column vectors.
SUBSTITUTED_NUMBERS = 24
_SLOT = "\x00"


def pieces(expr, values) -> list:
    """The formula as a list of text pieces and arrays: every reference replaced by its value,
    a transposed reference by the transposed value."""
    if isinstance(expr, Ref):
        return [np.asarray(values[expr.node], dtype=float)]
    if isinstance(expr, Const):
        return [expr.symbol if expr.symbol and expr.symbol != "η" and not expr.symbol[0].isdigit()
                else _const_text(expr)]
    if not isinstance(expr, Op):  # an equation written as in the problem file: its operands by value
        return [expr.text()]
    kind = expr.kind
    if expr.name == "transpose" and isinstance(expr.args[0], Ref):
        return [np.asarray(expr.evaluate(values), dtype=float)]
    if expr.name == "outer" and all(isinstance(a, Ref) for a in expr.args):
        column, row = (np.asarray(values[a.node], dtype=float) for a in expr.args)
        if column.ndim == 1 and row.ndim == 1:  # δ xᵀ: a column times a row, as on the board
            return [column.reshape(-1, 1), " ", row.reshape(1, -1)]
    needs = kind.needs or (kind.precedence,)
    args = []
    for i, arg in enumerate(expr.args):
        part = pieces(arg, values)
        if arg.precedence < needs[min(i, len(needs) - 1)]:
            part = ["("] + part + [")"]
        args.append(part)
    template = kind.text(*(f"{_SLOT}{i}{_SLOT}" for i in range(len(args))), **dict(expr.params))
    out = []
    for k, chunk in enumerate(template.split(_SLOT)):
        if k % 2:
            out += args[int(chunk)]
        elif chunk:
            out.append(chunk)
    return out


def _const_text(const):
    value = np.asarray(const.value, dtype=float)
    if value.ndim:
        return const.text()
    return f"{float(value):g}".replace("-", "−")


def substituted(expr, values):
    """[str | array] with adjacent text merged, or None when too many numbers to write out."""
    merged = []
    for piece in pieces(expr, values):
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    arrays = [p for p in merged if not isinstance(p, str)]
    if len(merged) < 2 or sum(p.size for p in arrays) > SUBSTITUTED_NUMBERS:
        return None  # nothing substituted, a lone value, or too many numbers
    if any(p.ndim > 2 or (p.ndim == 2 and min(p.shape) > 1) for p in arrays):
        return None
    return [p.strip() if isinstance(p, str) else p for p in merged if not (isinstance(p, str) and not p.strip())]

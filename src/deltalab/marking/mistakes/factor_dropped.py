"""``factor_dropped``: one local derivative or weight missing on a path.

Example (the exam's sigmoid network): ∂L/∂b1 = ∂L/∂a2 · w2 · σ′(a1) · 1; without the factor
∂a2/∂h = w2 it is −0.0625 instead of 0.125.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op
from ..formulas import sites, unwrap
from . import (Variant, activation_local, activation_of, constant_value, is_learning_rate, mistake,
               owner_text)


def _value_note(ctx, factor):
    try:
        value = np.asarray(factor.evaluate(ctx.values), dtype=np.float64)
    except Exception:  # noqa: BLE001 - only a nicety of the sentence
        return ""
    return f" (= {float(value):g})" if value.ndim == 0 else ""


def droppable(ctx, factor):
    """A weight or a local derivative -- not a number, a learning rate or an f′ (other rules)."""
    if constant_value(factor) is not None or is_learning_rate(factor):
        return False
    if activation_of(ctx, factor) is not None or activation_local(ctx, factor) is not None:
        return False
    return True


@mistake("factor_dropped", "one factor of a product (a weight, a local derivative) left out",
         "∂L/∂b1 written as ∂L/∂a2 · σ′(a1) without w2")
def variants(ctx):
    """Each product of the formula with one factor left out (f′ factors: derivative_omitted)."""

    def rewrite(expr, owner):
        if not isinstance(expr, Op):
            return
        if expr.name == "mul":
            for keep, drop in ((0, 1), (1, 0)):
                factor = expr.args[drop]
                if droppable(ctx, factor):
                    yield expr.args[keep], f"without the factor {factor.text()}{_value_note(ctx, factor)}"
        elif expr.name == "matmul":
            weight = expr.args[0]
            if droppable(ctx, weight):
                yield expr.args[1], f"without the factor {weight.text()}"
        elif expr.name == "vjp":
            local, delta = expr.args
            if droppable(ctx, local):
                yield delta, f"without the factor {local.text()}{_value_note(ctx, local)}"
            if constant_value(unwrap(delta)) is None:
                yield local, f"without the factor {delta.text()}{_value_note(ctx, delta)}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, owner_text(owner, note))

"""``learning_rate_missing``: the update without the learning rate, θ − g.

Example: W1′ = W1 − η · ∂E/∂W1 written as W1 − ∂E/∂W1.
"""
from __future__ import annotations

from ...derivation import Op
from ..formulas import sites
from . import Variant, is_learning_rate, mistake, owner_text


@mistake("learning_rate_missing", "the update without the learning rate η", "W1′ = W1 − ∂E/∂W1")
def variants(ctx):
    """Each η · g of the formula as g."""

    def rewrite(expr, owner):
        if isinstance(expr, Op) and expr.name == "mul" and is_learning_rate(expr.args[0]):
            yield expr.args[1], f"without the learning rate {expr.args[0].text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, owner_text(owner, note))

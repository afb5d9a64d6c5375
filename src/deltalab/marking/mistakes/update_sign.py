"""``update_sign``: the update θ + η ∂E/∂θ, uphill, instead of θ − η ∂E/∂θ.

Example: W1′ = W1 − η · ∂E/∂W1 written as W1 + η · ∂E/∂W1.
"""
from __future__ import annotations

from ...derivation import Op
from . import Variant, mistake


@mistake("update_sign", "the update's sign flipped (θ + η g)", "W1′ = W1 + η · ∂E/∂W1")
def variants(ctx):
    """An update θ − η g as θ + η g."""
    formula = ctx.formula
    if ctx.node.kind == "update" and isinstance(formula, Op) and formula.name == "sub":
        theta, step = formula.args
        yield Variant(Op("add", (theta, step)), f"{ctx.node.symbol} = {theta.text()} + {step.text()}: the update "
                                                 "went up the gradient instead of down")

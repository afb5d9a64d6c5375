"""``rounded_early``: right up to rounding -- the quantity's own formula on its inputs
rounded to a few decimals before it was computed.

Example: ∂E/∂W2 = δ[2] x[1]ᵀ with δ[2] and x[1] rounded to 2 decimals before multiplying.
"""
from __future__ import annotations

import numpy as np

from . import Variant, mistake


@mistake("rounded_early", "right up to rounding of the inputs", "δ[2] x[1]ᵀ with x[1] rounded to 2 decimals")
def variants(ctx):
    """The quantity's formula evaluated on the quantities it reads rounded to 1, 2 or 3 decimals."""
    formula = ctx.node.formula
    for decimals in (3, 2, 1):
        values = dict(ctx.values)
        for node in formula.refs():
            if node in values:
                values[node] = np.round(np.asarray(values[node], dtype=np.float64), decimals)
        yield Variant(formula, f"{ctx.node.symbol} = {formula.text()} with {', '.join(ctx.derivation[r].symbol for r in formula.refs())} "
                               f"rounded to {decimals} decimal{'s' if decimals > 1 else ''}: right up to rounding "
                               "too early", values)

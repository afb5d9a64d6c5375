"""``rounded_early``: right up to rounding -- the formula on inputs rounded to a few decimals.

Example: ∂E/∂W2 = δ[2] x[1]ᵀ with x[1] rounded to 2 decimals before multiplying.
"""
from __future__ import annotations

import numpy as np

from . import Variant, mistake


@mistake("rounded_early", "right up to rounding of the inputs", "δ[2] x[1]ᵀ with x[1] rounded to 2 decimals")
def variants(ctx):
    """The formula evaluated on its inputs rounded to 1, 2 or 3 decimals."""
    for decimals in (3, 2, 1):
        values = dict(ctx.values)
        for node in ctx.formula.refs():
            if node in values:
                values[node] = np.round(np.asarray(values[node], dtype=np.float64), decimals)
        yield Variant(ctx.formula, f"{ctx.node.symbol} = {ctx.formula.text()} with its inputs rounded to "
                                   f"{decimals} decimal{'s' if decimals > 1 else ''}: right up to rounding "
                                   "too early", values)

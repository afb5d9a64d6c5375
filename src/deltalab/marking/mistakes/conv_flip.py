"""``conv_flip``: the kernel flipped (a convolution where the layer correlates, or back).

Example: z[1] = W1 ⋆ x[0] + b1 computed with rot180(W1); δ spread back with the unflipped kernel.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op
from ..formulas import sites
from . import Computed, Variant, mistake, owner_text


def flipped(expr):
    return Computed("rot180({0})", lambda w: np.flip(np.asarray(w), axis=(-2, -1)), (expr,))


@mistake("conv_flip", "the kernel flipped", "W1 ⋆ x[0] computed with rot180(W1)")
def variants(ctx):
    """Each convolution of the formula with its kernel (or its kernel gradient) flipped."""

    def rewrite(expr, owner):
        if not isinstance(expr, Op):
            return
        if expr.name == "conv2d":
            args = list(expr.args)
            args[1] = flipped(args[1])
            yield Op("conv2d", tuple(args), expr.params), f"with rot180({expr.args[1].text()}) for {expr.args[1].text()}"
        elif expr.name == "conv_input_grad":
            d, w = expr.args
            yield Op(expr.name, (d, flipped(w)), expr.params), f"with the kernel {w.text()} not flipped"
        elif expr.name == "conv_weight_grad":
            yield flipped(expr), f"with {expr.text()} flipped"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the kernel was flipped")

"""``transposed``: W for Wᵀ (or Wᵀ for W), x δᵀ for δ xᵀ.

Example (mlp): ∂E/∂x[1] = W2ᵀ δ[2] written as W2 δ[2]; ∂E/∂W1 = δ[1] x[0]ᵀ written as x[0] δ[1]ᵀ.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op
from ..formulas import sites
from . import Variant, mistake, owner_text


@mistake("transposed", "a matrix used transposed (W for Wᵀ, x δᵀ for δ xᵀ)", "W2 δ[2] written for W2ᵀ δ[2]")
def variants(ctx):
    """Each transpose of the formula dropped or added, each outer product swapped; a matrix
    gradient as a whole transposed."""

    def rewrite(expr, owner):
        if not isinstance(expr, Op):
            return
        if expr.name == "matmul":
            a, b = expr.args
            if isinstance(a, Op) and a.name == "transpose":
                yield Op("matmul", (a.args[0], b)), f"with {a.args[0].text()} for {a.text()}"
            elif isinstance(b, Op) and b.name == "transpose":
                yield Op("matmul", (a, b.args[0])), f"with {b.args[0].text()} for {b.text()}"
            else:
                yield Op("matmul", (a.T, b)), f"with {a.text()}ᵀ for {a.text()}"
                yield Op("matmul", (a, b.T)), f"with {b.text()}ᵀ for {b.text()}"
        elif expr.name in ("outer", "outer_sum"):
            a, b = expr.args
            yield Op(expr.name, (b, a)), f"with {b.text()} {a.text()}ᵀ for {a.text()} {b.text()}ᵀ"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, owner_text(owner, note))
    if ctx.node.kind in ("gradient", "contribution") and np.ndim(ctx.node.value) == 2:
        yield Variant(ctx.formula.T, f"{ctx.node.symbol} = {ctx.formula.text()}, transposed")

"""``padding_ignored``: a convolution's zero padding forgotten when correlating the input
with δ for the kernel gradient: only the windows that lie inside the unpadded input count.

Example (3×3 kernel, padding 1, 4×4 input): ∂E/∂W1 = x[0] ⋆ δ[1] summed over the 2×2 inner
positions of δ[1] instead of all 4×4.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op
from ..formulas import sites
from . import Computed, Variant, mistake, owner_text


def _inner_only(x, delta, kernel, stride, padding):
    from ...derivation.expressions import OPS

    (ph, pw), (sh, sw) = padding, stride
    delta = np.asarray(delta, dtype=np.float64)
    ho, wo = delta.shape[-2:]
    # δ positions whose window starts at padded row y·s ≥ p and ends inside the input
    rows = [y for y in range(ho) if y * sh >= ph and y * sh - ph + kernel[0] <= np.shape(x)[-2]]
    cols = [z for z in range(wo) if z * sw >= pw and z * sw - pw + kernel[1] <= np.shape(x)[-1]]
    mask = np.zeros((ho, wo))
    mask[np.ix_(rows, cols)] = 1.0
    return OPS["conv_weight_grad"].evaluate(x, delta * mask, kernel=kernel, stride=stride, padding=padding)


@mistake("padding_ignored", "zero padding forgotten", "x[0] ⋆ δ[1] over the windows inside the unpadded x[0] only")
def variants(ctx):
    """Each padded kernel gradient of the formula summed over the unpadded windows only."""

    def rewrite(expr, owner):
        if isinstance(expr, Op) and expr.name == "conv_weight_grad":
            p = dict(expr.params)
            if tuple(p["padding"]) != (0, 0):
                compute = (lambda x, d, p=p: _inner_only(x, d, tuple(p["kernel"]), tuple(p["stride"]),
                                                         tuple(p["padding"])))
                yield Computed("{0} ⋆ {1} (unpadded)", compute, expr.args), f"with {expr.text()} over the unpadded input"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the padding was ignored")

"""``padding_ignored``: a convolution's or pooling's zero padding left out.

Example: ∂E/∂W1 = x[0] ⋆ δ[1] correlated with the unpadded x[0] (windows misaligned by p).
"""
from __future__ import annotations

from ...derivation import Op
from ..formulas import sites
from . import Variant, mistake, owner_text


@mistake("padding_ignored", "zero padding left out", "x[0] ⋆ δ[1] without padding x[0]")
def variants(ctx):
    """Each padded convolution or pooling of the formula without its padding (where the
    result keeps its shape)."""

    def rewrite(expr, owner):
        if isinstance(expr, Op):
            params = dict(expr.params)
            if "padding" in params and tuple(params["padding"]) != (0, 0):
                params["padding"] = (0, 0)
                yield Op(expr.name, expr.args, tuple(sorted(params.items()))), f"with {expr.text()} unpadded"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the padding was ignored")

"""``stale_weights``: the updated weights used in the backward pass (the update done too early).

Example (mlp): ∂E/∂x[1] = W2ᵀ δ[2] computed with W2′ = W2 − η ∂E/∂W2.

Layered and recurrent nets only: an equations problem records its local derivatives as
numbers, so there is no weight in them to replace.
"""
from __future__ import annotations

from ...derivation import Ref
from ..formulas import sites
from . import Variant, mistake, owner_text


@mistake("stale_weights", "updated weights used in the backward pass", "W2′ᵀ δ[2] written for W2ᵀ δ[2]")
def variants(ctx):
    """Each weight a delta or gradient reads replaced by its updated value."""
    if ctx.node.kind not in ("delta", "gradient", "contribution"):
        return

    def rewrite(expr, owner):
        if ctx.kind(owner[0]) not in ("delta", "gradient", "contribution"):
            return
        if isinstance(expr, Ref) and expr.node.startswith("parameters_before:"):
            after = "parameters_after:" + expr.node.partition(":")[2]
            if after in ctx.derivation.nodes:
                ref = ctx.derivation.ref(after)
                yield ref, f"with the updated {ref.text()} for {expr.text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the weights were updated before the backward pass")

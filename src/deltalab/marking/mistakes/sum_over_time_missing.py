"""``sum_over_time_missing``: a shared weight's gradient taken from one time step only.

Example (Elman BPTT): ∂E/∂W1 = Σₜ δ[1](t) x[0](t)ᵀ; giving only δ[1](2) x[0](2)ᵀ forgets the
other steps' share.
"""
from __future__ import annotations

from ..formulas import sites, terms_of_sum
from . import Variant, mistake, owner_text
from .path_dropped import sums_over_time


@mistake("sum_over_time_missing", "a shared weight's gradient from one time step's term only",
         "∂E/∂W1 written as δ[1](2) x[0](2)ᵀ instead of Σₜ δ[1](t) x[0](t)ᵀ")
def variants(ctx):
    """Each sum over time steps of the formula reduced to one of its terms."""

    def rewrite(expr, owner):
        terms = terms_of_sum(expr)
        if len(terms) < 2 or not sums_over_time(ctx, owner[0], terms):
            return
        for term in terms:
            yield term, f"with only the term {term.text()} of time step {ctx.time_of(term)}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the sum over time steps is missing")

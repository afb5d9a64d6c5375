"""``path_dropped``: one consumer of a quantity not summed -- a fan-out branch, a skip
connection, the recurrent term of BPTT.

Example (Elman BPTT): δ[1](1) = (W2ᵀ δ[2](1) + H1ᵀ δ[1](2)) ⊙ f′(z[1](1)); written as
(W2ᵀ δ[2](1)) ⊙ f′(z[1](1)) the path from E(2) through x[1](1) is lost.
"""
from __future__ import annotations

from ..formulas import sites, sum_of, terms_of_sum
from . import Variant, mistake, owner_text


def sums_over_time(ctx, owner_id, terms):
    """A shared weight's gradient as a sum of per-step terms (that is sum_over_time_missing)."""
    if ctx.kind(owner_id) not in ("gradient", "contribution"):
        return False
    times = [ctx.time_of(t) for t in terms]
    return None not in times and len(set(times)) == len(times)


@mistake("path_dropped", "a term of a sum (one path to the loss) left out",
         "δ[1](1) written as (W2ᵀ δ[2](1)) ⊙ f′(z[1](1)) without H1ᵀ δ[1](2)")
def variants(ctx):
    """Each sum of the formula (through the unanswered quantities before it) with one term left out."""

    def rewrite(expr, owner):
        terms = terms_of_sum(expr)
        if len(terms) < 2 or sums_over_time(ctx, owner[0], terms):
            return
        for i, term in enumerate(terms):
            yield sum_of(terms[:i] + terms[i + 1:]), f"without the term {term.text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: that path to the loss was dropped")

"""``time_index_shifted``: a quantity of the wrong time step -- x[1](t+1) for x[1](t−1),
δ(t) for δ(t+1).

Example (Elman BPTT): ∂E/∂H1(2) = δ[1](2) x[1](1)ᵀ written with x[1](2) (or x[1](3)).
"""
from __future__ import annotations

import re

import numpy as np

from ..formulas import ref_node, sites
from . import Variant, mistake, owner_text

_STEP = re.compile(r"\((\d+)\)")


def shifted_id(node_id, shift):
    return _STEP.sub(lambda m: f"({int(m.group(1)) + shift})", node_id)


@mistake("time_index_shifted", "a quantity of the wrong time step (t+1 for t−1, δ(t) for δ(t+1))",
         "δ[1](2) x[1](2)ᵀ written for δ[1](2) x[1](1)ᵀ")
def variants(ctx):
    """Each time-indexed quantity the formula reads replaced by the same quantity one or two
    steps earlier or later."""

    def rewrite(expr, owner):
        node = ref_node(expr)
        if node is None or not _STEP.search(node) or node not in ctx.derivation.nodes:
            return
        for shift in (-1, 1, -2, 2):
            other = shifted_id(node, shift)
            if other in ctx.derivation.nodes and other != node and other in ctx.values and (
                    np.shape(ctx.values[other]) == np.shape(ctx.values[node])):
                ref = ctx.derivation.ref(other)
                yield ref, f"with {ref.text()} for {expr.text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the time index is shifted")

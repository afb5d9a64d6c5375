"""``loss_scale``: the loss's scale wrong -- ½ dropped or added, the mean taken for the sum.

Example: E = ½ Σ (t − y)² has δ = y − t; with E = Σ (t − y)² one gets 2(y − t), with the
mean over the n outputs (y − t)/n.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Const, Op
from ..formulas import sites
from . import Variant, constant_value, is_loss_local, mistake, owner_text


def counts(ctx):
    """The n a mean could have divided by: the target entries, the targets (samples, steps)."""
    targets = [n for n in ctx.derivation if n.kind == "target"]
    if not targets:  # equations: the data the loss reads
        targets = [n for n in ctx.derivation if n.kind == "input" and any(
            m.kind in ("loss", "error") and n.id in m.inputs for m in ctx.derivation)]
    sizes = {int(sum(np.size(n.value) for n in targets)), len(targets)}
    return sorted(n for n in sizes if n > 1)


def scaled(ctx, expr, what):
    """(formula, words): expr with the loss's scale changed."""
    yield Op("mul", (Const(2.0), expr)), f"with {what} doubled (½ dropped)"
    yield Op("mul", (Const(0.5), expr)), f"with {what} halved (½ added)"
    for n in counts(ctx):
        yield Op("divide", (expr, Const(float(n), str(n)))), f"with {what} divided by {n} (the mean for the sum)"


@mistake("loss_scale", "the loss's scale: ½ dropped or added, mean for sum", "δ[2] written as 2 (y − t)")
def variants(ctx):
    """The loss (and where the backward pass starts from it) scaled by 2, ½ or 1/n."""
    if ctx.node.kind in ("loss", "error"):
        yield from (Variant(f, f"{ctx.node.symbol} = {ctx.formula.text()} {words}")
                    for f, words in scaled(ctx, ctx.formula, "the loss"))

    def rewrite(expr, owner):
        if ctx.kind(owner[0]) in ("loss", "error"):
            return
        if isinstance(expr, Op) and expr.name == "sub" and (ctx.is_target(expr.args[0]) or ctx.is_target(expr.args[1])):
            yield from scaled(ctx, expr, expr.text())
        elif isinstance(expr, Op) and expr.name == "mul" and constant_value(expr.args[0]) == 2.0 and ctx.is_target(expr):
            yield expr.args[1], f"without the factor 2 of {expr.text()}"
        elif is_loss_local(ctx, expr):
            yield from scaled(ctx, expr, expr.text())

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, owner_text(owner, note))

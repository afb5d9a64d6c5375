"""``cross_entropy_sign``: cross-entropy's sign flipped -- t − y for y − t, or E = Σ t log y
without the minus.

Example (softmax with cross-entropy): δ[2] = y − t written as t − y.
"""
from __future__ import annotations

from ...derivation import Op
from ..formulas import sites
from . import Variant, is_loss_local, mistake, owner_text


@mistake("cross_entropy_sign", "cross-entropy's sign flipped (t − y for y − t)", "δ[2](2) written as t(2) − y(2)")
def variants(ctx):
    """With a cross-entropy loss: y − t as t − y, −Σ t log y as Σ t log y, ∂L/∂z negated."""
    if not ctx.cross_entropy():
        return

    def rewrite(expr, owner):
        if not isinstance(expr, Op):
            if is_loss_local(ctx, expr):
                yield Op("neg", (expr,)), f"with −{expr.text()} for {expr.text()}"
            return
        if expr.name == "sub" and (ctx.is_target(expr.args[0]) or ctx.is_target(expr.args[1])):
            a, b = expr.args
            yield Op("sub", (b, a)), f"with {b.text()} − {a.text()} for {expr.text()}"
        elif expr.name == "neg" and ctx.kind(owner[0]) in ("loss", "error"):
            yield expr.args[0], f"without the minus of {expr.text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the cross-entropy's sign was flipped")

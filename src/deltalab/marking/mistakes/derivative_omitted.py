"""``derivative_omitted``: an activation's derivative f′ left out (taken as 1).

Example (mlp, ReLU): δ[1] = ∂E/∂x[1] ⊙ relu′(z[1]) written as ∂E/∂x[1].
"""
from __future__ import annotations

from ...derivation import Op
from ..formulas import one, sites
from . import Variant, activation_local, activation_of, mistake, owner_text


@mistake("derivative_omitted", "an activation's derivative f′ left out", "δ[1] written as ∂E/∂x[1] without relu′(z[1])")
def variants(ctx):
    """Each f′ of the formula replaced by 1 (softmax: its Jacobian by the identity)."""

    def rewrite(expr, owner):
        if not isinstance(expr, Op):
            return
        if expr.name == "mul":
            for keep, drop in ((0, 1), (1, 0)):
                if activation_of(ctx, expr.args[drop]) is not None:
                    yield expr.args[keep], f"without the derivative {expr.args[drop].text()}"
        elif expr.name == "softmax_backward":
            yield expr.args[1], "without the softmax Jacobian"
        elif expr.name == "vjp" and activation_local(ctx, expr.args[0]) is not None:
            yield expr.args[1], f"without the derivative {expr.args[0].text()}"
        elif expr.name == "relu_prime":
            yield one(), f"with {expr.text()} taken as 1"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the activation's derivative was omitted")

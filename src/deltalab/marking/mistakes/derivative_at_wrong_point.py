"""``derivative_at_wrong_point``: f′ evaluated at the output instead of the pre-activation,
or the output's formula used on the pre-activation.

Example (tanh): f′(z) = 1 − tanh²(z) = 1 − x²; writing 1 − z² (the output's formula on the
pre-activation) or 1 − tanh²(x) (f′ at the output) is this mistake.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op, op
from ..formulas import sites
from . import (Computed, Variant, activation_derivative_value, activation_local, activation_of, as_jacobian,
               mistake, owner_text)


def _wrong_points(function, z, x):
    """(formula, words) of f′ at the wrong point, z the pre-activation, x = f(z)."""
    if function == "tanh":
        yield 1 - op("square", z), f"1 − {z.text()}² (the output's formula on the pre-activation)"
        if x is not None:
            yield 1 - op("square", op("apply", x, function="tanh")), f"f′({x.text()}) (f′ at the output)"
    elif function == "sigmoid":
        yield z * (1 - z), f"{z.text()} ⊙ (1 − {z.text()}) (the output's formula on the pre-activation)"
        if x is not None:
            s = op("apply", x, function="sigmoid")
            yield s * (1 - s), f"f′({x.text()}) (f′ at the output)"


@mistake("derivative_at_wrong_point", "f′ evaluated at the output instead of the pre-activation, or vice versa",
         "tanh: 1 − z[1]² written for 1 − x[1]²")
def variants(ctx):
    """Each f′ of the formula evaluated at the other point."""

    def rewrite(expr, owner):
        found = activation_of(ctx, expr)
        if found is not None:
            function, z, x = found
            for formula, words in _wrong_points(function, z, x):
                yield formula, f"with {words} for {expr.text()}"
        if isinstance(expr, Op) and expr.name == "vjp":
            local = activation_local(ctx, expr.args[0])
            if local is not None and local[0] in ("tanh", "sigmoid"):
                function, a, h = local
                shape = np.shape(ctx.derivation[expr.args[0].node].value)
                wrap = as_jacobian(shape)
                at_output = Computed(f"{function}′({{0}})", lambda v: wrap(activation_derivative_value(function, v)),
                                     (h,))
                if function == "tanh":
                    formula_on_pre = Computed("1 − {0}²", lambda v: wrap(1 - np.asarray(v) ** 2), (a,))
                else:
                    formula_on_pre = Computed("{0}(1 − {0})", lambda v: wrap(np.asarray(v) * (1 - np.asarray(v))), (a,))
                for local_formula, words in ((at_output, f"{function}′({h.text()}) (f′ at the output)"),
                                             (formula_on_pre, f"{formula_on_pre.text()} (the output's formula on "
                                                              "the pre-activation)")):
                    yield Op("vjp", (local_formula, expr.args[1])), f"with {words} for {expr.args[0].text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the derivative was evaluated at the wrong point")


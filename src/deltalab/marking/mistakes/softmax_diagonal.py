"""``softmax_diagonal``: y ⊙ (1 − y) used as the whole softmax Jacobian.

Example: ∂E/∂z = y ⊙ (g − Σ g ⊙ y) written as y ⊙ (1 − y) ⊙ g (the off-diagonal −yᵢyⱼ lost).
"""
from __future__ import annotations

import re

import numpy as np

from ...derivation import Op
from ..formulas import ref_node, sites
from . import Computed, Variant, mistake, owner_text


@mistake("softmax_diagonal", "y(1 − y) used as the whole softmax Jacobian", "∂E/∂z written as y ⊙ (1 − y) ⊙ ∂E/∂y")
def variants(ctx):
    """Each softmax Jacobian of the formula replaced by its diagonal."""

    def rewrite(expr, owner):
        if isinstance(expr, Op) and expr.name == "softmax_backward":
            y, g = expr.args
            yield y * (1 - y) * g, f"with {y.text()} ⊙ (1 − {y.text()}) for the softmax Jacobian"
        elif isinstance(expr, Op) and expr.name == "vjp":
            node = ref_node(expr.args[0])
            if node is None or not node.startswith("local:"):
                return
            out, _, inp = node[len("local:"):].partition("/")
            text = ctx.equation_of(f"forward:{out}")
            if text is None or not re.match(r"^\s*softmax\(", text):
                return
            y = ctx.derivation.ref(f"forward:{out}")
            diagonal = Computed("diag({0} ⊙ (1 − {0}))", lambda v: np.diag(np.asarray(v) * (1 - np.asarray(v)))
                                if np.ndim(v) == 1 else np.asarray(v) * (1 - np.asarray(v)), (y,))
            yield Op("vjp", (diagonal, expr.args[1])), f"with {diagonal.text()} for {expr.args[0].text()}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: only the diagonal of the softmax Jacobian was used")

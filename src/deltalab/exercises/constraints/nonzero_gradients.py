"""``nonzero_gradients = true``: every entry of every parameter asked about (``gradients.X``
or ``parameters_after.X`` in ``ask``; every parameter when none is asked) has a gradient ≠ 0.

A zero gradient usually means a degenerate draw (a dead path, a zero input) and an update
that leaves the weight unchanged: nothing to practise.

Example: x[0] = (0, 1) gives ∂E/∂W1 a zero column and is rejected.
"""
from __future__ import annotations

import numpy as np

from . import Constraint, flag, register

ZERO = 1e-12


@register
class NonzeroGradients(Constraint):
    name = "nonzero_gradients"
    keys = ("nonzero_gradients",)

    @classmethod
    def read(cls, table, fail):
        return cls() if flag(table, "nonzero_gradients", fail) else None

    def check(self, candidate):
        asked = {key for section, key in candidate.ask if section in ("gradients", "parameters_after")}
        gradients = candidate.trace.steps[0].gradients
        if not gradients:
            raise candidate.template_error("generate.nonzero_gradients", "this problem has no targets, so no gradients")
        for name, gradient in gradients.items():
            if (not asked or name in asked) and np.any(np.abs(gradient) <= ZERO):
                return f"∂E/∂{name} has an entry 0"
        return None

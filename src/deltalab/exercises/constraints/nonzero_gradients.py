"""``nonzero_gradients = true``: every entry of every parameter asked about (``gradients.X``
or ``parameters_after.X`` in ``ask``; every parameter when none is asked) has a gradient ≠ 0,
at every training step asked about.

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
        asked = {(step, key) for step, section, key in candidate.ask if section in ("gradients", "parameters_after")}
        steps = sorted({step for step, _ in asked}) or range(1, len(candidate.trace.steps) + 1)
        if not candidate.trace.steps[0].gradients:
            raise candidate.template_error("generate.nonzero_gradients", "this problem has no targets, so no gradients")
        for step in steps:
            for name, gradient in candidate.trace.steps[step - 1].gradients.items():
                if (not asked or (step, name) in asked) and np.any(np.abs(gradient) <= ZERO):
                    where = "" if step == 1 else f" in training step {step}"
                    return f"∂E/∂{name} has an entry 0{where}"
        return None

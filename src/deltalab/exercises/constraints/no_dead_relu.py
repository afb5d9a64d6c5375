"""``no_dead_relu = true``: every ReLU unit is active, at every time step and sample.

A unit whose pre-activation is ≤ 0 outputs 0 and passes no gradient back: half an
exercise's backward pass becomes zeros, and relu′(0) is a matter of convention.  Checked on
the argument of every relu the forward pass applies (layers, recurrent cells, equations).

Example: the ReLU exam network with h2 = −0.5 (h4 = ReLU(h2) = 0) is rejected.
"""
from __future__ import annotations

import numpy as np

from ..applications import applications
from . import Constraint, flag, register


@register
class NoDeadRelu(Constraint):
    name = "no_dead_relu"
    keys = ("no_dead_relu",)

    @classmethod
    def read(cls, table, fail):
        return cls() if flag(table, "no_dead_relu", fail) else None

    def check(self, candidate):
        for derivation in candidate.derivations:
            for application in applications(derivation):
                if application.function == "relu" and np.any(application.arguments[0] <= 0):
                    return f"a ReLU in {application.node.symbol} gets a pre-activation ≤ 0"
        return None

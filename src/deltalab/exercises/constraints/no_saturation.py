"""``no_saturation = s`` (0.5 < s < 1; ``true`` means 0.95): no tanh or sigmoid sits on its
flat ends, |tanh| ≤ s and 1 − s ≤ σ ≤ s.

There the derivative (1 − tanh², σ(1 − σ)) is nearly 0 and the backward pass shows only
vanishing numbers.  Checked on every tanh and sigmoid the forward pass applies, LSTM gates
and equations included.

Example: with s = 0.95 a hidden unit tanh(2.5) = 0.987 is rejected.
"""
from __future__ import annotations

import numpy as np

from ..applications import applications
from . import Constraint, register


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


@register
class NoSaturation(Constraint):
    name = "no_saturation"
    keys = ("no_saturation",)

    def __init__(self, bound):
        self.bound = bound

    @classmethod
    def read(cls, table, fail):
        value = table["no_saturation"]
        if value is False:
            return None
        if value is True:
            value = 0.95
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 < value < 1:
            fail("generate.no_saturation", f"expected true or a bound between 0.5 and 1 (e.g. 0.95), got {value!r}")
        return cls(float(value))

    def setting(self):
        return self.bound

    def check(self, candidate):
        for derivation in candidate.derivations:
            for application in applications(derivation):
                argument = application.arguments[0]
                if application.function == "tanh" and np.any(np.abs(np.tanh(argument)) > self.bound):
                    return f"a tanh in {application.node.symbol} is beyond ±{self.bound:g}"
                if application.function == "sigmoid":
                    s = _sigmoid(argument)
                    if np.any(s > self.bound) or np.any(s < 1 - self.bound):
                        return f"a sigmoid in {application.node.symbol} is outside [{1 - self.bound:g}, {self.bound:g}]"
        return None

"""The circular shift register of the tutorial notes: three softmax units fed back.

One shared 3×3 weight matrix W (no bias) and no hidden units:

    x(2) = softmax(W x(1)),   x(3) = softmax(W x(2)),   E = E(2) + E(3)   (cross-entropy)

Written as a cell z_t = W (x_t + s_{t−1}), s_t = softmax(z_t) unrolled by ``nn.Recurrent`` over
the inputs (x(1), 0) from s_0 = 0: at T2 the cell sees the pattern, at T3 only its own T2
output.  Exact BPTT is the gradient of E; ``truncate=1`` cuts the path from E(3) back through
x(2), which is the sheet's own rule W ← W − ε(ΔW(1) + ΔW(2)).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..nn.module import Module, Parameter
from ..nn.recurrent_cell import Recurrent
from ..tensor import zeros

RULES = ("exact", "seed")


class FeedbackCell(Module):
    """z_t = W (x_t + s_{t−1}); the output is the logits z_t, the state s_t = softmax(z_t).  W0 = 0."""

    def __init__(self, size=3, dtype=None):
        super().__init__()
        self.size = size
        self.W = Parameter(np.zeros((size, size)), dtype=dtype)

    def forward(self, x_t, state):
        z = ops.linear(x_t + state, self.W)
        return z, ops.softmax(z, axis=-1)

    def initial_state(self, x_t):
        return zeros(x_t.shape, dtype=self.dtype)

    def extra_repr(self):
        return f"size={self.size}"


def shift_register_model(rule="exact", size=3):
    """``Recurrent(FeedbackCell)``: exact BPTT (``rule="exact"``) or the tutorial notes' truncated rule (``"seed"``)."""
    if rule not in RULES:
        raise ValueError(f"shift register: rule must be one of {', '.join(RULES)}, got {rule!r}")
    return Recurrent(FeedbackCell(size), truncate=1 if rule == "seed" else None)


def shift_register_inputs(task):
    """Inputs (2, N, 3): the pattern at T1, zeros at T2 (x(2) comes from the feedback)."""
    return np.concatenate([task.inputs, np.zeros_like(task.inputs)], axis=0)


__all__ = ["RULES", "FeedbackCell", "shift_register_inputs", "shift_register_model"]

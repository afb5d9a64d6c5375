"""The loss of a step written as formulas: E, E per sample or time step, and where the
backward pass starts (∂E/∂y, or δ = y − t for softmax with cross-entropy)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..records import dataclass
from .expressions import Const, Expr, op


@dataclass
class LossFormulas:
    error: Callable  # (row index or None) -> the formula of E over that sample (None: all of them)
    output_gradient: Expr | None  # ∂E/∂y; None when the loss starts at z directly
    output_delta: Expr | None  # δ at the last pre-activation, when the loss gives it directly

    @property
    def total(self) -> Expr:
        return self.error(None)

    def per_sample(self, index) -> Expr:
        return self.error(index)


def loss_formulas(name, y, t, z, class_axis, count, softmax_output, target_value) -> LossFormulas:
    """The formulas of loss ``name`` for output y, target t and last pre-activation z (None if
    the network ends without one); ``count``: how many target values mse averages over."""

    def rows(e, index):
        return e if index is None else op("row", e, index=index)

    if name in ("half_squared_error", "squared_error", "mse"):
        scale = {"half_squared_error": Const(0.5), "squared_error": None,
                 "mse": Const(1.0 / count, f"1/{count}")}[name]

        def error(index):
            total = op("sum", op("square", rows(t, index) - rows(y, index)))
            return total if scale is None else scale * total

        factor = {"half_squared_error": None, "squared_error": Const(2.0),
                  "mse": Const(2.0 / count, f"2/{count}")}[name]
        return LossFormulas(error, y - t if factor is None else factor * (y - t), None)
    if name == "cross_entropy":
        logits = z if z is not None else y

        def error(index):
            return -op("sum", rows(t, index) * op("log_softmax", rows(logits, index), axis=class_axis
                                                   if index is None or class_axis < 0 else class_axis - 1))

        one_hot = np.allclose(np.sum(target_value, axis=class_axis), 1.0)
        probabilities = y if softmax_output else op("apply", logits, function="softmax", axis=class_axis)
        delta = probabilities - t if one_hot else probabilities * op("class_sum", t, axis=class_axis) - t
        return LossFormulas(error, None, delta)

    def error(index):  # binary cross-entropy on a probability output
        yi, ti = rows(y, index), rows(t, index)
        return -op("sum", ti * op("clamped_log", yi) + (1 - ti) * op("clamped_log", 1 - yi))

    return LossFormulas(error, op("divide", y - t, y * (1 - y)), None)

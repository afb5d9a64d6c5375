"""Central finite differences in float64: the independent check of every analytic gradient."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


@dataclass
class GradcheckResult:
    """Max relative error per input: max|analytic − numeric| / max(max|analytic|, max|numeric|)."""

    errors: list = field(default_factory=list)
    tolerance: float = 1e-7

    @property
    def max_error(self):
        return max(self.errors, default=0.0)

    @property
    def passed(self):
        return self.max_error <= self.tolerance

    def __bool__(self):
        return self.passed


def relative_error(analytic, numeric):
    scale = max(np.max(np.abs(analytic), initial=0.0), np.max(np.abs(numeric), initial=0.0))
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(analytic - numeric)) / scale)


def central_differences(loss, array, indices, eps=1e-6):
    """(loss at a + ε·e_i − loss at a − ε·e_i) / 2ε for each multi-index i of ``array``.

    ``array`` is perturbed in place and restored; ``loss()`` reads its current values.
    Multi-indices, not a flat view: reshape(-1) of a non-C-contiguous array is a copy.
    """
    numeric = np.empty(len(indices))
    for j, i in enumerate(indices):
        original = array[i]
        array[i] = original + eps
        plus = loss()
        array[i] = original - eps
        minus = loss()
        array[i] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def numerical_gradient(fn, inputs, index, eps, weights):
    """d(Σ weights·fn(inputs))/d inputs[index] by central differences, one value at a time."""
    x = inputs[index]
    with no_grad():
        numeric = central_differences(lambda: np.sum(fn(*inputs).data * weights), x.data,
                                      list(np.ndindex(x.data.shape)), eps)
    return numeric.reshape(x.data.shape)


def gradcheck(fn, *inputs, eps=1e-6, tolerance=1e-7, seed=0):
    """Compare autodiff with central differences for every input that requires grad.

    ``fn(*inputs)`` may return any shape: it is projected onto fixed random weights so every
    output element matters.  Inputs are promoted to float64 copies.  Returns a
    :class:`GradcheckResult` (truthy when every error is within ``tolerance``).
    """
    inputs = [
        Tensor(np.array(x.data, dtype=np.float64, order="C"), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x
        for x in inputs
    ]
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * weights).sum().backward()
    result = GradcheckResult(tolerance=tolerance)
    for index, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            continue
        analytic = x.grad.data if x.grad is not None else np.zeros_like(x.data)
        result.errors.append(relative_error(analytic, numerical_gradient(fn, inputs, index, eps, weights)))
    return result

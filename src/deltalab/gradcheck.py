"""Central finite differences in float64: the independent check of every analytic gradient."""
from __future__ import annotations

from dataclasses import field

import numpy as np

from .autograd import no_grad
from .records import dataclass
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


# An entry passes when |analytic − numeric| ≤ atol·max(1, |E|) + rtol·|numeric| (the
# criterion of torch.autograd.gradcheck, its absolute part scaled by the loss E).  Central differences with ε = 1e-6 in float64 are good to ~1e-10·|E| (rounding)
# plus ~1e-12·|f‴| (truncation), so the absolute floor keeps a true 0 computed as 4e-16 from
# failing a purely relative test.
FD_EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8
# A one-sided difference is only first-order accurate (error ~ ε·|f″|/2); at a kink the
# forward and backward differences differ by the jump in slope, far more than that.
ONE_SIDED_TOLERANCE = 1e-5
KINK_JUMP = 1e-3


@dataclass
class DifferenceComparison:
    """Analytic gradient entries against central differences of the loss."""

    relative_error: float  # max|a − n| / max(max|a|, max|n|) over the entries
    max_abs_error: float
    max_excess: float  # max of |a − n| − (atol + rtol·|n|): ≤ 0 when every entry passes
    one_sided: list  # indices where only a one-sided difference agrees (an input at a kink)
    entries: int


def compare_with_differences(loss, array, indices, analytic, eps=FD_EPS, rtol=FD_RTOL, atol=FD_ATOL, centre=None):
    """Central differences of ``loss()`` in ``array`` at ``indices`` against ``analytic`` (same
    order).  Where central differences disagree but the forward or backward difference agrees,
    the input sits exactly at a kink (a ReLU at 0, a max-pool tie) and the analytic value is the
    one-sided derivative (PyTorch's convention): reported in ``one_sided``, not a failure.

    ``centre``: ``loss()`` at the unperturbed values when the caller has it already (several
    arrays checked against one loss: one forward pass instead of one per array)."""
    analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
    numeric = central_differences(loss, array, indices, eps)
    # the difference quotient's rounding grows with the loss itself (~2e-16·|E|/ε)
    if len(indices):
        atol = atol * max(1.0, abs(float(loss() if centre is None else centre)))
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    for j, i in enumerate(indices):
        if array[i] + eps == array[i]:  # the step is below the entry's precision: nothing is measured
            excess[j] = np.inf
    one_sided = []
    for j in np.flatnonzero((excess > 0) & np.isfinite(excess)):
        i = indices[j]
        original = array[i]
        centre = loss()
        array[i] = original + eps
        plus = loss()
        array[i] = original - eps
        minus = loss()
        array[i] = original
        forward, backward = (plus - centre) / eps, (centre - minus) / eps
        if abs(forward - backward) <= KINK_JUMP * (1 + abs(forward) + abs(backward)):
            continue  # smooth here: the central difference stands
        for side in (forward, backward):
            if abs(analytic[j] - side) <= ONE_SIDED_TOLERANCE * (1 + abs(side)):
                one_sided.append(i)
                excess[j] = 0.0
                break
    return DifferenceComparison(
        relative_error(analytic, numeric),
        float(np.max(np.abs(analytic - numeric), initial=0.0)),
        float(np.max(excess, initial=0.0)),
        one_sided,
        len(indices),
    )


def sampled_entries(sizes: dict, max_entries: int, seed: int = 0) -> dict:
    """Flat indices to check per array (name -> size): all of them when the total is at most
    ``max_entries``, else a fixed sample spread over the arrays in proportion to their sizes
    (at least one entry each), so a big network is checked in bounded time."""
    total = sum(sizes.values())
    if total <= max_entries:  # every entry: no generator (numpy.random is not even imported)
        return {name: np.arange(size) for name, size in sizes.items()}
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, size in sizes.items():
        count = min(size, max(1, size * max_entries // total))
        chosen[name] = np.sort(rng.choice(size, size=count, replace=False))
    return chosen


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

"""``nn.utils.clip_grad_norm_`` and ``clip_grad_value_``, with torch's arithmetic."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..errors import missing_torch_names
from ..tensor import Tensor, from_array


def _gradients(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the ``norm_type``
    norm of all of them as one vector; returns ‖g‖ (a 0-d tensor) as torch."""
    grads = _gradients(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.array(0.0))
    if math.isinf(norm_type):
        norms = [np.max(np.abs(g.data)) if g.data.size else np.zeros((), g.data.dtype) for g in grads]
        total = np.max(np.stack(norms))
    else:
        norms = [np.sum(np.abs(g.data.astype(g.data.dtype)) ** norm_type) ** (1.0 / norm_type) for g in grads]
        total = np.sum(np.stack(norms) ** norm_type) ** (1.0 / norm_type)
    total = np.asarray(total, dtype=np.result_type(*[g.data.dtype for g in grads]))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    coefficient = np.minimum(np.asarray(max_norm, total.dtype) / (total + np.asarray(1e-6, total.dtype)), 1.0)
    with no_grad():  # in place, as torch's mul_: a reference to a gradient sees the clipping
        for g in grads:
            g.mul_(from_array(coefficient.astype(g.data.dtype)))
    return from_array(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _gradients(parameters):
            g.clamp_(-clip_value, clip_value)


__getattr__ = missing_torch_names(__name__, "torch.nn.utils")

"""Compiled (numba) ReLU for float32 (see :class:`deltalab.ops.elementwise.Relu`).

One pass per direction instead of NumPy's three (the comparison, the integer mask, the AND):
the forward writes max(0, a) as +0.0 where a ≤ 0 (NaN stays NaN) and a one-byte keep mask,
the backward passes the gradient where the mask is set, +0.0 elsewhere -- the NumPy path's
values bit for bit.  Selects, not branches; no fast-math.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


@njit(**_JIT)
def relu_forward(a, out, keep):
    """out = a where not a ≤ 0 (NaN included), else +0.0; keep = 1 there, else 0 (flat arrays)."""
    zero = np.float32(0)
    for i in range(a.shape[0]):
        v = a[i]
        t = not (v <= zero)
        out[i] = v if t else zero
        keep[i] = t


@njit(**_JIT)
def relu_backward(grad, keep, out):
    """out = grad where keep, else +0.0 (flat arrays)."""
    zero = np.float32(0)
    for i in range(grad.shape[0]):
        out[i] = grad[i] if keep[i] else zero

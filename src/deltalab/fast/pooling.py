"""Max pooling's compiled path (float32, 2×2 windows at stride 2 without padding, the common
CNN layer): one pass per direction instead of NumPy's four strided passes (and, in the
backward, three boolean passes per offset more).

The maths is :class:`deltalab.ops.pooling.MaxPool2d` (its NumPy path, kept for float64, other
windows and small arrays, is what this one is tested against, with torch).  1 thread, the
CIFAR step's pools (32×16×32×32, 32×32×16×16), medians of 30, under load: NumPy forward
0.34-0.48 / 0.20-0.29 ms, backward 0.74-1.00 / 0.42-0.59 ms; compiled forward 0.08 / 0.07 ms,
backward 0.26 / 0.14 ms.  The kernels follow torch's CPU rule
for which element takes a window's gradient (the first maximum, the last NaN), so NaN windows
need no second path, and the gradient is copied, never multiplied by a mask, so an inf upstream
gradient reaches only its own element.  Image ranges split over threads like the NumPy path's
(``deltalab.fast.threads.over_batch``), which changes no bit.
"""
from __future__ import annotations

import numpy as np

from . import kernels as compiled
from . import threads

__all__ = ["backward", "forward", "kernels"]


def kernels(x, kernel, stride, padding):
    """The :mod:`.pooling_kernels` module for a max pooling of ``x``, or None for the NumPy path
    (not float32 2×2 / 2 windows tiling the input, small arrays, numba off or unusable)."""
    if x.dtype != np.float32 or x.ndim != 4 or x.size == 0:
        return None
    if tuple(kernel) != (2, 2) or tuple(stride) != (2, 2) or tuple(padding) != (0, 0):
        return None
    if x.shape[2] % 2 or x.shape[3] % 2:
        return None
    return compiled.for_repeated_size("pooling_kernels", x.size)


def forward(module, x):
    """(the maxima (N, C, H/2, W/2), which of its window's four each is: int8, row-major)."""
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2)
    out = np.empty(shape, x.dtype)
    where = np.empty(shape, np.int8)

    def images(lo, hi):
        module.max_pool_2x2_forward(x[lo:hi], out[lo:hi], where[lo:hi])

    threads.over_batch(x.shape[0], x.size, images)
    return out, where


def backward(module, grad, where):
    """The input gradient (N, C, H, W): each window's gradient at its maximum, zero elsewhere."""
    grad = np.ascontiguousarray(grad, dtype=np.float32)
    dx = np.empty(grad.shape[:2] + (2 * grad.shape[2], 2 * grad.shape[3]), np.float32)

    def images(lo, hi):
        module.max_pool_2x2_backward(grad[lo:hi], where[lo:hi], dx[lo:hi])

    threads.over_batch(grad.shape[0], dx.size, images)
    return dx

"""Batch normalisation's fast path in training mode (float32): few passes, both cores.

The maths is :mod:`deltalab.ops.normalization` (its reference path, used for float64 and
evaluation, is what this one is tested against, with torch).  Why this shape:

- Per-channel sums are ``np.vecdot`` over the contiguous (H·W) axis of an (N, C, L) view,
  which runs as BLAS dot products: 0.11 ms on 64×16×28×28 float32 against 0.27 ms for
  ``sum(axis=(0, 2, 3))`` and 1.06 ms for ``var(axis=(0, 2, 3))``.
- The centred input d = x − μ is kept for the backward instead of x̂ (x̂ = d·inv_std), so the
  forward is: μ, d, Σd², y = d·(γ·inv_std) + β; and the backward, with a = γ·inv_std,
  dx = a·(g − Σg/M − d·(Σg·d)·inv_std²/M): two dot-product sums and four elementwise passes.
- At 2+ threads each pass over the data runs as one image range per thread
  (:func:`deltalab.fast.threads.run_parallel`; NumPy releases the GIL in ufuncs and BLAS):
  NumPy's elementwise work is otherwise single-threaded.  The per-range sums are added in
  range order, so results are deterministic.
- Arrays of ``Tuning.kernel_min_work`` elements or more (when numba is usable) take the
  compiled kernels of :mod:`.normalization_kernels` instead: one call per direction does a
  channel at a time in cache (the input read once, the output written once), and the backward
  reads the saved input rather than a centred copy.  At 2+ threads the channels are split
  into one range per thread, which changes no bit.
"""
from __future__ import annotations

import numpy as np

from . import kernels as compiled
from . import threads

__all__ = ["applies", "backward", "center", "compiled_backward", "compiled_forward", "kernels", "normalize"]


def applies(x):
    """The fast path takes float32 arrays with a channel axis (float64 keeps the reference)."""
    return x.dtype == np.float32 and x.ndim >= 2 and x.size > 0


def _split(n, size, task):
    return threads.over_batch(n, size, task)


def _channel_sums(a3, ones):
    """Σ over batch and positions of a (n, C, L) array, per channel, as BLAS dot products."""
    return np.vecdot(a3, ones).sum(axis=0)


def center(x):
    """(d = x − μ as (N, C, L), μ, biased σ²) of a float32 (N, C, ...) array, per channel."""
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    count = n * x3.shape[2]
    ones = np.ones(x3.shape[2], x.dtype)
    mean = sum(_split(n, x.size, lambda lo, hi: _channel_sums(x3[lo:hi], ones))) / np.float32(count)
    d = np.empty_like(x3)

    def squares(lo, hi):
        part = np.subtract(x3[lo:hi], mean[:, None], out=d[lo:hi])
        return np.vecdot(part, part).sum(axis=0)

    var = sum(_split(n, x.size, squares)) / np.float32(count)
    return d, mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)


def normalize(d, inv_std, weight, bias, shape):
    """y = d·(γ·inv_std) + β in the input's shape."""
    scale = inv_std if weight is None else inv_std * weight
    out = np.empty_like(d)

    def task(lo, hi):
        part = np.multiply(d[lo:hi], scale[:, None], out=out[lo:hi])
        if bias is not None:
            np.add(part, bias[:, None], out=part)

    _split(d.shape[0], d.size, task)
    return out.reshape(shape)


def backward(d, inv_std, weight, grad):
    """(dx in grad's shape, Σ g·x̂ per channel, Σ g per channel) of the training-mode batch norm."""
    n, c = d.shape[0], d.shape[1]
    g3 = np.ascontiguousarray(grad).reshape(n, c, -1)
    count = n * d.shape[2]
    ones = np.ones(d.shape[2], d.dtype)

    def sums(lo, hi):
        return _channel_sums(g3[lo:hi], ones), np.vecdot(g3[lo:hi], d[lo:hi]).sum(axis=0)

    parts = _split(n, d.size, sums)
    g_sum = sum(p[0] for p in parts)
    gd_sum = sum(p[1] for p in parts)
    scale = inv_std if weight is None else inv_std * weight
    mean_g = (g_sum / np.float32(count))[:, None]
    slope = (gd_sum * inv_std * inv_std / np.float32(count))[:, None]
    gx = np.empty_like(d)

    def task(lo, hi):
        part = np.multiply(d[lo:hi], slope, out=gx[lo:hi])  # d·(Σ g·d)·inv_std²/M
        np.subtract(g3[lo:hi], part, out=part)
        np.subtract(part, mean_g, out=part)
        np.multiply(part, scale[:, None], out=part)

    _split(n, d.size, task)
    return gx.reshape(grad.shape), (gd_sum * inv_std).astype(d.dtype, copy=False), g_sum.astype(d.dtype, copy=False)


# ----------------------------------------------------------------------------- compiled kernels
def kernels(x):
    """The :mod:`.normalization_kernels` module for a float32 array ``x``, or None for the NumPy
    path (:func:`deltalab.fast.kernels.for_size`: small arrays, numba off or unusable)."""
    return compiled.for_size("normalization_kernels", x.size)


def _over_channels(c, size, task):
    """``task(lo, hi)`` over channel ranges, one per thread when it pays, else ``task(0, c)``."""
    ranges = threads.batch_ranges(c, size)
    if ranges is None or threads.run_parallel([lambda lo=lo, hi=hi: task(lo, hi) for lo, hi in ranges]) is None:
        task(0, c)


def compiled_forward(module, x, weight, bias, eps):
    """(y in x's shape, μ, biased σ², 1/√(σ² + eps)) per channel of a float32 (N, C, ...) array."""
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    scale_weight = np.ones(c, np.float32) if weight is None else np.ascontiguousarray(weight)
    shift = np.zeros(c, np.float32) if bias is None else np.ascontiguousarray(bias)
    mean, var, inv_std = (np.empty(c, np.float32) for _ in range(3))
    out = np.empty(x.shape, np.float32)
    out3 = out.reshape(x3.shape)
    _over_channels(c, x.size, lambda lo, hi: module.forward(x3, scale_weight, shift, np.float32(eps), lo, hi,
                                                            mean, var, inv_std, out3))
    return out, mean, var, inv_std


def compiled_backward(module, x, mean, inv_std, weight, grad):
    """(dx in grad's shape, Σ g·x̂, Σ g) per channel of the training-mode batch norm."""
    n, c = x.shape[0], x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(n, c, -1)
    g3 = np.ascontiguousarray(grad, dtype=np.float32).reshape(n, c, -1)
    scale_weight = np.ones(c, np.float32) if weight is None else np.ascontiguousarray(weight)
    gx = np.empty(grad.shape, np.float32)  # its own array (no view): a leaf takes it as its gradient
    gx3, gw, gb = gx.reshape(x3.shape), np.empty(c, np.float32), np.empty(c, np.float32)
    _over_channels(c, x.size, lambda lo, hi: module.backward(x3, g3, mean, inv_std, scale_weight, lo, hi,
                                                             gx3, gw, gb))
    return gx, gw, gb

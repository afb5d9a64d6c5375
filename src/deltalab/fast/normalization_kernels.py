"""Compiled (numba) kernels of the float32 training-mode batch norm: one call per direction.

Why: the NumPy fast path (:mod:`deltalab.fast.normalization`) makes 4 elementwise passes
each way plus BLAS dot products for the sums, and keeps a full copy of the centred input.
Here one call does a whole channel at a time -- forward: Σx, Σ(x − μ)², y; backward: Σg,
Σg·(x − μ), dx -- while the channel's N·L values (200 KB for 64×28×28) stay in the L2 cache,
so the input is read from memory once and the output written once each way, and the backward
reads the input itself (the op saves it; autograd's version check guards it) instead of a
centred copy.

A channel range is the unit of work, so a thread split over channels
(:func:`deltalab.fast.normalization` runs one range per thread) gives the same bits as one
call.  The sums run in float32 vector lanes within a row of L values (``reassoc`` fast-math
on the sums only, so LLVM may vectorise them; no FMA contraction anywhere) and are added up
in float64 across rows; the elementwise passes do NumPy's float32 arithmetic in NumPy's order.

This module imports numba, so it is imported only for arrays big enough to pay
(``Tuning.kernel_min_work``); compiled code is cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


@njit(fastmath={"reassoc"}, **_JIT)
def _row_sum(row):
    total = np.float32(0.0)
    for j in range(row.shape[0]):
        total += row[j]
    return total


@njit(fastmath={"reassoc"}, **_JIT)
def _row_squares(row, mean):
    total = np.float32(0.0)
    for j in range(row.shape[0]):
        d = row[j] - mean
        total += d * d
    return total


@njit(fastmath={"reassoc"}, **_JIT)
def _row_dot_centered(g, x, mean):
    total = np.float32(0.0)
    for j in range(g.shape[0]):
        total += g[j] * (x[j] - mean)
    return total


@njit(**_JIT)
def forward(x3, scale_weight, bias, eps, lo, hi, mean, var, inv_std, out):
    """Channels lo..hi-1 of (N, C, L) ``x3``: batch mean and biased variance (into ``mean``,
    ``var``), ``inv_std`` = 1/√(var + eps), and y = (x − μ)·(γ·inv_std) + β into ``out``.
    ``scale_weight`` / ``bias`` have one value per channel (ones / zeros when not affine)."""
    n, length = x3.shape[0], x3.shape[2]
    count = n * length
    for c in range(lo, hi):
        total = 0.0
        for i in range(n):
            total += _row_sum(x3[i, c])
        mu = np.float32(total / count)
        total = 0.0
        for i in range(n):
            total += _row_squares(x3[i, c], mu)
        v = np.float32(total / count)
        inv = np.float32(1.0) / np.sqrt(v + eps)
        scale = inv * scale_weight[c]
        beta = bias[c]
        mean[c], var[c], inv_std[c] = mu, v, inv
        for i in range(n):
            row, dest = x3[i, c], out[i, c]
            for j in range(length):
                dest[j] = (row[j] - mu) * scale + beta


@njit(**_JIT)
def backward(x3, g3, mean, inv_std, weight, lo, hi, gx, gw, gb):
    """Channels lo..hi-1: Σg (into ``gb``), Σg·x̂ (into ``gw``) and
    dx = (g − Σg/M − (x − μ)·(Σg·(x − μ))·inv_std²/M)·γ·inv_std into ``gx``."""
    n, length = x3.shape[0], x3.shape[2]
    count = n * length
    for c in range(lo, hi):
        mu, inv = mean[c], inv_std[c]
        g_sum = 0.0
        gd_sum = 0.0
        for i in range(n):
            g_sum += _row_sum(g3[i, c])
            gd_sum += _row_dot_centered(g3[i, c], x3[i, c], mu)
        mean_g = np.float32(g_sum / count)
        slope = np.float32(gd_sum * inv * inv / count)
        scale = inv * weight[c]
        gb[c] = np.float32(g_sum)
        gw[c] = np.float32(gd_sum * inv)
        for i in range(n):
            row, up, dest = x3[i, c], g3[i, c], gx[i, c]
            for j in range(length):
                dest[j] = ((up[j] - (row[j] - mu) * slope) - mean_g) * scale

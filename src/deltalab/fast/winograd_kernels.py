"""Compiled (numba) tile transforms of the Winograd F(2×2, 3×3) convolution (see the Winograd
section of :mod:`deltalab.fast.conv`).

Each 2×2 output tile reads a 4×4 input tile (tiles overlap by 2 in each direction).  With the
matrices of Lavin & Gray (2016)

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],   Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]],

a tile's output is Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A.  These kernels do the data transforms
(additions and subtractions only) and their adjoints for the backward; the 16 products per
tile position are BLAS matrix products in :mod:`deltalab.fast.conv`.

Layout: the images are the innermost axis everywhere here (``(C, H, W, N)`` images, tiles
ordered (ty, tx, n)), so every transform works on runs of N contiguous floats -- loops LLVM
vectorises (a first version with the tile axis innermost read and wrote stride-2 pixels and ran
4-6× slower).  Transformed arrays are flat buffers holding 16 position matrices of (channels,
tiles), position p's starting at p·plane.  Each loop goes through a one-line helper over 1-D
slices: written with offsets into the whole buffer, numba's index arithmetic kept LLVM from
vectorising them (7× slower).

No fast-math: plain float32 adds in a fixed order (deterministic, the same bits from numba's
cache or a fresh compile).  This module imports numba; it is imported only by
:func:`deltalab.fast.conv.winograd_kernels`, and without numba conv2d keeps its direct path.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)
_INLINE = dict(inline="always", **_JIT)


@njit(**_INLINE)
def _sub(out, a, b):
    for i in range(out.shape[0]):
        out[i] = a[i] - b[i]


@njit(**_INLINE)
def _add(out, a, b):
    for i in range(out.shape[0]):
        out[i] = a[i] + b[i]


@njit(**_INLINE)
def _neg(out, a):
    for i in range(out.shape[0]):
        out[i] = -a[i]


@njit(**_INLINE)
def _neg_sum(out, a, b):
    for i in range(out.shape[0]):
        out[i] = -a[i] - b[i]


@njit(**_INLINE)
def _add3_bias(out, a, b, c, bias):
    for i in range(out.shape[0]):
        out[i] = (a[i] + b[i] + c[i]) + bias


@njit(**_INLINE)
def _sub3_bias(out, a, b, c, bias):
    for i in range(out.shape[0]):
        out[i] = (a[i] - b[i] - c[i]) + bias


@njit(**_INLINE)
def _add3(out, a, b, c):
    for i in range(out.shape[0]):
        out[i] = a[i] + b[i] + c[i]


@njit(**_INLINE)
def _sub3(out, a, b, c):
    for i in range(out.shape[0]):
        out[i] = a[i] - b[i] - c[i]


@njit(**_INLINE)
def _acc(out, a):
    for i in range(out.shape[0]):
        out[i] += a[i]


@njit(**_INLINE)
def _acc_sub(out, a):
    for i in range(out.shape[0]):
        out[i] -= a[i]


@njit(**_INLINE)
def _acc_mpm(out, a, b, c):
    for i in range(out.shape[0]):
        out[i] += a[i] - b[i] + c[i]


@njit(**_INLINE)
def _acc_ppm(out, a, b, c):
    for i in range(out.shape[0]):
        out[i] += a[i] + b[i] - c[i]


@njit(**_JIT)
def input_transform(xb, hp, wp, n, th, tw, v, plane, band):
    """v[(a, b), c, (ty, tx, ·)] = (Bᵀ d B)[a, b] for the 4×4 tile d at padded pixel (2·ty, 2·tx).

    ``xb``: the zero-padded images, flat (C, hp, wp, n); ``band``: scratch of 4·wp·n floats."""
    channels = xb.shape[0] // (hp * wp * n)
    tiles = th * tw * n
    row = wp * n
    for c in range(channels):
        for ty in range(th):
            r = (c * hp + 2 * ty) * row
            r0, r1, r2, r3 = xb[r : r + row], xb[r + row : r + 2 * row], xb[r + 2 * row : r + 3 * row], \
                xb[r + 3 * row : r + 4 * row]
            _sub(band[0:row], r0, r2)  # Bᵀ down the band's columns
            _add(band[row : 2 * row], r1, r2)
            _sub(band[2 * row : 3 * row], r2, r1)
            _sub(band[3 * row : 4 * row], r1, r3)
            for a in range(4):
                for tx in range(tw):
                    s = a * row + 2 * tx * n
                    e0, e1, e2, e3 = band[s : s + n], band[s + n : s + 2 * n], band[s + 2 * n : s + 3 * n], \
                        band[s + 3 * n : s + 4 * n]
                    o = 4 * a * plane + c * tiles + (ty * tw + tx) * n
                    _sub(v[o : o + n], e0, e2)  # and B across them
                    _add(v[o + plane : o + plane + n], e1, e2)
                    _sub(v[o + 2 * plane : o + 2 * plane + n], e2, e1)
                    _sub(v[o + 3 * plane : o + 3 * plane + n], e1, e3)


@njit(**_JIT)
def output_transform(m, plane, bias, ho, wo, n, tw, p0, p1, yb, rows):
    """yb flat (O, Ho, Wo, N) = Aᵀ m A + bias[o] for the tile positions p0 ≤ ty·tw + tx < p1,
    whose products ``m`` holds (as (O, (p1 − p0)·N) matrices), cropping the last tiles of an odd
    size; ``rows``: scratch of 8·N floats."""
    channels = bias.shape[0]
    tiles = (p1 - p0) * n
    for o in range(channels):
        b = bias[o]
        for pos in range(p0, p1):
            ty, tx = pos // tw, pos % tw
            y0, x0 = 2 * ty, 2 * tx
            at = o * tiles + (pos - p0) * n
            for k in range(4):  # rows: r0[k] = m0k + m1k + m2k, r1[k] = m1k − m2k − m3k
                p = at + k * plane
                _add3(rows[k * n : (k + 1) * n], m[p : p + n], m[p + 4 * plane : p + 4 * plane + n],
                      m[p + 8 * plane : p + 8 * plane + n])
                _sub3(rows[(4 + k) * n : (5 + k) * n], m[p + 4 * plane : p + 4 * plane + n],
                      m[p + 8 * plane : p + 8 * plane + n], m[p + 12 * plane : p + 12 * plane + n])
            for i in range(2):
                if y0 + i < ho:
                    q = ((o * ho + y0 + i) * wo + x0) * n
                    r = rows[4 * i * n : (4 * i + 4) * n]
                    _add3_bias(yb[q : q + n], r[0:n], r[n : 2 * n], r[2 * n : 3 * n], b)
                    if x0 + 1 < wo:
                        _sub3_bias(yb[q + n : q + 2 * n], r[n : 2 * n], r[2 * n : 3 * n], r[3 * n : 4 * n], b)


@njit(**_JIT)
def gradient_transform(gb, channels, n, th, tw, p0, p1, dm, plane, q):
    """dm[(a, b), o, (pos − p0, ·)] = (A dY Aᵀ)[a, b] for the tile positions p0 ≤ pos < p1, the
    adjoint of :func:`output_transform`.  ``gb``: the upstream gradient flat (O, 2·th, 2·tw, N),
    zero past an odd output size; ``q``: scratch of 8·N floats."""
    tiles = (p1 - p0) * n
    wq = 2 * tw
    for o in range(channels):
        for pos in range(p0, p1):
            ty, tx = pos // tw, pos % tw
            g = ((o * 2 * th + 2 * ty) * wq + 2 * tx) * n
            q00, q01 = gb[g : g + n], gb[g + n : g + 2 * n]
            q30, q31 = gb[g + wq * n : g + wq * n + n], gb[g + wq * n + n : g + wq * n + 2 * n]
            # q[a][j] = Σ_i Aᵀ[i, a] dY[i, j]: q0 = dY0, q1 = dY0 + dY1, q2 = dY0 − dY1, q3 = −dY1
            _add(q[2 * n : 3 * n], q00, q30)
            _add(q[3 * n : 4 * n], q01, q31)
            _sub(q[4 * n : 5 * n], q00, q30)
            _sub(q[5 * n : 6 * n], q01, q31)
            at = o * tiles + (pos - p0) * n
            for a in range(3):
                if a == 0:
                    c0, c1 = q00, q01
                else:
                    c0, c1 = q[2 * a * n : (2 * a + 1) * n], q[(2 * a + 1) * n : (2 * a + 2) * n]
                p = at + 4 * a * plane
                dm[p : p + n] = c0
                _add(dm[p + plane : p + plane + n], c0, c1)
                _sub(dm[p + 2 * plane : p + 2 * plane + n], c0, c1)
                _neg(dm[p + 3 * plane : p + 3 * plane + n], c1)
            p = at + 12 * plane  # row 3 is −dY1
            _neg(dm[p : p + n], q30)
            _neg_sum(dm[p + plane : p + plane + n], q30, q31)
            _sub(dm[p + 2 * plane : p + 2 * plane + n], q31, q30)
            dm[p + 3 * plane : p + 3 * plane + n] = q31


@njit(**_JIT)
def to_batch_last(x, xb, ph, pw):
    """xb (C, Hp, Wp, N)[:, ph:ph + H, pw:pw + W] = x (N, C, H, W) transposed (0.2 ms where
    NumPy's transposing copy took 0.3-0.6, conv b); returns whether every value was finite."""
    n, channels, height, width = x.shape
    zeros = np.zeros(n, np.float32)  # stay 0 unless a value is NaN or ±inf (one per lane: no chain)
    for c in range(channels):
        for yy in range(height):
            for xx in range(width):
                for k in range(n):
                    value = x[k, c, yy, xx]
                    xb[c, yy + ph, xx + pw, k] = value
                    zeros[k] += value * np.float32(0.0)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def from_batch_last(xb, ph, pw, x):
    """x (N, C, H, W) = xb (C, Hp, Wp, N)[:, ph:ph + H, pw:pw + W] transposed; returns whether
    every value was finite."""
    n, channels, height, width = x.shape
    zeros = np.zeros(n, np.float32)
    for c in range(channels):
        for yy in range(height):
            for xx in range(width):
                for k in range(n):
                    value = xb[c, yy + ph, xx + pw, k]
                    x[k, c, yy, xx] = value
                    zeros[k] += value * np.float32(0.0)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def input_gradient_transform(dv, plane, channels, hp, wp, n, tw, p0, p1, db, f):
    """db flat (C, hp, wp, N) += B dv Bᵀ at the place of each tile position p0 ≤ pos < p1 (the
    adjoint of :func:`input_transform`; tiles overlap: added in tile order).  ``dv`` holds those
    positions like :func:`gradient_transform`'s ``dm``; ``f``: scratch of 16·N floats."""
    tiles = (p1 - p0) * n
    row = wp * n
    for c in range(channels):
        for pos in range(p0, p1):
            ty, tx = pos // tw, pos % tw
            at = c * tiles + (pos - p0) * n
            for a in range(4):  # f[a][s] = Σ_b dv[a, b] Bᵀ[b, s]
                p = at + 4 * a * plane
                v0, v1 = dv[p : p + n], dv[p + plane : p + plane + n]
                v2, v3 = dv[p + 2 * plane : p + 2 * plane + n], dv[p + 3 * plane : p + 3 * plane + n]
                fa = f[4 * a * n : (4 * a + 4) * n]
                fa[0:n] = v0
                _sub(fa[n : 2 * n], v1, v2)
                _acc(fa[n : 2 * n], v3)
                _add(fa[2 * n : 3 * n], v1, v2)
                _acc_sub(fa[2 * n : 3 * n], v0)
                _neg(fa[3 * n : 4 * n], v3)
            base = ((c * hp + 2 * ty) * wp + 2 * tx) * n
            for s in range(4):  # dd[r][s] = Σ_a Bᵀ[a, r] f[a][s], added into the padded images
                f0, f1 = f[s * n : (s + 1) * n], f[(4 + s) * n : (5 + s) * n]
                f2, f3 = f[(8 + s) * n : (9 + s) * n], f[(12 + s) * n : (13 + s) * n]
                d = base + s * n
                _acc(db[d : d + n], f0)
                _acc_mpm(db[d + row : d + row + n], f1, f2, f3)
                _acc_ppm(db[d + 2 * row : d + 2 * row + n], f1, f2, f0)
                _acc_sub(db[d + 3 * row : d + 3 * row + n], f3)

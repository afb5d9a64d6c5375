"""Compiled (numba) column scatter of the direct float32 convolution's input gradient (see
the per-image section of :mod:`deltalab.fast.conv`).

The NumPy path adds the kh·kw offset slices of the column gradient into a zeroed padded
buffer one offset at a time and then copies the interior out: with plain rows (runs of only
Wo floats) those nine strided passes cost more than the products they follow.  This kernel
adds every offset straight into dX, skipping what lands in the padding, in the same order
per pixel (offset (0, 0) first, then (0, 1), …, each added to the running sum that starts at
zero), so it gives exactly the NumPy path's bits.

No fast-math; imported only by :func:`deltalab.fast.conv.conv_kernels` (without numba the
NumPy path runs).
"""
from __future__ import annotations

from numba import njit

_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


@njit(inline="always", **_JIT)
def _accumulate(out, a):
    for i in range(out.shape[0]):
        out[i] += a[i]


@njit(inline="always", **_JIT)
def _accumulate_strided(out, a, step):
    for i in range(a.shape[0]):
        out[i * step] += a[i]


@njit(**_JIT)
def add_columns_back(dcols, gx, sh, sw, ph, pw):
    """gx (count, C, H, W) = Σ over offsets (i, j) of dcols (count, C, kh, kw, Ho, Wo) placed at
    rows y·sh + i − ph, columns z·sw + j − pw (the adjoint of im2col); gx is overwritten."""
    count, channels, kh, kw, ho, wo = dcols.shape
    h, w = gx.shape[2], gx.shape[3]
    for n in range(count):
        for c in range(channels):
            plane = gx[n, c]
            plane[:, :] = 0
            for i in range(kh):
                for j in range(kw):
                    # the output columns z whose input column z·sw + j − pw lies inside the image
                    z0 = max(0, (pw - j + sw - 1) // sw)
                    z1 = min(wo, (w - 1 + pw - j) // sw + 1)
                    if z1 <= z0:
                        continue
                    for y in range(ho):
                        r = y * sh + i - ph
                        if r < 0 or r >= h:
                            continue
                        src = dcols[n, c, i, j, y, z0:z1]
                        start = z0 * sw + j - pw
                        if sw == 1:
                            _accumulate(plane[r, start : start + (z1 - z0)], src)
                        else:
                            _accumulate_strided(plane[r, start:], src, sw)

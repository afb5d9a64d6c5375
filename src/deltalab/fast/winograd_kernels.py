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
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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
def input_transform(xb, hp, half, n, th, tw, v, plane, band):
    """v[(a, b), c, (ty, tx, ·)] = (Bᵀ d B)[a, b] for the 4×4 tile d at padded pixel (2·ty, 2·tx).

    ``xb``: the zero-padded images, flat (C, hp, 2, half, N) -- each row's even then odd
    columns, so a row of tiles reads runs of tw·N floats; ``band``: scratch of 8·half·N floats."""
    channels = xb.shape[0] // (hp * 2 * half * n)
    tiles = th * tw * n
    row = 2 * half * n
    run = tw * n
    for c in range(channels):
        for ty in range(th):
            r = (c * hp + 2 * ty) * row
            r0, r1, r2, r3 = xb[r : r + row], xb[r + row : r + 2 * row], xb[r + 2 * row : r + 3 * row], \
                xb[r + 3 * row : r + 4 * row]
            _sub(band[0:row], r0, r2)  # Bᵀ down the band's columns
            _add(band[row : 2 * row], r1, r2)
            _sub(band[2 * row : 3 * row], r2, r1)
            _sub(band[3 * row : 4 * row], r1, r3)
            for a in range(4):  # and B across them: tile tx's columns are even tx, odd tx, even tx+1, odd tx+1
                even, odd = band[a * row : a * row + half * n], band[a * row + half * n : (a + 1) * row]
                e0, e1, e2, e3 = even[0:run], odd[0:run], even[n : n + run], odd[n : n + run]
                o = 4 * a * plane + c * tiles + ty * run
                _sub(v[o : o + run], e0, e2)
                _add(v[o + plane : o + plane + run], e1, e2)
                _sub(v[o + 2 * plane : o + 2 * plane + run], e2, e1)
                _sub(v[o + 3 * plane : o + 3 * plane + run], e1, e3)


@njit(**_JIT)
def output_transform(m, plane, bias, n, th, tw, t0, t1, yb, rows):
    """yb flat (O, 2·th, 2, tw, N) (each row's even then odd columns) = Aᵀ m A + bias[o] for the
    tile rows t0 ≤ ty < t1, whose products ``m`` holds as (O, (t1 − t0)·tw·N) matrices;
    ``rows``: scratch of 8·tw·N floats."""
    channels = bias.shape[0]
    run = tw * n
    tiles = (t1 - t0) * run
    for o in range(channels):
        b = bias[o]
        for ty in range(t0, t1):
            at = o * tiles + (ty - t0) * run
            for k in range(4):  # rows: r0[k] = m0k + m1k + m2k, r1[k] = m1k − m2k − m3k
                p = at + k * plane
                _add3(rows[k * run : (k + 1) * run], m[p : p + run], m[p + 4 * plane : p + 4 * plane + run],
                      m[p + 8 * plane : p + 8 * plane + run])
                _sub3(rows[(4 + k) * run : (5 + k) * run], m[p + 4 * plane : p + 4 * plane + run],
                      m[p + 8 * plane : p + 8 * plane + run], m[p + 12 * plane : p + 12 * plane + run])
            for i in range(2):
                q = ((o * 2 * th + 2 * ty + i) * 2) * run
                r = rows[4 * i * run : (4 * i + 4) * run]
                _add3_bias(yb[q : q + run], r[0:run], r[run : 2 * run], r[2 * run : 3 * run], b)
                _sub3_bias(yb[q + run : q + 2 * run], r[run : 2 * run], r[2 * run : 3 * run], r[3 * run : 4 * run], b)


@njit(**_JIT)
def gradient_transform(gb, channels, n, th, tw, t0, t1, dm, plane, q):
    """dm[(a, b), o, (ty − t0, tx, ·)] = (A dY Aᵀ)[a, b] for the tile rows t0 ≤ ty < t1, the
    adjoint of :func:`output_transform`.  ``gb``: the upstream gradient flat (O, 2·th, 2, tw, N)
    like output_transform's ``yb``, zero past an odd output size; ``q``: scratch of 8·tw·N floats."""
    run = tw * n
    tiles = (t1 - t0) * run
    for o in range(channels):
        for ty in range(t0, t1):
            g = (o * 2 * th + 2 * ty) * 2 * run
            q00, q01 = gb[g : g + run], gb[g + run : g + 2 * run]
            q30, q31 = gb[g + 2 * run : g + 3 * run], gb[g + 3 * run : g + 4 * run]
            # q[a][j] = Σ_i Aᵀ[i, a] dY[i, j]: q0 = dY0, q1 = dY0 + dY1, q2 = dY0 − dY1, q3 = −dY1
            _add(q[2 * run : 3 * run], q00, q30)
            _add(q[3 * run : 4 * run], q01, q31)
            _sub(q[4 * run : 5 * run], q00, q30)
            _sub(q[5 * run : 6 * run], q01, q31)
            at = o * tiles + (ty - t0) * run
            for a in range(3):
                if a == 0:
                    c0, c1 = q00, q01
                else:
                    c0, c1 = q[2 * a * run : (2 * a + 1) * run], q[(2 * a + 1) * run : (2 * a + 2) * run]
                p = at + 4 * a * plane
                dm[p : p + run] = c0
                _add(dm[p + plane : p + plane + run], c0, c1)
                _sub(dm[p + 2 * plane : p + 2 * plane + run], c0, c1)
                _neg(dm[p + 3 * plane : p + 3 * plane + run], c1)
            p = at + 12 * plane  # row 3 is −dY1
            _neg(dm[p : p + run], q30)
            _neg_sum(dm[p + plane : p + plane + run], q30, q31)
            _sub(dm[p + 2 * plane : p + 2 * plane + run], q31, q30)
            dm[p + 3 * plane : p + 3 * plane + run] = q31


def _transpose_masks(bit):
    """shufflevector masks that swap bit ``bit`` of the row index with that of the column index
    between rows r (bit clear, first operand) and r | bit (second operand)."""
    low = [c if not c & bit else 16 + (c ^ bit) for c in range(16)]
    high = [(c | bit) if not c & bit else 16 + c for c in range(16)]
    return low, high


@intrinsic
def _transpose16(typingctx, src, src_base, src_rows, dst, dst_base, dst_rows, zeros):
    """dst[dst_base + dst_rows[j] + i] = src[src_base + src_rows[i] + j] for i, j < 16: a 16×16
    block transposed in registers (16 vector loads, 64 shuffles, 16 vector stores), and
    zeros[j] += Σ_i src[·i, j]·0 (stays 0 unless a value is NaN or ±inf).  NumPy's and numba's
    loops move one float at a time through a strided copy (LLVM does not vectorise it); this ran
    2.2× faster on L1-resident data (64 × 192 floats, 1.7 vs 3.9 µs)."""
    if not (isinstance(src, types.Array) and src.dtype == types.float32 and isinstance(dst, types.Array)
            and dst.dtype == types.float32 and isinstance(zeros, types.Array) and zeros.dtype == types.float32):
        return None
    sig = types.void(src, src_base, src_rows, dst, dst_base, dst_rows, zeros)

    def codegen(context, builder, signature, args):
        arrays = [context.make_array(signature.args[k])(context, builder, args[k]) for k in (0, 2, 3, 5, 6)]
        src_data, src_rows_data, dst_data, dst_rows_data, zeros_data = (a.data for a in arrays)
        i64, vector = ir.IntType(64), ir.VectorType(ir.FloatType(), 16)
        src_base = context.cast(builder, args[1], signature.args[1], types.int64)
        dst_base = context.cast(builder, args[4], signature.args[4], types.int64)

        def row_pointer(data, base, rows, k):
            offset = context.cast(builder, builder.load(builder.gep(rows, [ir.Constant(i64, k)])),
                                  signature.args[2].dtype, types.int64)
            return builder.bitcast(builder.gep(data, [builder.add(base, offset)]), vector.as_pointer())

        rows = [builder.load(row_pointer(src_data, src_base, src_rows_data, k), align=4) for k in range(16)]
        zero = ir.Constant(vector, [0.0] * 16)
        products = [builder.fmul(r, zero) for r in rows]
        while len(products) > 1:  # a tree of adds: no long dependency chain
            products = [builder.fadd(products[k], products[k + 1]) for k in range(0, len(products), 2)]
        zeros_pointer = builder.bitcast(zeros_data, vector.as_pointer())
        builder.store(builder.fadd(builder.load(zeros_pointer, align=4), products[0]), zeros_pointer, align=4)
        for bit in (1, 2, 4, 8):
            low, high = (ir.Constant(ir.VectorType(ir.IntType(32), 16), m) for m in _transpose_masks(bit))
            swapped = list(rows)
            for r in range(16):
                if not r & bit:
                    swapped[r] = builder.shuffle_vector(rows[r], rows[r | bit], low)
                    swapped[r | bit] = builder.shuffle_vector(rows[r], rows[r | bit], high)
            rows = swapped
        for k in range(16):
            builder.store(rows[k], row_pointer(dst_data, dst_base, dst_rows_data, k), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(**_INLINE)
def _lane_offset(c, yy, xx, ph, pw, hp, half, n):
    """Where flat (C, Hp, 2, half, N) holds the N lanes of x[·, c, yy, xx] placed at
    (yy + ph, xx + pw): the one layout rule of :func:`to_batch_last`, :func:`to_batch_last_summed`
    and :func:`from_batch_last`."""
    col = xx + pw
    return (((c * hp + yy + ph) * 2 + col % 2) * half + col // 2) * n


@njit(**_INLINE)
def _pixel_lanes(rows, c, p0, count, width, ph, pw, hp, half, n):
    """rows[i] = the lane offset of pixel p0 + i (row-major in an H × width image) of channel c."""
    for i in range(count):
        rows[i] = _lane_offset(c, (p0 + i) // width, (p0 + i) % width, ph, pw, hp, half, n)


# The copies between NCHW and batch-last are transposes of each channel's (N, H·W) block: they run
# over 16 images × 16 pixels at a time (:func:`_transpose16`); the images and pixels past the last
# full block of 16 are copied one by one.

@njit(**_JIT)
def to_batch_last(x, xb, ph, pw):
    """xb (C, Hp, 2, half, N)[c, y + ph, (x + pw) % 2, (x + pw) // 2] = x (N, C, H, W)[·, c, y, x];
    returns whether every value was finite."""
    n, channels, height, width = x.shape
    hp, half = xb.shape[1], xb.shape[3]
    flat, xf = xb.reshape(-1), x.reshape(-1)
    pixels = height * width
    image = channels * pixels
    blocked_n, blocked_p = n - n % 16, pixels - pixels % 16
    zeros = np.zeros(16, np.float32)  # stay 0 unless a value is NaN or ±inf (one per lane: no chain)
    images = np.arange(16) * image
    lanes = np.empty(16, np.int64)
    for c in range(channels):
        for p0 in range(0, blocked_p, 16):
            _pixel_lanes(lanes, c, p0, 16, width, ph, pw, hp, half, n)
            for k0 in range(0, blocked_n, 16):
                _transpose16(xf, k0 * image + c * pixels + p0, images, flat, k0, lanes, zeros)
        for p in range(pixels):
            d = _lane_offset(c, p // width, p % width, ph, pw, hp, half, n)
            for k in range(blocked_n if p < blocked_p else 0, n):
                value = xf[k * image + c * pixels + p]
                flat[d + k] = value
                zeros[k % 16] += value * np.float32(0.0)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def to_batch_last_summed(x, xb, ph, pw, sums):
    """:func:`to_batch_last` that also leaves sums[c] = Σ x[·, c, ·, ·] (float64, one lane per
    image over the pixels in order, lanes added in image order): the bias gradient comes with the
    upstream gradient's copy instead of a second pass over it (``grad.sum`` took ~0.1 ms, conv b).
    Returns whether every value was finite (a float64 sum of finite float32 values cannot
    overflow)."""
    n, channels, height, width = x.shape
    hp, half = xb.shape[1], xb.shape[3]
    flat, xf = xb.reshape(-1), x.reshape(-1)
    pixels = height * width
    image = channels * pixels
    blocked_n, blocked_p = n - n % 16, pixels - pixels % 16
    zeros = np.zeros(16, np.float32)
    images = np.arange(16) * image
    lanes = np.empty(16, np.int64)
    lanes_sum = np.zeros(n, np.float64)
    for c in range(channels):
        lanes_sum[:] = 0.0
        for p0 in range(0, blocked_p, 16):
            _pixel_lanes(lanes, c, p0, 16, width, ph, pw, hp, half, n)
            for k0 in range(0, blocked_n, 16):
                _transpose16(xf, k0 * image + c * pixels + p0, images, flat, k0, lanes, zeros)
            for i in range(16):  # each lane's pixels in order, as the copy one by one adds them
                row = flat[lanes[i] : lanes[i] + blocked_n]
                for k in range(blocked_n):
                    lanes_sum[k] += np.float64(row[k])
        for p in range(pixels):
            d = _lane_offset(c, p // width, p % width, ph, pw, hp, half, n)
            for k in range(blocked_n if p < blocked_p else 0, n):
                value = xf[k * image + c * pixels + p]
                flat[d + k] = value
                lanes_sum[k] += np.float64(value)
        total = 0.0
        for k in range(n):
            total += lanes_sum[k]
        sums[c] = total
    return np.all(np.isfinite(sums))


@njit(**_JIT)
def from_batch_last(xb, ph, pw, x):
    """x (N, C, H, W) from xb (C, Hp, 2, half, N) as :func:`to_batch_last` lays it out; returns
    whether every value was finite."""
    n, channels, height, width = x.shape
    hp, half = xb.shape[1], xb.shape[3]
    flat, xf = xb.reshape(-1), x.reshape(-1)
    pixels = height * width
    image = channels * pixels
    blocked_n, blocked_p = n - n % 16, pixels - pixels % 16
    zeros = np.zeros(16, np.float32)
    images = np.arange(16) * image
    lanes = np.empty(16, np.int64)
    for c in range(channels):
        for p0 in range(0, blocked_p, 16):
            _pixel_lanes(lanes, c, p0, 16, width, ph, pw, hp, half, n)
            for k0 in range(0, blocked_n, 16):
                _transpose16(flat, k0, lanes, xf, k0 * image + c * pixels + p0, images, zeros)
        for p in range(pixels):
            d = _lane_offset(c, p // width, p % width, ph, pw, hp, half, n)
            for k in range(blocked_n if p < blocked_p else 0, n):
                value = flat[d + k]
                xf[k * image + c * pixels + p] = value
                zeros[k % 16] += value * np.float32(0.0)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def input_gradient_transform(dv, plane, channels, hp, half, n, th, tw, t0, t1, db, f):
    """db flat (C, hp, 2, half, N) += B dv Bᵀ at the place of each tile of the tile rows
    t0 ≤ ty < t1 (the adjoint of :func:`input_transform`; tiles overlap: added in tile order).
    ``dv`` holds those rows like :func:`gradient_transform`'s ``dm``; ``f``: 16·tw·N floats."""
    run = tw * n
    tiles = (t1 - t0) * run
    row = 2 * half * n
    for c in range(channels):
        for ty in range(t0, t1):
            at = c * tiles + (ty - t0) * run
            for a in range(4):  # f[a][s] = Σ_b dv[a, b] Bᵀ[b, s]
                p = at + 4 * a * plane
                v0, v1 = dv[p : p + run], dv[p + plane : p + plane + run]
                v2, v3 = dv[p + 2 * plane : p + 2 * plane + run], dv[p + 3 * plane : p + 3 * plane + run]
                fa = f[4 * a * run : (4 * a + 4) * run]
                fa[0:run] = v0
                _sub(fa[run : 2 * run], v1, v2)
                _acc(fa[run : 2 * run], v3)
                _add(fa[2 * run : 3 * run], v1, v2)
                _acc_sub(fa[2 * run : 3 * run], v0)
                _neg(fa[3 * run : 4 * run], v3)
            base = (c * hp + 2 * ty) * row
            for s in range(4):  # dd[r][s] = Σ_a Bᵀ[a, r] f[a][s]; column s of tile tx: parity s % 2, tx + s // 2
                f0, f1 = f[s * run : (s + 1) * run], f[(4 + s) * run : (5 + s) * run]
                f2, f3 = f[(8 + s) * run : (9 + s) * run], f[(12 + s) * run : (13 + s) * run]
                d = base + (s % 2) * half * n + (s // 2) * n
                _acc(db[d : d + run], f0)
                _acc_mpm(db[d + row : d + row + run], f1, f2, f3)
                _acc_ppm(db[d + 2 * row : d + 2 * row + run], f1, f2, f0)
                _acc_sub(db[d + 3 * row : d + 3 * row + run], f3)

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
def _copy(out, a):
    for i in range(out.shape[0]):
        out[i] = a[i]


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


@njit(**_INLINE)
def _input_transform_channel(xc, c, hp, half, n, th, tw, v, plane, band):
    """v[(a, b), c, (ty, tx, ·)] = (Bᵀ d B)[a, b] for the 4×4 tile d at padded pixel (2·ty, 2·tx)
    of channel c, whose zero-padded images ``xc`` holds flat (hp, 2, half, N) -- each row's even
    then odd columns, so a row of tiles reads runs of tw·N floats; ``band``: scratch of
    8·half·N floats."""
    tiles = th * tw * n
    row = 2 * half * n
    run = tw * n
    for ty in range(th):
        r = 2 * ty * row
        r0, r1, r2, r3 = xc[r : r + row], xc[r + row : r + 2 * row], xc[r + 2 * row : r + 3 * row], \
            xc[r + 3 * row : r + 4 * row]
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
def input_transform(x, ph, pw, xc, hp, half, th, tw, v, plane, band):
    """V (see :func:`_input_transform_channel`) of x (N, C, H, W), one channel at a time through
    ``xc``, a zero-padded batch-last image (hp, 2, half, N) whose padding stays zero (only the
    interior is written); returns whether every value of x was finite."""
    n, channels, height, width = x.shape
    xf, flat = x.reshape(-1), xc.reshape(-1)
    pixels = height * width
    images, lanes, zeros = _block_scratch(channels * pixels)
    for c in range(channels):
        _images_to_lanes(xf, c * pixels, channels * pixels, pixels, width, flat, 0, ph, pw, half, n, images, lanes,
                         zeros)
        _input_transform_channel(flat, c, hp, half, n, th, tw, v, plane, band)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def output_transform(m, plane, bias, th, tw, t0, t1, y, rows, tile):
    """y (N, O, Ho, Wo)[·, o, 2·t0 : 2·t1] = Aᵀ m A + bias[o] for the tile rows t0 ≤ ty < t1, whose
    products ``m`` holds as (O, (t1 − t0)·tw·N) matrices: each channel's rows go to ``tile``
    (2·(t1 − t0), 2, tw, N) -- each row's even then odd columns -- and from there to y (a
    transpose in 16 × 16 blocks, in cache).  ``rows``: scratch of 8·tw·N floats.  Returns whether
    every value written was finite."""
    n, channels, height, width = y.shape
    yf = y.reshape(-1)
    run = tw * n
    tiles = (t1 - t0) * run
    first, last = 2 * t0, min(2 * t1, height)
    images, lanes, zeros = _block_scratch(channels * height * width)
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
                q = ((2 * (ty - t0) + i) * 2) * run
                r = rows[4 * i * run : (4 * i + 4) * run]
                _add3_bias(tile[q : q + run], r[0:run], r[run : 2 * run], r[2 * run : 3 * run], b)
                _sub3_bias(tile[q + run : q + 2 * run], r[run : 2 * run], r[2 * run : 3 * run],
                           r[3 * run : 4 * run], b)
        _lanes_to_images(tile, 0, 0, 0, tw, n, yf, (o * height + first) * width, channels * height * width,
                         (last - first) * width, width, images, lanes, zeros)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def gradient_transform(grad, lanes_sum, th, tw, t0, t1, dm, plane, q, tile):
    """dm[(a, b), o, (ty − t0, tx, ·)] = (A dY Aᵀ)[a, b] for the tile rows t0 ≤ ty < t1, the
    adjoint of :func:`output_transform`, from the upstream gradient ``grad`` (N, O, Ho, Wo): each
    channel's rows are copied to ``tile`` (2·(t1 − t0), 2, tw, N), zero past an odd output size.
    lanes_sum[o, k] += the sum of image k's copied values of channel o, in pixel order (the bias
    gradient, :func:`lane_totals`, without a second pass over grad).  ``q``: scratch of 8·tw·N
    floats.  Returns whether every value read was finite."""
    n, channels, height, width = grad.shape
    gf = grad.reshape(-1)
    run = tw * n
    tiles = (t1 - t0) * run
    first, last = 2 * t0, min(2 * t1, height)
    pixels = (last - first) * width
    odd = last - first < 2 * (t1 - t0) or width < 2 * tw
    images, lanes, zeros = _block_scratch(channels * height * width)
    for o in range(channels):
        if odd:
            tile[:] = 0.0
        _images_to_lanes(gf, (o * height + first) * width, channels * height * width, pixels, width, tile, 0, 0, 0,
                         tw, n, images, lanes, zeros, lanes_sum[o])
        for ty in range(t0, t1):
            g = 2 * (ty - t0) * 2 * run
            q00, q01 = tile[g : g + run], tile[g + run : g + 2 * run]
            q30, q31 = tile[g + 2 * run : g + 3 * run], tile[g + 3 * run : g + 4 * run]
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
                _copy(dm[p : p + run], c0)
                _add(dm[p + plane : p + plane + run], c0, c1)
                _sub(dm[p + 2 * plane : p + 2 * plane + run], c0, c1)
                _neg(dm[p + 3 * plane : p + 3 * plane + run], c1)
            p = at + 12 * plane  # row 3 is −dY1
            _neg(dm[p : p + run], q30)
            _neg_sum(dm[p + plane : p + plane + run], q30, q31)
            _sub(dm[p + 2 * plane : p + 2 * plane + run], q31, q30)
            _copy(dm[p + 3 * plane : p + 3 * plane + run], q31)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def lane_totals(lanes_sum, sums):
    """sums[o] = Σ_k lanes_sum[o, k], the lanes added in image order (the bias gradient's bits
    do not depend on the chunks or the layout); returns whether every sum is finite."""
    for o in range(lanes_sum.shape[0]):
        total = 0.0
        for k in range(lanes_sum.shape[1]):
            total += lanes_sum[o, k]
        sums[o] = total
    return np.all(np.isfinite(sums))


def _transpose_masks(bit):
    """shufflevector masks that swap bit ``bit`` of the row index with that of the column index
    between rows r (bit clear, first operand) and r | bit (second operand)."""
    low = [c if not c & bit else 16 + (c ^ bit) for c in range(16)]
    high = [(c | bit) if not c & bit else 16 + c for c in range(16)]
    return low, high


@intrinsic
def _transpose16(typingctx, src, src_base, src_rows, dst, dst_base, dst_rows, zeros, sums, sums_base, skip_rows,
                 skip_lanes):
    """dst[dst_base + dst_rows[j] + i] = src[src_base + src_rows[i] + j] for i, j < 16: a 16×16
    block transposed in registers (16 vector loads, 64 shuffles, 16 vector stores), and
    zeros[j] += Σ_i src[·i, j]·0 (stays 0 unless a value is NaN or ±inf).  NumPy's and numba's
    loops move one float at a time through a strided copy (LLVM does not vectorise it); this ran
    2.2× faster on L1-resident data (64 × 192 floats, 1.7 vs 3.9 µs).

    ``sums`` (float64 array, or None): sums[sums_base + i] += dst row j's lane i (as float64) for
    the rows j ≥ skip_rows in order and the lanes i ≥ skip_lanes -- each lane summed in row
    order (the per-image sums of :func:`gradient_transform`, which a separate loop over the
    copied lanes ran one float at a time: 34 of 70 µs a tile row, conv b)."""
    float32_array = lambda a: isinstance(a, types.Array) and a.dtype == types.float32
    summing = not isinstance(sums, (types.NoneType, types.Omitted))
    if not (float32_array(src) and float32_array(dst) and float32_array(zeros)):
        return None
    if summing and not (isinstance(sums, types.Array) and sums.dtype == types.float64):
        return None
    sig = types.void(src, src_base, src_rows, dst, dst_base, dst_rows, zeros, sums, sums_base, skip_rows, skip_lanes)

    def codegen(context, builder, signature, args):
        arrays = [context.make_array(signature.args[k])(context, builder, args[k]) for k in (0, 2, 3, 5, 6)]
        src_data, src_rows_data, dst_data, dst_rows_data, zeros_data = (a.data for a in arrays)
        i32, i64, vector = ir.IntType(32), ir.IntType(64), ir.VectorType(ir.FloatType(), 16)

        def integer(k):
            return context.cast(builder, args[k], signature.args[k], types.int64)

        src_base, dst_base = integer(1), integer(4)

        def row_pointer(data, base, rows, rows_type, k):
            offset = context.cast(builder, builder.load(builder.gep(rows, [ir.Constant(i64, k)])), rows_type.dtype,
                                  types.int64)
            return builder.bitcast(builder.gep(data, [builder.add(base, offset)]), vector.as_pointer())

        rows = [builder.load(row_pointer(src_data, src_base, src_rows_data, signature.args[2], k), align=4)
                for k in range(16)]
        zero = ir.Constant(vector, [0.0] * 16)
        products = [builder.fmul(r, zero) for r in rows]
        while len(products) > 1:  # a tree of adds: no long dependency chain
            products = [builder.fadd(products[k], products[k + 1]) for k in range(0, len(products), 2)]
        zeros_pointer = builder.bitcast(zeros_data, vector.as_pointer())
        builder.store(builder.fadd(builder.load(zeros_pointer, align=4), products[0]), zeros_pointer, align=4)
        for bit in (1, 2, 4, 8):
            low, high = (ir.Constant(ir.VectorType(i32, 16), m) for m in _transpose_masks(bit))
            swapped = list(rows)
            for r in range(16):
                if not r & bit:
                    swapped[r] = builder.shuffle_vector(rows[r], rows[r | bit], low)
                    swapped[r | bit] = builder.shuffle_vector(rows[r], rows[r | bit], high)
            rows = swapped
        for k in range(16):
            builder.store(rows[k], row_pointer(dst_data, dst_base, dst_rows_data, signature.args[5], k), align=4)
        if summing:
            doubles = ir.VectorType(ir.DoubleType(), 16)
            sums_data = context.make_array(signature.args[7])(context, builder, args[7]).data
            sums_pointer = builder.bitcast(builder.gep(sums_data, [integer(8)]), doubles.as_pointer())
            lanes = ir.Constant(ir.VectorType(i64, 16), list(range(16)))
            first_lane = builder.insert_element(ir.Constant(ir.VectorType(i64, 16), None), integer(10),
                                                ir.Constant(i32, 0))
            first_lane = builder.shuffle_vector(first_lane, first_lane, ir.Constant(ir.VectorType(i32, 16), [0] * 16))
            wanted = builder.icmp_signed(">=", lanes, first_lane)
            total = builder.load(sums_pointer, align=8)
            skip = integer(9)
            for k in range(16):  # in row order: each lane's float64 adds as one by one
                added = builder.select(wanted, builder.fadd(total, builder.fpext(rows[k], doubles)), total)
                total = builder.select(builder.icmp_signed(">=", ir.Constant(i64, k), skip), added, total)
            builder.store(total, sums_pointer, align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(**_INLINE)
def _lane_offset(yy, xx, ph, pw, half, n):
    """Where a flat batch-last image (rows, 2, half, N) holds the N lanes of pixel (yy, xx) placed
    at (yy + ph, xx + pw): each row's even then odd columns.  The one layout rule of every copy
    between NCHW and batch-last."""
    col = xx + pw
    return (((yy + ph) * 2 + col % 2) * half + col // 2) * n


@njit(**_INLINE)
def _block_scratch(image):
    """(row offsets of 16 images ``image`` floats apart, room for 16 lane offsets, the 16 lanes
    of the finiteness check)."""
    return np.arange(16) * image, np.empty(16, np.int64), np.zeros(16, np.float32)


# The copies between NCHW and batch-last are transposes of one channel's (N, pixels) block:
# 16 images × 16 pixels at a time (:func:`_transpose16`), the last block of each axis moved back
# to end at its end (overlapping the one before: a copy, the same values written twice); with
# fewer than 16 images or pixels, one value at a time.  zeros[k % 16] += value·0 on the way.

@njit(**_INLINE)
def _images_to_lanes(src, src_base, image, pixels, width, dst, dst_base, ph, pw, half, n, images, lanes, zeros,
                     sums=None):
    """dst[dst_base + lane(p) + k] = src[src_base + k·image + p] for images k < n and pixels
    p < pixels (row-major, ``width`` a row; lane(p) = :func:`_lane_offset`); ``sums`` (float64,
    or None): sums[k] += each copied value of image k, in pixel order."""
    if n >= 16 and pixels >= 16:
        for i in range(-(-pixels // 16)):
            p0 = min(16 * i, pixels - 16)
            for j in range(16):
                lanes[j] = dst_base + _lane_offset((p0 + j) // width, (p0 + j) % width, ph, pw, half, n)
            for b in range(-(-n // 16)):
                k0 = min(16 * b, n - 16)
                _transpose16(src, src_base + k0 * image + p0, images, dst, k0, lanes, zeros, sums, k0,
                             16 * i - p0, 16 * b - k0)
    else:
        for p in range(pixels):
            d = dst_base + _lane_offset(p // width, p % width, ph, pw, half, n)
            for k in range(n):
                value = src[src_base + k * image + p]
                dst[d + k] = value
                zeros[k % 16] += value * np.float32(0.0)
                if sums is not None:
                    sums[k] += np.float64(value)


@njit(**_INLINE)
def _lanes_to_images(src, src_base, ph, pw, half, n, dst, dst_base, image, pixels, width, images, lanes, zeros):
    """The inverse of :func:`_images_to_lanes`: dst[dst_base + k·image + p] = src[src_base + lane(p) + k]."""
    if n >= 16 and pixels >= 16:
        for i in range(-(-pixels // 16)):
            p0 = min(16 * i, pixels - 16)
            for j in range(16):
                lanes[j] = src_base + _lane_offset((p0 + j) // width, (p0 + j) % width, ph, pw, half, n)
            for b in range(-(-n // 16)):
                k0 = min(16 * b, n - 16)
                _transpose16(src, k0, lanes, dst, dst_base + k0 * image + p0, images, zeros, None, 0, 0, 0)
    else:
        for p in range(pixels):
            d = src_base + _lane_offset(p // width, p % width, ph, pw, half, n)
            for k in range(n):
                value = src[d + k]
                dst[dst_base + k * image + p] = value
                zeros[k % 16] += value * np.float32(0.0)


@njit(**_JIT)
def from_batch_last(xb, ph, pw, x, first, last):
    """Rows first ≤ y < last of x (N, C, H, W) from xb (C, Hp, 2, half, N), where x[·, c, y, x]
    is at [c, y + ph, (x + pw) % 2, (x + pw) // 2]; returns whether every value was finite."""
    n, channels, height, width = x.shape
    hp, half = xb.shape[1], xb.shape[3]
    flat, xf = xb.reshape(-1), x.reshape(-1)
    images, lanes, zeros = _block_scratch(channels * height * width)
    for c in range(channels):
        _lanes_to_images(flat, (c * hp + first) * 2 * half * n, ph, pw, half, n, xf, (c * height + first) * width,
                         channels * height * width, (last - first) * width, width, images, lanes, zeros)
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
                _copy(fa[0:run], v0)
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

"""Compiled (numba) tile transforms of the Winograd F(2×2, 3×3) convolution (see the Winograd
section of :mod:`deltalab.fast.conv`).

Each 2×2 output tile reads a 4×4 input tile (tiles overlap by 2 in each direction).  With the
matrices of Lavin & Gray (2016)

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],   Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]],

a tile's output is Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A.  These kernels do the data transforms
(additions and subtractions only) and their adjoints for the backward; the 16 products per
tile position are BLAS matrix products in :mod:`deltalab.fast.conv`.

Layout: the images are the innermost axis of every batch-last buffer (a channel's padded images
(hp, 2, half, N), each row's even then odd columns; tiles ordered (ty, tx, n)), so a transform
works on runs of N contiguous floats, 16 at a time as LLVM vectors (a first version with the
tile axis innermost read and wrote stride-2 pixels and ran 4-6× slower).  Transformed arrays are
flat buffers holding 16 position matrices of (channels, tiles), position p's starting at p·plane.
The NCHW arrays are read and written directly, one channel's rows at a time through a small
batch-last scratch (16 × 16 register transposes, :func:`_transpose16`): no whole-array layout
copies (they were 1.3 ms of a conv b step, cold).

No fast-math: plain float32 adds in a fixed order (deterministic, the same bits from numba's
cache or a fresh compile, and the same as the first, loop-per-stream version).  This module
imports numba; it is imported only by :func:`deltalab.fast.conv.winograd_kernels`, and without
numba conv2d keeps its direct path.
"""
from __future__ import annotations

import operator

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, models, overload, register_model

_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)
_INLINE = dict(inline="always", **_JIT)


@njit(**_INLINE)
def _acc(out, a):
    for i in range(out.shape[0]):
        out[i] += a[i]


@njit(**_INLINE)
def _acc_sub(out, a):
    for i in range(out.shape[0]):
        out[i] -= a[i]


# ----------------------------------------------------------------------------- 16-float vectors
# The transforms combine up to 16 streams per tile position.  As one loop over the lanes with
# scalar code, LLVM vectorises only after runtime overlap checks between every pair of streams and
# gives up past 8 pairs; as one small loop per output stream (the first version), each loop ran
# 28 iterations (conv b) and paid its checks and set-up again: 7-9 cycles per 16 floats.  These
# <16 × float> values (loaded, added, subtracted and stored as LLVM vectors, no fast-math: the
# same IEEE float32 operations as the scalar code, lane by lane) let one loop do a whole tile
# position.  A run's lanes past a multiple of 16 take the same value functions on scalars.

class _Float32x16(types.Type):
    def __init__(self):
        super().__init__(name="Float32x16")


_float32x16 = _Float32x16()
_VECTOR = ir.VectorType(ir.FloatType(), 16)


@register_model(_Float32x16)
class _Float32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _vector_pointer(context, builder, signature, args):
    data = context.make_array(signature.args[0])(context, builder, args[0]).data
    offset = context.cast(builder, args[1], signature.args[1], types.int64)
    return builder.bitcast(builder.gep(data, [offset]), _VECTOR.as_pointer())


@intrinsic
def _load16(typingctx, array, offset):
    """array[offset : offset + 16] as one vector (no alignment assumed)."""
    if isinstance(array, types.Array) and array.dtype == types.float32:
        return _float32x16(array, offset), lambda context, builder, signature, args: builder.load(
            _vector_pointer(context, builder, signature, args), align=4)


@intrinsic
def _store16(typingctx, array, offset, value):
    """array[offset : offset + 16] = value."""
    if isinstance(array, types.Array) and array.dtype == types.float32 and value == _float32x16:
        def codegen(context, builder, signature, args):
            builder.store(args[2], _vector_pointer(context, builder, signature, args), align=4)
            return context.get_dummy_value()

        return types.void(array, offset, value), codegen


@intrinsic
def _splat16(typingctx, value):
    """16 copies of a float32."""
    if value == types.float32:
        def codegen(context, builder, signature, args):
            one = builder.insert_element(ir.Constant(_VECTOR, None), args[0], ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), 16), [0] * 16))

        return _float32x16(value), codegen


def _vector_binary(instruction):
    @intrinsic
    def operation(typingctx, a, b):
        if a == _float32x16 and b == _float32x16:
            return _float32x16(a, b), lambda context, builder, signature, args: getattr(builder, instruction)(*args)

    return operation


_vector_add, _vector_sub = _vector_binary("fadd"), _vector_binary("fsub")


@intrinsic
def _vector_neg(typingctx, a):
    if a == _float32x16:
        return _float32x16(a), lambda context, builder, signature, args: builder.fneg(args[0])


@overload(operator.add)
def _add_vectors(a, b):
    if a == _float32x16 and b == _float32x16:
        return lambda a, b: _vector_add(a, b)


@overload(operator.sub)
def _sub_vectors(a, b):
    if a == _float32x16 and b == _float32x16:
        return lambda a, b: _vector_sub(a, b)


@overload(operator.neg)
def _neg_vector(a):
    if a == _float32x16:
        return lambda a: _vector_neg(a)


@njit(**_INLINE)
def _input_values(d00, d01, d02, d03, d10, d11, d12, d13, d20, d21, d22, d23, d30, d31, d32, d33):
    """Bᵀ d B of a 4×4 tile d (rows first, as Bᵀ down the band's columns then B across them)."""
    e00, e01, e02, e03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
    e10, e11, e12, e13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
    e20, e21, e22, e23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
    e30, e31, e32, e33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
    return (e00 - e02, e01 + e02, e02 - e01, e01 - e03,
            e10 - e12, e11 + e12, e12 - e11, e11 - e13,
            e20 - e22, e21 + e22, e22 - e21, e21 - e23,
            e30 - e32, e31 + e32, e32 - e31, e31 - e33)


@njit(**_INLINE)
def _output_values(m, b):
    """Aᵀ m A + b of a tile's 16 products m (rows r0 = m0k + m1k + m2k, r1 = m1k − m2k − m3k first)."""
    r00, r01, r02, r03 = m[0] + m[4] + m[8], m[1] + m[5] + m[9], m[2] + m[6] + m[10], m[3] + m[7] + m[11]
    r10, r11, r12, r13 = m[4] - m[8] - m[12], m[5] - m[9] - m[13], m[6] - m[10] - m[14], m[7] - m[11] - m[15]
    return r00 + r01 + r02 + b, r01 - r02 - r03 + b, r10 + r11 + r12 + b, r11 - r12 - r13 + b


@njit(**_INLINE)
def _gradient_values(q00, q01, q30, q31):
    """A dY Aᵀ of a tile's 2×2 upstream gradient (q[a][j] = Σ_i Aᵀ[i, a] dY[i, j] first:
    q0 = dY0, q1 = dY0 + dY1, q2 = dY0 − dY1, q3 = −dY1)."""
    q10, q11, q20, q21 = q00 + q30, q01 + q31, q00 - q30, q01 - q31
    return (q00, q00 + q01, q00 - q01, -q01,
            q10, q10 + q11, q10 - q11, -q11,
            q20, q20 + q21, q20 - q21, -q21,
            -q30, -q30 - q31, q31 - q30, q31)


@njit(**_INLINE)
def _vectors(run):
    """Lanes of a run of ``run`` floats that whole vectors cover."""
    return run - run % 16



@njit(**_INLINE)
def _input_transform_channel(xc, c, half, n, th, tw, v, plane):
    """v[(a, b), c, (ty, tx, ·)] = (Bᵀ d B)[a, b] for the 4×4 tile d at padded pixel (2·ty, 2·tx)
    of channel c, whose zero-padded images ``xc`` holds flat (hp, 2, half, N) -- each row's even
    then odd columns, so tile tx's columns are the lanes of even tx, odd tx, even tx + 1 and odd
    tx + 1, runs of tw·N floats."""
    tiles = th * tw * n
    row = 2 * half * n
    run = tw * n
    whole = _vectors(run)
    for ty in range(th):
        r = 2 * ty * row
        o = c * tiles + ty * run
        for i in range(0, whole, 16):
            a, b = r + i, r + half * n + i
            w = _input_values(_load16(xc, a), _load16(xc, b), _load16(xc, a + n), _load16(xc, b + n),
                              _load16(xc, a + row), _load16(xc, b + row), _load16(xc, a + row + n),
                              _load16(xc, b + row + n), _load16(xc, a + 2 * row), _load16(xc, b + 2 * row),
                              _load16(xc, a + 2 * row + n), _load16(xc, b + 2 * row + n), _load16(xc, a + 3 * row),
                              _load16(xc, b + 3 * row), _load16(xc, a + 3 * row + n), _load16(xc, b + 3 * row + n))
            for k in range(16):
                _store16(v, o + k * plane + i, w[k])
        for i in range(whole, run):
            a, b = r + i, r + half * n + i
            w = _input_values(xc[a], xc[b], xc[a + n], xc[b + n], xc[a + row], xc[b + row], xc[a + row + n],
                              xc[b + row + n], xc[a + 2 * row], xc[b + 2 * row], xc[a + 2 * row + n],
                              xc[b + 2 * row + n], xc[a + 3 * row], xc[b + 3 * row], xc[a + 3 * row + n],
                              xc[b + 3 * row + n])
            for k in range(16):
                v[o + k * plane + i] = w[k]


@njit(**_JIT)
def input_transform(x, ph, pw, xc, half, th, tw, v, plane):
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
        _input_transform_channel(flat, c, half, n, th, tw, v, plane)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def output_transform(m, plane, bias, tw, t0, t1, y, tile):
    """y (N, O, Ho, Wo)[·, o, 2·t0 : 2·t1] = Aᵀ m A + bias[o] for the tile rows t0 ≤ ty < t1, whose
    products ``m`` holds as (O, (t1 − t0)·tw·N) matrices: each channel's rows go to ``tile``
    (2·(t1 − t0), 2, tw, N) -- each row's even then odd columns -- and from there to y (a
    transpose in 16 × 16 blocks, in cache).  Returns whether every value written was finite."""
    n, channels, height, width = y.shape
    yf = y.reshape(-1)
    run = tw * n
    whole = _vectors(run)
    tiles = (t1 - t0) * run
    first, last = 2 * t0, min(2 * t1, height)
    images, lanes, zeros = _block_scratch(channels * height * width)
    for o in range(channels):
        b = bias[o]
        b16 = _splat16(b)
        for ty in range(t0, t1):
            at = o * tiles + (ty - t0) * run
            q = 2 * (ty - t0) * 2 * run  # output rows 2·ty (even, odd columns) and 2·ty + 1
            for i in range(0, whole, 16):
                p = at + i
                y00, y01, y10, y11 = _output_values((
                    _load16(m, p), _load16(m, p + plane), _load16(m, p + 2 * plane), _load16(m, p + 3 * plane),
                    _load16(m, p + 4 * plane), _load16(m, p + 5 * plane), _load16(m, p + 6 * plane),
                    _load16(m, p + 7 * plane), _load16(m, p + 8 * plane), _load16(m, p + 9 * plane),
                    _load16(m, p + 10 * plane), _load16(m, p + 11 * plane), _load16(m, p + 12 * plane),
                    _load16(m, p + 13 * plane), _load16(m, p + 14 * plane), _load16(m, p + 15 * plane)), b16)
                _store16(tile, q + i, y00)
                _store16(tile, q + run + i, y01)
                _store16(tile, q + 2 * run + i, y10)
                _store16(tile, q + 3 * run + i, y11)
            for i in range(whole, run):
                p = at + i
                y00, y01, y10, y11 = _output_values((
                    m[p], m[p + plane], m[p + 2 * plane], m[p + 3 * plane], m[p + 4 * plane], m[p + 5 * plane],
                    m[p + 6 * plane], m[p + 7 * plane], m[p + 8 * plane], m[p + 9 * plane], m[p + 10 * plane],
                    m[p + 11 * plane], m[p + 12 * plane], m[p + 13 * plane], m[p + 14 * plane],
                    m[p + 15 * plane]), b)
                tile[q + i], tile[q + run + i], tile[q + 2 * run + i], tile[q + 3 * run + i] = y00, y01, y10, y11
        _lanes_to_images(tile, 0, 0, 0, tw, n, yf, (o * height + first) * width, channels * height * width,
                         (last - first) * width, width, images, lanes, zeros)
    return np.all(zeros == 0.0)


@njit(**_JIT)
def gradient_transform(grad, lanes_sum, tw, t0, t1, dm, plane, tile):
    """dm[(a, b), o, (ty − t0, tx, ·)] = (A dY Aᵀ)[a, b] for the tile rows t0 ≤ ty < t1, the
    adjoint of :func:`output_transform`, from the upstream gradient ``grad`` (N, O, Ho, Wo): each
    channel's rows are copied to ``tile`` (2·(t1 − t0), 2, tw, N), zero past an odd output size.
    lanes_sum[o, k] += the sum of image k's copied values of channel o, in pixel order (the bias
    gradient, :func:`lane_totals`, without a second pass over grad).  Returns whether every value
    read was finite."""
    n, channels, height, width = grad.shape
    gf = grad.reshape(-1)
    run = tw * n
    whole = _vectors(run)
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
            g = 2 * (ty - t0) * 2 * run  # dY row 0 (even, odd columns), row 1
            at = o * tiles + (ty - t0) * run
            for i in range(0, whole, 16):
                d = _gradient_values(_load16(tile, g + i), _load16(tile, g + run + i), _load16(tile, g + 2 * run + i),
                                     _load16(tile, g + 3 * run + i))
                for k in range(16):
                    _store16(dm, at + k * plane + i, d[k])
            for i in range(whole, run):
                d = _gradient_values(tile[g + i], tile[g + run + i], tile[g + 2 * run + i], tile[g + 3 * run + i])
                for k in range(16):
                    dm[at + k * plane + i] = d[k]
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


@njit(**_INLINE)
def _input_gradient_values(v):
    """B dv Bᵀ of a tile's 16 values dv[(a, b)] as (column s, row r) contributions: f[a][s] =
    Σ_b dv[a, b] Bᵀ[b, s] first, then rows r0 = f0, r1 = f1 − f2 + f3, r2 = f1 + f2 − f0 and r3 = f3
    (subtracted)."""
    f00, f01, f02, f03 = v[0], v[1] - v[2] + v[3], v[1] + v[2] - v[0], -v[3]
    f10, f11, f12, f13 = v[4], v[5] - v[6] + v[7], v[5] + v[6] - v[4], -v[7]
    f20, f21, f22, f23 = v[8], v[9] - v[10] + v[11], v[9] + v[10] - v[8], -v[11]
    f30, f31, f32, f33 = v[12], v[13] - v[14] + v[15], v[13] + v[14] - v[12], -v[15]
    return (f00, f10 - f20 + f30, f10 + f20 - f00, f30,
            f01, f11 - f21 + f31, f11 + f21 - f01, f31,
            f02, f12 - f22 + f32, f12 + f22 - f02, f32,
            f03, f13 - f23 + f33, f13 + f23 - f03, f33)


@njit(**_JIT)
def input_gradient_transform(dv, plane, channels, hp, half, n, th, tw, t0, t1, db, f):
    """db flat (C, hp, 2, half, N) += B dv Bᵀ at the place of each tile of the tile rows
    t0 ≤ ty < t1 (the adjoint of :func:`input_transform`).  Tiles overlap; each value of db takes
    its contributions in the order of the first version's loops (per tile row: the tile's own
    columns 0, 1 for every tile, then columns 2, 3, which land on the next tile's 0, 1 -- so
    columns 2, 3 wait in ``f``, 8·tw·N floats).  ``dv`` holds those rows like
    :func:`gradient_transform`'s ``dm``."""
    run = tw * n
    whole = _vectors(run)
    tiles = (t1 - t0) * run
    row = 2 * half * n
    for c in range(channels):
        for ty in range(t0, t1):
            at = c * tiles + (ty - t0) * run
            base = (c * hp + 2 * ty) * row
            odd = base + half * n  # column s of tile tx: parity s % 2, position tx + s // 2
            for i in range(0, whole, 16):
                p = at + i
                w = _input_gradient_values((
                    _load16(dv, p), _load16(dv, p + plane), _load16(dv, p + 2 * plane), _load16(dv, p + 3 * plane),
                    _load16(dv, p + 4 * plane), _load16(dv, p + 5 * plane), _load16(dv, p + 6 * plane),
                    _load16(dv, p + 7 * plane), _load16(dv, p + 8 * plane), _load16(dv, p + 9 * plane),
                    _load16(dv, p + 10 * plane), _load16(dv, p + 11 * plane), _load16(dv, p + 12 * plane),
                    _load16(dv, p + 13 * plane), _load16(dv, p + 14 * plane), _load16(dv, p + 15 * plane)))
                for r in range(3):
                    _store16(db, base + r * row + i, _load16(db, base + r * row + i) + w[r])
                    _store16(db, odd + r * row + i, _load16(db, odd + r * row + i) + w[4 + r])
                _store16(db, base + 3 * row + i, _load16(db, base + 3 * row + i) - w[3])
                _store16(db, odd + 3 * row + i, _load16(db, odd + 3 * row + i) - w[7])
                for k in range(8):
                    _store16(f, k * run + i, w[8 + k])
            for i in range(whole, run):
                p = at + i
                w = _input_gradient_values((
                    dv[p], dv[p + plane], dv[p + 2 * plane], dv[p + 3 * plane], dv[p + 4 * plane],
                    dv[p + 5 * plane], dv[p + 6 * plane], dv[p + 7 * plane], dv[p + 8 * plane], dv[p + 9 * plane],
                    dv[p + 10 * plane], dv[p + 11 * plane], dv[p + 12 * plane], dv[p + 13 * plane],
                    dv[p + 14 * plane], dv[p + 15 * plane]))
                for r in range(3):
                    db[base + r * row + i] += w[r]
                    db[odd + r * row + i] += w[4 + r]
                db[base + 3 * row + i] -= w[3]
                db[odd + 3 * row + i] -= w[7]
                for k in range(8):
                    f[k * run + i] = w[8 + k]
            for s in range(2):  # columns 2, 3: one position on
                d = base + s * half * n + n
                _acc(db[d : d + run], f[4 * s * run : (4 * s + 1) * run])
                _acc(db[d + row : d + row + run], f[(4 * s + 1) * run : (4 * s + 2) * run])
                _acc(db[d + 2 * row : d + 2 * row + run], f[(4 * s + 2) * run : (4 * s + 3) * run])
                _acc_sub(db[d + 3 * row : d + 3 * row + run], f[(4 * s + 3) * run : (4 * s + 4) * run])

"""Compiled (numba) per-step elementwise kernels for the fused float32 LSTM and Elman sequences.

Why they exist: between two per-step matrix products (which stay ``np.matmul`` → BLAS) an
LSTM step does ~14 small NumPy passes over (B, 4H) slices; at batch 32, hidden 128 those
cost about twice the matrix product (measured forward ≈ 50 µs of ufuncs per step against
25 µs of matmul).  Each kernel here does one step's elementwise work in one pass (≈ 8 µs
forward, ≈ 3 µs backward for that size).

numba without Intel's SVML calls scalar ``expf``, far too slow, so the kernels use their
own branch-free float32 exp (Cody–Waite reduction, Cephes' degree-6 polynomial, 2^n by
building the exponent bits) that LLVM vectorises (AVX-512 here); sigmoid and tanh are built
from e^−|x|, so they are relatively accurate everywhere and never NaN for finite input.
Measured over ±100: sigmoid within 2 ulp and tanh within 1 ulp of the exact value, within
4 and 2 ulp of NumPy's (below ≈ −87.3, where NumPy's sigmoid is subnormal, ours is 0).
float32 only: float64 keeps NumPy, whose SIMD exp/tanh are accurate to ~1 ulp.  The
backward kernels do NumPy's arithmetic in NumPy's order without FMA contraction, so on the
same forward values they agree with the NumPy backward bit for bit.

This module imports numba, so it is imported only when a sequence is big enough to pay
(see :func:`deltalab.fast.recurrent.step_kernels`); compiled code is cached on disk
(``cache=True``; the first compile takes a few seconds).  Set the environment variable
``DELTALAB_NUMBA=0`` to force the NumPy path everywhere (for comparisons, or where numba
misbehaves).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# No fast-math flags, not even FMA contraction: LLVM would then fuse a·b + c or not depending
# on what got inlined where, and a kernel compiled inside a whole-loop function (or loaded from
# numba's cache, compiled in another order) gave other bits than the same kernel called alone.
# The polynomials use explicit fused multiply-adds (_fma) instead: as fast, and the same
# everywhere.
_JIT = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bit pattern is the int32 ``bits`` (an LLVM bitcast)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once (LLVM's llvm.fma: one vfmadd instruction on x86-64 with FMA)."""
    if not (a == types.float32 and b == types.float32 and c == types.float32):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fma = builder.module.declare_intrinsic("llvm.fma", [f32], ir.FunctionType(f32, [f32, f32, f32]))
        return builder.call(fma, args)

    return types.float32(types.float32, types.float32, types.float32), codegen


_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)  # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI with few bits (exact n·_LN2_HI)
_LN2_LO = np.float32(-2.12194440e-4)
_NEG_LN2_HI, _NEG_LN2_LO = -_LN2_HI, -_LN2_LO
_ROUND = np.float32(12582912.0)  # 1.5·2^23: x + _ROUND − _ROUND rounds x to an integer
_EXP_MIN = np.float32(-87.33654)  # ln FLT_MIN: e^x below it (subnormal) is flushed to 0
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_ZERO = np.float32(0.0)
# tanh x = x + x³·P(x²) for |x| < 0.625 (Cephes tanhf), no cancellation near 0
_TANH_SMALL = np.float32(0.625)
_T0 = np.float32(-5.70498872745e-3)
_T1 = np.float32(2.06390887954e-2)
_T2 = np.float32(-5.37397155531e-2)
_T3 = np.float32(1.33314422036e-1)
_T4 = np.float32(-3.33332819422e-1)


@njit(inline="always", **_JIT)
def exp_nonpositive(x):
    """e^x for float32 x ≤ 0 (x < ln FLT_MIN ≈ −87.34 gives 0, NaN gives NaN): Cody–Waite
    reduction x = n·ln2 + r, |r| ≤ ln2/2, e^r by Cephes' expf polynomial, times 2^n built from
    its exponent bits."""
    y = x if x >= _EXP_MIN else _EXP_MIN  # also for NaN: no NaN reaches the float → int conversion
    n = _fma(y, _LOG2E, _ROUND) - _ROUND
    r = _fma(n, _NEG_LN2_HI, y)  # exact: n·_LN2_HI has few bits
    r = _fma(n, _NEG_LN2_LO, r)
    r2 = r * r
    p = _fma(_P0, r, _P1)
    p = _fma(p, r, _P2)
    p = _fma(p, r, _P3)
    p = _fma(p, r, _P4)
    p = _fma(p, r, _P5)
    p = _fma(p, r2, r) + _ONE
    scale = _float32_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
    e = p * scale
    return e if x >= _EXP_MIN else (_ZERO if x < _EXP_MIN else x)  # the last: NaN stays NaN


@njit(inline="always", **_JIT)
def sigmoid(x):
    """σ(x) = 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) for x < 0: relatively accurate both ways."""
    e = exp_nonpositive(-abs(x))
    numerator = _ONE if x >= _ZERO else e
    return numerator / (_ONE + e)


@njit(inline="always", **_JIT)
def tanh(x):
    """tanh x: x + x³·P(x²) for |x| < 0.625, else ±(1 − 2e/(1 + e)) with e = e^−2|x|."""
    ax = abs(x)
    e = exp_nonpositive(-_TWO * ax)
    large = _ONE - _TWO * e / (_ONE + e)
    large = large if x >= _ZERO else -large
    z = x * x
    p = _fma(_T0, z, _T1)
    p = _fma(p, z, _T2)
    p = _fma(p, z, _T3)
    p = _fma(p, z, _T4)
    small = _fma(p * z, x, x)
    return small if ax < _TANH_SMALL else large


@njit(**_JIT)
def sigmoid_tanh_arrays(x, out_sigmoid, out_tanh):
    """σ and tanh of a contiguous 1-D array (for tests and for checking vectorisation)."""
    for k in range(x.shape[0]):
        out_sigmoid[k] = sigmoid(x[k])
        out_tanh[k] = tanh(x[k])


# Every step kernel works on the batch rows lo..hi−1 only (the caller passes 0, B for all): the
# rows are independent recurrences, so recurrent.py may run two row ranges in two threads on
# the same full, C-contiguous arrays (views of a row range would not be C-contiguous).  The
# row loops run over range(hi) and skip the rows below lo: with range(lo, hi) numba cannot
# tell that b ≥ 0, handles negative indices, and the LSTM backward kernel measured 2× slower
# (B=32, H=128: 10.1 against 4.8 µs per step).

# Each row's work is a few loops over contiguous runs, one gate block (or the cell) at a time,
# not one loop doing all four gates per j: writing four gates per iteration to offsets j, H + j,
# 2H + j, 3H + j of one row stops LLVM from vectorising (it cannot prove the stores of different
# iterations never overlap), and an iteration holding five dependent sigmoid/tanh chains (≈ 200
# instructions) may leave the out-of-order core waiting on their latency.  LSTM B=32 H=128,
# forward, AVX2 (Zen 3), under load: 26 against 33 µs per step in one interleaved run, 27 against
# 27-28 in two later ones (no measurable gain); kept for the direct stores (no scratch rows), the
# same bits.  The loops run over range(n) with an offset, not range(2n, 3n): see above.


@njit(**_JIT)
def lstm_forward_step(t, lo, hi, a, bias, buffer, c, tanh_c, h, rows):
    """One LSTM step from the pre-activations a[t] + bias + buffer (buffer = h(t)·W_hhᵀ): the
    gate values i, f, g, o replace the pre-activations in a[t]; c[t+1] = f∘c[t] + i∘g,
    tanh_c[t] = tanh c[t+1] and h[t+1] = o∘tanh_c[t], for batch rows lo..hi−1.  ``a`` is (T, B, 4H), ``bias`` (4H),
    ``buffer`` (B, 4H), ``c`` and ``h`` (T+1, B, H), ``tanh_c`` (T, B, H); ``rows`` is unused (kept
    so the step and loop functions keep one signature)."""
    n = c.shape[2]
    for b in range(hi):  # not range(lo, hi): see above
        if b < lo:
            continue
        pre = a[t, b]
        product = buffer[b]
        for j in range(2 * n):  # i and f
            pre[j] = sigmoid((pre[j] + bias[j]) + product[j])
        for j in range(n):
            k = 2 * n + j
            pre[k] = tanh((pre[k] + bias[k]) + product[k])
        for j in range(n):
            k = 3 * n + j
            pre[k] = sigmoid((pre[k] + bias[k]) + product[k])
        c_prev = c[t, b]
        c_next = c[t + 1, b]
        for j in range(n):
            cell = pre[n + j] * c_prev[j]
            c_next[j] = cell + pre[j] * pre[2 * n + j]
        tc = tanh_c[t, b]
        h_next = h[t + 1, b]
        for j in range(n):
            tch = tanh(c_next[j])
            tc[j] = tch
            h_next[j] = pre[3 * n + j] * tch


@njit(**_JIT)
def lstm_forward_step_fused(t, lo, hi, gates, bias, buffer, c, tanh_c, h, xh):
    """:func:`lstm_forward_step` when ``buffer`` holds the whole pre-activation product
    [x(t) | h(t)]·[W_ih | W_hh]ᵀ (see :func:`deltalab.fast.recurrent.lstm_forward_fused`):
    gates[t] = the gate values of buffer + bias (``gates`` only allocated before), c, tanh c and
    h as there, and h(t+1) also into xh[t+1, :, F:] (the next step's left operand)."""
    n = c.shape[2]
    features = xh.shape[2] - n
    for b in range(hi):  # not range(lo, hi): see above
        if b < lo:
            continue
        pre = buffer[b]
        gate = gates[t, b]
        for j in range(2 * n):  # i and f
            gate[j] = sigmoid(pre[j] + bias[j])
        for j in range(n):
            k = 2 * n + j
            gate[k] = tanh(pre[k] + bias[k])
        for j in range(n):
            k = 3 * n + j
            gate[k] = sigmoid(pre[k] + bias[k])
        c_prev = c[t, b]
        c_next = c[t + 1, b]
        for j in range(n):
            cell = gate[n + j] * c_prev[j]
            c_next[j] = cell + gate[j] * gate[2 * n + j]
        tc = tanh_c[t, b]
        h_next = h[t + 1, b]
        for j in range(n):
            tch = tanh(c_next[j])
            tc[j] = tch
            h_next[j] = gate[3 * n + j] * tch
        left = xh[t + 1, b]
        for j in range(n):
            left[features + j] = h_next[j]


# The backward kernels do their arithmetic in the order of the NumPy code in recurrent.py (and,
# like every kernel here, without FMA contraction), so given the same forward values the two
# paths agree bit for bit.


@njit(**_JIT)
def lstm_backward_step(t, lo, hi, gates, c, tanh_c, grad_h, t_h, grad_c, t_c, carry_h, carry_c, delta, cell_delta, rows):
    """One BPTT step of the LSTM for batch rows lo..hi−1, t from T−1 down to 0:

    ∂E/∂h(t) = grad_h[t_h] + carry_h,  ∂E/∂c(t) = ∂E/∂h(t)·o(1 − tanh² c(t)) + carry_c + grad_c[t_c]
    into cell_delta[t]; the gate pre-activation deltas
    (∂c·g·i(1−i), ∂c·c(t−1)·f(1−f), ∂c·i(1−g²), ∂h·tanh c·o(1−o)) into delta[t];
    carry_c ← ∂E/∂c(t)·f.  ``carry_h`` is the caller's δ(t+1)·W_hh.  A missing upstream
    gradient is a (1, B, H) array of zeros with index 0.  Each gate block is its own loop
    writing delta[t] directly (see the forward step); ``rows`` is unused.
    """
    n = c.shape[2]
    for b in range(hi):  # not range(lo, hi): see above
        if b < lo:
            continue
        gate = gates[t, b]
        tc = tanh_c[t, b]
        gh = grad_h[t_h, b]
        gc = grad_c[t_c, b]
        ch = carry_h[b]
        cc = carry_c[b]
        dcell = cell_delta[t, b]
        d = delta[t, b]
        for j in range(n):
            f = gate[n + j]
            o = gate[3 * n + j]
            tch = tc[j]
            dh = gh[j] + ch[j]
            dc = dh * (o * (_ONE - tch * tch))
            dc = dc + cc[j]
            dc = dc + gc[j]
            dcell[j] = dc
            d[3 * n + j] = ((tch * o) * (_ONE - o)) * dh
            cc[j] = dc * f
        c_prev = c[t, b]
        for j in range(n):
            i = gate[j]
            d[j] = ((gate[2 * n + j] * i) * (_ONE - i)) * dcell[j]
        for j in range(n):
            f = gate[n + j]
            d[n + j] = ((c_prev[j] * f) * (_ONE - f)) * dcell[j]
        for j in range(n):
            g = gate[2 * n + j]
            d[2 * n + j] = (gate[j] * (_ONE - g * g)) * dcell[j]


@njit(**_JIT)
def elman_tanh_forward_step(t, lo, hi, z, bias, buffer, h):
    """z[t] += bias + buffer (= h(t)·W_hhᵀ), h[t+1] = tanh z[t] for batch rows lo..hi−1; z (T, B, H),
    h (T+1, B, H)."""
    n = z.shape[2]
    for b in range(hi):  # not range(lo, hi): see above
        if b < lo:
            continue
        pre = z[t, b]
        product = buffer[b]
        out = h[t + 1, b]
        for j in range(n):
            value = (pre[j] + bias[j]) + product[j]
            pre[j] = value
            out[j] = tanh(value)


@njit(**_JIT)
def elman_tanh_backward_step(t, lo, hi, h, grad, carry, delta):
    """δ(t) = (1 − h(t)²)·(grad[t] + carry) into delta[t] for batch rows lo..hi−1; carry is δ(t+1)·W_hh."""
    n = delta.shape[2]
    for b in range(hi):  # not range(lo, hi): see above
        if b < lo:
            continue
        ht = h[t + 1, b]
        g = grad[t, b]
        cr = carry[b]
        d = delta[t, b]
        for j in range(n):
            d[j] = (_ONE - ht[j] * ht[j]) * (g[j] + cr[j])


# ------------------------------------------------------------ whole step loops, without the GIL
# In a parallel section each thread runs its rows' loop over time; as a Python loop, every
# per-step matmul and kernel call hands the GIL between the two threads (LSTM B=32 H=128,
# forward, 16 rows per thread: 21 µs per step in parallel against 17 µs for one range alone).
# These loops call NumPy's own OpenBLAS sgemm (found by sgemm_function) from compiled code, so
# a thread holds the GIL once per sequence (16 µs per step in parallel).  They make the same
# sgemm calls NumPy's matmul makes for row counts ≥ 2 (row-major, no transposes), so the
# results are the same bits as the Python loops.

_SGEMM = None  # (ctypes function,) once looked up; (None,) if not found


def sgemm_function():
    """``cblas_sgemm`` of the OpenBLAS NumPy uses, as a ctypes function numba calls without the
    GIL (pointer arguments as integers), or None when it cannot be found."""
    global _SGEMM
    if _SGEMM is None:
        _SGEMM = (_find_sgemm(),)
    return _SGEMM[0]


def _find_sgemm():
    import ctypes

    from . import threads

    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    for lib in threads.blas_libraries():
        try:
            dll = ctypes.CDLL(lib.filepath)
        except OSError:
            continue
        for name, blasint in (("scipy_cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm64_", ctypes.c_int64),
                              ("scipy_cblas_sgemm", ctypes.c_int32), ("cblas_sgemm", ctypes.c_int32)):
            symbol = getattr(dll, name, None)
            if symbol is None:
                continue
            pointer = ctypes.c_uint64  # passed like a pointer on the 64-bit ABIs
            proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, blasint, blasint, blasint,
                                     ctypes.c_float, pointer, blasint, pointer, blasint, ctypes.c_float, pointer,
                                     blasint)
            return proto(ctypes.cast(symbol, ctypes.c_void_p).value)
    return None


_ROW_MAJOR, _NO_TRANS = 101, 111


@njit(**_JIT)
def _step_product(sgemm, rows, inner, left, packed, edges, out, out_width):
    """out[:, edges[p]:edges[p+1]] = left @ piece p for the column blocks packed one after the
    other (each (inner, width_p) C-contiguous) in ``packed``; left (rows, inner) and out
    (rows, out_width) as addresses of C-contiguous rows."""
    for p in range(edges.shape[0] - 1):
        width = edges[p + 1] - edges[p]
        sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, rows, width, inner, _ONE, left, inner,
              packed.ctypes.data + 4 * inner * edges[p], width, _ZERO, out + 4 * edges[p], out_width)


@njit(**_JIT)
def lstm_forward_loop(sgemm, lo, hi, a, bias, packed, edges, buffer, c, tanh_c, h, rows):
    """:func:`lstm_forward_step` for every step, batch rows lo..hi−1, after buffer[lo:hi] =
    h[t, lo:hi] @ W_hhᵀ (W_hhᵀ in column blocks, see :func:`_step_product`)."""
    n = c.shape[2]
    batch = c.shape[1]
    width = buffer.shape[1]
    out = buffer.ctypes.data + 4 * lo * width
    for t in range(a.shape[0]):
        left = h.ctypes.data + 4 * (t * batch + lo) * n
        _step_product(sgemm, hi - lo, n, left, packed, edges, out, width)
        lstm_forward_step(t, lo, hi, a, bias, buffer, c, tanh_c, h, rows)


@njit(**_JIT)
def lstm_forward_loop_fused(sgemm, lo, hi, gates, bias, packed, edges, buffer, c, tanh_c, h, xh):
    """:func:`lstm_forward_step_fused` for every step, batch rows lo..hi−1, after buffer[lo:hi] =
    xh[t, lo:hi] @ [W_ih | W_hh]ᵀ (in column blocks, see :func:`_step_product`)."""
    batch = c.shape[1]
    width = buffer.shape[1]
    inner = xh.shape[2]
    out = buffer.ctypes.data + 4 * lo * width
    for t in range(gates.shape[0]):
        left = xh.ctypes.data + 4 * (t * batch + lo) * inner
        _step_product(sgemm, hi - lo, inner, left, packed, edges, out, width)
        lstm_forward_step_fused(t, lo, hi, gates, bias, buffer, c, tanh_c, h, xh)


@njit(**_JIT)
def lstm_backward_loop(sgemm, lo, hi, gates, c, tanh_c, grad_h, step_h, grad_c, step_c, carry_h, carry_c,
                       delta, cell_delta, rows, packed, edges, t_lo, t_hi, weight_ih, gx):
    """:func:`lstm_backward_step` for t = t_hi−1 … t_lo (a chunk of the steps, all of them with
    0, T), batch rows lo..hi−1, each followed by carry_h[lo:hi] = delta[t, lo:hi] @ W_hh (W_hh
    in column blocks) and, when ``gx`` is (T, B, F) (not a (0, 0, 0) placeholder),
    gx[t, lo:hi] = delta[t, lo:hi] @ weight_ih ((4H, F) C-contiguous)."""
    n = c.shape[2]
    batch = c.shape[1]
    width = delta.shape[2]
    features = gx.shape[2]
    out = carry_h.ctypes.data + 4 * lo * n
    for t in range(t_hi - 1, t_lo - 1, -1):
        lstm_backward_step(t, lo, hi, gates, c, tanh_c, grad_h, t * step_h, grad_c, t * step_c, carry_h, carry_c,
                           delta, cell_delta, rows)
        left = delta.ctypes.data + 4 * (t * batch + lo) * width
        _step_product(sgemm, hi - lo, width, left, packed, edges, out, n)
        if features > 0:
            sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, hi - lo, features, width, _ONE, left, width,
                  weight_ih.ctypes.data, features, _ZERO, gx.ctypes.data + 4 * (t * batch + lo) * features, features)


@njit(**_JIT)
def elman_tanh_forward_loop(sgemm, lo, hi, z, bias, recurrent, buffer, h):
    """:func:`elman_tanh_forward_step` for every step, batch rows lo..hi−1, after
    buffer[lo:hi] = h[t, lo:hi] @ W_hhᵀ (``recurrent``, (H, H) C-contiguous): the sgemm call
    ``np.matmul`` makes, without a Python call per step."""
    n = h.shape[2]
    batch = h.shape[1]
    out = buffer.ctypes.data + 4 * lo * n
    right = recurrent.ctypes.data
    for t in range(z.shape[0]):
        left = h.ctypes.data + 4 * (t * batch + lo) * n
        sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, hi - lo, n, n, _ONE, left, n, right, n, _ZERO, out, n)
        elman_tanh_forward_step(t, lo, hi, z, bias, buffer, h)


@njit(**_JIT)
def elman_tanh_backward_loop(sgemm, lo, hi, h, grad, carry, delta, recurrent, t_lo, t_hi):
    """:func:`elman_tanh_backward_step` for t = t_hi−1 … t_lo, batch rows lo..hi−1, each followed
    by carry[lo:hi] = delta[t, lo:hi] @ W_hh (``recurrent``, (H, H) C-contiguous)."""
    n = delta.shape[2]
    batch = delta.shape[1]
    out = carry.ctypes.data + 4 * lo * n
    right = recurrent.ctypes.data
    for t in range(t_hi - 1, t_lo - 1, -1):
        elman_tanh_backward_step(t, lo, hi, h, grad, carry, delta)
        left = delta.ctypes.data + 4 * (t * batch + lo) * n
        sgemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, hi - lo, n, n, _ONE, left, n, right, n, _ZERO, out, n)

"""The recurrent sequences' fast path: compiled step kernels, step products in column blocks,
batch-row ranges in parallel sections (forward: each range also computes its rows' input
projections), and at two threads a backward whose step loop overlaps the whole-sequence
products (:func:`backward_pipelined`).

The maths (forward, BPTT) and its NumPy path are :mod:`deltalab.ops.recurrent`, whose
unrolled references (:func:`deltalab.ops.recurrent.lstm_unrolled`, ``elman_unrolled``) this
path is tested against.  For float32 sequences big enough to pay for importing numba, the
elementwise work of a step is one compiled kernel (:mod:`.recurrent_kernels`, see
:func:`step_kernels`); the LSTM's step products may run in column blocks (:class:`StepProduct`).
Every switch is a :class:`~deltalab.fast.tuning.Tuning` field.
"""
from __future__ import annotations

import collections
import functools
import queue

import numpy as np

from . import kernels as compiled
from . import threads
from .tuning import current as current_tuning

__all__ = ["SequenceProducts", "StepProduct", "backward_pipelined", "elman_tanh_backward", "elman_tanh_forward",
           "input_gradient_per_step", "input_projection", "load_kernels", "project_rows", "lstm_backward", "lstm_forward", "lstm_forward_fused", "matmul", "pipeline_products", "backward_pipelines",
           "row_ranges", "run_rows", "step_kernels", "summed_products"]


def load_kernels():
    """The :mod:`.recurrent_kernels` module, or None when numba is unusable (loaded once by
    :func:`deltalab.fast.kernels.load`; ``deltalab.fast.kernels.load.cache_clear()`` looks again)."""
    return compiled.load("recurrent_kernels")


def step_kernels(dtype, work):
    """The compiled per-step kernels (module :mod:`.recurrent_kernels`) for a sequence of
    ``work`` = batch·hidden·steps elements of ``dtype``, or None for the NumPy path: float64,
    small sequences (below ``Tuning.kernel_min_work``: importing numba, ~0.4 s, would cost more
    than it saves), numba not installed, ``Tuning.numba`` False, or the environment variable
    ``DELTALAB_NUMBA=0``."""
    return compiled.for_size("recurrent_kernels", work) if dtype == np.float32 else None


# OpenBLAS kernel families with small-matrix kernels (used for M·N·K ≤ Tuning.small_matrix_max
# at one thread).
SMALL_MATRIX_KERNELS = {"SkylakeX", "Cooperlake", "SapphireRapids"}


class StepProduct:
    """``out = left @ right`` for a loop's per-step matrix products (``left`` (B, K) changes,
    ``right`` (K, N) and the ``out`` buffer (B, N) do not), as one product or as ``blocks``
    products over column blocks of ``right``.

    Why: OpenBLAS's AVX-512 builds run products with M·N·K ≤ 10⁶ through small-matrix kernels
    at one thread.  The LSTM's (32, 128)·(128, 512) and (32, 512)·(512, 128) step products are
    just above that; as four blocks they fall under it and the whole LSTM (T=100, 1 thread)
    ran 12 % faster (10.7 vs 12.2 ms), while with the AVX2 "Haswell" kernels or two threads the
    blocks were 3 % slower.  The choice is a fixed rule (kernel family, threads, shape), never
    a timing, so a machine always computes the same bits.
    """

    def __init__(self, right, out, blocks, blas_threads=None):
        self.right, self.out = np.ascontiguousarray(right), out
        width = right.shape[1]
        self.blocks = blocks = max(1, min(blocks, width))
        edges = [width * k // blocks for k in range(blocks + 1)]
        self.columns = [slice(a, b) for a, b in zip(edges, edges[1:])]
        self.pieces = [(np.ascontiguousarray(self.right[:, cols]), out[:, cols]) for cols in self.columns]
        self.split = current_tuning().split_step_products if blocks > 1 else False
        if self.split is None:
            self.split = self.blocks_fit_small_kernels(out.shape[0], right.shape[0], width, blocks, blas_threads)

    def for_rows(self, lo, hi, blas_threads=None, compiled=False):
        """The same product for rows lo..hi−1 of ``left`` and ``out`` only, split or not by
        the rule for that row count and ``blas_threads`` BLAS threads (None: the process's):
        for a Python step loop (``compiled`` False) in the fewest column blocks (at most
        ``max(self.blocks, width // 32)``) that fit the small-matrix kernels; for a compiled
        loop in ``self.blocks`` blocks when those fit.

        Fewest for Python loops, because in a parallel section every product call is a GIL
        handoff between the threads: LSTM B=32 H=128 forward as two 16-row ranges, µs per step:
        2 blocks 18-21, 4 blocks 26-30, 1 block (not a small-matrix product) 30-34; serial
        2-thread BLAS 28-30.  A compiled loop calls sgemm without the GIL, and there the widths
        that are multiples of 32 run faster (AVX-512 SkylakeX kernels, 1 thread, µs per step:
        (16, 160)·(160, 512) as 4 blocks 24.0 against 2 blocks 27.6; the whole LSTM T=100 at 2
        threads, A/B interleaved, 0.98× the time; the 32-row backward had 3 blocks of 42-43).
        """
        rows = hi - lo
        inner, width = self.right.shape
        small = current_tuning().small_matrix_max
        if compiled and rows * inner * -(-width // self.blocks) <= small:
            return StepProduct(self.right, self.out[lo:hi], self.blocks, blas_threads)
        most = max(self.blocks, width // 32)
        blocks = next((b for b in range(1, most + 1) if rows * inner * -(-width // b) <= small),
                      self.blocks)
        return StepProduct(self.right, self.out[lo:hi], blocks, blas_threads)

    @staticmethod
    def blocks_fit_small_kernels(rows, inner, width, blocks, blas_threads=None):
        """Whether ``blocks`` column blocks of a (rows, inner)·(inner, width) product fall under
        OpenBLAS's small-matrix kernels and the whole does not, at ``blas_threads`` BLAS threads
        (None: :func:`deltalab.fast.threads.get_num_threads`)."""
        if blas_threads is None:
            blas_threads = threads.get_num_threads()
        whole = rows * inner * width
        block = rows * inner * -(-width // blocks)
        return (block <= current_tuning().small_matrix_max < whole and blas_threads == 1
                and threads.blas_kernels() in SMALL_MATRIX_KERNELS)

    def packed(self):
        """(the column blocks of ``right`` one after the other, each C-contiguous, as one 1-D
        array; their column edges as int64) -- one block when not split -- for
        :func:`.recurrent_kernels.lstm_forward_loop`."""
        if not self.split:
            return self.right.reshape(-1), np.array([0, self.right.shape[1]], np.int64)
        edges = [cols.start for cols in self.columns] + [self.columns[-1].stop]
        return np.concatenate([piece.reshape(-1) for piece, _ in self.pieces]), np.array(edges, np.int64)

    def __call__(self, left):
        if self.split:
            for piece, out in self.pieces:
                np.matmul(left, piece, out=out)
        else:
            np.matmul(left, self.right, out=self.out)
        return self.out


# Batch rows are independent recurrences, so with the compiled kernels the loops over time may
# run as one task per thread, each on its own range of batch rows (fixed ranges: results do not
# depend on timing), through deltalab.fast.threads.run_parallel: task 0 on the caller, the others on
# pinned workers, BLAS on one thread meanwhile.  The whole-sequence products (input
# projection, input and weight gradients) then run as row blocks in sections of their own
# (see _matmul for why not on the process's BLAS threads).  float64 and the other Elman
# nonlinearities (NumPy path: ~10 ufunc calls per step, each needing the GIL) stay serial.


def row_ranges(kind, batch, hidden, steps):
    """Batch row ranges, one per thread, for the step loops of a ``kind`` ("lstm" / "elman")
    sequence with compiled kernels, or None to run serially (``Tuning.parallel``)."""
    parallel = current_tuning().parallel
    if batch < 2 or parallel is False:
        return None
    if parallel is None and not _parallel_pays(kind, batch, hidden, steps):
        return None
    n_threads = min(threads.parallel_threads(), batch)
    if n_threads < 2:
        return None
    bounds = [batch * k // n_threads for k in range(n_threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


# When it pays (LSTM forward + BPTT at 2 threads, in 32, float32, parallel / serial time, the
# serial path with 2 BLAS threads; AVX-512 OpenBLAS, 2-vCPU KVM guest, T=100 unless given).
# With the compiled loops (each range's whole loop in one nogil call, ranges of ≥ 2 rows):
#   pays:  B=4 H=256 0.51, B=8 H=128 0.89, B=8 H=256 0.50, B=16 H=64 0.88, B=16 H=128 0.61,
#          B=32 H=64 0.90, B=32 H=128 0.71 (T=20 0.86, T=40 0.73, T=64 0.81, T=1000 0.69),
#          B=32 H=256 0.68, B=64 H=128 0.85, B=16 H=32 T=200 0.72;
#   not:   B=32 H=128 T=16 0.97, B=32 H=32 1.00, B=2 H=256 T=200 1.49 (1-row ranges: the
#          Python loops, see _loop_sgemm).
# With the Python step loops only (every per-step call a GIL handoff between the threads):
#   pays:  B=16 H=128 0.83, B=32 H=128 0.80, B=64 H=128 0.92, B=128 H=128 0.86, B=8 H=256
#          0.75, B=32 H=256 0.76, B=64 H=256 0.88;
#   not:   B=8 H=128 1.33, B=16 H=64 1.79, B=32 H=32 1.75 (B=32 H=64 0.90: left serial),
#          B=32 H=128 T=20 1.14, T=40 1.02 (a run costs 5 sections, ~0.1 ms each); so then only
#          when the serial step product is not already a small-matrix product (B·4H·H > 10⁶).
# Elman with Python step loops never paid: B=32 H=128 1.05, B=64 H=256 1.08, B=128 H=256 1.00
# (its per-step work is a quarter of the LSTM's): serial.  With the compiled loops (since run 8)
# it follows the LSTM's rule: B=32 H=128 at 2 threads, forward + backward (pipelined backward
# both ways), min of interleaved runs under load (others busy ≈ 1-2 cores, where a serial
# loop's 2-thread OpenBLAS step products wait on a descheduled thread): T=100 19.4 against
# 50.3 ms, T=1000 168 against 316 ms; quiet: see benchmarks/README.md.
# Hence Tuning.lstm_parallel_min_steps = 20 (both kinds) and lstm_parallel_min_steps_python_loops
# = 64 (benchmarks/README.md, "Tuning rules").


def _parallel_pays(kind, batch, hidden, steps):
    tuning = current_tuning()
    kernels = load_kernels()
    if tuning.loop_kernels and kernels is not None and kernels.sgemm_function() is not None:
        return batch >= 4 and hidden >= 64 and steps >= tuning.lstm_parallel_min_steps
    if kind != "lstm":
        return False
    return batch * 4 * hidden * hidden > tuning.small_matrix_max and steps >= tuning.lstm_parallel_min_steps_python_loops


def run_rows(batch, ranges, task):
    """``task(lo, hi, blas_threads)`` once per row range in a parallel section (BLAS on one
    thread), or ``task(0, batch, None)`` when ``ranges`` is None or a section is already
    running."""
    if ranges is not None:
        if threads.run_parallel([functools.partial(task, lo, hi, 1) for lo, hi in ranges]) is not None:
            return
    task(0, batch, None)


def _loop_sgemm(kernels, lo, hi):
    """NumPy's sgemm for :func:`.recurrent_kernels.lstm_forward_loop` / ``lstm_backward_loop``
    (a range's whole loop over time in one compiled call), or None for the Python step loop.

    Used for ranges of ≥ 2 rows (for one row NumPy's matmul calls gemv, not gemm: the
    compiled loop would change its bits).  In parallel sections it spares the GIL handoffs of
    every per-step call; serially it saves the calls' overhead (LSTM B=32 H=128 T=100,
    1 thread: 10.3 vs 10.9 ms, the same bits).
    """
    if hi - lo < 2 or not current_tuning().loop_kernels:
        return None
    return kernels.sgemm_function()


def matmul(left, right, parts=None):
    """``left @ right`` (2-D); with ``parts`` (≥ 2), as that many row blocks of ``left`` in a
    parallel section, BLAS on one thread each.

    Why the whole-sequence products of a parallel sequence run so too, not on the process's
    BLAS threads: after a multi-threaded call OpenBLAS's idle threads spin for a while, and
    on a 2-core machine the spinning thread takes CPU from the section's worker.  LSTM B=32
    H=128 T=100 forward step loop as two ranges: 2.1 ms alone, 6.3 ms right after the input
    projection at 2 BLAS threads (the serial loop: 3.2 ms).
    """
    if parts is None or left.shape[0] < parts:
        return np.matmul(left, right)

    out = np.empty((left.shape[0], right.shape[1]), np.result_type(left, right))
    bounds = [left.shape[0] * k // parts for k in range(parts + 1)]
    tasks = [functools.partial(np.matmul, left[a:b], right, out=out[a:b]) for a, b in zip(bounds, bounds[1:])]
    if threads.run_parallel(tasks) is None:
        np.matmul(left, right, out=out)
    return out


def _elman_loop_ready(recurrent, *arrays):
    """Whether the Elman step loops may run as one compiled call (float32 C-contiguous arrays
    throughout, as :func:`.recurrent_kernels.elman_tanh_forward_loop` addresses them); else the
    Python step loop, whose matmul casts and copies as NumPy does."""
    return all(a.dtype == np.float32 and a.flags.c_contiguous for a in (recurrent, *arrays))


def input_projection(x, weight_ih, parts=None):
    """x (T·B, F) @ W_ihᵀ with W_ihᵀ copied C-contiguous first (a (gates·H, F) copy, tiny):
    OpenBLAS (Haswell kernels, 1 thread, T=100 B=32 F=32) ran it 0.36 against 0.46 ms (Elman,
    H=128) and 1.49 against 1.88 ms (LSTM, 4H=512) on the transposed view."""
    return matmul(x, np.ascontiguousarray(weight_ih.T), parts)


def summed_products(flat, other, parts=None):
    """Σ over the rows of δᵀ·other, i.e. ``flat.T @ other`` (δ (T·B, G), other (T·B, K)),
    computed as (otherᵀ·δ)ᵀ and copied C-contiguous: OpenBLAS (Haswell, 1 thread, T·B=3200)
    0.35 against 0.40 ms for the Elman's dW_ih, 6.0 against 6.2 ms for the LSTM's [x | h] one
    (K = 160, G = 512), 4.9 against 5.2 ms for G = 512, K = 128."""
    return np.ascontiguousarray(matmul(other.T, flat, parts).T)


# ------------------------------------------------------------------ the compiled step loops
# Each writes what the NumPy loops in deltalab.ops.recurrent write, into the same arrays.
def elman_tanh_forward(kernels, z, h, recurrent, bias, ranges, x=None, weight_ih=None):
    """h(t) = tanh(z(t) + H h(t−1) + b) for every step, into ``h`` (T+1, B, H); ``z`` holds the
    input projections (the kernel adds the bias: one pass over z fewer), or with ``x`` and
    ``weight_ih`` is only allocated and each range's task computes its rows' projections
    (:func:`project_rows`).  Each range's loop over time is one compiled call when it can be
    (see :func:`_loop_sgemm`: the same sgemm calls, the same bits, without two Python calls per
    step)."""
    steps, batch, hidden = z.shape
    bias_row = np.zeros(hidden, z.dtype) if bias is None else np.ascontiguousarray(bias, dtype=z.dtype)
    buffer = np.empty((batch, hidden), dtype=z.dtype)
    step = kernels.elman_tanh_forward_step
    compiled = _elman_loop_ready(recurrent, z, h)
    weight_t = None if x is None else np.ascontiguousarray(weight_ih.T)

    def loop(lo, hi, blas_threads):
        if x is not None:
            project_rows(x, weight_t, z, lo, hi)
        sgemm = _loop_sgemm(kernels, lo, hi) if compiled else None
        if sgemm is not None:
            kernels.elman_tanh_forward_loop(sgemm, lo, hi, z, bias_row, recurrent, buffer, h)
            return
        out = buffer[lo:hi]
        for t in range(steps):
            np.matmul(h[t, lo:hi], recurrent, out=out)
            step(t, lo, hi, z, bias_row, buffer, h)

    run_rows(batch, ranges, loop)


def elman_tanh_backward(kernels, h, grad, weight_hh, ranges, products=None):
    """(δ(t) = (1 − h(t)²)·∂E/∂h(t) for every step, ∂E/∂h(0)); each range's loop over time
    is one compiled call when it can be (see :func:`_loop_sgemm`).  With ``products`` (a
    :class:`SequenceProducts`), the loop runs over all batch rows while a worker computes the
    whole-sequence products (see :func:`backward_pipelined`); ``ranges`` is then ignored."""
    steps, batch, hidden = grad.shape
    dtype = h.dtype
    carry = np.zeros((batch, hidden), dtype=dtype)  # ∂E/∂h(t) through h(t+1)
    delta = np.empty((steps, batch, hidden), dtype=dtype)
    grad = np.ascontiguousarray(grad, dtype=dtype)
    recurrent = np.ascontiguousarray(weight_hh, dtype=dtype)
    step = kernels.elman_tanh_backward_step
    compiled = _elman_loop_ready(recurrent, h, delta)

    def loop(lo, hi, blas_threads, t_lo=0, t_hi=steps):
        sgemm = _loop_sgemm(kernels, lo, hi) if compiled else None
        if sgemm is not None:
            kernels.elman_tanh_backward_loop(sgemm, lo, hi, h, grad, carry, delta, recurrent, t_lo, t_hi)
            return
        out = carry[lo:hi]
        for t in range(t_hi - 1, t_lo - 1, -1):
            step(t, lo, hi, h, grad, carry, delta)  # δ(t) = (1 − h(t)²)(∂E/∂h(t))
            np.matmul(delta[t, lo:hi], recurrent, out=out)

    if products is not None:
        backward_pipelined(lambda t_lo, t_hi: loop(0, batch, 1, t_lo, t_hi), steps, delta, products)
    else:
        run_rows(batch, ranges, loop)
    return delta, carry


def lstm_forward(kernels, a, h, c, tanh_c, recurrent, bias, ranges):
    """The LSTM steps into h, c, tanh c (T+1 / T+1 / T, B, H); ``a`` (T, B, 4H) holds the input
    projections and is overwritten by the gate values (the kernel adds the bias).  The float32
    layers use :func:`lstm_forward_fused`; this is the path for other float32-kernel inputs."""
    steps, batch, n4 = a.shape
    n = n4 // 4
    bias_row = np.zeros(4 * n, a.dtype) if bias is None else np.ascontiguousarray(bias, dtype=a.dtype)
    buffer = np.empty((batch, 4 * n), dtype=a.dtype)
    product = StepProduct(recurrent.astype(a.dtype, copy=False), buffer, 4)  # a block per gate
    step = kernels.lstm_forward_step

    def loop(lo, hi, blas_threads):
        rows = np.empty((4, n), dtype=a.dtype)
        sgemm = _loop_sgemm(kernels, lo, hi)
        part = product if blas_threads is None else product.for_rows(lo, hi, blas_threads, sgemm is not None)
        if sgemm is not None:
            kernels.lstm_forward_loop(sgemm, lo, hi, a, bias_row, *part.packed(), buffer, c, tanh_c, h, rows)
            return
        for t in range(steps):
            part(h[t, lo:hi])
            step(t, lo, hi, a, bias_row, buffer, c, tanh_c, h, rows)

    run_rows(batch, ranges, loop)


def lstm_forward_fused(kernels, x, weight_ih, recurrent, h, c, tanh_c, bias, gates=None, ranges=None, xh=None):
    """The float32 LSTM forward with the input projection inside each step's product: the gate
    values (T, B, 4H) from [x(t) | h(t)]·[W_ih | W_hh]ᵀ + b, and h, c, tanh c (T+1 / T+1 / T, B, H)
    filled as :func:`lstm_forward` (``recurrent`` is W_hhᵀ; ``gates``: the output array, or None
    to allocate it); the batch-row ``ranges`` in parallel (None: serially).  ``xh``: a
    (T+1, B, F + H) float32 array for the steps' left operands, or None to allocate one; after
    the call its rows 0..T−1 are [x(t) | h(t)], the rows the weight gradients need
    (:class:`SequenceProducts`' ``left_rows``), so the backward need not concatenate them.

    Why: the (T·B, F)·(F, 4H) projection (K = F = 32) ran below the step products' speed and its
    (T, B, 4H) result was read back from memory by every step's kernel; one (B, F + H)·(F + H, 4H)
    product per step instead: B=32 F=32 H=128 T=100, 1 thread, Zen 3, products alone 10.2-11.4
    against 10.8-13.7 ms; the whole step against torch's (interleaved, under load) T=100
    1.00 -> 0.93, T=1000 0.92 -> 0.83."""
    steps, batch, features = x.shape
    n = recurrent.shape[0]
    dtype = np.float32
    if xh is None:
        xh = np.empty((steps + 1, batch, features + n), dtype=dtype)  # row t: [x(t) | h(t)]
    xh[:steps, :, :features] = x
    xh[steps, :, :features] = 0
    xh[0, :, features:] = h[0]
    weights = np.concatenate((weight_ih.T, recurrent), axis=0).astype(dtype, copy=False)  # (F + H, 4H)
    if gates is None:
        gates = np.empty((steps, batch, 4 * n), dtype=dtype)
    bias_row = np.zeros(4 * n, dtype) if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    buffer = np.empty((batch, 4 * n), dtype=dtype)
    product = StepProduct(weights, buffer, 4)  # a block per gate

    def loop(lo, hi, blas_threads):
        sgemm = _loop_sgemm(kernels, lo, hi)
        part = product if blas_threads is None else product.for_rows(lo, hi, blas_threads, sgemm is not None)
        if sgemm is not None:
            kernels.lstm_forward_loop_fused(sgemm, lo, hi, gates, bias_row, *part.packed(), buffer, c, tanh_c, h, xh)
            return
        for t in range(steps):
            part(xh[t, lo:hi])
            kernels.lstm_forward_step_fused(t, lo, hi, gates, bias_row, buffer, c, tanh_c, h, xh)

    run_rows(batch, ranges, loop)
    return gates


def project_rows(x, weight_t, out, lo, hi):
    """out[:, lo:hi] = x[:, lo:hi] @ weight_t (x (T, B, F), weight_t (F, G) C-contiguous, out
    (T, B, G)): the input projections of one batch-row range, inside its parallel task.

    Why: as a section of its own before the step loops (two row blocks of the (T·B, F)
    product) the LSTM's projection took 1.5 ms of a 21 ms step (B=32 H=128 T=100, 2 threads,
    Zen 3); as one batched product per range (T products of (B/2, F)·(F, 4H), written in place)
    0.9 ms on each core at once, with one section fewer (the LSTM has since moved its
    projection into the step products, :func:`lstm_forward_fused`; the Elman sequences use
    this).  All rows (the serial fallback): the one (T·B, F) product of the serial path."""
    if lo == 0 and hi == x.shape[1]:
        np.matmul(x.reshape(-1, x.shape[-1]), weight_t, out=out.reshape(-1, out.shape[-1]))
    else:
        np.matmul(x[:, lo:hi], weight_t, out=out[:, lo:hi])


def input_gradient_per_step(dtype, weight_dtype):
    """Whether :func:`lstm_backward` computes ∂E/∂x step by step (``weight_ih`` given) when it is
    not pipelined: float32 sequences with compiled kernels, unless
    ``Tuning.lstm_input_gradient_per_step`` is False."""
    return dtype == weight_dtype == np.float32 and current_tuning().lstm_input_gradient_per_step


def lstm_backward(kernels, gates, c, tanh_c, weight_hh, grad_h, grad_c, ranges=None, products=None, weight_ih=None):
    """(δ of the gate pre-activations (T, B, 4H), ∂E/∂c(t) (T, B, H), ∂E/∂h(0), ∂E/∂c(0), and
    with ``weight_ih`` (4H, F) ∂E/∂x (T, B, F), else None) with one compiled kernel per step
    between the matrix products; the batch row ``ranges`` in parallel (None: serially), or with
    ``products`` (a :class:`SequenceProducts`) all rows on this thread while a worker computes
    the whole-sequence products (:func:`backward_pipelined`).

    Why ∂E/∂x here, one (rows, 4H)·(4H, F) product per step after the carry's: δ(t) is then
    still in cache, while the one (T·B, 4H)·(4H, F) product after the loop reads all of δ back
    (6.5 MB at T=100 B=32 H=128).  B=32 F=32 H=128 T=100, 1 thread, AVX-512 (SkylakeX kernels):
    the loop takes 10-11 µs per step more, the whole product took 12 µs alone and 15 inside
    the workload: the whole LSTM 0.97× the time (A/B interleaved, CPU and wall time alike).  Not
    in the pipelined backward (two threads), where the step loop on the caller is the longer
    side: there it took 1.05× the time."""
    steps, batch, n = tanh_c.shape
    dtype = gates.dtype
    # a missing upstream gradient is one step of zeros, read at index 0 by every step
    no_gradient = np.zeros((1, batch, n), dtype=dtype)
    step_h, step_c = int(grad_h is not None), int(grad_c is not None)
    grad_h = no_gradient if grad_h is None else np.ascontiguousarray(grad_h, dtype=dtype)
    grad_c = no_gradient if grad_c is None else np.ascontiguousarray(grad_c, dtype=dtype)
    delta = np.empty_like(gates)
    cell_delta = np.empty_like(tanh_c)
    carry_h = np.zeros((batch, n), dtype=dtype)
    product = StepProduct(weight_hh.astype(dtype, copy=False), carry_h, 4)
    carry_c = np.zeros_like(carry_h)
    step = kernels.lstm_backward_step
    if weight_ih is None:
        gx = np.empty((0, 0, 0), dtype)  # the compiled loop's "no input gradient"
    else:
        weight_ih = np.ascontiguousarray(weight_ih, dtype=dtype)
        gx = np.empty((steps, batch, weight_ih.shape[1]), dtype)

    def loop(lo, hi, blas_threads, t_lo=0, t_hi=steps, part=None):
        rows = np.empty((4, n), dtype=dtype)
        sgemm = _loop_sgemm(kernels, lo, hi)
        if part is None:
            part = product if blas_threads is None else product.for_rows(lo, hi, blas_threads, sgemm is not None)
        if sgemm is not None:
            kernels.lstm_backward_loop(sgemm, lo, hi, gates, c, tanh_c, grad_h, step_h, grad_c, step_c, carry_h,
                                       carry_c, delta, cell_delta, rows, *part.packed(), t_lo, t_hi,
                                       gx if weight_ih is None else weight_ih, gx)
            return
        for t in range(t_hi - 1, t_lo - 1, -1):
            step(t, lo, hi, gates, c, tanh_c, grad_h, t * step_h, grad_c, t * step_c, carry_h, carry_c,
                 delta, cell_delta, rows)
            part(delta[t, lo:hi])
            if weight_ih is not None:
                np.matmul(delta[t, lo:hi], weight_ih, out=gx[t, lo:hi])

    if products is not None:
        # BLAS is on one thread in the section
        whole = product.for_rows(0, batch, 1, _loop_sgemm(kernels, 0, batch) is not None)
        backward_pipelined(lambda t_lo, t_hi: loop(0, batch, 1, t_lo, t_hi, whole), steps, delta, products)
    else:
        run_rows(batch, ranges, loop)
    return delta, cell_delta, carry_h, carry_c, (None if weight_ih is None else gx)


# ------------------------------------------------------- backward loop and products, overlapped
# At 2 threads the LSTM's backward ran its step loop as two batch-row ranges (one per core), then
# the whole-sequence products (dW over [x | h], dx) as two row blocks: B=32 H=128 T=100, Zen 3,
# quiet, 5.7 ms loop + 4.4 ms dW + ≈ 1.5 ms dx and bias sum.  A 16-row step product uses a core
# worse than a 32-row one (the two ranges took 5.7 ms of 7.6 ms serial), while the products only
# need the deltas of steps already done.  So the loop runs over all rows on the caller (one BLAS
# thread) a chunk of steps at a time, last chunk first, and a worker takes each finished chunk's
# weight-gradient product, summing them in chunk order (deterministic; not the bits of the one
# whole product); the dx row blocks (the same bits whoever computes them) go to whichever thread
# is free, the caller once its loop is done.


def pipeline_chunk_steps(batch):
    """Steps per chunk of :func:`backward_pipelined`: ≈ PIPELINE_CHUNK_ROWS rows of the
    (T·B, gates·H) deltas, so the chunked weight-gradient products stay near the speed of the
    whole one (LSTM dW over 3,200 rows at 1 thread, Zen 3: whole 7.15 ms, chunks of 8 steps
    7.55, 16 steps 7.34, 4 steps 7.97) while the last chunk, computed after the loop, stays
    short."""
    return max(1, -(-PIPELINE_CHUNK_ROWS // batch))


PIPELINE_CHUNK_ROWS = 256


class SequenceProducts:
    """The backward's whole-sequence products of one recurrent sequence, chunk by chunk: the
    weight gradients Σ_t δ(t)ᵀ·x(t), Σ_t δ(t)ᵀ·h(t−1) (over [x | h] at once when ``fused`` and
    both are needed), the input gradient δ·W_ih, and the bias gradient Σ δ.  ``x`` (T, B, F),
    ``h`` (T+1, B, H) with h(0) first, float32; ``left_rows``: None, or a (≥ T, B, F + H) array
    whose rows t are [x(t) | h(t)] (the LSTM forward's step operands), used instead of
    concatenating them again."""

    def __init__(self, x, h, weight_ih, need_x, need_ih, need_hh, need_bias, fused, left_rows=None):
        self.x, self.h, self.weight_ih, self.left_rows = x, h, weight_ih, left_rows
        self.need_x, self.need_ih, self.need_hh, self.need_bias = need_x, need_ih, need_hh, need_bias
        self.fused = fused and need_ih and need_hh
        self.sums = {}  # name -> (K, G) running Σ otherᵀ·δ
        self.gx = self.gb = None

    def start(self, delta):
        steps, batch, width = delta.shape
        self.batch, self.flat = batch, delta.reshape(steps * batch, width)
        if self.need_x:
            self.gx = np.empty((steps * batch, self.x.shape[-1]), delta.dtype)

    def _others(self, t_lo, t_hi):
        rows = (t_hi - t_lo) * self.batch
        x, h = self.x[t_lo:t_hi], self.h[t_lo:t_hi]
        if self.fused:
            both = np.concatenate((x, h), axis=-1) if self.left_rows is None else self.left_rows[t_lo:t_hi]
            return [("both", both.reshape(rows, -1))]
        return ([("ih", x.reshape(rows, -1))] if self.need_ih else []) + \
            ([("hh", h.reshape(rows, -1))] if self.need_hh else [])

    def weight_chunk(self, t_lo, t_hi):
        """Add this chunk's otherᵀ·δ to the running sums (call in the same chunk order always)."""
        d = self.flat[t_lo * self.batch:t_hi * self.batch]
        for name, other in self._others(t_lo, t_hi):
            part = np.matmul(other.T, d)
            if name in self.sums:
                self.sums[name] += part
            else:
                self.sums[name] = part

    def input_chunk(self, t_lo, t_hi):
        if self.need_x:
            rows = slice(t_lo * self.batch, t_hi * self.batch)
            np.matmul(self.flat[rows], self.weight_ih, out=self.gx[rows])

    def bias(self):
        if self.need_bias:
            self.gb = self.flat.sum(axis=0)

    def results(self):
        """(dx (T, B, F) or None, dW_ih or None, dW_hh or None, db or None)."""
        gx = None if self.gx is None else self.gx.reshape(self.x.shape)
        if self.fused:
            both = self.sums["both"]
            features = self.x.shape[-1]
            return gx, np.ascontiguousarray(both[:features].T), np.ascontiguousarray(both[features:].T), self.gb
        g_ih, g_hh = (np.ascontiguousarray(self.sums[k].T) if k in self.sums else None for k in ("ih", "hh"))
        return gx, g_ih, g_hh, self.gb


def backward_pipelines(kind, batch, hidden, steps):
    """Whether the backward of a float32 ``kind`` ("lstm" / "elman") sequence with compiled
    kernels runs as :func:`backward_pipelined`: at exactly two threads (at more, the LSTM's
    batch-row ranges), when ``Tuning.parallel`` is True, or by the parallel size rule of
    :func:`row_ranges`."""
    parallel = current_tuning().parallel
    if batch < 2 or parallel is False or threads.parallel_threads() != 2:
        return False
    return True if parallel else _parallel_pays(kind, batch, hidden, steps)


def pipeline_products(pipelined, dtype, x, h, weight_ih, need_x, need_ih, need_hh, need_bias, fused, left_rows=None):
    """A :class:`SequenceProducts` for :func:`backward_pipelined` when ``pipelined`` (see
    :func:`backward_pipelines`) in float32 and there is a product to compute, else None (the
    step loop, then the products)."""
    if not pipelined or dtype != np.float32 or not (need_x or need_ih or need_hh or need_bias):
        return None
    return SequenceProducts(x, h, weight_ih, need_x, need_ih, need_hh, need_bias, fused, left_rows)


def backward_pipelined(loop, steps, delta, products):
    """``loop(t_lo, t_hi)`` for the chunks of steps, last first, on this thread, and the chunks'
    products (:class:`SequenceProducts`) on a worker as each chunk is done, in one parallel
    section (serially, the same sums in the same order, when a section is already running)."""
    products.start(delta)
    size = pipeline_chunk_steps(delta.shape[1])
    chunks = [(max(0, t_hi - size), t_hi) for t_hi in range(steps, 0, -size)]
    done = queue.SimpleQueue()
    inputs = collections.deque()  # chunks whose dx rows nobody has taken yet

    def take_inputs(wait_for_more):
        while True:
            if wait_for_more and not done.empty():
                return
            try:
                chunk = inputs.popleft()
            except IndexError:
                return
            products.input_chunk(*chunk)

    def step_loop():
        try:
            for chunk in chunks:
                loop(*chunk)
                inputs.append(chunk)
                done.put(chunk)
        finally:
            done.put(None)  # the worker stops waiting, also after an error
        products.bias()
        take_inputs(False)

    def weight_products():
        while (chunk := done.get()) is not None:
            products.weight_chunk(*chunk)
            take_inputs(True)
        take_inputs(False)

    if threads.run_parallel([step_loop, weight_products]) is None:
        for chunk in chunks:
            loop(*chunk)
            products.weight_chunk(*chunk)
            products.input_chunk(*chunk)
        products.bias()



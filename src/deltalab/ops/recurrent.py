"""Fused recurrent sequences: a whole Elman or LSTM sequence, forward and BPTT, is one node.

The input projections of all steps are one matrix product; the loop over time does one
matrix product per step (forward and backward), with no per-step autodiff overhead.
The elementwise work between those products is NumPy, or, for float32 sequences big enough
to pay for importing numba, one compiled kernel per step (:mod:`.recurrent_kernels`; see
:func:`step_kernels`, ``DELTALAB_NUMBA=0`` turns them off).  With the kernels, the LSTM's
step products may run in column blocks (:class:`StepProduct`).

Backward records what a worked solution needs on the node (``node.deltas`` etc.):
for Elman, δ(t) = ∂E/∂z(t) per step; for LSTM, the gate pre-activation deltas and ∂E/∂c(t).
:func:`sequence_record` turns them into per-step values and gradient contributions.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np

from ..autograd import Function

# batch·hidden·steps from which a float32 sequence uses the compiled step kernels: below it
# (the lecture's problems, small tests) importing numba (~0.4 s) would cost more than it saves.
KERNEL_MIN_WORK = 1 << 16
_kernels = None  # the recurrent_kernels module once imported; False if numba is unusable


def step_kernels(dtype, work):
    """The compiled per-step kernels (module :mod:`.recurrent_kernels`) for a sequence of
    ``work`` = batch·hidden·steps elements of ``dtype``, or None for the NumPy path: float64,
    small sequences, numba not installed, or the environment variable ``DELTALAB_NUMBA=0``."""
    global _kernels
    if dtype != np.float32 or work < KERNEL_MIN_WORK or os.environ.get("DELTALAB_NUMBA") == "0":
        return None
    if _kernels is None:
        try:
            from . import recurrent_kernels

            _kernels = recurrent_kernels
        except ImportError:
            _kernels = False
        except Exception as error:  # a broken numba install must not break the layer
            warnings.warn(f"deltalab: numba kernels unavailable ({error!r}); using NumPy", RuntimeWarning)
            _kernels = False
    return _kernels or None


SPLIT_STEP_PRODUCTS = None  # None: StepProduct's rule decides; True / False: force a choice

# OpenBLAS kernel families with small-matrix kernels (used for M·N·K ≤ 10⁶ at one thread).
SMALL_MATRIX_KERNELS = {"SkylakeX", "Cooperlake", "SapphireRapids"}
SMALL_MATRIX_MAX = 1_000_000


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
        self.split = SPLIT_STEP_PRODUCTS if blocks > 1 else False
        if self.split is None:
            self.split = self.blocks_fit_small_kernels(out.shape[0], right.shape[0], width, blocks, blas_threads)

    def for_rows(self, lo, hi, blas_threads=None):
        """The same product for rows lo..hi−1 of ``left`` and ``out`` only, in the fewest
        column blocks (at most ``max(self.blocks, width // 32)``) that fit the small-matrix
        kernels, split or not by the rule for that row count and ``blas_threads`` BLAS threads
        (None: the process's).

        Fewest, because in a parallel section every product call is a GIL handoff between the
        threads: LSTM B=32 H=128 forward as two 16-row ranges, µs per step: 2 blocks 18-21,
        4 blocks 26-30, 1 block (not a small-matrix product) 30-34; serial 2-thread BLAS 28-30.
        """
        rows = hi - lo
        inner, width = self.right.shape
        most = max(self.blocks, width // 32)
        blocks = next((b for b in range(1, most + 1) if rows * inner * -(-width // b) <= SMALL_MATRIX_MAX),
                      self.blocks)
        return StepProduct(self.right, self.out[lo:hi], blocks, blas_threads)

    @staticmethod
    def blocks_fit_small_kernels(rows, inner, width, blocks, blas_threads=None):
        """Whether ``blocks`` column blocks of a (rows, inner)·(inner, width) product fall under
        OpenBLAS's small-matrix kernels and the whole does not, at ``blas_threads`` BLAS threads
        (None: :func:`deltalab.threads.get_num_threads`)."""
        from .. import threads

        if blas_threads is None:
            blas_threads = threads.get_num_threads()
        whole = rows * inner * width
        block = rows * inner * -(-width // blocks)
        return (block <= SMALL_MATRIX_MAX < whole and blas_threads == 1
                and threads.blas_kernels() in SMALL_MATRIX_KERNELS)

    def packed(self):
        """(the column blocks of ``right`` one after the other, each C-contiguous, as one 1-D
        array; their column edges as int64) -- one block when not split -- for
        :func:`.recurrent_kernels._step_product`."""
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
# depend on timing), through deltalab.threads.run_parallel: task 0 on the caller, the others on
# pinned workers, BLAS on one thread meanwhile.  The whole-sequence products (input
# projection, input and weight gradients) then run as row blocks in sections of their own
# (see _matmul for why not on the process's BLAS threads).  float64 and the other Elman
# nonlinearities (NumPy path: ~10 ufunc calls per step, each needing the GIL) stay serial.
_PARALLEL = None  # None: the size rule below decides; True / False: always / never (tests)


def _row_ranges(kind, batch, hidden, steps):
    """Batch row ranges, one per thread, for the step loops of a ``kind`` ("lstm" / "elman")
    sequence with compiled kernels, or None to run serially."""
    from .. import threads

    if batch < 2 or _PARALLEL is False:
        return None
    if _PARALLEL is None and not _parallel_pays(kind, batch, hidden, steps):
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
# Elman (tanh kernels, Python loops) never paid: B=32 H=128 1.05, B=64 H=256 1.08,
# B=128 H=256 1.00 (its per-step work is a quarter of the LSTM's): serial unless forced.
PARALLEL_MIN_STEPS = 20
PARALLEL_MIN_STEPS_PYTHON_LOOPS = 64


def _parallel_pays(kind, batch, hidden, steps):
    if kind != "lstm":
        return False
    if USE_LOOP_KERNELS and _kernels and _kernels.sgemm_function() is not None:
        return batch >= 4 and hidden >= 64 and steps >= PARALLEL_MIN_STEPS
    return batch * 4 * hidden * hidden > SMALL_MATRIX_MAX and steps >= PARALLEL_MIN_STEPS_PYTHON_LOOPS


def _run_rows(batch, ranges, task):
    """``task(lo, hi, blas_threads)`` once per row range in a parallel section (BLAS on one
    thread), or ``task(0, batch, None)`` when ``ranges`` is None or a section is already
    running."""
    if ranges is not None:
        from .. import threads

        if threads.run_parallel([functools.partial(task, lo, hi, 1) for lo, hi in ranges]) is not None:
            return
    task(0, batch, None)


USE_LOOP_KERNELS = True  # False: LSTM loops over time always run in Python (tests, comparisons)


def _loop_sgemm(kernels, lo, hi):
    """NumPy's sgemm for :func:`.recurrent_kernels.lstm_forward_loop` / ``lstm_backward_loop``
    (a range's whole loop over time in one compiled call), or None for the Python step loop.

    Used for ranges of ≥ 2 rows (for one row NumPy's matmul calls gemv, not gemm: the
    compiled loop would change its bits).  In parallel sections it spares the GIL handoffs of
    every per-step call; serially it saves the calls' overhead (LSTM B=32 H=128 T=100,
    1 thread: 10.3 vs 10.9 ms, the same bits).
    """
    if hi - lo < 2 or not USE_LOOP_KERNELS:
        return None
    return kernels.sgemm_function()


def _matmul(left, right, parts=None):
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
    from .. import threads

    out = np.empty((left.shape[0], right.shape[1]), np.result_type(left, right))
    bounds = [left.shape[0] * k // parts for k in range(parts + 1)]
    tasks = [functools.partial(np.matmul, left[a:b], right, out=out[a:b]) for a, b in zip(bounds, bounds[1:])]
    if threads.run_parallel(tasks) is None:
        np.matmul(left, right, out=out)
    return out


def sigmoid_(a, out):
    """σ(a) = 1 / (1 + e^−a) into ``out``: relatively accurate everywhere.  e^−a may overflow
    to inf, which gives exactly 0: callers run inside ``np.errstate(over="ignore")``.

    −a is written ``0 − a``: NumPy 2.4's AVX-512 ``np.negative`` into a strided ``out`` (the
    gate columns of an LSTM with one hidden unit) writes wrong rows; tested in
    tests/test_correctness_regressions.py."""
    np.subtract(0.0, a, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def tanh_(a, out):
    """numpy's tanh into ``out`` (an exp-based 2σ(2a) − 1 measured no faster inside the loop)."""
    return np.tanh(a, out=out)


def _relu_(a, out):
    return np.maximum(a, 0, out=out)


def _identity_(a, out):
    out[...] = a
    return out


# name: (f(z) into out, f'(z) for all steps at once from (z, f(z)))
ACTIVATIONS = {
    "tanh": (tanh_, lambda z, h: 1.0 - h * h),
    "relu": (_relu_, lambda z, h: (~(z <= 0)).astype(z.dtype)),  # NaN passes its gradient, as torch
    "sigmoid": (sigmoid_, lambda z, h: h * (1.0 - h)),
    "identity": (_identity_, lambda z, h: np.ones_like(z)),
}


def weight_gradients(flat, x, h_prev, need_ih, need_hh, parts=None):
    """(Σ_t δ(t)ᵀ·x(t), Σ_t δ(t)ᵀ·h(t−1)) for δ flattened to (T·B, ·); one matrix product
    over [x | h(t−1)] when both are needed: one pass over δ instead of two, measured 1–4 µs
    per step faster for the LSTM's (T·B, 4H) δ, slower for Elman's (T·B, H)."""
    rows = flat.shape[0]
    if need_ih and need_hh:
        both = _matmul(flat.T, np.concatenate((x, h_prev), axis=-1).reshape(rows, -1), parts)
        features = x.shape[-1]
        return np.ascontiguousarray(both[:, :features]), np.ascontiguousarray(both[:, features:])
    g_ih = _matmul(flat.T, x.reshape(rows, -1), parts) if need_ih else None
    g_hh = _matmul(flat.T, h_prev.reshape(rows, -1), parts) if need_hh else None
    return g_ih, g_hh


class ElmanSequence(Function):
    """z(t) = W x(t) + H h(t−1) + b,  h(t) = f(z(t))  for t = 1..T; returns h(1..T) as (T, B, H)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias, nonlinearity):
        f, _ = ACTIVATIONS[nonlinearity]
        steps, batch, _ = x.shape
        hidden = weight_ih.shape[0]
        kernels = step_kernels(np.result_type(x, weight_ih), batch * hidden * steps) if nonlinearity == "tanh" else None
        ranges = _row_ranges("elman", batch, hidden, steps) if kernels is not None else None
        z = _matmul(x.reshape(steps * batch, -1), weight_ih.T, ranges and len(ranges)).reshape(steps, batch, hidden)
        h = np.empty((steps + 1, batch, hidden), dtype=z.dtype)
        h[0] = h0
        recurrent = np.ascontiguousarray(weight_hh.T)
        buffer = np.empty((batch, hidden), dtype=z.dtype)
        if kernels is not None:  # the kernel adds the bias (one pass over z fewer)
            bias_row = np.zeros(hidden, z.dtype) if bias is None else np.ascontiguousarray(bias, dtype=z.dtype)
            step = kernels.elman_tanh_forward_step

            def loop(lo, hi, blas_threads):
                out = buffer[lo:hi]
                for t in range(steps):
                    np.matmul(h[t, lo:hi], recurrent, out=out)
                    step(t, lo, hi, z, bias_row, buffer, h)

            _run_rows(batch, ranges, loop)
        else:
            if bias is not None:
                z += bias
            with np.errstate(over="ignore"):
                for t in range(steps):
                    np.matmul(h[t], recurrent, out=buffer)
                    z[t] += buffer
                    f(z[t], h[t + 1])
        ctx.save_for_backward(x, h, z, weight_ih, weight_hh)
        ctx.nonlinearity, ctx.has_bias = nonlinearity, bias is not None
        ctx.deltas = None
        return h[1:]

    @staticmethod
    def backward(ctx, grad):
        x, h, z, weight_ih, weight_hh = ctx.saved
        _, f_prime = ACTIVATIONS[ctx.nonlinearity]
        steps, batch, hidden = z.shape
        carry = np.zeros((batch, hidden), dtype=z.dtype)  # ∂E/∂h(t) through h(t+1)
        kernels = step_kernels(z.dtype, batch * hidden * steps) if ctx.nonlinearity == "tanh" else None
        ranges = _row_ranges("elman", batch, hidden, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        if kernels is not None:
            delta = np.empty_like(z)
            grad = np.ascontiguousarray(grad, dtype=z.dtype)
            recurrent = np.ascontiguousarray(weight_hh, dtype=z.dtype)
            step = kernels.elman_tanh_backward_step

            def loop(lo, hi, blas_threads):
                out = carry[lo:hi]
                for t in range(steps - 1, -1, -1):
                    step(t, lo, hi, h, grad, carry, delta)  # δ(t) = (1 − h(t)²)(∂E/∂h(t))
                    np.matmul(delta[t, lo:hi], recurrent, out=out)

            _run_rows(batch, ranges, loop)
        else:
            delta = f_prime(z, h[1:]).astype(z.dtype, copy=False)  # f'(z(t)) for every step at once
            relu = ctx.nonlinearity == "relu"
            incoming = np.empty_like(carry)
            for t in range(steps - 1, -1, -1):
                np.add(grad[t], carry, out=incoming)
                # δ(t) = f'(z(t)) ∘ (∂E/∂h(t)); ReLU's f' selects (torch's threshold_backward), so
                # a NaN or inf ∂E/∂h stays out where z ≤ 0
                np.multiply(delta[t], incoming, out=delta[t], where=delta[t] != 0 if relu else True)
                np.matmul(delta[t], weight_hh, out=carry)
        ctx.deltas = delta
        flat = delta.reshape(steps * batch, hidden)
        need = ctx.needs_input_grad
        gx = _matmul(flat, weight_ih, parts).reshape(x.shape) if need[0] else None
        g_ih = _matmul(flat.T, x.reshape(steps * batch, -1), parts) if need[2] else None
        g_hh = _matmul(flat.T, h[:-1].reshape(steps * batch, hidden), parts) if need[3] else None
        gb = flat.sum(axis=0) if ctx.has_bias and need[4] else None
        return gx, carry if need[1] else None, g_ih, g_hh, gb, None


class LSTMSequence(Function):
    """PyTorch's LSTM over a sequence; gates stacked i, f, g, o in the 4·H rows of the weights.

    Returns (h(1..T), c(1..T)), each (T, B, H).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias):
        steps, batch, _ = x.shape
        n = weight_hh.shape[1]
        kernels = step_kernels(np.result_type(x, weight_ih), batch * n * steps)
        ranges = _row_ranges("lstm", batch, n, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        a = _matmul(x.reshape(steps * batch, -1), weight_ih.T, parts).reshape(steps, batch, 4 * n)
        h = np.empty((steps + 1, batch, n), dtype=a.dtype)
        c = np.empty_like(h)
        tanh_c = np.empty((steps, batch, n), dtype=a.dtype)
        h[0], c[0] = h0, c0
        recurrent = np.ascontiguousarray(weight_hh.T)
        buffer = np.empty((batch, 4 * n), dtype=a.dtype)
        if kernels is not None:  # pre-activations are overwritten by the gate values; adds the bias
            bias_row = np.zeros(4 * n, a.dtype) if bias is None else np.ascontiguousarray(bias, dtype=a.dtype)
            product = StepProduct(recurrent.astype(a.dtype, copy=False), buffer, 4)  # a block per gate
            step = kernels.lstm_forward_step

            def loop(lo, hi, blas_threads):
                rows = np.empty((4, n), dtype=a.dtype)
                part = product if blas_threads is None else product.for_rows(lo, hi, blas_threads)
                sgemm = _loop_sgemm(kernels, lo, hi)
                if sgemm is not None:
                    kernels.lstm_forward_loop(sgemm, lo, hi, a, bias_row, *part.packed(), buffer, c, tanh_c, h, rows)
                    return
                for t in range(steps):
                    part(h[t, lo:hi])
                    step(t, lo, hi, a, bias_row, buffer, c, tanh_c, h, rows)

            _run_rows(batch, ranges, loop)
        else:
            if bias is not None:
                a += bias
            product = np.empty((batch, n), dtype=a.dtype)
            with np.errstate(over="ignore"):
                for t in range(steps):
                    np.matmul(h[t], recurrent, out=buffer)
                    gates = a[t]  # pre-activations are overwritten by the gate values
                    gates += buffer
                    sigmoid_(gates[:, : 2 * n], gates[:, : 2 * n])
                    tanh_(gates[:, 2 * n : 3 * n], gates[:, 2 * n : 3 * n])
                    sigmoid_(gates[:, 3 * n :], gates[:, 3 * n :])
                    np.multiply(gates[:, n : 2 * n], c[t], out=c[t + 1])
                    np.multiply(gates[:, :n], gates[:, 2 * n : 3 * n], out=product)
                    c[t + 1] += product
                    tanh_(c[t + 1], tanh_c[t])
                    np.multiply(gates[:, 3 * n :], tanh_c[t], out=h[t + 1])
        ctx.save_for_backward(x, h, c, tanh_c, a, weight_ih, weight_hh)  # `a` now holds the gate values
        ctx.has_bias = bias is not None
        ctx.deltas = ctx.cell_deltas = None
        return h[1:], c[1:]

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        x, h, c, tanh_c, gates, weight_ih, weight_hh = ctx.saved
        steps, batch, n = tanh_c.shape
        kernels = step_kernels(gates.dtype, batch * n * steps)
        ranges = _row_ranges("lstm", batch, n, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        if kernels is not None:
            delta, cell_delta, carry_h, carry_c = LSTMSequence._backward_kernels(
                kernels, gates, c, tanh_c, weight_hh, grad_h, grad_c, ranges)
        else:
            delta, cell_delta, carry_h, carry_c = LSTMSequence._backward_numpy(
                gates, c, tanh_c, weight_hh, grad_h, grad_c)
        ctx.deltas, ctx.cell_deltas = delta, cell_delta
        flat = delta.reshape(steps * batch, 4 * n)
        need = ctx.needs_input_grad
        gx = _matmul(flat, weight_ih, parts).reshape(x.shape) if need[0] else None
        g_ih, g_hh = weight_gradients(flat, x, h[:-1], need[3], need[4], parts)
        gb = flat.sum(axis=0) if ctx.has_bias and need[5] else None
        return gx, carry_h, carry_c, g_ih, g_hh, gb

    @staticmethod
    def _backward_kernels(kernels, gates, c, tanh_c, weight_hh, grad_h, grad_c, ranges=None):
        """(δ of the gate pre-activations (T, B, 4H), ∂E/∂c(t) (T, B, H), ∂E/∂h(0), ∂E/∂c(0))
        with one compiled kernel per step between the matrix products; the batch row
        ``ranges`` in parallel (None: serially)."""
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

        def loop(lo, hi, blas_threads):
            rows = np.empty((4, n), dtype=dtype)
            part = product if blas_threads is None else product.for_rows(lo, hi, blas_threads)
            sgemm = _loop_sgemm(kernels, lo, hi)
            if sgemm is not None:
                kernels.lstm_backward_loop(sgemm, lo, hi, gates, c, tanh_c, grad_h, step_h, grad_c, step_c, carry_h,
                                           carry_c, delta, cell_delta, rows, *part.packed())
                return
            for t in range(steps - 1, -1, -1):
                step(t, lo, hi, gates, c, tanh_c, grad_h, t * step_h, grad_c, t * step_c, carry_h, carry_c,
                     delta, cell_delta, rows)
                part(delta[t, lo:hi])

        _run_rows(batch, ranges, loop)
        return delta, cell_delta, carry_h, carry_c

    @staticmethod
    def _backward_numpy(gates, c, tanh_c, weight_hh, grad_h, grad_c):
        """:meth:`_backward_kernels` in NumPy."""
        steps, batch, n = tanh_c.shape
        g4 = gates.reshape(steps, batch, 4, n)
        i, f, g, o = g4[:, :, 0], g4[:, :, 1], g4[:, :, 2], g4[:, :, 3]
        # every factor that does not depend on the incoming gradient, for all steps at once:
        # ∂a_i = dc·g·i(1−i), ∂a_f = dc·c(t−1)·f(1−f), ∂a_g = dc·i·(1−g²), ∂a_o = dh·tanh c·o(1−o)
        local = np.empty_like(g4)
        np.multiply(g * i, 1.0 - i, out=local[:, :, 0])
        np.multiply(c[:-1] * f, 1.0 - f, out=local[:, :, 1])
        np.multiply(i, 1.0 - g * g, out=local[:, :, 2])
        np.multiply(tanh_c * o, 1.0 - o, out=local[:, :, 3])
        through_h = o * (1.0 - tanh_c * tanh_c)  # ∂c(t)/∂h(t) path factor
        delta = local  # overwritten step by step with ∂E/∂(gate pre-activations)
        cell_delta = np.empty_like(tanh_c)  # ∂E/∂c(t)
        carry_h = np.zeros((batch, n), dtype=gates.dtype)
        carry_c = np.zeros_like(carry_h)
        dh = np.empty_like(carry_h)
        for t in range(steps - 1, -1, -1):
            if grad_h is None:
                dh[...] = carry_h
            else:
                np.add(grad_h[t], carry_h, out=dh)
            dc = cell_delta[t]
            np.multiply(dh, through_h[t], out=dc)
            dc += carry_c
            if grad_c is not None:
                dc += grad_c[t]
            d = delta[t]
            d[:, :3] *= dc[:, None, :]
            d[:, 3] *= dh
            np.matmul(d.reshape(batch, 4 * n), weight_hh, out=carry_h)
            np.multiply(dc, f[t], out=carry_c)
        return delta.reshape(steps, batch, 4 * n), cell_delta, carry_h, carry_c


def elman_sequence(x, h0, weight_ih, weight_hh, bias=None, nonlinearity="tanh"):
    """h(1..T) of an Elman layer for x (T, B, F) and h0 (B, H); one fused node."""
    return ElmanSequence.apply(x, h0, weight_ih, weight_hh, bias, nonlinearity)


def lstm_sequence(x, h0, c0, weight_ih, weight_hh, bias=None):
    """(h(1..T), c(1..T)) of an LSTM layer for x (T, B, F); one fused node."""
    return LSTMSequence.apply(x, h0, c0, weight_ih, weight_hh, bias)


def _sequence_nodes(output):
    """The fused sequence nodes behind ``output``, in time order, looking through reshapes,
    transposes and the concatenation of truncated-BPTT chunks."""
    from .shape import Concatenate, Reshape, Transpose

    node = output.grad_fn
    if node is None:
        return []
    if node.function in (ElmanSequence, LSTMSequence):
        return [node]
    if node.function in (Reshape, Transpose, Concatenate):
        found = []
        for parent in node.parents:
            if parent is not None:
                found.extend(_sequence_nodes(parent))
        return found
    return []


def _node_record(node):
    if node.function is ElmanSequence:
        x, h, z, _, _ = node.saved
        record = {"x": x, "z": z, "h": h}
    else:
        x, h, c, tanh_c, gates, _, _ = node.saved
        record = {"x": x, "gates": gates, "h": h, "c": c}
    if node.deltas is not None:
        delta = node.deltas
        record["delta"] = delta
        record["dW_ih"] = np.einsum("tbh,tbf->thf", delta, x)
        record["dW_hh"] = np.einsum("tbh,tbk->thk", delta, h[:-1])
        record["db"] = delta.sum(axis=1)
        if node.function is LSTMSequence:
            record["cell_delta"] = node.cell_deltas
    return record


def sequence_record(output):
    """What the fused sequence op(s) behind ``output`` recorded, for reports.

    Keys: ``x`` (inputs), ``z`` (Elman pre-activations) or ``gates`` (LSTM gate values),
    ``h`` (states including h(0); LSTM also ``c``), and after backward ``delta``
    (δ(t) = ∂E/∂z(t), for LSTM the gate pre-activations) and per-step gradient contributions
    ``dW_ih`` = Σ_batch δ(t)·x(t)ᵀ, ``dW_hh`` = Σ_batch δ(t)·h(t−1)ᵀ and ``db`` = Σ_batch δ(t),
    whose sums over t are the parameter gradients.  Per-step arrays are (T, B, ...);
    contributions are (T, ...).  Truncated-BPTT chunks are joined along time.
    """
    nodes = _sequence_nodes(output)
    if not nodes:
        raise ValueError("sequence_record: the tensor was not produced by a recurrent sequence op")
    records = [_node_record(n) for n in nodes]
    merged = {}
    for key in records[0]:
        if key not in records[-1]:
            continue
        parts = [r[key] for r in records]
        if key in ("h", "c"):  # each chunk repeats the previous chunk's last state as its first
            parts = [parts[0]] + [p[1:] for p in parts[1:]]
        merged[key] = np.concatenate(parts, axis=0)
    return merged

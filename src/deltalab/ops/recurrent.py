"""Fused recurrent sequences: a whole Elman or LSTM sequence, forward and BPTT, is one node.

The input projections of all steps are one matrix product; the loop over time does one
matrix product per step (forward and backward), with no per-step autodiff overhead.
The elementwise work between those products is NumPy here, or, for float32 sequences big
enough to pay, the compiled kernels of :mod:`deltalab.fast.recurrent` (with their scheduling:
column blocks, parallel batch-row ranges).  Both are tested against the readable references
:func:`elman_unrolled` and :func:`lstm_unrolled`, the same recurrences spelled out with
primitive ops for autograd to differentiate.

Backward records what a worked solution needs on the node (``node.deltas`` etc.):
for Elman, δ(t) = ∂E/∂z(t) per step; for LSTM, the gate pre-activation deltas and ∂E/∂c(t).
:func:`sequence_record` turns them into per-step values and gradient contributions.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..fast import loaded_on_first_use
from .elementwise import relu, sigmoid, tanh
from .shape import stack

fast = loaded_on_first_use("deltalab.fast.recurrent")  # the fast path, loaded with the first call


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


def weight_gradients(flat, x, h_prev, need_ih, need_hh, parts=None, float32=False, fused=True, left_rows=None):
    """(Σ_t δ(t)ᵀ·x(t), Σ_t δ(t)ᵀ·h(t−1)) for δ flattened to (T·B, ·); one matrix product
    over [x | h(t−1)] when both are needed: one pass over δ instead of two, measured 1–4 µs
    per step faster for the LSTM's (T·B, 4H) δ, slower for Elman's (T·B, H) (``fused=False``:
    two products).  ``float32``: the products in the orientation OpenBLAS's sgemm runs faster
    (:func:`deltalab.fast.recurrent.summed_products`; with or without the compiled kernels, so
    the NumPy and compiled backward give the same bits; float64 keeps its old rounding).
    ``left_rows``: None, or a (≥ T, B, F + H) array whose rows t already are [x(t) | h(t−1)] (the
    float32 LSTM forward's step operands): the same values without a (T·B, F + H) copy."""
    rows = flat.shape[0]
    product = fast.summed_products if float32 else (lambda d, other, parts: fast.matmul(d.T, other, parts))
    if need_ih and need_hh and fused:
        left = np.concatenate((x, h_prev), axis=-1) if left_rows is None else left_rows[:x.shape[0]]
        both = product(flat, left.reshape(rows, -1), parts)
        features = x.shape[-1]
        return np.ascontiguousarray(both[:, :features]), np.ascontiguousarray(both[:, features:])
    g_ih = product(flat, x.reshape(rows, -1), parts) if need_ih else None
    g_hh = product(flat, h_prev.reshape(rows, -1), parts) if need_hh else None
    return g_ih, g_hh


def _input_projection(x, weight_ih, parts):
    """x (T·B, F) @ W_ihᵀ: for float32 as :func:`deltalab.fast.recurrent.input_projection` (faster
    in sgemm), float64 as it always was (the worked solutions' numbers)."""
    if np.result_type(x, weight_ih) == np.float32:
        return fast.input_projection(x, weight_ih, parts)
    return fast.matmul(x, weight_ih.T, parts)


class ElmanSequence(Function):
    """z(t) = W x(t) + H h(t−1) + b,  h(t) = f(z(t))  for t = 1..T; returns h(1..T) as (T, B, H)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias, nonlinearity):
        f, _ = ACTIVATIONS[nonlinearity]
        steps, batch, _ = x.shape
        hidden = weight_ih.shape[0]
        kernels = fast.step_kernels(np.result_type(x, weight_ih), batch * hidden * steps) if nonlinearity == "tanh" else None
        ranges = fast.row_ranges("elman", batch, hidden, steps) if kernels is not None else None
        # in parallel, each batch-row range's task computes its own rows' input projections
        in_ranges = ranges is not None and x.dtype == weight_ih.dtype == np.float32
        if in_ranges:
            z = np.empty((steps, batch, hidden), dtype=np.float32)
        else:
            z = _input_projection(x.reshape(steps * batch, -1), weight_ih, ranges and len(ranges)).reshape(
                steps, batch, hidden)
        h = np.empty((steps + 1, batch, hidden), dtype=z.dtype)
        h[0] = h0
        recurrent = np.ascontiguousarray(weight_hh.T)
        if kernels is not None:
            fast.elman_tanh_forward(kernels, z, h, recurrent, bias, ranges, *((x, weight_ih) if in_ranges else ()))
        else:
            buffer = np.empty((batch, hidden), dtype=z.dtype)
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
        kernels = fast.step_kernels(z.dtype, batch * hidden * steps) if ctx.nonlinearity == "tanh" else None
        ranges = fast.row_ranges("elman", batch, hidden, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        need = ctx.needs_input_grad
        # at two threads: the step loop over all rows while a worker computes the products
        products = fast.pipeline_products(
            kernels is not None and fast.backward_pipelines("elman", batch, hidden, steps), z.dtype, x, h, weight_ih,
            need[0], need[2], need[3], ctx.has_bias and need[4], fused=False)
        if kernels is not None:
            delta, carry = fast.elman_tanh_backward(kernels, h, grad, weight_hh, ranges, products)
        else:
            carry = np.zeros((batch, hidden), dtype=z.dtype)  # ∂E/∂h(t) through h(t+1)
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
        if products is not None:
            gx, g_ih, g_hh, gb = products.results()
            return gx, carry if need[1] else None, g_ih, g_hh, gb, None
        flat = delta.reshape(steps * batch, hidden)
        gx = fast.matmul(flat, weight_ih, parts).reshape(x.shape) if need[0] else None
        g_ih, g_hh = weight_gradients(flat, x, h[:-1], need[2], need[3], parts, float32=z.dtype == np.float32,
                                      fused=False)
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
        kernels = fast.step_kernels(np.result_type(x, weight_ih), batch * n * steps)
        ranges = fast.row_ranges("lstm", batch, n, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        float32 = kernels is not None and x.dtype == weight_ih.dtype == weight_hh.dtype == np.float32
        if float32:  # the compiled kernels: the projection is part of every step's product
            a = None
        else:
            a = _input_projection(x.reshape(steps * batch, -1), weight_ih, parts).reshape(steps, batch, 4 * n)
        dtype = np.float32 if float32 else a.dtype
        h = np.empty((steps + 1, batch, n), dtype=dtype)
        c = np.empty_like(h)
        tanh_c = np.empty((steps, batch, n), dtype=dtype)
        h[0], c[0] = h0, c0
        ctx.left_rows = None  # the float32 kernels' [x(t) | h(t−1)] rows, reused by the weight gradients
        if float32:
            ctx.left_rows = np.empty((steps + 1, batch, x.shape[-1] + n), dtype=np.float32)
            a = fast.lstm_forward_fused(kernels, x, weight_ih, np.ascontiguousarray(weight_hh.T), h, c, tanh_c, bias,
                                        ranges=ranges, xh=ctx.left_rows)
        elif kernels is not None:  # pre-activations are overwritten by the gate values
            fast.lstm_forward(kernels, a, h, c, tanh_c, np.ascontiguousarray(weight_hh.T), bias, ranges)
        else:
            recurrent = np.ascontiguousarray(weight_hh.T)
            buffer = np.empty((batch, 4 * n), dtype=a.dtype)
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
        kernels = fast.step_kernels(gates.dtype, batch * n * steps)
        ranges = fast.row_ranges("lstm", batch, n, steps) if kernels is not None else None
        parts = ranges and len(ranges)
        need = ctx.needs_input_grad
        pipelined = kernels is not None and fast.backward_pipelines("lstm", batch, n, steps)
        # not pipelined: the compiled float32 loop computes ∂E/∂x step by step (fast.recurrent.lstm_backward)
        x_in_loop = (need[0] and kernels is not None and not pipelined
                     and fast.input_gradient_per_step(gates.dtype, weight_ih.dtype))
        # at two threads: the step loop over all rows while a worker computes the products
        products = fast.pipeline_products(
            pipelined, gates.dtype, x, h, weight_ih, need[0], need[3], need[4], ctx.has_bias and need[5], fused=True,
            left_rows=ctx.left_rows)
        gx = None
        if kernels is not None:
            delta, cell_delta, carry_h, carry_c, gx = fast.lstm_backward(
                kernels, gates, c, tanh_c, weight_hh, grad_h, grad_c, ranges, products,
                weight_ih if x_in_loop else None)
        else:
            delta, cell_delta, carry_h, carry_c = LSTMSequence._backward_numpy(
                gates, c, tanh_c, weight_hh, grad_h, grad_c)
        ctx.deltas, ctx.cell_deltas = delta, cell_delta
        if products is not None:
            gx, g_ih, g_hh, gb = products.results()
            return gx, carry_h, carry_c, g_ih, g_hh, gb
        flat = delta.reshape(steps * batch, 4 * n)
        if need[0] and not x_in_loop:
            gx = fast.matmul(flat, weight_ih, parts).reshape(x.shape)
        g_ih, g_hh = weight_gradients(flat, x, h[:-1], need[3], need[4], parts, float32=gates.dtype == np.float32,
                                      left_rows=ctx.left_rows)
        gb = flat.sum(axis=0) if ctx.has_bias and need[5] else None
        return gx, carry_h, carry_c, g_ih, g_hh, gb

    @staticmethod
    def _backward_numpy(gates, c, tanh_c, weight_hh, grad_h, grad_c):
        """(δ of the gate pre-activations (T, B, 4H), ∂E/∂c(t) (T, B, H), ∂E/∂h(0), ∂E/∂c(0)) in
        NumPy (:func:`deltalab.fast.recurrent.lstm_backward` is the compiled twin)."""
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


def elman_unrolled(x, h0, weight_ih, weight_hh, bias=None, nonlinearity="tanh"):
    """The readable reference of :func:`elman_sequence`: h(t) = f(W x(t) + H h(t−1) + b), one
    step at a time with primitive ops, differentiated by autograd (slow: a node per op)."""
    f = {"tanh": tanh, "relu": relu, "sigmoid": sigmoid, "identity": lambda z: z}[nonlinearity]
    h, outputs = h0, []
    for t in range(x.shape[0]):
        z = x[t] @ weight_ih.T + h @ weight_hh.T
        h = f(z if bias is None else z + bias)
        outputs.append(h)
    return stack(outputs)


def lstm_unrolled(x, h0, c0, weight_ih, weight_hh, bias=None):
    """The readable reference of :func:`lstm_sequence`: gates i, f, g, o = σ, σ, tanh, σ of
    W x(t) + H h(t−1) + b; c(t) = f·c(t−1) + i·g; h(t) = o·tanh c(t), one step at a time with
    primitive ops, differentiated by autograd.  Returns (h(1..T), c(1..T))."""
    n = weight_hh.shape[1]
    h, c, hs, cs = h0, c0, [], []
    for t in range(x.shape[0]):
        a = x[t] @ weight_ih.T + h @ weight_hh.T
        if bias is not None:
            a = a + bias
        i, f, g, o = a[:, :n].sigmoid(), a[:, n:2 * n].sigmoid(), a[:, 2 * n:3 * n].tanh(), a[:, 3 * n:].sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        hs.append(h)
        cs.append(c)
    return stack(hs), stack(cs)


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

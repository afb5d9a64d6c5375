"""Fused recurrent sequences: a whole Elman or LSTM sequence, forward and BPTT, is one node.

The input projections of all steps are one matrix product; the loop over time does one
matrix product per step (forward and backward), with no per-step autodiff overhead.

Backward records what a worked solution needs on the node (``node.deltas`` etc.):
for Elman, δ(t) = ∂E/∂z(t) per step; for LSTM, the gate pre-activation deltas and ∂E/∂c(t).
:func:`sequence_record` turns them into per-step values and gradient contributions.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function


def _sigmoid(a):
    """σ(a) = ½(1 + tanh(a/2)): exact, overflow-free and one ufunc pass."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


ACTIVATIONS = {
    # name: (f(z), f'(z) written in terms of (z, f(z)))
    "tanh": (np.tanh, lambda z, h: 1.0 - h * h),
    "relu": (lambda z: np.maximum(z, 0), lambda z, h: (z > 0).astype(z.dtype)),
    "sigmoid": (_sigmoid, lambda z, h: h * (1.0 - h)),
    "identity": (lambda z: z.copy(), lambda z, h: np.ones_like(z)),
}


class ElmanSequence(Function):
    """z(t) = W x(t) + H h(t−1) + b,  h(t) = f(z(t))  for t = 1..T; returns h(1..T) as (T, B, H)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias, nonlinearity):
        f, _ = ACTIVATIONS[nonlinearity]
        steps, batch, _ = x.shape
        hidden = weight_ih.shape[0]
        z = np.matmul(x.reshape(steps * batch, -1), weight_ih.T).reshape(steps, batch, hidden)
        if bias is not None:
            z += bias
        h = np.empty((steps + 1, batch, hidden), dtype=z.dtype)
        h[0] = h0
        recurrent = np.ascontiguousarray(weight_hh.T)
        buffer = np.empty((batch, hidden), dtype=z.dtype)
        for t in range(steps):
            np.matmul(h[t], recurrent, out=buffer)
            z[t] += buffer
            h[t + 1] = f(z[t])
        ctx.save_for_backward(x, h, z, weight_ih, weight_hh)
        ctx.nonlinearity, ctx.has_bias = nonlinearity, bias is not None
        ctx.deltas = None
        return h[1:]

    @staticmethod
    def backward(ctx, grad):
        x, h, z, weight_ih, weight_hh = ctx.saved
        _, f_prime = ACTIVATIONS[ctx.nonlinearity]
        steps, batch, hidden = z.shape
        delta = np.empty_like(z)
        carry = np.zeros((batch, hidden), dtype=z.dtype)  # ∂E/∂h(t) through h(t+1)
        for t in range(steps - 1, -1, -1):
            np.multiply(grad[t] + carry, f_prime(z[t], h[t + 1]), out=delta[t])
            np.matmul(delta[t], weight_hh, out=carry)
        ctx.deltas = delta
        flat = delta.reshape(steps * batch, hidden)
        need = ctx.needs_input_grad
        gx = np.matmul(flat, weight_ih).reshape(x.shape) if need[0] else None
        g_ih = flat.T @ x.reshape(steps * batch, -1) if need[2] else None
        g_hh = flat.T @ h[:-1].reshape(steps * batch, hidden) if need[3] else None
        gb = flat.sum(axis=0) if ctx.has_bias and need[4] else None
        return gx, carry if need[1] else None, g_ih, g_hh, gb, None


class LSTMSequence(Function):
    """PyTorch's LSTM over a sequence; gates stacked i, f, g, o in the 4·H rows of the weights.

    Returns (h(1..T), c(1..T)), each (T, B, H).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias):
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        a = np.matmul(x.reshape(steps * batch, -1), weight_ih.T).reshape(steps, batch, 4 * hidden)
        if bias is not None:
            a += bias
        h = np.empty((steps + 1, batch, hidden), dtype=a.dtype)
        c = np.empty_like(h)
        tanh_c = np.empty((steps, batch, hidden), dtype=a.dtype)
        h[0], c[0] = h0, c0
        recurrent = np.ascontiguousarray(weight_hh.T)
        buffer = np.empty((batch, 4 * hidden), dtype=a.dtype)
        candidate = np.empty((batch, hidden), dtype=a.dtype)
        for t in range(steps):
            np.matmul(h[t], recurrent, out=buffer)
            gates = a[t]
            gates += buffer
            np.tanh(gates[:, 2 * hidden : 3 * hidden], out=candidate)
            # σ(a) = ½(1 + tanh(a/2)) in place on all four blocks, then put the candidate back
            gates *= 0.5
            np.tanh(gates, out=gates)
            gates += 1.0
            gates *= 0.5
            gates[:, 2 * hidden : 3 * hidden] = candidate
            i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
            np.multiply(f, c[t], out=c[t + 1])
            c[t + 1] += i * g
            np.tanh(c[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=h[t + 1])
        ctx.save_for_backward(x, h, c, tanh_c, a, weight_ih, weight_hh)  # `a` now holds the gate values
        ctx.has_bias = bias is not None
        ctx.deltas = ctx.cell_deltas = None
        return h[1:], c[1:]

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        x, h, c, tanh_c, gates, weight_ih, weight_hh = ctx.saved
        steps, batch, hidden = tanh_c.shape
        delta = np.empty_like(gates)  # ∂E/∂(gate pre-activations), (T, B, 4H)
        cell_delta = np.empty_like(tanh_c)  # ∂E/∂c(t)
        carry_h = np.zeros((batch, hidden), dtype=gates.dtype)
        carry_c = np.zeros_like(carry_h)
        for t in range(steps - 1, -1, -1):
            i, f, g, o = (gates[t, :, k * hidden : (k + 1) * hidden] for k in range(4))
            dh = carry_h if grad_h is None else grad_h[t] + carry_h
            dc = carry_c + dh * o * (1.0 - tanh_c[t] * tanh_c[t])
            if grad_c is not None:
                dc += grad_c[t]
            cell_delta[t] = dc
            d = delta[t]
            d[:, :hidden] = dc * g * i * (1.0 - i)
            d[:, hidden : 2 * hidden] = dc * c[t] * f * (1.0 - f)
            d[:, 2 * hidden : 3 * hidden] = dc * i * (1.0 - g * g)
            d[:, 3 * hidden :] = dh * tanh_c[t] * o * (1.0 - o)
            carry_h = d @ weight_hh
            carry_c = dc * f
        ctx.deltas, ctx.cell_deltas = delta, cell_delta
        flat = delta.reshape(steps * batch, 4 * hidden)
        need = ctx.needs_input_grad
        gx = np.matmul(flat, weight_ih).reshape(x.shape) if need[0] else None
        g_ih = flat.T @ x.reshape(steps * batch, -1) if need[3] else None
        g_hh = flat.T @ h[:-1].reshape(steps * batch, hidden) if need[4] else None
        gb = flat.sum(axis=0) if ctx.has_bias and need[5] else None
        return gx, carry_h, carry_c, g_ih, g_hh, gb


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

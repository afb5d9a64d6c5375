"""A fused GRU sequence (torch's gate order r, z, n), forward and BPTT in one node.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn))
    h' = (1 − z) ∘ n + z ∘ h

The two biases cannot be summed as for Elman/LSTM: b_hn sits inside r ∘ (…).  The input
projections of all steps are one matrix product; the loop over time does one product per
step forward and one backward.  The reference it is tested against is the same cell written
with engine primitives (tests/test_torch_nn.py) and torch.nn.GRU.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .recurrent import sigmoid_


class GRUSequence(Function):
    """h(1..T) as (T, B, H) for x (T, B, F), h0 (B, H); weights (3H, F) and (3H, H)."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        steps, batch, _ = x.shape
        n = weight_hh.shape[1]
        dtype = np.result_type(x, weight_ih, weight_hh)
        gi = np.matmul(x.reshape(steps * batch, -1), weight_ih.T).reshape(steps, batch, 3 * n).astype(dtype, copy=False)
        if bias_ih is not None:
            gi += bias_ih
        h = np.empty((steps + 1, batch, n), dtype=dtype)
        h[0] = h0
        reset, update, new, hidden_new = (np.empty((steps, batch, n), dtype=dtype) for _ in range(4))
        recurrent = np.ascontiguousarray(weight_hh.T)
        gh = np.empty((batch, 3 * n), dtype=dtype)
        with np.errstate(over="ignore"):
            for t in range(steps):
                np.matmul(h[t], recurrent, out=gh)
                if bias_hh is not None:
                    gh += bias_hh
                r, z = reset[t], update[t]
                sigmoid_(gi[t, :, :n] + gh[:, :n], r)
                sigmoid_(gi[t, :, n : 2 * n] + gh[:, n : 2 * n], z)
                hidden_new[t] = gh[:, 2 * n :]  # W_hn h + b_hn, needed for ∂r
                np.tanh(gi[t, :, 2 * n :] + r * hidden_new[t], out=new[t])
                np.add(new[t], z * (h[t] - new[t]), out=h[t + 1])
        ctx.save_for_backward(x, h, weight_ih, weight_hh)
        ctx.reset, ctx.update, ctx.new, ctx.hidden_new = reset, update, new, hidden_new
        ctx.has_bias = (bias_ih is not None, bias_hh is not None)
        return h[1:]

    @staticmethod
    def backward(ctx, grad):
        x, h, weight_ih, weight_hh = ctx.saved
        reset, update, new, hidden_new = ctx.reset, ctx.update, ctx.new, ctx.hidden_new
        steps, batch, n = reset.shape
        d_input = np.empty((steps, batch, 3 * n), dtype=h.dtype)  # ∂E/∂(W_i· x + b_i·)
        d_hidden = np.empty_like(d_input)  # ∂E/∂(W_h· h + b_h·)
        carry = np.zeros((batch, n), dtype=h.dtype)  # ∂E/∂h(t) through h(t+1)
        for t in range(steps - 1, -1, -1):
            dh = grad[t] + carry
            r, z, nt = reset[t], update[t], new[t]
            d_new = dh * (1.0 - z) * (1.0 - nt * nt)  # through tanh
            d_update = dh * (h[t] - nt) * z * (1.0 - z)
            d_reset = d_new * hidden_new[t] * r * (1.0 - r)
            d_input[t, :, :n], d_input[t, :, n : 2 * n], d_input[t, :, 2 * n :] = d_reset, d_update, d_new
            d_hidden[t, :, :n], d_hidden[t, :, n : 2 * n] = d_reset, d_update
            np.multiply(d_new, r, out=d_hidden[t, :, 2 * n :])
            carry = dh * z + d_hidden[t] @ weight_hh
        flat_input = d_input.reshape(steps * batch, 3 * n)
        flat_hidden = d_hidden.reshape(steps * batch, 3 * n)
        need = ctx.needs_input_grad
        gx = (flat_input @ weight_ih).reshape(x.shape) if need[0] else None
        g_ih = flat_input.T @ x.reshape(steps * batch, -1) if need[2] else None
        g_hh = flat_hidden.T @ h[:-1].reshape(steps * batch, n) if need[3] else None
        gb_ih = flat_input.sum(axis=0) if ctx.has_bias[0] and need[4] else None
        gb_hh = flat_hidden.sum(axis=0) if ctx.has_bias[1] and need[5] else None
        return gx, carry if need[1] else None, g_ih, g_hh, gb_ih, gb_hh


def gru_sequence(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """h(1..T) of a GRU layer for x (T, B, F) and h0 (B, H); one fused node."""
    return GRUSequence.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)

"""Matrix products: ``matmul`` (with batching and 1-D operands, as numpy) and the fused ``linear``."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from ..fast import threads
from ._util import binary_operands, unbroadcast


def _multiply_adds(a, b):
    """M·N·K of one matrix product of a @ b (one item of a batch): ``threads.product``'s size."""
    m = a.shape[-2] if a.ndim > 1 else 1
    n = b.shape[-1] if b.ndim > 1 else 1
    return m * n * a.shape[-1]


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        with threads.product(_multiply_adds(a, b)):
            return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        with threads.product(_multiply_adds(*ctx.saved)):
            return MatMul._gradients(ctx, grad)

    @staticmethod
    def _gradients(ctx, grad):
        a, b = ctx.saved
        ga = gb = None
        # promote 1-D operands to matrices so one formula covers every case
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # reinsert the axes numpy dropped: b's column axis first, so a 1-D @ 1-D scalar works too
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    """``a @ b`` with numpy's rules (batched, 1-D vectors); mismatched inner sizes raise ShapeError."""
    a, b = binary_operands(a, b)
    sa, sb = np.shape(getattr(a, "data", a)), np.shape(getattr(b, "data", b))
    if not sa or not sb:
        raise ShapeError(f"matmul: operands must have at least one dimension, got {sa} and {sb}")
    inner_a, inner_b = sa[-1], (sb[0] if len(sb) == 1 else sb[-2])
    if inner_a != inner_b:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align ({inner_a} != {inner_b})")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {sa} and {sb} cannot be broadcast") from None
    return MatMul.apply(a, b)


class Linear(Function):
    """``y = x W^T + b`` over the last axis of x (any leading axes), one fused node."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        with threads.product(x.size // max(1, x.shape[-1]) * weight.size):
            out = np.matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        with threads.product(x.size // max(1, x.shape[-1]) * weight.size):
            return Linear._gradients(ctx, x, weight, grad)

    @staticmethod
    def _gradients(ctx, x, weight, grad):
        gx = np.matmul(grad, weight) if ctx.needs_input_grad[0] else None
        gw = gb = None
        g2 = grad.reshape(-1, grad.shape[-1])
        if ctx.needs_input_grad[1]:
            gw = g2.T @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(axis=0)
        return gx, gw, gb


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` like ``torch.nn.functional.linear``; weight is (out, in)."""
    from ._util import operand

    x = operand(x, weight)
    xs, ws = x.shape, weight.shape
    if len(ws) != 2 or not xs or xs[-1] != ws[1]:
        raise ShapeError(f"linear: input of shape {xs} does not fit weight of shape {ws} (need last dimension {ws[-1]})")
    if bias is not None and bias.shape != (ws[0],):
        raise ShapeError(f"linear: bias of shape {bias.shape} does not fit weight of shape {ws} (need ({ws[0]},))")
    return Linear.apply(x, weight, bias)

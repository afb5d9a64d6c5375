"""Reductions over axes: sum, mean and max."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ._util import normalize_axis


def _expand(grad, shape, axes, keepdims):
    """Broadcastable gradient of a reduction: reinsert the reduced axes as size 1."""
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, normalize_axis(axis, a.ndim), keepdims
        return np.sum(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.shape, ctx.axes, ctx.keepdims)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = a.shape, normalize_axis(axis, a.ndim), keepdims
        ctx.count = int(np.prod([a.shape[i] for i in ctx.axes]))
        return np.mean(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad / ctx.count, ctx.shape, ctx.axes, ctx.keepdims)


class Max(Function):
    """Maximum over axes; the gradient goes to the *first* maximum of each reduction, as
    ``torch.max(x, dim)`` and max pooling do (ties after ReLU are common)."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = normalize_axis(axis, a.ndim)
        kept = tuple(i for i in range(a.ndim) if i not in axes)
        moved = np.transpose(a, kept + axes)
        flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
        index = np.argmax(flat, axis=-1)
        out = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
        ctx.a_shape, ctx.axes, ctx.kept, ctx.keepdims = a.shape, axes, kept, keepdims
        ctx.moved_shape, ctx.flat_shape = moved.shape, flat.shape
        ctx.save_for_backward(index)
        if keepdims:
            out = np.expand_dims(out, axes)
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        if ctx.keepdims:
            grad = np.squeeze(grad, axis=ctx.axes)
        flat = np.zeros(ctx.flat_shape, dtype=grad.dtype)
        np.put_along_axis(flat, index[..., None], grad[..., None], axis=-1)
        moved = flat.reshape(ctx.moved_shape)
        return np.transpose(moved, np.argsort(ctx.kept + ctx.axes))


def sum(a, axis=None, keepdims=False):  # noqa: A001 - mirrors torch.sum
    return Sum.apply(a, axis, keepdims)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axis, keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001 - mirrors torch.max
    return Max.apply(a, axis, keepdims)

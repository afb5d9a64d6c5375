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
    ``torch.max(x, dim)`` and max pooling do (ties after ReLU are common).  The maximum of the
    whole tensor (``axis=None``) shares it evenly among all maxima, as ``torch.max(x)`` does."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        ctx.whole = a if axis is None else None
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
        if ctx.whole is not None:
            a, value = ctx.whole, ctx.whole.reshape(-1)[index]
            ties = np.isnan(a) if np.isnan(value) else a == value
            return np.where(ties, grad / ties.sum(), 0).astype(grad.dtype, copy=False)  # masked fill, as torch
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


# ------------------------------------------------------------ torch's reductions
class AMax(Function):
    """Maximum (or minimum) over axes; ties share the gradient evenly, as ``torch.amax`` and a
    full ``torch.max()`` do.  They differ at NaN: ``torch.amax`` computes g / count · mask
    (a NaN result equals nothing, so 0 / 0 makes the gradient NaN everywhere, and a NaN g
    reaches every element), a full ``torch.max()`` (``whole``) fills g / count into the
    maxima -- the NaNs if the result is NaN -- and exact zeros elsewhere."""

    @staticmethod
    def forward(ctx, a, axis, keepdims, larger, whole=False):
        axes = normalize_axis(axis, a.ndim)
        out = (np.max if larger else np.min)(a, axis=axes, keepdims=True)
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdims, ctx.whole = axes, keepdims, whole
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        hit = (a == out)
        if ctx.whole:  # out is one value
            if np.isnan(out).any():
                hit = np.isnan(a)
            share = (grad / np.sum(hit)).astype(grad.dtype, copy=False)
            return np.where(hit, share, np.zeros_like(share)), None, None, None, None
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 at a NaN amax: torch's NaN
            return grad / np.sum(hit, axis=ctx.axes, keepdims=True) * hit, None, None, None, None


def amax(a, axis=None, keepdims=False):
    if a.data.size == 0:
        raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0.")
    return AMax.apply(a, axis, keepdims, True)


def max_all(a, keepdims=False, larger=True):
    """``torch.max(a)`` / ``torch.min(a)`` (``larger=False``): the extreme of the whole tensor."""
    if a.data.size == 0:
        name = "max" if larger else "min"
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
    return AMax.apply(a, None, keepdims, larger, True)


def amin(a, axis=None, keepdims=False):
    if a.data.size == 0:
        raise RuntimeError("min(): Expected reduction dim to be specified for input.numel() == 0.")
    return AMax.apply(a, axis, keepdims, False)


class SelectAlong(Function):
    """The values at ``index`` along ``dim`` (max/min with a dim): the gradient goes to those entries."""

    @staticmethod
    def forward(ctx, a, dim, index, keepdims):
        ctx.shape, ctx.dim, ctx.index, ctx.keepdims = a.shape, dim, index, keepdims
        out = np.take_along_axis(a, np.expand_dims(index, dim), axis=dim)
        return out if keepdims else np.squeeze(out, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.dim)
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(out, np.expand_dims(ctx.index, ctx.dim), grad, axis=ctx.dim)
        return out, None, None, None


def max_along(a, dim, keepdims, pick):
    """``(values, indices)`` of ``a.max(dim)`` (``pick=np.argmax``) or ``a.min(dim)`` (``np.argmin``)."""
    from ..tensor import from_array

    if a.ndim == 0:
        return a.clone(), from_array(np.array(0, dtype=np.int64))
    if a.shape[dim] == 0:
        raise IndexError(f"max(): Expected reduction dim {dim} to have non-zero size.")
    index = pick(a.data, axis=dim).astype(np.int64)
    values = SelectAlong.apply(a, dim, index, keepdims)
    return values, from_array(np.expand_dims(index, dim) if keepdims else index)


def arg_reduce(a, dim, keepdims, pick):
    """argmax/argmin as int64 (the flat index when ``dim`` is None), like torch."""
    from ..tensor import checked_dim, from_array

    if dim is None:
        index = np.asarray(pick(a.data.reshape(-1))).astype(np.int64)
        return from_array(index.reshape((1,) * a.ndim) if keepdims else index)
    dim = checked_dim(dim, a.ndim)
    if a.ndim == 0:
        return from_array(np.array(0, dtype=np.int64))
    index = pick(a.data, axis=dim).astype(np.int64)
    return from_array(np.expand_dims(index, dim) if keepdims else index)


class Prod(Function):
    """Product over one axis (or all); the gradient is the product of the others (exact with zeros)."""

    @staticmethod
    def forward(ctx, a, dim, keepdims):
        ctx.shape, ctx.dim, ctx.keepdims = a.shape, dim, keepdims
        moved = a.reshape(-1) if dim is None else np.moveaxis(a, dim, -1)
        ctx.save_for_backward(moved)
        out = np.prod(moved, axis=-1)
        if dim is not None and keepdims:
            out = np.expand_dims(out, dim)
        elif dim is None and keepdims:
            out = out.reshape((1,) * a.ndim)
        return out

    @staticmethod
    def backward(ctx, grad):
        (moved,) = ctx.saved
        ones = np.ones(moved.shape[:-1] + (1,), dtype=moved.dtype)
        left = np.cumprod(np.concatenate([ones, moved[..., :-1]], axis=-1), axis=-1)
        right = np.flip(np.cumprod(np.concatenate([ones, np.flip(moved, -1)[..., :-1]], axis=-1), axis=-1), -1)
        if ctx.dim is None:
            return (np.reshape(grad, ()) * left * right).reshape(ctx.shape), None, None
        g = np.squeeze(grad, ctx.dim) if ctx.keepdims else grad
        return np.moveaxis(g[..., None] * left * right, -1, ctx.dim), None, None


def prod(a, dim=None, keepdims=False):
    return Prod.apply(a, dim, keepdims)


def var(a, axes, correction, keepdims):
    """Variance over ``axes`` with ``correction`` (1: the unbiased estimate, torch's default)."""
    from .elementwise import div, mul, sub

    count = a.data.size if axes is None else int(np.prod([a.shape[i] for i in axes]))
    centred = sub(a, mean(a, axes, True))
    return div(sum(mul(centred, centred), axes, keepdims), _as_dtype(count - correction, a.dtype))


def _as_dtype(value, dtype):
    return np.asarray(value if value > 0 else 0, dtype=dtype)


def logsumexp(a, axes, keepdims):
    """log Σ exp(a) over ``axes``, shifted by the (constant) maximum so large values stay finite."""
    from ..tensor import from_array
    from .elementwise import add, exp, log, sub

    shift = np.max(a.data, axis=axes, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    total = sum(exp(sub(a, from_array(shift))), axes, True)
    out = add(log(total), from_array(shift))
    return out if keepdims else out.squeeze(axes)


class CumSum(Function):
    @staticmethod
    def forward(ctx, a, dim):
        ctx.dim = dim
        return np.cumsum(a, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        return np.flip(np.cumsum(np.flip(grad, ctx.dim), axis=ctx.dim), ctx.dim), None


def cumsum(a, dim):
    return CumSum.apply(a, dim)

"""Ops that move values without changing them: reshape, transpose, indexing, concatenate,
stack and pad."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return np.reshape(a, shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {a.shape} ({a.size} values) into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Transpose(Function):
    @staticmethod
    def forward(ctx, a, axes):
        if axes is None:
            axes = tuple(reversed(range(a.ndim)))
        if sorted(ax % max(a.ndim, 1) for ax in axes) != list(range(a.ndim)):
            raise ShapeError(f"transpose: axes {tuple(axes)} are not a permutation of the {a.ndim} axes of {a.shape}")
        ctx.axes = tuple(axes)
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.axes))


class GetItem(Function):
    """Indexing and slicing; the backward scatters (adding repeated indices)."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return np.asarray(a[index])
        except IndexError as exc:
            raise ShapeError(f"index: {exc} (tensor of shape {a.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] += grad  # slices and ints never repeat a position
        else:
            np.add.at(out, ctx.index, grad)  # fancy indices may repeat: add each occurrence
        return out


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


class Concatenate(Function):
    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        splits = np.cumsum(ctx.sizes)[:-1]
        return (None, *np.split(grad, splits, axis=ctx.axis))


class Pad(Function):
    """Constant padding; ``pad_width`` as for ``numpy.pad`` (one (before, after) per axis)."""

    @staticmethod
    def forward(ctx, a, pad_width, value):
        ctx.slices = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, a.shape))
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.slices]


def reshape(a, shape):
    return Reshape.apply(a, tuple(shape))


def flatten(a, start_dim=0, end_dim=-1):
    """Merge axes ``start_dim..end_dim`` into one, like ``torch.flatten``."""
    ndim = a.ndim
    start, end = start_dim % max(ndim, 1), end_dim % max(ndim, 1)
    shape = a.shape[:start] + (-1,) + a.shape[end + 1 :] if ndim else (1,)
    return reshape(a, shape)


def transpose(a, axes=None):
    return Transpose.apply(a, axes)


def squeeze(a, axis=None):
    shape = a.shape
    if axis is None:
        new = tuple(n for n in shape if n != 1)
    else:
        axes = {ax % a.ndim for ax in ((axis,) if isinstance(axis, int) else axis)}
        new = tuple(n for i, n in enumerate(shape) if not (i in axes and n == 1))
    return reshape(a, new)


def unsqueeze(a, axis):
    axis = axis % (a.ndim + 1)
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def getitem(a, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(a, index)


def _as_tensors(tensors, op_name):
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError(f"{op_name}: needs at least one tensor")
    return tensors


def concatenate(tensors, axis=0):
    tensors = _as_tensors(tensors, "concatenate")
    shapes = [t.shape for t in tensors]
    ndims = {len(s) for s in shapes}
    axis_n = axis % shapes[0].__len__() if shapes[0] else 0
    others = {s[:axis_n] + s[axis_n + 1 :] for s in shapes}
    if len(ndims) != 1 or len(others) != 1:
        raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {axis}")
    return Concatenate.apply(axis, *tensors)


cat = concatenate


def stack(tensors, axis=0):
    tensors = _as_tensors(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all tensors need the same shape, got {[t.shape for t in tensors]}")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis=axis)


def pad(a, pad_width, value=0.0):
    """Pad with a constant.  ``pad_width``: an int, or one (before, after) pair per axis."""
    if isinstance(pad_width, int):
        pad_width = [(pad_width, pad_width)] * a.ndim
    pad_width = tuple((int(b), int(e)) for b, e in pad_width)
    if len(pad_width) != a.ndim or any(b < 0 or e < 0 for b, e in pad_width):
        raise ShapeError(f"pad: need one non-negative (before, after) pair per axis of {a.shape}, got {pad_width}")
    return Pad.apply(a, pad_width, value)

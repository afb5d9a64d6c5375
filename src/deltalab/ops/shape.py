"""Ops that move values without changing them: reshape, transpose, indexing, concatenate,
stack and pad."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import IndexOutOfRange, ShapeError
from ..tensor import Tensor, from_array
from ._util import unbroadcast


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
            raise IndexOutOfRange(f"index: {exc} (tensor of shape {a.shape})") from None

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


def plain_index(index):
    """An index with its tensors (int indices, bool masks) as arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def getitem(a, index):
    index = plain_index(index)
    out = GetItem.apply(a, index)
    if out._base is a and _is_basic(index):
        out._view_index = index  # a slice of a: in-place ops on it can be written back (CopySlices)
    return out


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


# ---------------------------------------------------------------- writing
class SetItem(Function):
    """``a`` with ``a[index] = value``: the gradient of ``a`` is zero at ``index``, the value's is
    the gradient there (summed over broadcasting)."""

    @staticmethod
    def forward(ctx, a, value, index):
        out = np.array(a, copy=True)
        try:
            out[index] = value
        except IndexError as exc:
            raise IndexOutOfRange(f"index: {exc} (tensor of shape {a.shape})") from None
        ctx.index, ctx.value_shape = index, np.shape(value)
        return out

    @staticmethod
    def backward(ctx, grad):
        ga = np.array(grad, copy=True)
        ga[ctx.index] = 0
        gv = np.asarray(grad[ctx.index])
        if len(ctx.value_shape) > gv.ndim:
            gv = gv.reshape((1,) * (len(ctx.value_shape) - gv.ndim) + gv.shape)
        return ga, unbroadcast(gv, ctx.value_shape), None


def setitem_(target, index, value, op_name="setitem"):
    """``target[index] = value`` in place (``copy_``, ``fill_`` use it with ``...``)."""
    from .elementwise import ensure_writable, adopt, check_inplace, snapshot, tracks, write_result

    index = plain_index(index)
    check_inplace(target, op_name)
    if not tracks(target, (value,)):
        ensure_writable(target)
        try:
            target.data[index] = value.data if isinstance(value, Tensor) else value
        except IndexError as exc:
            raise IndexOutOfRange(f"index: {exc} (tensor of shape {target.shape})") from None
        except ValueError as exc:
            raise ShapeError(f"{op_name}: {exc}") from None
        target._version.value += 1
        return target
    if target._base is not None:
        raise NotImplementedError(
            f"deltalab has no recorded {op_name} into a view of another tensor; write into the tensor itself")
    result = SetItem.apply(snapshot(target), value if isinstance(value, Tensor) else np.asarray(value), index)
    write_result(target, result, op_name, casting="unsafe")
    adopt(target, result)
    return target


# ---------------------------------------------------------------- torch's shape ops
class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None


def expand(a, sizes):
    """``a.expand(*sizes)``: size-1 dims repeated without copying; -1 keeps a size (as torch)."""
    if len(sizes) < a.ndim:
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(a.shape)}}}, size=[{len(sizes)}]): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor ({a.ndim})")
    lead = len(sizes) - a.ndim
    shape = []
    for i, size in enumerate(sizes):
        if i < lead:
            if size < 0:
                raise RuntimeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}")
            shape.append(size)
            continue
        own = a.shape[i - lead]
        if size == -1 or size == own:
            shape.append(own)
        elif own == 1:
            shape.append(size)
        else:
            raise RuntimeError(
                f"The expanded size of the tensor ({size}) must match the existing size ({own}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(a.shape)}")
    return Expand.apply(a, tuple(shape))


class Repeat(Function):
    @staticmethod
    def forward(ctx, a, sizes):
        padded = (1,) * (len(sizes) - a.ndim) + a.shape
        ctx.shape, ctx.padded, ctx.sizes = a.shape, padded, sizes
        return np.tile(a.reshape(padded), sizes)

    @staticmethod
    def backward(ctx, grad):
        interleaved = tuple(n for pair in zip(ctx.sizes, ctx.padded) for n in pair)
        summed = grad.reshape(interleaved).sum(axis=tuple(range(0, len(interleaved), 2)))
        return summed.reshape(ctx.shape), None


def repeat(a, sizes):
    """``a.repeat(*sizes)``: tile the values (copies), like ``torch.Tensor.repeat``."""
    if len(sizes) < a.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    return Repeat.apply(a, tuple(sizes))


def _narrow(a, dim, start, stop):
    selector = [slice(None)] * a.ndim
    selector[dim] = slice(start, stop)
    return getitem(a, tuple(selector))


def chunk(a, chunks, dim):
    """``chunks`` views of (at most) ceil(n / chunks) along ``dim``, like ``torch.chunk``."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = a.shape[dim]
    step = max(-(-n // chunks), 1)
    return tuple(_narrow(a, dim, start, min(start + step, n)) for start in range(0, max(n, 1), step))


def split(a, split_size_or_sections, dim):
    n = a.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        return tuple(_narrow(a, dim, start, min(start + step, n)) for start in range(0, max(n, 1), max(step, 1)))
    sections = [int(s) for s in split_size_or_sections]
    if sum(sections) != n:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension {dim}), "
            f"but got split_sizes={sections}")
    bounds = np.cumsum([0] + sections)
    return tuple(_narrow(a, dim, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]))


def _index_array(index, op_name):
    array = index.data if isinstance(index, Tensor) else np.asarray(index)
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"{op_name}(): Expected dtype int64 for index")
    return array


def _grid(index, dim):
    """Full index arrays addressing ``out[i, j, k] <- a[..., index[i, j, k] at dim, ...]``."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


class Gather(Function):
    @staticmethod
    def forward(ctx, a, dim, index):
        ctx.shape, ctx.where = a.shape, _grid(index, dim)
        try:
            return a[ctx.where]
        except IndexError as exc:
            raise IndexOutOfRange(f"gather: {exc}") from None

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(out, ctx.where, grad)
        return out, None, None


def gather(a, dim, index):
    """``out[i][j] = a[index[i][j]][j]`` (dim 0), like ``torch.gather``; repeated picks add gradients."""
    index = _index_array(index, "gather")
    if index.ndim != a.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for d in range(a.ndim):
        if d != dim and index.shape[d] > a.shape[d]:
            raise RuntimeError(
                f"Size does not match at dimension {d} expected index {list(index.shape)} to be no larger than "
                f"self {list(a.shape)} apart from dimension {dim}")
    return Gather.apply(a, dim, index)


class Scatter(Function):
    @staticmethod
    def forward(ctx, a, src, dim, index, add):
        where = _grid(index, dim)
        out = np.array(a, copy=True)
        values = src[tuple(slice(0, n) for n in index.shape)] if np.ndim(src) else src
        try:
            if add:
                np.add.at(out, where, values)
            else:
                out[where] = values
        except IndexError as exc:
            raise IndexOutOfRange(f"scatter: {exc}") from None
        ctx.where, ctx.add, ctx.src_shape, ctx.index_shape = where, add, np.shape(src), index.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        ga = np.array(grad, copy=True)
        if not ctx.add:
            ga[ctx.where] = 0
        gs = None
        if len(ctx.src_shape):
            gs = np.zeros(ctx.src_shape, dtype=grad.dtype)
            gs[tuple(slice(0, n) for n in ctx.index_shape)] = grad[ctx.where]
        return ga, gs, None, None, None


def scatter(a, dim, index, src, add=False):
    """``out[index[i][j]][j] = src[i][j]`` (dim 0), like ``torch.scatter`` / ``scatter_add``."""
    index = _index_array(index, "scatter")
    if index.ndim != a.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    if not isinstance(src, Tensor):
        src = np.asarray(src, dtype=a.dtype)
    return Scatter.apply(a, src, dim, index, add)


def _order(a, dim, descending):
    values = a.data
    if descending:
        values = ~values if values.dtype == np.bool_ else -values
    return np.argsort(values, axis=dim, kind="stable").astype(np.int64)


def sort(a, dim, descending):
    indices = _order(a, dim, descending)
    return gather(a, dim, indices), from_array(indices)


def topk(a, k, dim, largest):
    if not 0 <= k <= (a.shape[dim] if a.ndim else 1):
        raise RuntimeError("selected index k out of range")
    indices = np.take(_order(a, dim, largest), np.arange(k), axis=dim)
    return gather(a, dim, indices), from_array(indices)

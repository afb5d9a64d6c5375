"""Helpers shared by the ops: operand coercion and summing gradients back over broadcasts."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor


def operand(x, like=None):
    """Tensors pass through; numbers and arrays become arrays in ``like``'s float dtype.

    Keeping python scalars in the tensor's dtype avoids silent float32 -> float64 promotion.
    """
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    like_dtype = like.data.dtype if isinstance(like, Tensor) else None
    if like_dtype is not None and like_dtype.kind == "f" and (array.dtype.kind in "biu" or array.ndim == 0):
        array = array.astype(like_dtype)
    return array


def binary_operands(a, b):
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.dtype == b.data.dtype:
        return a, b  # the common case: nothing to promote
    a_scalar, b_scalar = _is_python_number(a), _is_python_number(b)
    a = operand(a, b if isinstance(b, Tensor) else None)
    b = operand(b, a if isinstance(a, Tensor) else None)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        a, b = _scalar_follows_array(a, b), _scalar_follows_array(b, a)
    return _integer_meets_float(a, b, a_scalar, b_scalar)


def _is_python_number(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _integer_meets_float(a, b, a_scalar, b_scalar):
    """PyTorch's promotion of integer and bool tensors against floats: the float side's dtype wins
    (NumPy would give float64), and a Python float gives the default dtype."""
    kinds = _kind(a) + _kind(b)
    if kinds == "ff" or "f" not in kinds:
        return a, b
    from .. import dtypes

    if kinds[0] == "f":
        target = dtypes.get_default_dtype() if a_scalar else _dtype(a)
    else:
        target = dtypes.get_default_dtype() if b_scalar else _dtype(b)
    return _as(a, target), _as(b, target)


def _kind(x):
    return x.data.dtype.kind if isinstance(x, Tensor) else x.dtype.kind if isinstance(x, np.ndarray) else (
        np.asarray(x).dtype.kind)


def _dtype(x):
    return x.data.dtype if isinstance(x, Tensor) else np.asarray(x).dtype


def _as(x, dtype):
    if _dtype(x) == dtype:
        return x
    if isinstance(x, Tensor):
        from .elementwise import cast

        return cast(x, dtype)
    return np.asarray(x, dtype=dtype)


def floating(a):
    """Integer and bool tensors as the default float dtype (torch's exp, log, sqrt, ... of integers)."""
    if isinstance(a, Tensor) and a.data.dtype.kind in "biu":
        from .. import dtypes
        from .elementwise import cast

        return cast(a, dtypes.get_default_dtype())
    return a


def _scalar_follows_array(scalar, other):
    """A 0-d float tensor takes the dtype of a float tensor with dimensions, as in PyTorch's type
    promotion: ``x32 * tensor(0.5)`` stays float32 (the cast is in the graph, so gradients too)."""
    if (
        scalar.ndim == 0 and other.ndim > 0 and scalar.dtype != other.dtype
        and scalar.dtype.kind == "f" and other.dtype.kind == "f"
    ):
        from .elementwise import cast

        return cast(scalar, other.dtype)
    return scalar


def check_broadcast(op_name, a, b):
    sa, sb = np.shape(getattr(a, "data", a)), np.shape(getattr(b, "data", b))
    if sa == sb or not sa or not sb:  # the common cases need no broadcasting rules
        return
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ShapeError(f"{op_name}: shapes {sa} and {sb} cannot be broadcast together") from None


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_axis(axis, ndim):
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def pair(value, name, op_name):
    """An int or a pair of ints as a pair (per-dimension stride, padding, kernel size)."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return (int(value[0]), int(value[1]))
    from ..errors import ConfigurationError

    raise ConfigurationError(f"{op_name}: {name} must be an int or a pair of ints, got {value!r}")

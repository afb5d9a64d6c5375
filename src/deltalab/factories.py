"""Tensor factories and module-level functions with torch's names and signatures.

``dl.zeros(2, 3)``, ``dl.randn(4, dtype=dl.float64)``, ``dl.arange(5)``, ``dl.sum(x, dim=1)``, ...
Random factories draw from deltalab's seeded generator (:func:`deltalab.manual_seed`); the values
are not torch's (its generator is not reproduced bit for bit), so twin tests copy weights.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import dtypes
from .random import generator as _generator
from .tensor import Tensor, check_device, checked_dim, from_array, ones, shape_from_args, tensor, zeros


def _float_dtype(dtype):
    return dtypes.get_default_dtype() if dtype is None else dtypes.resolve_any(dtype)


def _make(array, requires_grad=False, device=None):
    check_device(device)
    return Tensor(array, requires_grad=requires_grad)


def _random_generator(generator):
    return _generator() if generator is None else generator


# ------------------------------------------------------------------ factories
def empty(*size, dtype=None, device=None, requires_grad=False, **_):
    """Like ``torch.empty`` (the values are zeros here, never uninitialised memory)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        if isinstance(fill_value, builtins.bool):
            dtype = dtypes.bool
        elif isinstance(fill_value, (builtins.int, np.integer)):
            dtype = dtypes.int64
    array = np.full(shape_from_args((size,)), fill_value, dtype=_float_dtype(dtype))
    return _make(array, requires_grad, device)


def _like(template, dtype):
    return dtypes.resolve_any(dtype) if dtype is not None else template.dtype


def zeros_like(input, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002 - torch's name
    return _make(np.zeros(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def ones_like(input, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002
    return _make(np.ones(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def empty_like(input, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002
    return zeros_like(input, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002
    return _make(np.full(input.shape, fill_value, dtype=_like(input, dtype)), requires_grad, device)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1), like ``torch.rand`` (deltalab's generator, not torch's values)."""
    array = _random_generator(generator).random(shape_from_args(size)).astype(_float_dtype(dtype))
    return _make(array, requires_grad, device)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal, like ``torch.randn`` (deltalab's generator, not torch's values)."""
    array = _random_generator(generator).standard_normal(shape_from_args(size)).astype(_float_dtype(dtype))
    return _make(array, requires_grad, device)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers in [low, high) as int64, like ``torch.randint(low=0, high, size)``."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    array = _random_generator(generator).integers(low, high, shape_from_args((size,)))
    return _make(array.astype(dtypes.resolve_any(dtype) if dtype is not None else np.int64), requires_grad, device)


def rand_like(input, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002
    return rand(*input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False, **_):  # noqa: A002
    return randn(*input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    array = _random_generator(generator).permutation(n)
    return _make(array.astype(dtypes.resolve_any(dtype) if dtype is not None else np.int64), requires_grad, device)


def normal(mean, std, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    mean_array = mean.data if isinstance(mean, Tensor) else mean
    std_array = std.data if isinstance(std, Tensor) else std
    shape = shape_from_args((size,)) if size is not None else np.broadcast_shapes(np.shape(mean_array), np.shape(std_array))
    array = _random_generator(generator).normal(mean_array, std_array, shape)
    if dtype is None:
        dtype = mean.dtype if isinstance(mean, Tensor) else std.dtype if isinstance(std, Tensor) else None
    return _make(np.asarray(array).astype(_float_dtype(dtype)), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like ``torch.arange``: int64 for integer arguments, the default float dtype otherwise."""
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if dtype is None:
        integral = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in values)
        dtype = dtypes.int64 if integral else dtypes.get_default_dtype()
    if values[2] == 0:
        raise RuntimeError("step must be nonzero")
    count = builtins.max(builtins.int(np.ceil((values[1] - values[0]) / values[2])), 0)
    array = (values[0] + np.arange(count, dtype=np.float64 if dtypes.is_floating(dtype) else np.int64) * values[2])
    return _make(array.astype(dtypes.resolve_any(dtype)), requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    array = np.linspace(start, end, steps, dtype=np.float64).astype(_float_dtype(dtype))
    return _make(array, requires_grad, device)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    array = np.logspace(start, end, steps, base=base, dtype=np.float64).astype(_float_dtype(dtype))
    return _make(array, requires_grad, device)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad, device)


def from_numpy(ndarray):
    """A tensor sharing ``ndarray``'s memory and dtype, like ``torch.from_numpy``."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    dtypes.resolve_any(ndarray.dtype)
    return from_array(ndarray)


def as_tensor(data, dtype=None, device=None):
    """Like ``torch.as_tensor``: a tensor (or array of the right dtype) is used as it is, no copy."""
    check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtypes.resolve_any(dtype)) == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):  # noqa: A002
    return input.numel()


# ------------------------------------------------------------ module-level forms
def _tensor(x):
    return x if isinstance(x, Tensor) else tensor(x)


def _method(name, doc):
    def function(input, *args, **kwargs):  # noqa: A002 - torch's argument name
        return getattr(_tensor(input), name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = doc
    return function


_FORMS = {
    "sum": "Sum over all dims or ``dim`` (an int or a tuple), like ``torch.sum``.",
    "mean": "Mean over all dims or ``dim``, like ``torch.mean``.",
    "prod": "Product over all values or one ``dim``.",
    "max": "``max(x)``, ``max(x, dim) -> (values, indices)`` or ``max(x, other)`` as torch.",
    "min": "``min(x)``, ``min(x, dim) -> (values, indices)`` or ``min(x, other)`` as torch.",
    "amax": "Maximum over dims; ties share the gradient.",
    "amin": "Minimum over dims; ties share the gradient.",
    "argmax": "Index of the maximum (int64), like ``torch.argmax``.",
    "argmin": "Index of the minimum (int64), like ``torch.argmin``.",
    "var": "Variance (unbiased by default), like ``torch.var``.",
    "std": "Standard deviation (unbiased by default), like ``torch.std``.",
    "logsumexp": "log Σ exp over ``dim``, stable.",
    "norm": "Vector norm (2 by default).",
    "all": "True where every value is nonzero.",
    "any": "True where some value is nonzero.",
    "cumsum": "Cumulative sum along ``dim``.",
    "exp": "e^x.", "log": "Natural logarithm.", "sqrt": "Square root.", "abs": "|x|.", "sin": "sin x.",
    "cos": "cos x.", "tanh": "tanh x.", "sigmoid": "1 / (1 + e^-x).", "relu": "max(0, x).", "neg": "-x.",
    "square": "x².", "rsqrt": "1/√x.", "log1p": "log(1 + x).", "expm1": "e^x - 1.", "sign": "sign(x).",
    "floor": "floor (zero gradient).", "ceil": "ceil (zero gradient).", "round": "round (zero gradient).",
    "trunc": "trunc (zero gradient).", "reciprocal": "1/x.",
    "clamp": "Clamp into [min, max], like ``torch.clamp``.", "clip": "Alias of clamp.",
    "add": "a + alpha·b.", "sub": "a - alpha·b.", "mul": "a·b.", "div": "a / b (rounding_mode too).",
    "pow": "a ** b.", "maximum": "Elementwise maximum.", "minimum": "Elementwise minimum.",
    "matmul": "Matrix product with batching, like ``torch.matmul``.", "mm": "2-D matrix product.",
    "bmm": "Batched matrix product (3-D).", "dot": "Dot product of 1-D tensors.", "mv": "Matrix-vector product.",
    "outer": "Outer product.",
    "flatten": "Merge dims start_dim..end_dim.", "reshape": "Same values, new shape.",
    "squeeze": "Drop size-1 dims.", "unsqueeze": "Insert a size-1 dim.", "transpose": "Swap two dims.",
    "permute": "Reorder dims.", "t": "Transpose a 2-D tensor.", "chunk": "Split into chunks.",
    "split": "Split by size or sections.", "unbind": "Slices along a dim.", "narrow": "A slice along a dim.",
    "flip": "Reverse along dims.", "gather": "Pick values along a dim by index.",
    "scatter": "Write values along a dim by index.", "scatter_add": "Add values along a dim by index.",
    "index_select": "Select along a dim by indices.", "masked_fill": "Fill where a mask is true.",
    "masked_select": "The values where a mask is true (1-D).", "sort": "Sorted values and their indices.",
    "argsort": "Indices that sort.", "topk": "The k largest (or smallest) values and their indices.",
    "softmax": "softmax along ``dim``.", "log_softmax": "log softmax along ``dim``.",
    "isnan": "True where NaN.", "isinf": "True where ±inf.", "isfinite": "True where finite.",
    "nonzero": "Indices of nonzero values.", "tril": "Lower triangle.", "triu": "Upper triangle.",
    "eq": "Elementwise ==.", "ne": "Elementwise !=.", "lt": "Elementwise <.", "le": "Elementwise <=.",
    "gt": "Elementwise >.", "ge": "Elementwise >=.", "equal": "Same shape and values.",
    "allclose": "All values close.", "logical_not": "Elementwise not.", "logical_and": "Elementwise and.",
    "logical_or": "Elementwise or.",
}

for _name, _doc in _FORMS.items():
    globals()[_name] = _method(_name, _doc)


def where(condition, input=None, other=None):  # noqa: A002
    """``where(condition, x, y)``; ``where(condition)`` gives the indices (as torch)."""
    from .ops import where as where_op

    if input is None and other is None:
        return _tensor(condition).nonzero(as_tuple=True)
    return where_op(condition, input, other)


def cat(tensors, dim=0, *, axis=None):
    from .ops import concatenate

    tensors = [_tensor(t) for t in tensors]
    return concatenate(tensors, checked_dim(dim if axis is None else axis, tensors[0].ndim if tensors else 1))


concatenate = concat = cat


def stack(tensors, dim=0, *, axis=None):
    from .ops import stack as stack_op

    tensors = [_tensor(t) for t in tensors]
    return stack_op(tensors, checked_dim(dim if axis is None else axis, (tensors[0].ndim if tensors else 0) + 1))


def clone(input):  # noqa: A002
    return _tensor(input).clone()


def detach(input):  # noqa: A002
    return _tensor(input).detach()


def broadcast_tensors(*tensors):
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(_tensor(t).expand(*shape) for t in tensors)


__all__ = [
    "arange", "as_tensor", "broadcast_tensors", "cat", "clone", "concat", "concatenate", "detach", "empty",
    "empty_like", "eye", "from_numpy", "full", "full_like", "is_tensor", "linspace", "logspace", "normal", "numel",
    "ones", "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "stack", "tensor", "where",
    "zeros", "zeros_like",
] + list(_FORMS)

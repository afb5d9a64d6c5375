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
from .tensor import (
    Tensor,
    check_device,
    check_factory_options,
    checked_dim,
    contiguous_format,
    factory_shape,
    from_array,
    ones,
    preserve_format,
    strided,
    tensor,
    zeros,
)


def _float_dtype(dtype):
    return dtypes.get_default_dtype() if dtype is None else dtypes.resolve_any(dtype)


def _make(array, requires_grad=False, device=None):
    check_device(device)
    return Tensor(array, requires_grad=requires_grad)


def _random_generator(generator):
    """deltalab's generator, or the NumPy Generator given (``generator=np.random.default_rng(s)``)."""
    if generator is None:
        return _generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a NumPy Generator (np.random.default_rng(seed)), not "
                        f"{type(generator).__name__}")
    return generator


def _floating_only(function, dtype):
    """torch draws uniform and normal values in floating dtypes only (NotImplementedError otherwise)."""
    if not dtypes.is_floating(dtype):
        raise NotImplementedError(f"{function}() is not implemented for '{dtypes.torch_name(dtype)}' "
                                  "(floating point dtypes only, as torch)")
    return dtype


def _integer(function, name, value):
    if isinstance(value, (builtins.bool, np.bool_)) or not hasattr(value, "__index__"):
        raise TypeError(f"{function}(): argument '{name}' must be int, not {type(value).__name__}")
    return value.__index__()


def _number(value):
    return value.item() if isinstance(value, Tensor) else value


# ------------------------------------------------------------------ factories
def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
          memory_format=None, **size_keyword):
    """Like ``torch.empty`` (the values are zeros here, never uninitialised memory)."""
    check_factory_options("empty", memory_format=memory_format)
    shape = factory_shape("empty", size, size_keyword)
    return zeros(shape, out=out, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad,
                 pin_memory=pin_memory)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """``size`` filled with ``fill_value``: int64 for an int, bool for a bool, else the default float dtype."""
    check_factory_options("full", out, layout)
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not {type(size).__name__}")
    fill_value = _number(fill_value)
    if dtype is None:
        if isinstance(fill_value, (builtins.bool, np.bool_)):
            dtype = dtypes.bool
        elif isinstance(fill_value, (builtins.int, np.integer)):
            dtype = dtypes.int64
    array = np.full(factory_shape("full", (size,), {}), fill_value, dtype=_float_dtype(dtype))
    return _make(array, requires_grad, device)


def _like(template, dtype):
    return dtypes.resolve_any(dtype) if dtype is not None else template.dtype


def _like_options(function, layout, memory_format):
    check_factory_options(function, layout=layout, memory_format=memory_format)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002 - torch's name
               memory_format=None):
    _like_options("zeros_like", layout, memory_format)
    return _make(np.zeros(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):  # noqa: A002
    _like_options("ones_like", layout, memory_format)
    return _make(np.ones(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):  # noqa: A002
    """Like ``torch.empty_like`` (zeros here, never uninitialised memory)."""
    _like_options("empty_like", layout, memory_format)
    return _make(np.zeros(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002
              memory_format=None):
    _like_options("full_like", layout, memory_format)
    return _make(np.full(input.shape, _number(fill_value), dtype=_like(input, dtype)), requires_grad, device)


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False, **size_keyword):
    """Uniform on [0, 1), like ``torch.rand`` (deltalab's generator, not torch's values)."""
    check_factory_options("rand", out, layout, pin_memory)
    dtype = _floating_only("rand", _float_dtype(dtype))
    array = _random_generator(generator).random(factory_shape("rand", size, size_keyword)).astype(dtype)
    return _make(array, requires_grad, device)


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, **size_keyword):
    """Standard normal, like ``torch.randn`` (deltalab's generator, not torch's values)."""
    check_factory_options("randn", out, layout, pin_memory)
    dtype = _floating_only("randn", _float_dtype(dtype))
    array = _random_generator(generator).standard_normal(factory_shape("randn", size, size_keyword)).astype(dtype)
    return _make(array, requires_grad, device)


def _integers(function, generator, low, high, shape, dtype):
    low, high = _integer(function, "low", low), _integer(function, "high", high)
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _random_generator(generator).integers(low, high, shape).astype(dtype)


def randint(*bounds, size=None, low=None, high=None, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad=False):
    """Integers in [low, high) as int64, like ``torch.randint(low=0, high, size)``: ``randint(5, (3,))``,
    ``randint(2, 5, (3,))``, ``randint(high=5, size=(3,))``."""
    check_factory_options("randint", out, layout)
    bounds = list(bounds)
    if size is None and bounds and isinstance(bounds[-1], (tuple, list)):
        size = bounds.pop()
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if len(bounds) > 2 or (len(bounds) == 2 and (low is not None or high is not None)) or (
            len(bounds) == 1 and high is not None and low is not None):
        raise TypeError("randint() takes low (default 0), high and size")
    if len(bounds) == 2:
        low, high = bounds
    elif len(bounds) == 1:
        if high is None:
            high = bounds[0]
        else:
            low = bounds[0]
    if high is None:
        raise TypeError("randint() missing required argument 'high'")
    dtype = dtypes.resolve_any(dtype) if dtype is not None else np.int64
    array = _integers("randint", generator, 0 if low is None else low, high, factory_shape("randint", (size,), {}),
                      dtype)
    return _make(array, requires_grad, device)


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None, requires_grad=False,  # noqa: A002
                 memory_format=None):
    """``randint_like(x, high)`` or ``randint_like(x, low, high)``: x's shape and dtype, as torch."""
    _like_options("randint_like", layout, memory_format)
    if high is None:
        low, high = 0, low
    return _make(_integers("randint_like", None, low, high, input.shape, _like(input, dtype)), requires_grad, device)


def rand_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):  # noqa: A002
    _like_options("rand_like", layout, memory_format)
    dtype = _floating_only("rand_like", _like(input, dtype))
    return _make(_random_generator(None).random(input.shape).astype(dtype), requires_grad, device)


def randn_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):  # noqa: A002
    _like_options("randn_like", layout, memory_format)
    dtype = _floating_only("randn_like", _like(input, dtype))
    return _make(_random_generator(None).standard_normal(input.shape).astype(dtype), requires_grad, device)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
             pin_memory=False):
    check_factory_options("randperm", out, layout, pin_memory)
    n = _integer("randperm", "n", n)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    array = _random_generator(generator).permutation(n)
    return _make(array.astype(dtypes.resolve_any(dtype) if dtype is not None else np.int64), requires_grad, device)


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None,
           requires_grad=False):
    """``normal(mean_tensor, std)``, ``normal(mean, std_tensor)``, or ``normal(mean, std, size)``, as torch."""
    check_factory_options("normal", out, layout)
    mean_array = mean.data if isinstance(mean, Tensor) else mean
    std_array = std.data if isinstance(std, Tensor) else std
    if size is None:
        if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
            raise TypeError("normal() with a float mean and std needs a size: normal(mean, std, size)")
        shape = np.broadcast_shapes(np.shape(mean_array), np.shape(std_array))
    else:
        shape = factory_shape("normal", (size,), {})
    if np.any(np.asarray(std_array) < 0):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    array = _random_generator(generator).normal(mean_array, std_array, shape)
    if dtype is None:
        dtype = mean.dtype if isinstance(mean, Tensor) else std.dtype if isinstance(std, Tensor) else None
    return _make(np.asarray(array).astype(_floating_only("normal", _float_dtype(dtype))), requires_grad, device)


def arange(start=None, end=None, step=1, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """Like ``torch.arange``: int64 for integer arguments, the default float dtype otherwise."""
    check_factory_options("arange", out, layout)
    if start is None and end is None:
        raise TypeError("arange() missing required argument 'end'")
    if end is None:
        start, end = 0, start
    elif start is None:
        start = 0
    values = [_number(v) for v in (start, end, step)]
    if dtype is None:
        integral = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in values)
        dtype = dtypes.int64 if integral else dtypes.get_default_dtype()
    first, last, stride = values
    if stride == 0:
        raise RuntimeError("step must be nonzero")
    if (stride > 0 and last < first) or (stride < 0 and last > first):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    count = builtins.max(builtins.int(np.ceil((last - first) / stride)), 0)
    array = (first + np.arange(count, dtype=np.float64 if dtypes.is_floating(dtype) else np.int64) * stride)
    return _make(array.astype(dtypes.resolve_any(dtype)), requires_grad, device)


def _steps(function, steps):
    steps = _integer(function, "steps", steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    return steps


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """``steps`` values from start to end, rounded as torch's kernel: start + i·step for the first
    half, end − (steps − 1 − i)·step for the rest, in the result's float dtype (float64 for integers)."""
    check_factory_options("linspace", out, layout)
    dtype = np.dtype(_float_dtype(dtype))
    steps = _steps("linspace", steps)
    compute = dtype if dtypes.is_floating(dtype) else np.dtype(np.float64)
    first, last = _number(start), _number(end)
    if not dtypes.is_floating(dtype):  # torch first converts the ends to the integer dtype
        first, last = builtins.int(first), builtins.int(last)
    first, last = compute.type(first), compute.type(last)
    if steps == 1:
        array = np.array([first], dtype=compute)
    else:
        step = (last - first) / compute.type(builtins.max(steps - 1, 1))
        index = np.arange(steps)
        array = np.where(index < steps // 2, first + step * index.astype(compute),
                         last - step * (steps - 1 - index).astype(compute))
    return _make(array.astype(dtype), requires_grad, device)


def logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    check_factory_options("logspace", out, layout)
    steps = _steps("logspace", steps)
    array = np.logspace(_number(start), _number(end), steps, base=base, dtype=np.float64).astype(_float_dtype(dtype))
    return _make(array, requires_grad, device)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    check_factory_options("eye", out, layout)
    n = _integer("eye", "n", n)
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    if m is not None:
        m = _integer("eye", "m", m)
        if m < 0:
            raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad, device)


def from_numpy(ndarray):
    """A tensor sharing ``ndarray``'s memory and dtype, like ``torch.from_numpy``: a change to either
    is seen by the other."""
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
    "arange", "as_tensor", "contiguous_format", "preserve_format", "randint_like", "strided", "broadcast_tensors", "cat", "clone", "concat", "concatenate", "detach", "empty",
    "empty_like", "eye", "from_numpy", "full", "full_like", "is_tensor", "linspace", "logspace", "normal", "numel",
    "ones", "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "stack", "tensor", "where",
    "zeros", "zeros_like",
] + list(_FORMS)

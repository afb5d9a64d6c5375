"""The Tensor: a NumPy array plus the bookkeeping reverse-mode autodiff needs.

``data`` holds the values, ``grad`` (a Tensor or None) the accumulated gradient,
``grad_fn`` the :class:`~deltalab.autograd.Node` that produced it (None for leaves).
A tensor may carry a ``name``; reports use names to label values and deltas.

The methods follow ``torch.Tensor``: ``dim=``/``keepdim=`` (``axis=``/``keepdims=`` are
accepted too), comparisons give bool tensors, integer and bool tensors exist (labels, masks,
indices), and in-place methods (``add_``, ``t[i] = v``, ``-=``) change the tensor itself under
PyTorch's rules: a leaf that requires grad only inside ``no_grad``, and a value saved for
backward and changed since makes ``backward()`` raise (the version counter).
"""
from __future__ import annotations

import builtins
import collections

import numpy as np

from . import autograd, dtypes
from .errors import MissingTorchFeature  # noqa: F401  (deltalab.tensor.MissingTorchFeature, as before)


class Size(tuple):
    """A shape, like ``torch.Size``: a tuple with ``numel()``."""

    def numel(self):
        return int(np.prod(self, dtype=np.int64))

    def __repr__(self):
        return f"deltalab.Size({list(self)})"


class _SizeAccessor(builtins.int):
    """The element count that, called, answers like ``torch.Tensor.size(dim=None)``."""

    def __new__(cls, count, shape):
        accessor = super().__new__(cls, count)
        accessor.shape = shape
        return accessor

    def __call__(self, dim=None):
        if dim is None:
            return Size(self.shape)
        return self.shape[_dim(dim, len(self.shape))]


class device:  # noqa: N801 - mirrors torch.device
    """Only the CPU exists; ``device("cuda")`` is a clear error instead of a silent CPU run."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):  # noqa: A002 - torch's argument name
        if isinstance(type, device):
            type, index = type.type, type.index
        name = str(type)
        if name.split(":")[0] != "cpu":
            raise RuntimeError(f"deltalab runs on the CPU only: device {name!r} is not available (use 'cpu')")
        self.type, self.index = "cpu", index

    def __eq__(self, other):
        if isinstance(other, str):
            return other.split(":")[0] == "cpu"
        return isinstance(other, device)

    __hash__ = object.__hash__

    def __str__(self):
        return "cpu"

    def __repr__(self):
        return "device(type='cpu')"


CPU = device("cpu")


def check_device(value):
    """Accept None, "cpu", "cpu:0" or a device; any other device is a RuntimeError."""
    if value is not None:
        device(value)


class TorchConstant:
    """A torch layout or memory format deltalab has (the only ones its NumPy arrays know), so that
    ``layout=dl.strided`` or ``memory_format=dl.contiguous_format`` read as in torch."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"deltalab.{self.name}"


strided = TorchConstant("strided")
contiguous_format = TorchConstant("contiguous_format")
preserve_format = TorchConstant("preserve_format")


def from_array(array) -> Tensor:
    """A tensor wrapping ``array`` itself: no copy, no dtype change, no gradient, a fresh version
    counter.  The engine's results are made this way, and ``from_numpy`` (memory shared, as torch)."""
    t = Tensor.__new__(Tensor)
    t._data = array if isinstance(array, np.ndarray) else np.asarray(array)
    t.grad = None
    t.requires_grad = False
    t.grad_fn = None
    t._output_index = 0
    t.name = None
    t._version = autograd.Version()
    t._base = None
    t._view_index = None
    return t


def write_in_place(target, values):
    """Write ``values`` into ``target``'s own buffer outside the graph (views and aliases of the
    array see it) and count the change in its version, as torch's in-place ops under no_grad: what
    an optimiser's step does to a parameter, at the cost of one copy."""
    if not target.data.flags.writeable:
        raise RuntimeError("the tensor's values are read-only (a read-only NumPy array): clone() it first")
    np.copyto(target.data, values, casting="unsafe")
    target._version.value += 1


# (values, indices) of max/min/sort/topk along a dim, like torch.return_types
MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])
SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])


class Tensor:
    __slots__ = ("_data", "grad", "requires_grad", "grad_fn", "_output_index", "name", "_version", "_base",
                 "_view_index", "__weakref__")
    __array_priority__ = 1000  # so `ndarray * tensor` defers to Tensor.__rmul__

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            if dtype is None and self.data.dtype.kind in "iub" and not isinstance(data, (np.ndarray, Tensor)):
                # the lecture's integer lists with requires_grad=True (deltalab's habit, not torch's)
                self.data = self.data.astype(dtypes.get_default_dtype())
            else:
                raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._output_index = 0
        self.name = name
        self._version = autograd.Version()
        self._base = None
        self._view_index = None

    # ----------------------------------------------------------------- basics
    @property
    def data(self):
        """The values: the NumPy array itself (torch's ``.data`` is a Tensor sharing them)."""
        return self._data

    @data.setter
    def data(self, value):
        # torch's `p.data = other_tensor` gives p the other tensor's values (their memory, too)
        self._data = value._data if isinstance(value, Tensor) else value if isinstance(value, np.ndarray) else (
            np.asarray(value))

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return CPU

    @property
    def is_cuda(self):
        return False

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return _ops().transpose(self, None)

    @property
    def mT(self):
        return self.transpose(-2, -1)

    @property
    def size(self):
        """``t.size()`` is the shape as a ``Size`` and ``t.size(d)`` one dim's length (torch); the bare
        ``t.size`` also works as the element count (NumPy's habit, kept for ``np.size(t)``)."""
        return _SizeAccessor(self.data.size, self.data.shape)

    def dim(self):
        return self.data.ndim

    ndimension = dim

    def numel(self):
        return self.data.size

    nelement = numel

    def element_size(self):
        return self.data.itemsize

    def is_floating_point(self):
        return self.data.dtype.kind == "f"

    def is_contiguous(self):
        return self.data.flags.c_contiguous

    def contiguous(self):
        return self if self.data.flags.c_contiguous else _ops().elementwise.clone(self, "C")

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __contains__(self, element):
        other = element.data if isinstance(element, Tensor) else element
        return builtins.bool(np.any(self.data == other))

    def __bool__(self):
        if self.data.size != 1:
            amount = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {amount} is ambiguous")
        return builtins.bool(self.data.reshape(-1)[0])

    def __float__(self):
        return builtins.float(self._one_scalar())

    def __int__(self):
        return builtins.int(self._one_scalar())

    def _one_scalar(self):
        if self.data.size != 1:  # float(t) / int(t): torch's ValueError (t.item() raises RuntimeError)
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __index__(self):
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.data.reshape(-1)[0])

    def __format__(self, spec):
        if self.data.size == 1 and self.data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def numpy(self):
        """The values as a NumPy array (shares memory, like ``torch.Tensor.numpy``; unlike torch, also on a
        tensor that requires grad)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise RuntimeError(f"a Tensor with {self.data.size} elements cannot be converted to Scalar")
        return self.data.reshape(-1)[0].item()

    def tolist(self):
        return self.data.tolist()

    def __repr__(self):
        extra = ""
        if self.name:
            extra += f", name={self.name!r}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        implicit = (np.float64, np.int64, np.bool_) if dtypes.get_default_dtype() == np.float64 else (
            np.float32, np.int64, np.bool_)
        if self.data.dtype in implicit:
            return f"tensor({body}{extra})"
        return f"tensor({body}, dtype={self.data.dtype}{extra})"

    # -------------------------------------------------------------- autodiff
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (call ``zero_grad`` between steps)."""
        if create_graph:
            raise NotImplementedError("deltalab has no torch higher-order gradients (backward(create_graph=True))")
        autograd.backward(self, gradient)

    def retain_grad(self):
        """Keep this intermediate tensor's gradient in ``.grad`` after backward (its delta)."""
        if self.grad_fn is not None:
            self.grad_fn.retained[self._output_index] = self
        return self

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same values (the same buffer and version counter, as torch), cut from the graph."""
        out = from_array(self.data)
        out.name = self.name
        out._version = self._version
        return out

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self):
        return _ops().elementwise.clone(self)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        self.requires_grad = builtins.bool(requires_grad)
        return self

    def named(self, name):
        """Give this tensor a name (returns self, so it chains: ``(W @ x).named('z1')``)."""
        self.name = name
        return self

    # ------------------------------------------------------------ dtypes, devices
    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
        """``to(dtype)``, ``to("cpu")``, ``to(device, dtype)``, ``to(other)``: a cast (same tensor if nothing
        changes, as torch); devices other than the CPU are an error."""
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (str, globals()["device"])):
                check_device(arg)
            elif arg is not None:
                dtype = arg
        check_device(device)
        out = self if dtype is None else _ops().cast(self, dtypes.resolve_any(dtype))
        return out.clone() if copy and out is self else out

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return f"torch.{dtypes.torch_name(self.dtype)}Tensor"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {
                "FloatTensor": dtypes.float32, "DoubleTensor": dtypes.float64, "LongTensor": dtypes.int64,
                "IntTensor": dtypes.int32, "BoolTensor": dtypes.bool, "ByteTensor": dtypes.uint8}
            key = dtype.split(".")[-1]
            if key not in names:
                raise NotImplementedError(f"deltalab has no torch.{key}")
            dtype = names[key]
        return self.to(dtype)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return zeros(*size, dtype=self.dtype if dtype is None else dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=self.dtype if dtype is None else dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        check_device(device)
        array = np.full(_shape_args((size,)), fill_value, dtype=self.dtype if dtype is None else dtypes.resolve_any(dtype))
        return Tensor(array, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return tensor(data, dtype=self.dtype if dtype is None else dtype, device=device, requires_grad=requires_grad)

    def type_as(self, other):
        return self.to(other.dtype)

    def cpu(self):
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("deltalab runs on the CPU only: .cuda() is not available (use .cpu() or .to('cpu'))")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def bool(self):
        return self.to(dtypes.bool)

    def half(self):
        raise NotImplementedError("deltalab has no torch.float16 (half): use float32 or float64")

    bfloat16 = half

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __floordiv__(self, other):
        return _ops().elementwise.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops().elementwise.floor_divide(other, self)

    def __mod__(self, other):
        return _ops().elementwise.remainder(self, other)

    def __rmod__(self, other):
        return _ops().elementwise.remainder(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __pow__(self, other):
        return _ops().pow(self, other)

    def __rpow__(self, other):
        return _ops().pow(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    def __setitem__(self, index, value):
        """``t[index] = value`` writes into the tensor (recorded in the graph when grad mode needs it)."""
        _ops().shape.setitem_(self, index, value)

    # in place: `t += x` changes t itself (as torch), it does not rebind the name to a new tensor
    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __ipow__(self, other):
        return self.pow_(other)

    def __ifloordiv__(self, other):
        return _ops().elementwise.apply_inplace(self, "floor_divide_", Tensor.__floordiv__, other)

    def __imod__(self, other):
        return _ops().elementwise.apply_inplace(self, "remainder_", Tensor.__mod__, other)

    def __iand__(self, other):
        return _ops().elementwise.apply_inplace(self, "bitwise_and_", Tensor.__and__, other)

    def __ior__(self, other):
        return _ops().elementwise.apply_inplace(self, "bitwise_or_", Tensor.__or__, other)

    def __ixor__(self, other):
        return _ops().elementwise.apply_inplace(self, "bitwise_xor_", Tensor.__xor__, other)

    # comparisons give bool tensors without a graph (masks, accuracy, `where`)
    def _compare(self, other, op):
        if other is None or isinstance(other, (str, bytes, dict)):
            return NotImplemented
        other = other.data if isinstance(other, Tensor) else other
        _ops().elementwise.check_broadcast(op.__name__, self.data, other)
        return from_array(np.asarray(op(self.data, other)))

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne

    # like torch, tensors hash by identity, so they work in sets and as dict keys
    __hash__ = object.__hash__

    def _logical(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return from_array(np.asarray(op(self.data, other)))

    def __and__(self, other):
        return self._logical(other, np.bitwise_and)

    __rand__ = __and__

    def __or__(self, other):
        return self._logical(other, np.bitwise_or)

    __ror__ = __or__

    def __xor__(self, other):
        return self._logical(other, np.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self):
        if self.data.dtype.kind == "f":
            raise TypeError("~ (bitwise not) is only supported for integer and bool tensors")
        return from_array(np.invert(self.data))

    def logical_not(self):
        return from_array(np.logical_not(self.data))

    def logical_and(self, other):
        return self._logical(other, np.logical_and)

    def logical_or(self, other):
        return self._logical(other, np.logical_or)

    def equal(self, other):
        """True if both have the same shape and values (``torch.equal``)."""
        return self.shape == other.shape and builtins.bool(np.array_equal(self.data, other.data))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return builtins.bool(np.allclose(self.data, getattr(other, "data", other), rtol, atol, equal_nan))

    def isnan(self):
        return from_array(np.isnan(self.data))

    def isinf(self):
        return from_array(np.isinf(self.data))

    def isfinite(self):
        return from_array(np.isfinite(self.data))

    def nonzero(self, as_tuple=False):
        if as_tuple:
            return tuple(from_array(i.astype(np.int64)) for i in np.nonzero(self.data))
        return from_array(np.argwhere(self.data).astype(np.int64))

    # --------------------------------------------------------- elementwise
    def add(self, other, alpha=1):
        return _ops().add(self, other if alpha == 1 else _ops().mul(other, alpha))

    def sub(self, other, alpha=1):
        return _ops().sub(self, other if alpha == 1 else _ops().mul(other, alpha))

    subtract = sub

    def mul(self, other):
        return _ops().mul(self, other)

    multiply = mul

    def div(self, other, rounding_mode=None):
        if rounding_mode is None:
            return _ops().div(self, other)
        return _ops().elementwise.rounded_divide(self, other, rounding_mode)

    divide = true_divide = div

    def pow(self, exponent):
        return _ops().pow(self, exponent)

    def neg(self):
        return _ops().neg(self)

    negative = neg

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().elementwise.sqrt(self)

    def rsqrt(self):
        return 1 / self.sqrt()

    def square(self):
        return _ops().mul(self, self)

    def reciprocal(self):
        return 1 / self

    def abs(self):
        return _ops().elementwise.abs(self)

    absolute = abs

    def sign(self):
        return _ops().elementwise.rounding(self, np.sign)

    def sin(self):
        return _ops().elementwise.sin(self)

    def cos(self):
        return _ops().elementwise.cos(self)

    def log1p(self):
        return _ops().elementwise.log1p(self)

    def expm1(self):
        return _ops().elementwise.expm1(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)

    def clamp(self, min=None, max=None):  # noqa: A002 - torch's argument names
        return _ops().elementwise.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops().elementwise.maximum(self, other)

    def minimum(self, other):
        return _ops().elementwise.minimum(self, other)

    def floor(self):
        return _ops().elementwise.rounding(self, np.floor)

    def ceil(self):
        return _ops().elementwise.rounding(self, np.ceil)

    def round(self, decimals=0):
        return _ops().elementwise.rounding(self, lambda a: np.round(a, decimals))

    def trunc(self):
        return _ops().elementwise.rounding(self, np.trunc)

    def masked_fill(self, mask, value):
        return _ops().elementwise.masked_fill(self, mask, value)

    def where(self, condition, other):
        return _ops().where(condition, self, other)

    def lerp(self, end, weight):
        return self + weight * (end - self)

    def mm(self, other):
        if self.ndim != 2 or getattr(other, "ndim", np.ndim(other)) != 2:
            raise RuntimeError("mm: both arguments must be 2-D (use matmul for batches and vectors)")
        return _ops().matmul(self, other)

    def matmul(self, other):
        return _ops().matmul(self, other)

    def bmm(self, other):
        if self.ndim != 3 or getattr(other, "ndim", np.ndim(other)) != 3:
            raise RuntimeError("bmm: both arguments must be 3-D (batch, n, m)")
        return _ops().matmul(self, other)

    def dot(self, other):
        if self.ndim != 1 or getattr(other, "ndim", 1) != 1:
            raise RuntimeError("1D tensors expected, but got other shapes (dot)")
        return _ops().matmul(self, other)

    def mv(self, vec):
        return _ops().matmul(self, vec)

    def outer(self, other):
        return _ops().mul(self.unsqueeze(1), other.unsqueeze(0) if isinstance(other, Tensor) else np.asarray(other)[None])

    # ------------------------------------------------------------ in place
    def add_(self, other, alpha=1):
        return _ops().elementwise.apply_inplace(self, "add_", lambda s, o: s.add(o, alpha), other)

    def sub_(self, other, alpha=1):
        return _ops().elementwise.apply_inplace(self, "sub_", lambda s, o: s.sub(o, alpha), other)

    def mul_(self, other):
        return _ops().elementwise.apply_inplace(self, "mul_", _ops().mul, other)

    def div_(self, other, rounding_mode=None):
        return _ops().elementwise.apply_inplace(self, "div_", lambda s, o: s.div(o, rounding_mode), other)

    def pow_(self, exponent):
        return _ops().elementwise.apply_inplace(self, "pow_", _ops().pow, exponent)

    def clamp_(self, min=None, max=None):  # noqa: A002
        return _ops().elementwise.apply_inplace(self, "clamp_", lambda s: s.clamp(min, max))

    clip_ = clamp_

    def neg_(self):
        return _ops().elementwise.apply_inplace(self, "neg_", _ops().neg)

    def exp_(self):
        return _ops().elementwise.apply_inplace(self, "exp_", _ops().exp)

    def log_(self):
        return _ops().elementwise.apply_inplace(self, "log_", _ops().log)

    def sqrt_(self):
        return _ops().elementwise.apply_inplace(self, "sqrt_", Tensor.sqrt)

    def abs_(self):
        return _ops().elementwise.apply_inplace(self, "abs_", Tensor.abs)

    def tanh_(self):
        return _ops().elementwise.apply_inplace(self, "tanh_", _ops().tanh)

    def sigmoid_(self):
        return _ops().elementwise.apply_inplace(self, "sigmoid_", _ops().sigmoid)

    def relu_(self):
        return _ops().elementwise.apply_inplace(self, "relu_", _ops().relu)

    def masked_fill_(self, mask, value):
        return _ops().elementwise.apply_inplace(self, "masked_fill_", lambda s: s.masked_fill(mask, value))

    def copy_(self, src, non_blocking=False):
        _ops().shape.setitem_(self, Ellipsis, src, op_name="copy_")
        return self

    def fill_(self, value):
        _ops().shape.setitem_(self, Ellipsis, value, op_name="fill_")
        return self

    def zero_(self):
        return self.fill_(0)

    def normal_(self, mean=0.0, std=1.0, generator=None):
        return self._fill_random("normal_", lambda g, shape: g.normal(mean, std, shape), generator)

    def uniform_(self, from_=0.0, to=1.0, generator=None):
        return self._fill_random("uniform_", lambda g, shape: g.uniform(from_, to, shape), generator)

    def _fill_random(self, op_name, draw, generator):
        from . import random

        g = random.generator() if generator is None else generator
        _ops().shape.setitem_(self, Ellipsis, draw(g, self.data.shape), op_name=op_name)
        return self

    def scatter_(self, dim, index, src=None, value=None, reduce=None):
        return _ops().elementwise.apply_inplace(
            self, "scatter_", lambda s: s.scatter(dim, index, src, value=value, reduce=reduce))

    def index_fill_(self, dim, index, value):
        index_array = np.asarray(getattr(index, "data", index))
        selector = [slice(None)] * self.ndim
        selector[_dim(dim, self.ndim)] = index_array
        _ops().shape.setitem_(self, tuple(selector), value, op_name="index_fill_")
        return self

    # ----------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        source = self if dtype is None else self.to(dtype)
        if dtype is None and source.dtype.kind in "biu":
            source = source.to(dtypes.int64)  # torch sums integers and bools as int64
        return _ops().sum(source, _dims(dim, self.ndim), keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        source = self if dtype is None else self.to(dtype)
        if source.dtype.kind != "f":
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
                f"dtype. Got: {dtypes.torch_name(source.dtype)}"
            )
        return _ops().mean(source, _dims(dim, self.ndim), keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None):
        source = self if dtype is None else self.to(dtype)
        return _ops().reduction.prod(source, None if dim is None else _dim(dim, self.ndim), keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The maximum (gradient shared by ties, as torch); with ``dim``: ``(values, indices)``; with a
        tensor: the elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if dim is None:
            return _ops().reduction.max_all(self, keepdim)
        if isinstance(dim, (tuple, list)):  # deltalab's extension: the gradient goes to the first maximum
            return _ops().max(self, _dims(dim, self.ndim), keepdim)
        return MaxResult(*_ops().reduction.max_along(self, _dim(dim, self.ndim), keepdim, np.argmax))

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if dim is None:
            return _ops().reduction.max_all(self, keepdim, larger=False)
        return MinResult(*_ops().reduction.max_along(self, _dim(dim, self.ndim), keepdim, np.argmin))

    def amax(self, dim=(), keepdim=False):
        return _ops().reduction.amax(self, _dims(dim if dim != () else None, self.ndim), keepdim)

    def amin(self, dim=(), keepdim=False):
        return _ops().reduction.amin(self, _dims(dim if dim != () else None, self.ndim), keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops().reduction.arg_reduce(self, dim, keepdim, np.argmax)

    def argmin(self, dim=None, keepdim=False):
        return _ops().reduction.arg_reduce(self, dim, keepdim, np.argmin)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops().reduction.var(self, _dims(dim, self.ndim), _correction(unbiased, correction), keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops().elementwise.sqrt(self.var(dim, unbiased, keepdim, correction=correction))

    def logsumexp(self, dim, keepdim=False):
        return _ops().reduction.logsumexp(self, _dims(dim, self.ndim), keepdim)

    def norm(self, p="fro", dim=None, keepdim=False):
        if p in ("fro", 2, 2.0):
            return self.square().sum(dim, keepdim).sqrt()
        if p in (1, 1.0):
            return self.abs().sum(dim, keepdim)
        if p == float("inf"):
            return self.abs().amax(() if dim is None else dim, keepdim)
        return self.abs().pow(p).sum(dim, keepdim).pow(1.0 / p)

    def all(self, dim=None, keepdim=False):
        axes = None if dim is None else _dims(dim, self.ndim)
        return from_array(np.asarray(np.all(self.data, axis=axes, keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        axes = None if dim is None else _dims(dim, self.ndim)
        return from_array(np.asarray(np.any(self.data, axis=axes, keepdims=keepdim)))

    def cumsum(self, dim, dtype=None):
        return _ops().reduction.cumsum(self if dtype is None else self.to(dtype), _dim(dim, self.ndim))

    def softmax(self, dim=None, dtype=None, *, axis=None):
        dim = _required_dim("softmax", dim, axis)
        return _ops().softmax(self if dtype is None else self.to(dtype), _dim(dim, self.ndim))

    def log_softmax(self, dim=None, dtype=None, *, axis=None):
        dim = _required_dim("log_softmax", dim, axis)
        return _ops().log_softmax(self if dtype is None else self.to(dtype), _dim(dim, self.ndim))

    def sort(self, dim=-1, descending=False, stable=False):
        return SortResult(*_ops().shape.sort(self, _dim(dim, self.ndim), descending))

    def argsort(self, dim=-1, descending=False, stable=False):
        return self.sort(dim, descending).indices

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - torch's argument name
        return TopkResult(*_ops().shape.topk(self, k, _dim(dim, self.ndim), largest))

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape):
        return _ops().reshape(self, _shape_args(shape))

    def view(self, *shape):
        """Like reshape, but only when no copy is needed (torch's rule for non-contiguous tensors)."""
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, Size, builtins.int, np.integer)):
            if isinstance(shape[0], Tensor):
                return self.view(*shape[0].shape)
            raise NotImplementedError("deltalab has no torch.Tensor.view(dtype): use .to(dtype)")
        shape = _shape_args(shape)
        try:
            np.reshape(self.data, shape, copy=False)
        except ValueError as exc:
            if "copy" in str(exc):
                raise RuntimeError(
                    "view size is not compatible with input tensor's size and stride (at least one dimension "
                    "spans across two contiguous subspaces). Use .reshape(...) instead."
                ) from None
        return _ops().reshape(self, shape)

    def view_as(self, other):
        return self.view(*other.shape)

    def reshape_as(self, other):
        return self.reshape(*other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops().flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        dim = _dim(dim, self.ndim)
        return self.reshape(*self.shape[:dim], *sizes, *self.shape[dim + 1:])

    def transpose(self, *dims, **dim_keywords):
        """``transpose(dim0, dim1)`` swaps two dims (torch, also as keywords); a full permutation is accepted too."""
        dims = _keyword_dims("transpose", dims, dim_keywords, ("dim0", "dim1"))
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if len(dims) == 2 and self.ndim != 2 or len(dims) == 2 and sorted(d % 2 for d in dims) != [0, 1]:
            order = list(range(self.ndim))
            a, b = _dim(dims[0], self.ndim), _dim(dims[1], self.ndim)
            order[a], order[b] = order[b], order[a]
            dims = tuple(order)
        return _ops().transpose(self, dims or None)

    swapaxes = swapdims = transpose

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else _ops().transpose(self, (1, 0))

    def permute(self, *dims, **dim_keywords):
        dims = _keyword_dims("permute", dims, dim_keywords, ("dims",))
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if len(dims) != self.ndim:
            raise RuntimeError(
                f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of "
                f"the desired ordering of dimensions i.e. input.dim() = {self.ndim} is not equal to "
                f"len(dims) = {len(dims)}"
            )
        return _ops().transpose(self, tuple(_dim(d, self.ndim) for d in dims))

    def squeeze(self, dim=None, *, axis=None):
        dim = axis if axis is not None else dim
        return _ops().squeeze(self, None if dim is None else _dims(dim, self.ndim))

    def unsqueeze(self, dim):
        return _ops().unsqueeze(self, _dim(dim, self.ndim + 1))

    def expand(self, *sizes):
        return _ops().shape.expand(self, _shape_args(sizes))

    def expand_as(self, other):
        return self.expand(*other.shape)

    def broadcast_to(self, shape):
        return self.expand(*shape)

    def repeat(self, *sizes):
        return _ops().shape.repeat(self, _shape_args(sizes))

    def chunk(self, chunks, dim=0):
        return _ops().shape.chunk(self, chunks, _dim(dim, self.ndim))

    def split(self, split_size=None, dim=0, *, split_size_or_sections=None):
        """``split(split_size, dim)`` (torch.Tensor's name; torch.split's ``split_size_or_sections`` too)."""
        if (split_size is None) == (split_size_or_sections is None):
            raise TypeError("split() takes one of split_size or split_size_or_sections")
        size = split_size if split_size is not None else split_size_or_sections
        return _ops().shape.split(self, size, _dim(dim, self.ndim))

    def unbind(self, dim=0):
        dim = _dim(dim, self.ndim)
        return tuple(self.select(dim, i) for i in range(self.shape[dim]))

    def select(self, dim, index):
        selector = [slice(None)] * self.ndim
        selector[_dim(dim, self.ndim)] = index
        return self[tuple(selector)]

    def narrow(self, dim, start, length):
        selector = [slice(None)] * self.ndim
        selector[_dim(dim, self.ndim)] = slice(start, start + length)
        return self[tuple(selector)]

    def flip(self, dims):
        dims = (dims,) if isinstance(dims, (builtins.int, np.integer)) else dims
        selector = [slice(None)] * self.ndim
        for d in dims:
            selector[_dim(d, self.ndim)] = slice(None, None, -1)
        return self[tuple(selector)]

    def gather(self, dim, index):
        return _ops().shape.gather(self, _dim(dim, self.ndim), index)

    def scatter(self, dim, index, src=None, value=None, reduce=None):
        if src is None and value is None:
            raise TypeError("scatter() needs src or value")
        if reduce is not None:
            raise NotImplementedError("deltalab has no torch.Tensor.scatter(reduce=...): use scatter_add")
        return _ops().shape.scatter(self, _dim(dim, self.ndim), index, src if src is not None else value)

    def scatter_add(self, dim, index, src):
        return _ops().shape.scatter(self, _dim(dim, self.ndim), index, src, add=True)

    def index_select(self, dim, index):
        selector = [slice(None)] * self.ndim
        selector[_dim(dim, self.ndim)] = np.asarray(getattr(index, "data", index)).astype(np.int64)
        return self[tuple(selector)]

    def masked_select(self, mask):
        mask = np.broadcast_to(np.asarray(getattr(mask, "data", mask), dtype=bool), self.shape)
        return self[from_array(mask)]

    def tril(self, diagonal=0):
        return self.masked_fill(from_array(~np.tri(*self.shape[-2:], diagonal, dtype=bool)), 0)

    def triu(self, diagonal=0):
        return self.masked_fill(from_array(np.tri(*self.shape[-2:], diagonal - 1, dtype=bool)), 0)

    def __getattr__(self, name):
        # only called for names Tensor does not have: name the torch feature instead of AttributeError
        if name.startswith("_") or name in _PLAIN_ATTRIBUTE_ERRORS:
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        raise MissingTorchFeature(f"deltalab has no torch.Tensor.{name}")


_PLAIN_ATTRIBUTE_ERRORS = frozenset({"shape_", "keys", "items", "read", "write", "fileno", "tobytes", "dtype_"})


def _required_dim(name, dim, axis):
    """``x.softmax(dim)``: torch's Tensor method has no implicit dim (only F.softmax does)."""
    if axis is not None:
        return axis
    if dim is None:
        raise TypeError(f'{name}() missing 1 required positional arguments: "dim"')
    return dim


def _dim(dim, ndim):
    """One dim in ``range(ndim)``; torch's IndexError for one out of range (0-d accepts -1 and 0)."""
    size = builtins.max(ndim, 1)
    if not isinstance(dim, (builtins.int, np.integer)):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return builtins.int(dim) % size


checked_dim = _dim  # the public name, for the modules that normalise dims as tensors do


def _dims(dim, ndim):
    """None (every dim), or a sorted tuple of dims (from an int or a tuple)."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        dims = tuple(_dim(d, ndim) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"dim {dims} appears multiple times in the list of dims")
        return tuple(sorted(dims)) if dims else None
    return (_dim(dim, ndim),)


def _dim_args(dim, keepdim, axis, keepdims):
    """torch's dim/keepdim, with NumPy's axis/keepdims accepted as aliases."""
    if axis is not None:
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, builtins.bool(keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _keyword_dims(function, dims, keywords, names):
    """Positional dims, or torch's keywords for them (``transpose(dim0=0, dim1=1)``, ``permute(dims=...)``)."""
    unknown = sorted(set(keywords) - set(names))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    if not keywords:
        return dims
    if dims:
        raise TypeError(f"{function}() got multiple values for argument {names[0]!r}")
    if names == ("dims",):
        return tuple(keywords["dims"])
    missing = [n for n in names if n not in keywords]
    if missing:
        raise TypeError(f"{function}() missing required argument {missing[0]!r}")
    return tuple(keywords[n] for n in names)


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    return tuple(builtins.int(s) for s in shape)


_ops_module = None


def _ops():
    """The ops package, imported on first use (it imports this module) and then cached."""
    global _ops_module
    if _ops_module is None:
        from . import ops
        from .ops import elementwise, reduction, shape  # noqa: F401 - submodules used as attributes

        _ops_module = ops
    return _ops_module


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, (list, tuple)) and data and _holds_tensors(data):
        data = _unwrap(data)  # torch.tensor([t1, t2]) of one-element tensors
    if dtype is not None:
        return np.array(data, dtype=dtypes.resolve_any(dtype))
    array = np.array(data)
    if array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        return array.astype(dtypes.get_default_dtype())
    if array.dtype == np.float64 and not isinstance(data, np.ndarray) and not _holds_numpy_float64(data):
        # python floats / lists follow the default dtype (as torch.tensor); float64 arrays stay float64
        return array.astype(dtypes.get_default_dtype(), copy=False)
    if array.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} with mixed or ragged contents")
    if array.dtype.kind == "U" or array.dtype.kind == "S":
        raise TypeError(f"cannot make a tensor from strings ({type(data).__name__})")
    if array.dtype.kind == "c":
        raise NotImplementedError("deltalab has no complex tensors")
    return array


def _holds_tensors(data):
    first = data[0]
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    return isinstance(first, Tensor)


def _unwrap(data):
    if isinstance(data, Tensor):
        if data.data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return data.item()
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


def _holds_numpy_float64(data):
    """A NumPy float64 scalar, or a list of float64 arrays/tensors: torch keeps those float64."""
    if isinstance(data, np.float64):
        return True
    if isinstance(data, (list, tuple)) and data:
        first = data[0]
        first = first.data if isinstance(first, Tensor) else first
        return isinstance(first, (np.ndarray, np.float64)) and getattr(first, "dtype", None) == np.float64
    return False


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False, name=None) -> Tensor:
    """Make a tensor (a copy of ``data``), like ``torch.tensor``.  Python floats become the default dtype,
    NumPy arrays keep theirs, integers stay integers (class indices), bools stay bools (masks)."""
    check_device(device)
    check_factory_options("tensor", pin_memory=pin_memory)
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def factory_shape(function, size, keywords):
    """The shape a factory is asked for, in torch's forms: ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])``,
    ``f(size=(2, 3))``.  A size that is not an integer is torch's TypeError, a negative one its
    RuntimeError; an unknown keyword is a TypeError (never silently ignored)."""
    unknown = sorted(set(keywords) - {"size"})
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    if "size" in keywords:
        if size:
            raise TypeError(f"{function}() got multiple values for argument 'size'")
        if not isinstance(keywords["size"], (tuple, list)):
            raise TypeError(f"{function}(): argument 'size' must be tuple of ints, not {type(keywords['size']).__name__}")
        size = (keywords["size"],)
    elif not size:
        raise TypeError(f'{function}() missing 1 required positional arguments: "size"')
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = []
    for length in size:
        if isinstance(length, (builtins.bool, np.bool_)) or not hasattr(length, "__index__"):
            raise TypeError(f"{function}(): argument 'size' must be tuple of ints, but found element of type "
                            f"{type(length).__name__}")
        try:
            shape.append(length.__index__())
        except TypeError:
            raise TypeError(f"{function}(): argument 'size' must be tuple of ints, but found a "
                            f"{type(length).__name__} that is not one integer") from None
    if any(length < 0 for length in shape):
        raise RuntimeError(f"{function}: Dimension size must be non-negative (got size {tuple(shape)})")
    return tuple(shape)


def check_factory_options(function, out=None, layout=None, pin_memory=False, memory_format=None):
    """torch's factory keywords deltalab cannot honour are refused by name, never ignored."""
    if out is not None:
        raise NotImplementedError(f"deltalab has no out= for torch.{function}: use the tensor it returns "
                                  "(or out.copy_(...))")
    if layout is not None and layout is not strided:
        raise NotImplementedError(f"deltalab has no torch.{function}(layout={layout}): only the strided layout")
    if pin_memory:
        raise RuntimeError(f"{function}: pin_memory=True needs an accelerator; deltalab runs on the CPU only")
    if memory_format is not None and memory_format not in (contiguous_format, preserve_format):
        raise NotImplementedError(f"deltalab has no torch.{function}(memory_format={memory_format})")


def _filled(function, fill, size, keywords, dtype, requires_grad, name, device, out, layout, pin_memory):
    check_device(device)
    check_factory_options(function, out, layout, pin_memory)
    shape = factory_shape(function, size, keywords)
    array = fill(shape, dtype=dtypes.resolve_any(dtype) if dtype is not None else dtypes.get_default_dtype())
    return Tensor(array, requires_grad=requires_grad, name=name)


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False, name=None,
          **size_keyword) -> Tensor:
    """Zeros of the given size (``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros(size=(2, 3))``), as torch."""
    return _filled("zeros", np.zeros, size, size_keyword, dtype, requires_grad, name, device, out, layout, pin_memory)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False, name=None,
         **size_keyword) -> Tensor:
    """Ones of the given size, in torch's forms (see :func:`zeros`)."""
    return _filled("ones", np.ones, size, size_keyword, dtype, requires_grad, name, device, out, layout, pin_memory)

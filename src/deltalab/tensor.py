"""The Tensor: a NumPy array plus the bookkeeping reverse-mode autodiff needs.

``data`` holds the values, ``grad`` (a Tensor or None) the accumulated gradient,
``grad_fn`` the :class:`~deltalab.autograd.Node` that produced it (None for leaves).
A tensor may carry a ``name``; reports use names to label values and deltas.
"""
from __future__ import annotations

import numpy as np

from . import autograd, dtypes


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_output_index", "name", "__weakref__")
    __array_priority__ = 1000  # so `ndarray * tensor` defers to Tensor.__rmul__

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        self.data = _to_array(data, dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            self.data = self.data.astype(dtypes.get_default_dtype())
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._output_index = 0
        self.name = name

    @classmethod
    def _from_array(cls, array):
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t.requires_grad = False
        t.grad_fn = None
        t._output_index = 0
        t.name = None
        return t

    # ----------------------------------------------------------------- basics
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
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The values as a NumPy array (shares memory, like ``torch.Tensor.numpy``)."""
        return self.data

    def item(self):
        return self.data.item()

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
        return f"tensor({body}{extra})" if self.data.dtype == np.float64 else f"tensor({body}, dtype={self.data.dtype}{extra})"

    # -------------------------------------------------------------- autodiff
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (call ``zero_grad`` between steps)."""
        autograd.backward(self, grad)

    def retain_grad(self):
        """Keep this intermediate tensor's gradient in ``.grad`` after backward (its delta)."""
        if self.grad_fn is not None:
            self.grad_fn.retained[self._output_index] = self
        return self

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same values, cut from the graph."""
        out = Tensor._from_array(self.data)
        out.name = self.name
        return out

    def requires_grad_(self, flag=True):
        if flag and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"only float tensors can require grad, got {self.data.dtype}")
        self.requires_grad = flag
        return self

    def named(self, name):
        """Give this tensor a name (returns self, so it chains: ``(W @ x).named('z1')``)."""
        self.name = name
        return self

    def to(self, dtype):
        from .ops.elementwise import cast

        return cast(self, dtypes.resolve(dtype))

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

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

    def __neg__(self):
        return _ops().neg(self)

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

    # comparisons give plain boolean tensors without a graph (masks, `where`)
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_array(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    __hash__ = object.__hash__

    # ------------------------------------------------------------- methods
    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axis, keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops().flatten(self, start_dim, end_dim)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    def permute(self, *axes):
        return self.transpose(*axes)

    @property
    def T(self):
        return _ops().transpose(self, None)

    def squeeze(self, axis=None):
        return _ops().squeeze(self, axis)

    def unsqueeze(self, axis):
        return _ops().unsqueeze(self, axis)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)

    def softmax(self, axis=-1):
        return _ops().softmax(self, axis)

    def log_softmax(self, axis=-1):
        return _ops().log_softmax(self, axis)


_ops_module = None


def _ops():
    """The ops package, imported on first use (it imports this module) and then cached."""
    global _ops_module
    if _ops_module is None:
        from . import ops

        _ops_module = ops
    return _ops_module


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtypes.resolve(dtype))
    array = np.array(data)
    if array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        return array.astype(dtypes.get_default_dtype())
    if array.dtype == np.float64 and not isinstance(data, np.ndarray):
        # python floats / lists follow the global default (float64 unless changed)
        return array.astype(dtypes.get_default_dtype(), copy=False)
    if array.dtype.kind == "O":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} with mixed or ragged contents")
    return array


def tensor(data, dtype=None, requires_grad=False, name=None) -> Tensor:
    """Make a tensor.  Float data becomes the default dtype (float64 unless changed); integers stay
    integers (class indices) unless ``requires_grad`` is set."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def _filled(fill, shape, dtype, requires_grad, name):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    array = fill(shape, dtype=dtypes.resolve(dtype) if dtype else dtypes.get_default_dtype())
    return Tensor(array, requires_grad=requires_grad, name=name)


def zeros(*shape, dtype=None, requires_grad=False, name=None) -> Tensor:
    return _filled(np.zeros, shape, dtype, requires_grad, name)


def ones(*shape, dtype=None, requires_grad=False, name=None) -> Tensor:
    return _filled(np.ones, shape, dtype, requires_grad, name)

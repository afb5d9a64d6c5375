"""The functional API (``import deltalab.nn.functional as F``), named as in ``torch.nn.functional``.

The same module is importable as ``deltalab.functional``.
"""
import numpy as np

from .errors import missing_torch_names
from .losses import (
    binary_cross_entropy,
    cross_entropy,
    half_squared_error,
    mse_loss,
    nll_loss,
    squared_error,
)
from .ops import (
    avg_pool2d,
    batch_norm,
    conv2d,
    dropout,
    elu,
    embedding,
    gelu,
    leaky_relu,
    linear,
    max_pool2d,
    relu,
    sigmoid,
    softplus,
    tanh,
)
from .ops import log_softmax as _log_softmax
from .ops import pad as pad_widths
from .ops import softmax as _softmax
from .ops.softmax import implicit_dim
from .tensor import Tensor


def identity(x):
    return x


def _softmax_dim(input, dim, name):  # noqa: A002 - torch's argument name
    return dim if dim is not None else implicit_dim(input.ndim, name, stacklevel=3)


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):  # noqa: A002
    """softmax along ``dim`` (``axis=`` too), like ``torch.nn.functional.softmax``."""
    dim = axis if axis is not None else _softmax_dim(input, dim, "softmax")
    return _softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):  # noqa: A002
    """log softmax along ``dim`` (``axis=`` too), like ``torch.nn.functional.log_softmax``."""
    dim = axis if axis is not None else _softmax_dim(input, dim, "log_softmax")
    return _log_softmax(input if dtype is None else input.to(dtype), dim)


def pad(input, pad, mode="constant", value=None):
    """``torch.nn.functional.pad``: ``pad`` lists (before, after) amounts from the LAST axis
    backwards -- (left, right, top, bottom, ...); a negative amount crops.  Constant mode only.

    (The lecture's NumPy-style per-axis widths are ``deltalab.ops.pad``.)
    """
    if mode != "constant":
        raise NotImplementedError(f"deltalab has no torch.nn.functional.pad mode={mode!r} (constant only)")
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    widths = [[0, 0] for _ in range(input.ndim)]
    for k in range(len(pad) // 2):
        widths[input.ndim - 1 - k] = [pad[2 * k], pad[2 * k + 1]]
    crop = tuple(slice(-before if before < 0 else None, after if after < 0 else None) for before, after in widths)
    grow = [(max(before, 0), max(after, 0)) for before, after in widths]
    out = input[crop] if any(before < 0 or after < 0 for before, after in widths) else input
    if any(before or after for before, after in grow):
        out = pad_widths(out, grow, value=0.0 if value is None else value)
    return out


def one_hot(tensor, num_classes=-1):
    """``torch.nn.functional.one_hot``: int64 tensor with a new last axis of ``num_classes``
    (default: max + 1) holding 1 at each index."""
    indices = np.asarray(getattr(tensor, "data", tensor))
    if indices.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if indices.size and indices.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(indices.max()) + 1 if indices.size else 0
    elif indices.size and indices.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = np.zeros(indices.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, indices[..., None].astype(np.int64), 1, axis=-1)
    return Tensor(out)


__getattr__ = missing_torch_names(__name__, "torch.nn.functional")

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "conv2d", "cross_entropy", "dropout", "elu", "embedding",
    "gelu", "half_squared_error", "identity", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
    "nll_loss", "one_hot", "pad", "relu", "sigmoid", "softmax", "softplus", "squared_error", "tanh",
]

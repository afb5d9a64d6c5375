"""The functional API (``import deltalab.functional as F``), named as in ``torch.nn.functional``."""
from .losses import (
    binary_cross_entropy,
    cross_entropy,
    half_squared_error,
    mse_loss,
    nll_loss,
    squared_error,
)
from .ops import avg_pool2d, conv2d, linear, max_pool2d, pad, relu, sigmoid, tanh
from .ops import log_softmax as _log_softmax
from .ops import softmax as _softmax


def identity(x):
    return x


def _softmax_dim(input, dim, stacklevel_name):  # noqa: A002 - torch's argument name
    """torch's implicit dim when none is given: 0 for 0-, 1- and 3-D inputs, else 1 (with torch's warning)."""
    if dim is not None:
        return dim
    import warnings

    warnings.warn(f"Implicit dimension choice for {stacklevel_name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if input.ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):  # noqa: A002
    """softmax along ``dim`` (``axis=`` too), like ``torch.nn.functional.softmax``."""
    dim = axis if axis is not None else _softmax_dim(input, dim, "softmax")
    return _softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):  # noqa: A002
    """log softmax along ``dim`` (``axis=`` too), like ``torch.nn.functional.log_softmax``."""
    dim = axis if axis is not None else _softmax_dim(input, dim, "log_softmax")
    return _log_softmax(input if dtype is None else input.to(dtype), dim)


def __getattr__(name):
    from .tensor import MissingTorchFeature

    if name.startswith("_"):
        raise AttributeError(f"module 'deltalab.functional' has no attribute {name!r}")
    raise MissingTorchFeature(f"deltalab has no torch.nn.functional.{name}")


__all__ = [
    "avg_pool2d", "binary_cross_entropy", "conv2d", "cross_entropy", "half_squared_error", "identity",
    "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid", "softmax",
    "squared_error", "tanh",
]

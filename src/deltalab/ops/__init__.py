"""The differentiable operations of the engine: primitives and fused kernels.

The elementwise, shape and reduction ops load with the package (every graph uses them); the
others import their module the first time their name is read (:mod:`deltalab.lazy`): a
recurrent worked solution never compiles conv2d, pooling or batch norm.  ``dropout``,
``embedding``, ``linear`` and ``softmax`` are also their submodules' names, so they stay eager
(importing the submodule later would replace the function with the module).
"""
from ..lazy import lazy_exports
from .dropout import dropout
from .elementwise import add, cast, div, exp, log, mul, neg, pow, relu, sigmoid, sub, tanh, where
from .embedding import embedding
from .linear import linear, matmul
from .reduction import max, mean, sum
from .shape import cat, concatenate, flatten, getitem, pad, reshape, squeeze, stack, transpose, unsqueeze
from .softmax import log_softmax, softmax

_DEFINED_IN = {
    ".activation": ("elu", "gelu", "leaky_relu", "softplus"),
    ".conv": ("conv2d", "output_size"),
    ".gru": ("gru_sequence",),
    ".normalization": ("batch_norm",),
    ".pooling": ("avg_pool2d", "max_pool2d"),
}

__getattr__, __dir__ = lazy_exports(__name__, {name: module for module, names in _DEFINED_IN.items() for name in names})

__all__ = [
    "add", "avg_pool2d", "batch_norm", "dropout", "elu", "embedding", "gelu", "gru_sequence", "leaky_relu",
    "softplus", "cast", "cat", "concatenate", "conv2d", "div", "exp", "flatten", "getitem",
    "linear", "log", "log_softmax", "matmul", "max", "max_pool2d", "mean", "mul", "neg", "output_size",
    "pad", "pow", "relu", "reshape", "sigmoid", "softmax", "squeeze", "stack", "sub", "sum", "tanh",
    "transpose", "unsqueeze", "where",
]

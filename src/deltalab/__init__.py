"""deltalab: a neural-network engine that shows its work.

The engine (:mod:`tensor`, :mod:`autograd`, :mod:`ops`) knows nothing of files or reports;
:mod:`nn`, :mod:`optim` and :mod:`losses` build on it; the CLI and reports sit on top.
"""
from . import functional, models, nn, ops, optim
from .autograd import is_grad_enabled, no_grad
from .dtypes import get_default_dtype, set_default_dtype
from .errors import CheckpointError, ConfigurationError, DeltalabError, ShapeError, SpecError
from .gradcheck import gradcheck
from .ops import cat, concatenate, stack, where
from .random import manual_seed
from .summary import summary
from .tensor import Tensor, ones, tensor, zeros
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ConfigurationError", "DeltalabError", "ShapeError", "SpecError", "Tensor", "cat",
    "concatenate", "functional", "get_default_dtype", "get_num_threads", "gradcheck", "is_grad_enabled", "load", "load_into",
    "manual_seed", "models", "nn", "no_grad", "ones", "ops", "optim", "save", "set_default_dtype", "set_num_threads", "stack",
    "summary", "tensor", "where", "zeros",
]


def __getattr__(name):
    # checkpoints pull in zipfile and the architecture registry: load them on first use
    if name in ("save", "load", "load_into"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'deltalab' has no attribute {name!r}")

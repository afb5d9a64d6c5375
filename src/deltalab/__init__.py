"""deltalab: a neural-network engine that shows its work.

The engine (:mod:`tensor`, :mod:`autograd`, :mod:`ops`) knows nothing of files or reports;
:mod:`nn`, :mod:`optim` and :mod:`losses` build on it; the CLI and reports sit on top.
PyTorch's names work the same way here (``dl.zeros``, ``dl.float32``, ``dl.no_grad``, ...); a torch
name deltalab does not have raises ``NotImplementedError: deltalab has no torch.X``.
"""
import importlib.util as _importlib_util
import types as _types

from . import startup as _startup  # standard library only: NumPy is still imported first

# the deltalab command only (never a program importing deltalab): see deltalab.startup
_startup.quiet_blas_threads()
_collector_paused = _startup.pause_collector()

# NumPy next, before any deltalab module that uses it: imported from inside deltalab's own import
# chain it took 40-80 ms longer on every start (benchmarks/README.md, "deltalab solve latency").
import numpy as _numpy  # noqa: E402, F401

from . import func, functional, models, nn, ops, optim
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .dtypes import (
    bool,
    double,
    float,
    float32,
    float64,
    get_default_dtype,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
)
from .errors import CheckpointError, ConfigurationError, DeltalabError, ShapeError, SpecError
from .factories import *  # noqa: F403 - torch's module-level functions
from .factories import __all__ as _factory_names
from .gradcheck import gradcheck
from .random import manual_seed, seed
from .summary import summary
from .tensor import MissingTorchFeature, Size, Tensor, device, ones, tensor, zeros
from .fast import Tuning, get_num_threads, set_num_threads, tuning
from .io import module_kinds as _module_kinds  # registers the built-in module kinds (they record their arguments)

_startup.resume_collector(_collector_paused)

__version__ = "0.1.0"

# torch.cuda / torch.backends.mps as tutorials probe them: no accelerator here
cuda = _types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0, manual_seed=lambda s: None,
                              manual_seed_all=lambda s: None)
backends = _types.SimpleNamespace(mps=_types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False))

__all__ = sorted({
    "CheckpointError", "ConfigurationError", "DeltalabError", "check", "ShapeError", "SpecError", "Size", "Tensor",
    "backends", "bool", "cuda", "device", "double", "enable_grad", "float", "float32", "float64", "func", "functional",
    "get_default_dtype", "get_num_threads", "gradcheck", "inference_mode", "int", "int8", "int16", "int32", "int64",
    "is_grad_enabled", "load", "load_into", "long", "manual_seed", "models", "nn", "no_grad", "ones", "ops", "optim",
    "save", "seed", "set_default_dtype", "solve", "set_grad_enabled", "set_num_threads", "short", "summary",
    "tensor", "Tuning", "tuning", "to_torch", "from_torch", "uint8", "zeros", *_factory_names,
})


def __getattr__(name):
    if name == "check":  # grading a hand solution (deltalab.marking)
        from .marking import check

        return check
    # saving pulls in zipfile and the architecture registry: load it on first use
    if name in ("save", "load"):
        from .io import serialization

        return getattr(serialization, name)
    if name in ("to_torch", "from_torch"):  # torch interop: loaded (and torch imported) on first use
        from .io import interop

        return getattr(interop, name)
    if name == "load_into":
        from .io import checkpoint

        return checkpoint.load_into
    if name == "solve":  # a worked solution that shows itself in a notebook (deltalab.solution)
        from .solution import solve

        return solve
    if name == "generate":  # exercise variants (deltalab.exercises): imported on first use
        from .exercises import generate

        return generate
    if name.startswith("_") or _importlib_util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module 'deltalab' has no attribute {name!r}")
    raise MissingTorchFeature(f"deltalab has no torch.{name}")

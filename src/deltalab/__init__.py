"""deltalab: a neural-network engine that shows its work.

The engine (:mod:`tensor`, :mod:`autograd`, :mod:`ops`) knows nothing of files or reports;
:mod:`nn`, :mod:`optim` and :mod:`losses` build on it; the CLI and reports sit on top.
PyTorch's names work the same way here (``dl.zeros``, ``dl.float32``, ``dl.no_grad``, ...); a torch
name deltalab does not have raises ``NotImplementedError: deltalab has no torch.X``.

``import deltalab`` loads NumPy, the tensor and autograd; ``dl.nn``, ``dl.optim``, ``dl.models``,
the factories (``dl.arange``, ``dl.randn``, ...) and the rest import their module the first time
they are read (:mod:`deltalab.lazy`), so a worked solution compiles only what it runs.
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

from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from .dtypes import (  # noqa: E402
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
from .errors import CheckpointError, ConfigurationError, DeltalabError, ShapeError, SpecError  # noqa: E402
from .lazy import lazy_exports as _lazy_exports  # noqa: E402
from .tensor import MissingTorchFeature, Size, Tensor, device, ones, tensor, zeros  # noqa: E402

# eager: each name is also its own submodule's name (importing the submodule later would put the
# module where the function was; see deltalab.lazy)
from .gradcheck import gradcheck  # noqa: E402
from .summary import summary  # noqa: E402

_startup.resume_collector(_collector_paused)

__version__ = "0.1.0"

# torch's module-level functions (deltalab.factories.__all__ without tensor/ones/zeros, which are the tensor module's)
_FACTORY_NAMES = (
    "arange", "as_tensor", "contiguous_format", "preserve_format", "randint_like", "strided", "broadcast_tensors",
    "cat", "clone", "concat", "concatenate", "detach", "empty", "empty_like", "eye", "from_numpy", "full", "full_like",
    "is_tensor", "linspace", "logspace", "normal", "numel", "ones_like", "rand", "rand_like", "randint", "randn",
    "randn_like", "randperm", "stack", "where", "zeros_like", "sum", "mean", "prod", "max", "min", "amax", "amin",
    "argmax", "argmin", "var", "std", "logsumexp", "norm", "all", "any", "cumsum", "exp", "log", "sqrt", "abs", "sin",
    "cos", "tanh", "sigmoid", "relu", "neg", "square", "rsqrt", "log1p", "expm1", "sign", "floor", "ceil", "round",
    "trunc", "reciprocal", "clamp", "clip", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "matmul", "mm",
    "bmm", "dot", "mv", "outer", "flatten", "reshape", "squeeze", "unsqueeze", "transpose", "permute", "t", "chunk",
    "split", "unbind", "narrow", "flip", "gather", "scatter", "scatter_add", "index_select", "masked_fill",
    "masked_select", "sort", "argsort", "topk", "softmax", "log_softmax", "isnan", "isinf", "isfinite", "nonzero",
    "tril", "triu", "eq", "ne", "lt", "le", "gt", "ge", "equal", "allclose", "logical_not", "logical_and",
    "logical_or",
)
_factory_names = [*_FACTORY_NAMES, "ones", "tensor", "zeros"]
_ATTRIBUTES = {
    **{name: ".factories" for name in _FACTORY_NAMES},
    "manual_seed": ".random", "seed": ".random",
    "Tuning": ".fast", "get_num_threads": ".fast", "set_num_threads": ".fast", "tuning": ".fast",
}
# the submodules `import deltalab` used to import (and so set as attributes)
_SUBMODULES = {name: f".{name}" for name in (
    "autograd", "dtypes", "errors", "factories", "fast", "func", "functional", "io", "losses", "models", "nn", "ops",
    "optim", "random")}

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


def _on_first_use(name):
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


__getattr__, __dir__ = _lazy_exports(__name__, _ATTRIBUTES, _SUBMODULES, _on_first_use)

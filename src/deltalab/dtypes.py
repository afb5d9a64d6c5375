"""Dtypes: the default floating dtype and the dtype objects ``dl.float32``, ``dl.int64``, ...

The dtype objects are NumPy dtypes (``t.dtype == dl.float32`` and ``t.dtype == np.float32``
both hold).  As in PyTorch the default floating dtype is float32: Python floats and the
factories (``zeros``, ``randn``, ...) make float32, while a NumPy float64 array stays float64.
The worked solutions run in float64 (:func:`default_dtype` pins it for a block).
"""
from __future__ import annotations

import builtins
import contextlib
import threading

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)  # noqa: A001 - mirrors torch.bool
# PyTorch's aliases
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001
short = int16

FLOATING = (float32, float64)
SUPPORTED = (float32, float64, int8, int16, int32, int64, uint8, bool)
_TORCH_NAMES = {float32: "Float", float64: "Double", int8: "Char", int16: "Short", int32: "Int", int64: "Long",
                uint8: "Byte", bool: "Bool"}
_UNSUPPORTED = {"float16": "torch.float16 (half)", "bfloat16": "torch.bfloat16", "complex64": "complex tensors",
                "complex128": "complex tensors"}



class UnsupportedDtypeError(NotImplementedError, ValueError):
    """A dtype PyTorch has and deltalab does not (float16, complex)."""


_state = threading.local()
_global_default = float32


def _parse(dtype) -> np.dtype:
    if isinstance(dtype, str) and dtype.startswith("torch."):
        dtype = dtype[len("torch."):]
    if isinstance(dtype, str) and dtype in ("float", "double", "long", "int", "short", "half", "bool"):
        if dtype == "half":
            dtype = "float16"
        else:
            return globals()[dtype]
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        if isinstance(dtype, str) and dtype in _UNSUPPORTED:
            raise UnsupportedDtypeError(f"deltalab has no {_UNSUPPORTED[dtype]}: use float32 or float64") from None
        raise ValueError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'") from exc


def resolve(dtype) -> np.dtype:
    """A floating dtype (parameters, the default): numpy dtypes, strings ('float32') and ``float``."""
    resolved = _parse(dtype)
    if resolved not in FLOATING:
        raise ValueError(f"dtype {resolved} is not supported; use 'float32' or 'float64'")
    return resolved


def resolve_any(dtype) -> np.dtype:
    """Any tensor dtype deltalab has: float32/64, the integers and bool (like torch's dtypes)."""
    resolved = _parse(dtype)
    if resolved not in SUPPORTED:
        name = _UNSUPPORTED.get(resolved.name, f"dtype {resolved}")
        raise UnsupportedDtypeError(f"deltalab has no {name}: use float32, float64, an integer dtype or bool")
    return resolved


def torch_name(dtype) -> str:
    """PyTorch's short name of a dtype for error messages ('Float', 'Long')."""
    return _TORCH_NAMES.get(np.dtype(dtype), str(dtype))


def is_floating(dtype) -> builtins.bool:
    return np.dtype(dtype).kind == "f"


def set_default_dtype(dtype) -> None:
    """Set the dtype of new float tensors and parameters (like ``torch.set_default_dtype``).

    Like torch, only floating dtypes are accepted (a TypeError otherwise).
    """
    global _global_default
    resolved = _parse(dtype)
    if resolved not in FLOATING:
        raise TypeError(f"only floating-point types are supported as the default type, got {resolved}")
    _global_default = resolved
    _state.override = None


def get_default_dtype() -> np.dtype:
    override = getattr(_state, "override", None)
    return override if override is not None else _global_default


@contextlib.contextmanager
def default_dtype(dtype):
    """Within the block (this thread), new float tensors and parameters are ``dtype``."""
    resolved = resolve(dtype)
    previous = getattr(_state, "override", None)
    _state.override = resolved
    try:
        yield resolved
    finally:
        _state.override = previous

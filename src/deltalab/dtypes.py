"""The default floating dtype: float64 for exact exercise answers, float32 for fast training."""
from __future__ import annotations

import numpy as np

_default = np.dtype(np.float64)
_ALLOWED = {np.dtype(np.float32), np.dtype(np.float64)}


def resolve(dtype) -> np.dtype:
    """Accept numpy dtypes, strings ('float32', 'float64') and python ``float``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'") from exc
    if resolved not in _ALLOWED:
        raise ValueError(f"dtype {resolved} is not supported; use 'float32' or 'float64'")
    return resolved


def set_default_dtype(dtype) -> None:
    """Set the dtype of new float tensors and parameters (like ``torch.set_default_dtype``)."""
    global _default
    _default = resolve(dtype)


def get_default_dtype() -> np.dtype:
    return _default

"""The compiled (numba) kernels of the float32 elementwise ops (batch norm, max pooling): when
to use them and loading them once.

numba is a default dependency, but a platform without a wheel (or ``DELTALAB_NUMBA=0``, or
``dl.tuning(numba=False)``) keeps the NumPy paths, and so do small arrays: importing numba
takes ~0.4 s, more than the kernels save below ``Tuning.kernel_min_work`` elements (the same
rule as the recurrent kernels').
"""
from __future__ import annotations

import collections
import functools
import importlib
import os
import sys
import warnings

from .tuning import current as current_tuning

__all__ = ["for_repeated_size", "for_size", "load", "numba_allowed"]


def for_size(name, size):
    """The kernel module ``deltalab.fast.<name>`` for an op on ``size`` float32 elements, or None
    for the NumPy path (too small, numba switched off or unusable)."""
    if size < current_tuning().kernel_min_work or not numba_allowed():
        return None
    return load(name)


_large_calls = collections.Counter()  # calls of kernel_min_work elements seen per kernel module


def for_repeated_size(name, size):
    """Like :func:`for_size`, for ops whose compiled kernel saves well under a millisecond a call
    (ReLU, max pooling): while numba is not imported yet, only from the
    ``Tuning.kernel_warmup_calls``-th call large enough, so a one-off call (an evaluation pass)
    does not pay numba's ~0.4 s import for it; the NumPy paths give the same bits."""
    tuning = current_tuning()
    if size < tuning.kernel_min_work or not numba_allowed():
        return None
    if "numba" not in sys.modules:
        _large_calls[name] += 1
        if _large_calls[name] <= tuning.kernel_warmup_calls:
            return None
    return load(name)


def numba_allowed():
    """Whether compiled kernels may run: ``Tuning.numba`` not False and, while it is None (the
    default), the environment variable ``DELTALAB_NUMBA`` not "0"."""
    tuning = current_tuning()
    if tuning.numba is None:
        return os.environ.get("DELTALAB_NUMBA") != "0"
    return bool(tuning.numba)


@functools.cache
def load(name):
    """The module ``deltalab.fast.<name>``, or None when numba is unusable (imported once;
    ``load.cache_clear()`` looks again)."""
    try:
        return importlib.import_module(f"deltalab.fast.{name}")
    except ImportError:
        return None
    except Exception as error:  # a broken numba install must not break the layer
        warnings.warn(f"deltalab: numba kernels unavailable ({error!r}); using NumPy", RuntimeWarning)
        return None

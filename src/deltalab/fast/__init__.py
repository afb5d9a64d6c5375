"""Everything about speed, not maths: threads, one :class:`Tuning` object, conv layouts and
work buffers, recurrent scheduling and the numba kernels.

The maths of each fused op lives in :mod:`deltalab.ops` with a readable reference path; the
paths here compute the same values faster and are tested against it.  ``with
dl.tuning(parallel=False): ...`` changes a setting for a block (see :class:`Tuning`).
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys

from . import threads
from .threads import get_num_threads, set_num_threads
from .tuning import Tuning, current, override

__all__ = ["Tuning", "current", "get_num_threads", "loaded_on_first_use", "set_num_threads", "tuning"]


def loaded_on_first_use(name):
    """The module ``name``, run when one of its attributes is first read (importlib's LazyLoader).

    The ops import their fast paths this way: an mlp's worked solution never compiles the conv
    layouts or the recurrent scheduling, which keeps ``deltalab solve`` quick to start."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def tuning(**changes):
    """Run a block with some :class:`Tuning` fields changed, e.g. ``with dl.tuning(parallel=False):``.

    Process-wide (parallel workers see it too).  On exit the previous tuning comes back, and
    so does the thread count if the block called ``dl.set_num_threads``."""
    before = threads.snapshot()
    try:
        with override(**changes) as settings:
            yield settings
    finally:
        threads.restore(before)

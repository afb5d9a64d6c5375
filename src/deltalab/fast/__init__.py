"""Everything about speed, not maths: threads, one :class:`Tuning` object, conv layouts and
work buffers, recurrent scheduling and the numba kernels.

The maths of each fused op lives in :mod:`deltalab.ops` with a readable reference path; the
paths here compute the same values faster and are tested against it.  ``with
dl.tuning(parallel=False): ...`` changes a setting for a block (see :class:`Tuning`).
"""
from __future__ import annotations

import contextlib

from . import threads
from .threads import get_num_threads, set_num_threads
from .tuning import Tuning, current, override

__all__ = ["Tuning", "current", "get_num_threads", "set_num_threads", "tuning"]


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

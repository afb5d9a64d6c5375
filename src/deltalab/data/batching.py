"""Mini-batches: split aligned arrays into batches, optionally shuffled by a seeded generator."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError, ShapeError


def iterate_batches(*arrays, batch_size, shuffle=False, rng=None, drop_last=False):
    """Yield tuples of aligned slices of ``arrays`` (same length on axis 0), ``batch_size`` rows each.

    With ``shuffle=True`` the order is a permutation drawn from ``rng`` (a
    ``numpy.random.Generator`` or an int seed; the same seed gives the same batches).
    The last batch may be smaller unless ``drop_last``.
    """
    if not arrays:
        raise ConfigurationError("iterate_batches: give at least one array")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigurationError(f"iterate_batches: batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise ShapeError(f"iterate_batches: arrays have different lengths on axis 0: {lengths}")
    n = lengths[0]
    if shuffle:
        if rng is None:
            raise ConfigurationError("iterate_batches: shuffle=True needs rng (a numpy Generator or an int seed)")
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        order = generator.permutation(n)
    else:
        order = None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield tuple(a[start : start + batch_size] for a in arrays)
        else:
            index = order[start : start + batch_size]
            yield tuple(a[index] for a in arrays)


def num_batches(n, batch_size, drop_last=False):
    """How many batches ``iterate_batches`` yields for ``n`` rows."""
    return n // batch_size if drop_last else -(-n // batch_size)

"""One seeded random generator for parameter initialisation and shuffling (``manual_seed``).

The generator (and NumPy's ``numpy.random``, ≈ 12 ms to import) is made on first use.  A
worked solution whose parameters are all given (``fill``) builds its model inside
:func:`draws_overwritten`: the initial weights it would draw and then overwrite are not drawn,
only counted, and the generator, if anything asks for it later, first makes those draws, so
every later number is the one it would have been.
"""
from __future__ import annotations

import contextlib

import numpy as np

_seed = 0
_generator = None  # None: not made yet (made from _seed, then _owed uniform draws are made and dropped)
_owed = 0
_overwritten = False  # inside draws_overwritten()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed deltalab's generator (like ``torch.manual_seed``) and return it."""
    reseed(seed)
    return generator()


def reseed(seed: int) -> None:
    """Reseed deltalab's generator; it is made on first use."""
    global _seed, _generator, _owed
    _seed, _generator, _owed = seed, None, 0


def generator() -> np.random.Generator:
    global _generator, _owed
    if _generator is None:
        made = np.random.default_rng(_seed)
        if _owed:
            made.random(_owed)  # the uniform draws draws_overwritten() skipped: one double each
        _generator, _owed = made, 0
    return _generator


@contextlib.contextmanager
def draws_overwritten():
    """A block whose :func:`uniform` draws are all overwritten before they are read: they are counted, not made."""
    global _overwritten
    before, _overwritten = _overwritten, True
    try:
        yield
    finally:
        _overwritten = before


def uniform(low, high, size):
    """``generator().uniform(low, high, size)``; inside :func:`draws_overwritten` zeros of that size
    (the generator then owes the draws: the same numbers come after)."""
    global _owed
    if _overwritten and _generator is None:
        shape = (size,) if isinstance(size, int) else tuple(size)
        _owed += int(np.prod(shape, dtype=np.int64))
        return np.zeros(shape)
    return generator().uniform(low, high, size=size)


def seed() -> int:
    """Reseed from fresh entropy and return the new seed value (like ``torch.seed``)."""
    fresh = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(fresh)
    return fresh

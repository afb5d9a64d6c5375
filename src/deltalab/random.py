"""One seeded random generator for parameter initialisation and shuffling (``manual_seed``)."""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed deltalab's generator (like ``torch.manual_seed``) and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    return _generator


def seed() -> int:
    """Reseed from fresh entropy and return the new seed value (like ``torch.seed``)."""
    fresh = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(fresh)
    return fresh

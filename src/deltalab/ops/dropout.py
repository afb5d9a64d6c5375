"""Dropout: y = x ∘ m / (1 − p) with m ~ Bernoulli(1 − p) per element, in training only.

The mask is drawn from deltalab's seeded generator (``manual_seed``), so a run repeats; it
cannot repeat torch's draws.  :func:`dropout_with_mask` takes a given mask (tests, reports).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ._util import operand


class Dropout(Function):
    """y = x ∘ noise, noise = m / (1 − p) (0 where dropped); ∂y/∂x = noise."""

    @staticmethod
    def forward(ctx, x, noise):
        ctx.noise = noise
        return x * noise

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.noise, None


def check_probability(p, where="dropout"):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"{where} probability has to be between 0 and 1, but got {p}")


def dropout_with_mask(x, keep, p):
    """x ∘ keep / (1 − p) for a given boolean ``keep`` mask (all zeros when p = 1, as torch)."""
    x = operand(x)
    keep = np.asarray(getattr(keep, "data", keep), dtype=bool)
    if p == 1:
        noise = np.zeros(x.shape, dtype=x.dtype)
    else:
        noise = keep.astype(x.dtype) / np.asarray(1 - p, dtype=x.dtype)
    return Dropout.apply(x, np.broadcast_to(noise, x.shape))


def dropout(x, p=0.5, training=True, inplace=False):
    """``torch.nn.functional.dropout``: in training, zero each element with probability p and
    scale the rest by 1/(1 − p); outside training the input itself is returned."""
    from ..random import generator

    check_probability(p)
    if inplace:
        raise NotImplementedError("deltalab has no in-place dropout (inplace=True); use the returned tensor")
    if not training or p == 0:
        return x
    x = operand(x)
    keep = generator().random(x.shape) >= p
    return dropout_with_mask(x, keep, p)

"""Dropout as a layer: active in ``train()`` mode, the identity in ``eval()`` mode."""
from __future__ import annotations

from ..ops.dropout import check_probability, dropout
from .module import Module


class Dropout(Module):
    """Zero each element with probability p in training and scale the rest by 1/(1 − p)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        check_probability(p)
        if inplace:
            raise NotImplementedError("deltalab has no in-place dropout (Dropout(inplace=True))")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

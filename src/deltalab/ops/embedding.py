"""Embedding lookup: rows of a weight matrix picked by integer indices, as ``F.embedding``."""
from __future__ import annotations

import numpy as np

from ..autograd import Function


class Embedding(Function):
    """y[..., :] = W[i, :]; ∂E/∂W[k] = Σ over the positions holding k (none for padding_idx)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.indices, ctx.padding_idx, ctx.shape = indices, padding_idx, weight.shape
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(out, ctx.indices.reshape(-1), grad.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            out[ctx.padding_idx] = 0
        return out, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """``torch.nn.functional.embedding``: ``weight[input]`` with the gradient summed into the rows
    used (never into ``padding_idx``).  ``input`` holds integer indices."""
    if max_norm is not None:
        raise NotImplementedError("deltalab has no torch.nn.functional.embedding max_norm (renormalised rows)")
    if scale_grad_by_freq:
        raise NotImplementedError("deltalab has no torch.nn.functional.embedding scale_grad_by_freq")
    if sparse:
        raise NotImplementedError("deltalab has no sparse gradients (embedding sparse=True)")
    indices = np.asarray(getattr(input, "data", input))
    if indices.dtype.kind not in "iu":
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {indices.dtype} instead")
    rows = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        raise IndexError(f"index out of range in self: indices must be in 0..{rows - 1}, got "
                         f"{indices.min() if indices.min() < 0 else indices.max()}")
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= rows
    return Embedding.apply(weight, indices, padding_idx)

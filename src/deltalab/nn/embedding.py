"""Embedding: a lookup table of vectors indexed by integers, like ``torch.nn.Embedding``."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ops.embedding import embedding
from .module import Module, Parameter, check_device


class Embedding(Module):
    """weight (num_embeddings, embedding_dim) ~ N(0, 1) as torch; the row ``padding_idx`` starts
    at zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, *, device=None, dtype=None):
        super().__init__()
        if device is not None:
            check_device(device)
        if max_norm is not None:
            raise NotImplementedError("deltalab has no torch.nn.Embedding max_norm (renormalised rows)")
        if scale_grad_by_freq:
            raise NotImplementedError("deltalab has no torch.nn.Embedding scale_grad_by_freq")
        if sparse:
            raise NotImplementedError("deltalab has no sparse gradients (Embedding sparse=True)")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = None, norm_type, False, False
        if _weight is None:
            from ..random import generator

            dtype = dtypes.resolve(dtype) if dtype is not None else dtypes.get_default_dtype()
            array = generator().standard_normal((num_embeddings, embedding_dim)).astype(dtype)
            if padding_idx is not None:
                array[padding_idx] = 0
        else:
            array = np.array(getattr(_weight, "data", _weight), copy=True)
            if array.shape != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
        self.weight = Parameter(array)
        if _freeze:
            self.weight.requires_grad = False

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        rows, cols = np.shape(getattr(embeddings, "data", embeddings))
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def forward(self, input):
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")

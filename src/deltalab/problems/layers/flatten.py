"""``type = "flatten"``: x[l] = x[l−1] as one flat vector per sample (before a dense layer)."""
from __future__ import annotations

import numpy as np

from ... import ops
from ...derivation.expressions import op
from .base import LayerCount, LayerKind


class Flatten(LayerKind):
    name = "flatten"
    order = 50

    def count(self, spec, shape, batch, where, reader):
        return LayerCount((int(np.prod(shape)),))

    def build(self, l, spec, shape):
        return (int(np.prod(shape)),), {}

    def forward(self, spec, x, weight, bias):
        return None, ops.flatten(x, 1)

    def torch_forward(self, torch, spec, x, weight, bias):
        return None, torch.flatten(x, 1)

    def describe(self, l, spec, shape_text):
        return f"layer {l}: flatten → {shape_text}", [f"x[{l}] = flatten(x[{l - 1}])"]

    def derive_output(self, spec, x, shape):
        return op("reshape", x, shape=shape, label="flatten")

    def derive_input_delta(self, spec, l, x_in, upstream, weight, input_shape, batched):
        return op("reshape", upstream, shape=tuple(input_shape), label="unflatten")


KIND = Flatten()

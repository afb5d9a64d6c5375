"""A feed-forward network described layer by layer (mlp / cnn problem files), with the
lecture's names: layer l (1-based position in the list) has weights ``W<l>`` and bias ``b<l>``;
its pre-activation is z[l], its output x[l] (x[0] is the input).  What each layer kind builds
and computes is in its module of the layer registry, :mod:`deltalab.problems.layers`.
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import ConfigurationError
from ..nn.module import Module, uniform_


class LayerValue(NamedTuple):
    key: str  # "x[0]", "z[1]", "x[1]", ...
    tensor: object
    layer: int
    kind: str  # "input" | "preactivation" | "activation"


class LayeredNetwork(Module):
    """Layers given as specs (objects or dicts with type, units, out_channels, kernel_size,
    stride, padding, bias, activation), as in a problem file's ``[[model.layers]]``."""

    def __init__(self, input_shape, layers, dtype=None):
        from ..problems.layers import LAYERS  # the layer kinds (imported with the first network built)

        super().__init__()
        self.input_shape = tuple(input_shape)
        self.specs = [dict(s) if isinstance(s, dict) else dict(vars(s)) for s in layers]
        self.shapes = [self.input_shape]  # per-sample output shape of each layer
        shape = self.input_shape
        for l, spec in enumerate(self.specs, start=1):
            if spec["type"] not in LAYERS:
                raise ConfigurationError(f"layer {l}: unknown layer type {spec['type']!r}")
            shape, parameters = LAYERS[spec["type"]].build(l, spec, shape)
            for name, (size, fan_in) in parameters.items():
                setattr(self, name, uniform_(size, fan_in, dtype))
            self.shapes.append(shape)

    def run(self, x) -> list:
        """Every value of the forward pass in order: x[0], then z[l] (if any) and x[l] per layer."""
        from ..problems.layers import LAYERS

        values = [LayerValue("x[0]", x, 0, "input")]
        for l, spec in enumerate(self.specs, start=1):
            z, x = LAYERS[spec["type"]].forward(spec, x, getattr(self, f"W{l}", None), getattr(self, f"b{l}", None))
            if z is not None:
                values.append(LayerValue(f"z[{l}]", z, l, "preactivation"))
                if spec.get("activation", "identity") == "identity":
                    continue  # x[l] = z[l]
            values.append(LayerValue(f"x[{l}]", x, l, "activation"))
        return values

    def forward(self, x):
        return self.run(x)[-1].tensor

    def layer_rows(self, input_shape):
        """(name, type, output shape, parameters) per layer, for ``deltalab.summary``."""
        rows = []
        for l, spec in enumerate(self.specs, start=1):
            count = sum(getattr(self, n).numel() for n in (f"W{l}", f"b{l}") if getattr(self, n, None) is not None)
            rows.append((f"layer {l}", spec["type"], self.shapes[l], int(count)))
        return rows

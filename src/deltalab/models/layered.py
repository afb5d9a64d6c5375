"""A feed-forward network described layer by layer (mlp / cnn problem files), with the
lecture's names: layer l (1-based position in the list) has weights ``W<l>`` and bias ``b<l>``;
its pre-activation is z[l], its output x[l] (x[0] is the input).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import ops
from ..errors import ConfigurationError
from ..nn.layers import same_padding
from ..nn.module import Module, uniform_
from ..ops.conv import output_size
from .elman import OUTPUT_ACTIVATIONS


class LayerValue(NamedTuple):
    key: str  # "x[0]", "z[1]", "x[1]", ...
    tensor: object
    layer: int
    kind: str  # "input" | "preactivation" | "activation"


class LayeredNetwork(Module):
    """Layers given as specs (objects or dicts with type, units, out_channels, kernel_size,
    stride, padding, bias, activation), as in a problem file's ``[[model.layers]]``."""

    def __init__(self, input_shape, layers, dtype=None):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.specs = [dict(s) if isinstance(s, dict) else dict(vars(s)) for s in layers]
        self.shapes = [self.input_shape]  # per-sample output shape of each layer
        shape = self.input_shape
        for l, spec in enumerate(self.specs, start=1):
            kind = spec["type"]
            if kind == "dense":
                if len(shape) != 1:
                    raise ConfigurationError(f"layer {l} (dense): needs a flat input but gets shape {shape}; "
                                             "put a flatten layer before it")
                self._parameter(f"W{l}", (spec["units"], shape[0]), shape[0], dtype)
                if spec.get("bias", True):
                    self._parameter(f"b{l}", (spec["units"],), shape[0], dtype)
                shape = (spec["units"],)
            elif kind == "conv2d":
                if len(shape) != 3:
                    raise ConfigurationError(f"layer {l} (conv2d): needs a (channels, height, width) input, gets {shape}")
                kernel = tuple(spec["kernel_size"])
                if spec.get("padding") == "same":
                    if tuple(spec.get("stride", (1, 1))) != (1, 1):
                        raise ConfigurationError(f"layer {l} (conv2d): 'same' padding needs stride 1")
                    try:
                        spec["padding"] = same_padding(kernel)
                    except ConfigurationError as exc:
                        raise ConfigurationError(f"layer {l} (conv2d): {exc}") from None
                fan_in = shape[0] * kernel[0] * kernel[1]
                self._parameter(f"W{l}", (spec["out_channels"], shape[0]) + kernel, fan_in, dtype)
                if spec.get("bias", True):
                    self._parameter(f"b{l}", (spec["out_channels"],), fan_in, dtype)
                shape = (spec["out_channels"],) + self._window_shape(l, shape, spec)
            elif kind in ("max_pool2d", "avg_pool2d"):
                shape = (shape[0],) + self._window_shape(l, shape, spec)
            elif kind == "flatten":
                shape = (int(np.prod(shape)),)
            else:
                raise ConfigurationError(f"layer {l}: unknown layer type {kind!r}")
            self.shapes.append(shape)

    def _parameter(self, name, shape, fan_in, dtype):
        setattr(self, name, uniform_(shape, fan_in, dtype))

    @staticmethod
    def _window_shape(l, shape, spec):
        kernel, stride = tuple(spec["kernel_size"]), tuple(spec.get("stride", spec["kernel_size"]))
        padding = tuple(spec.get("padding", (0, 0)))
        out = tuple(output_size(n, k, s, p) for n, k, s, p in zip(shape[1:], kernel, stride, padding))
        if min(out) < 1:
            raise ConfigurationError(f"layer {l} ({spec['type']}): kernel {kernel} with padding {padding} does not fit "
                                     f"the {shape[1]}×{shape[2]} input")
        return out

    def run(self, x) -> list:
        """Every value of the forward pass in order: x[0], then z[l] (if any) and x[l] per layer."""
        values = [LayerValue("x[0]", x, 0, "input")]
        for l, spec in enumerate(self.specs, start=1):
            kind = spec["type"]
            weight, bias = getattr(self, f"W{l}", None), getattr(self, f"b{l}", None)
            if kind == "dense":
                z = ops.linear(x, weight, bias)
            elif kind == "conv2d":
                z = ops.conv2d(x, weight, bias, tuple(spec.get("stride", (1, 1))), tuple(spec.get("padding", (0, 0))))
            elif kind == "max_pool2d":
                x = ops.max_pool2d(x, tuple(spec["kernel_size"]), tuple(spec["stride"]), tuple(spec["padding"]))
            elif kind == "avg_pool2d":
                x = ops.avg_pool2d(x, tuple(spec["kernel_size"]), tuple(spec["stride"]), tuple(spec["padding"]))
            else:  # flatten
                x = ops.flatten(x, 1)
            if kind in ("dense", "conv2d"):
                activation = spec.get("activation", "identity")
                if activation == "softmax" and kind == "conv2d":
                    x = ops.softmax(z, axis=1)
                else:
                    x = OUTPUT_ACTIVATIONS[activation](z)
                values.append(LayerValue(f"z[{l}]", z, l, "preactivation"))
                if activation == "identity":
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

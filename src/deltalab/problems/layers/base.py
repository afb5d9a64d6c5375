"""What a layer kind of a layered (mlp / cnn) problem provides, and the parts kinds share.

A layer kind answers, for one ``[[model.layers]]`` entry: which keys it takes and how to read
them, what one forward pass costs, which parameters it has, how the engine computes it, how
PyTorch computes it (``--check-torch``), how the lecture writes it, and its formulas in the
derivation record (forward, the delta it passes back, its parameter gradients).

Specs after reading are plain dicts (``type``, ``units``, ``kernel_size``, ...), as
:class:`~deltalab.models.layered.LayeredNetwork` takes them from a problem file, an
architecture file or a checkpoint; a key may be missing there, so kinds read with defaults.
"""
from __future__ import annotations

from dataclasses import fields

from ...errors import ConfigurationError
from ...models.elman import OUTPUT_ACTIVATIONS as ENGINE_ACTIVATIONS
from ...ops.conv import output_size
from ...records import dataclass

OUTPUT_ACTIVATIONS = tuple(ENGINE_ACTIVATIONS)  # identity, softmax, sigmoid, tanh, relu


@dataclass
class LayerSpec:
    """One validated ``[[model.layers]]`` entry (fields a kind does not use keep their defaults)."""

    type: str
    units: int = 0
    out_channels: int = 0
    kernel_size: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: object = (0, 0)
    bias: bool = True
    activation: str = "identity"


def spec_keys() -> tuple:
    """The keys a stored layer spec may hold (a LayeredNetwork's config, a checkpoint)."""
    return tuple(field.name for field in fields(LayerSpec))


def spec_dict(spec) -> dict:
    """A spec as the dict every kind reads (a LayerSpec or a dict)."""
    return dict(spec) if isinstance(spec, dict) else dict(vars(spec))


@dataclass
class LayerCount:
    """What one layer costs over the batch: its output shape (one sample), parameters, multiply-adds."""

    shape: tuple
    parameters: int = 0
    multiply_adds: int = 0


class LayerKind:
    """One layer kind.  ``activated`` kinds compute z[l] from parameters W<l>, b<l> and then
    x[l] = f(z[l]); the others map x[l−1] to x[l] directly."""

    name = ""
    order = 100  # where error messages list the kind among the others
    keys: tuple = ("type",)
    activated = False
    needs_cnn = False  # only in a cnn problem (an image input)
    class_scores = False  # as the last layer, its outputs are one score per class (argmax = class)

    # ---- reading a problem file
    def read(self, layer, spec, where, reader):
        """Fill ``spec`` (a LayerSpec) from the file's table ``layer`` (keys already checked)."""

    def count(self, spec, shape, batch, where, reader):
        """The layer's LayerCount on a per-sample input ``shape``, or None when it does not fit
        (building it then refuses with its own message)."""
        raise NotImplementedError

    def output_values(self, spec) -> int:
        """How many arrays of the output shape the layer records: z[l] and x[l], or x[l] alone."""
        return 2 if self.activated and spec.get("activation", "identity") != "identity" else 1

    # ---- the engine
    def build(self, l, spec, shape):
        """(output shape, {parameter name: (shape, fan_in)}) on a per-sample input ``shape``;
        may complete ``spec`` (``"same"`` padding becomes numbers); ConfigurationError if it does not fit."""
        raise NotImplementedError

    def forward(self, spec, x, weight, bias):
        """(z[l] or None, x[l]) as engine tensors."""
        raise NotImplementedError

    # ---- PyTorch, written independently of the engine
    def torch_forward(self, torch, spec, x, weight, bias):
        """(z[l] or None, x[l]) in PyTorch."""
        raise NotImplementedError

    # ---- the lecture's text
    def describe(self, l, spec, shape_text):
        """(the description line, [the layer's equations])."""
        raise NotImplementedError

    # ---- the derivation record
    def activation_axis(self, sample_axis, batched):
        """The axis softmax runs over (and its derivative): the class / channel axis."""
        return sample_axis if batched else -1

    def derive_preactivation(self, spec, x, weight, bias, batched):
        """z[l]'s formula over x[l−1] and the parameters (activated kinds)."""
        raise NotImplementedError

    def derive_output(self, spec, x, shape):
        """x[l]'s formula over x[l−1] (kinds without parameters); ``shape``: x[l]'s recorded shape."""
        raise NotImplementedError

    def derive_input_delta(self, spec, l, x_in, upstream, weight, input_shape, batched):
        """∂E/∂x[l−1] from the layer's delta ``upstream`` (δ[l], or ∂E/∂x[l] without parameters)."""
        raise NotImplementedError

    def derive_gradients(self, spec, delta, x, batched):
        """(∂E/∂W<l>, ∂E/∂b<l>) formulas over δ[l] and x[l−1] (activated kinds)."""
        raise NotImplementedError

    def annotate(self, d, l, spec, input_id, batched):
        """Attach worked entries to layer ``l``'s recorded nodes in the derivation ``d`` (a
        convolution's cell term by term, pooling's winners); ``input_id``: the node the layer
        reads. Most kinds have none."""

    # ---- --exact: the layer as equations
    def exact_equations(self, l, spec, previous, bias):
        """[(node name, equation text)] of the layer written as equations, or None (not supported)."""
        return None


class ActivatedLayer(LayerKind):
    """A layer z[l] = (W<l> ∘ x[l−1]) + b<l>, x[l] = f(z[l]) (dense, conv2d)."""

    activated = True

    def activation_equations(self, l, spec):
        activation = spec.get("activation", "identity")
        return [] if activation == "identity" else [f"x[{l}] = {activation}(z[{l}])"]

    def torch_activation(self, torch, name, z):
        return {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
                "softmax": lambda v: torch.softmax(v, dim=1)}[name](z)


class WindowLayer(LayerKind):
    """A layer that slides a kernel over a (channels, height, width) input (conv2d, pooling)."""

    needs_cnn = True

    def read_window(self, layer, spec, where, reader, stride_default, allow_same):
        spec.kernel_size = reader.pair(layer.get("kernel_size"), f"{where}.kernel_size")
        spec.stride = reader.pair(layer.get("stride", stride_default), f"{where}.stride")
        spec.padding = reader.pair(layer.get("padding", 0), f"{where}.padding", allow_same=allow_same)

    @staticmethod
    def check_window(spec, where, reader):
        for name in ("kernel_size", "stride"):
            if min(getattr(spec, name)) < 1:
                reader.fail(f"{where}.{name}", f"expected values of at least 1, got {list(getattr(spec, name))}")
        if spec.padding != "same" and min(spec.padding) < 0:
            reader.fail(f"{where}.padding", f"expected non-negative values, got {list(spec.padding)}")

    @staticmethod
    def window_shape(l, shape, spec):
        if len(shape) != 3:
            raise ConfigurationError(f"layer {l} ({spec['type']}): needs a (channels, height, width) input, "
                                     f"gets {tuple(shape)}")
        kernel, stride = tuple(spec["kernel_size"]), tuple(spec.get("stride", spec["kernel_size"]))
        padding = tuple(spec.get("padding", (0, 0)))
        out = tuple(output_size(n, k, s, p) for n, k, s, p in zip(shape[1:], kernel, stride, padding))
        if min(out) < 1:
            raise ConfigurationError(f"layer {l} ({spec['type']}): kernel {kernel} with padding {padding} does not fit "
                                     f"the {shape[1]}×{shape[2]} input")
        return out

    @staticmethod
    def counted_window(spec):
        """(kernel, stride, padding) with ``"same"`` padding as numbers, as counted before
        building; None where ``"same"`` cannot hold (building then says why)."""
        kernel, stride, padding = spec["kernel_size"], spec["stride"], spec["padding"]
        if padding == "same":
            if stride != (1, 1) or any(k % 2 == 0 for k in kernel):
                return None
            padding = tuple((k - 1) // 2 for k in kernel)
        return kernel, stride, padding

    @staticmethod
    def window_text(spec):
        return (f" {spec['kernel_size'][0]}×{spec['kernel_size'][1]}, stride {tuple(spec['stride'])}, "
                f"padding {tuple(spec['padding'])}")

    @staticmethod
    def window_options(spec):
        return dict(kernel=tuple(spec["kernel_size"]), stride=tuple(spec["stride"]), padding=tuple(spec["padding"]))


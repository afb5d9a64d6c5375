"""``type = "conv2d"``: z[l] = W<l> ⋆ x[l−1] + b<l> (cross-correlation, as torch), x[l] = f(z[l]);
backward: the weight gradient is the correlation of x[l−1] with δ[l], the input delta a full
convolution of δ[l] with the kernel."""
from __future__ import annotations

from ... import limits, ops
from ...derivation.expressions import op
from ...errors import ConfigurationError
from ...models.elman import OUTPUT_ACTIVATIONS as ENGINE_ACTIVATIONS
from ...nn.layers import same_padding
from .base import OUTPUT_ACTIVATIONS, ActivatedLayer, LayerCount, WindowLayer
from .worked import conv_input_delta_cell, conv_output_cell, conv_weight_gradient_cell


class Conv2d(ActivatedLayer, WindowLayer):
    name = "conv2d"
    order = 20
    keys = ("type", "out_channels", "kernel_size", "stride", "padding", "bias", "activation")

    def read(self, layer, spec, where, reader):
        spec.out_channels = reader.positive_int(layer, "out_channels", f"{where}.out_channels", largest=limits.WIDTH)
        self.read_window(layer, spec, where, reader, stride_default=1, allow_same=True)
        spec.bias = reader.boolean(layer, "bias", f"{where}.bias", True)
        spec.activation = reader.choice(layer, "activation", OUTPUT_ACTIVATIONS, f"{where}.activation", "identity")
        self.check_window(spec, where, reader)

    def count(self, spec, shape, batch, where, reader):
        window = self.counted_window(spec) if len(shape) == 3 else None
        if window is None:
            return None
        kernel, stride, padding = window
        out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(shape[1:], kernel, stride, padding))
        if min(out) < 1:
            return None
        channels, area = spec["out_channels"], kernel[0] * kernel[1]
        return LayerCount((channels,) + out, channels * (shape[0] * area + (1 if spec["bias"] else 0)),
                          batch * channels * out[0] * out[1] * shape[0] * area)

    def build(self, l, spec, shape):
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
        parameters = {f"W{l}": ((spec["out_channels"], shape[0]) + kernel, fan_in)}
        if spec.get("bias", True):
            parameters[f"b{l}"] = ((spec["out_channels"],), fan_in)
        return (spec["out_channels"],) + self.window_shape(l, shape, spec), parameters

    def forward(self, spec, x, weight, bias):
        z = ops.conv2d(x, weight, bias, tuple(spec.get("stride", (1, 1))), tuple(spec.get("padding", (0, 0))))
        activation = spec.get("activation", "identity")
        return z, ops.softmax(z, axis=1) if activation == "softmax" else ENGINE_ACTIVATIONS[activation](z)

    def torch_forward(self, torch, spec, x, weight, bias):
        padding = spec["padding"] if spec["padding"] != "same" else tuple((k - 1) // 2 for k in spec["kernel_size"])
        z = torch.nn.functional.conv2d(x, weight, bias, stride=spec["stride"], padding=padding)
        return z, self.torch_activation(torch, spec.get("activation", "identity"), z)

    def describe(self, l, spec, shape_text):
        line = (f"layer {l}: conv2d {spec['out_channels']} kernels {spec['kernel_size'][0]}×{spec['kernel_size'][1]}, "
                f"stride {tuple(spec['stride'])}, padding {tuple(spec['padding'])}, "
                f"{spec.get('activation', 'identity')} → {shape_text}")
        equation = f"z[{l}] = W{l} ⋆ x[{l - 1}]" + (" + b%d" % l if spec.get("bias", True) else "")
        return line, [equation] + self.activation_equations(l, spec)

    def activation_axis(self, sample_axis, batched):
        return sample_axis  # the channel axis, batched or not

    def derive_preactivation(self, spec, x, weight, bias, batched):
        args = (x, weight) + ((bias,) if bias is not None else ())
        return op("conv2d", *args, stride=tuple(spec["stride"]), padding=tuple(spec["padding"]))

    def derive_input_delta(self, spec, l, x_in, upstream, weight, input_shape, batched):
        return op("conv_input_grad", upstream, weight, stride=tuple(spec["stride"]), padding=tuple(spec["padding"]),
                  input_shape=tuple(input_shape))

    def derive_gradients(self, spec, delta, x, batched):
        return op("conv_weight_grad", x, delta, **self.window_options(spec)), op("channel_sum", delta)

    def annotate(self, d, l, spec, input_id, batched):
        """One cell of z[l], of ∂E/∂W<l> and of the delta of the layer's input, term by term."""
        stride, padding = tuple(spec["stride"]), tuple(spec["padding"])
        x, w = d[input_id], d[f"parameters_before:W{l}"]
        b = d[f"parameters_before:b{l}"] if f"parameters_before:b{l}" in d else None
        z_id = f"forward:z[{l}]"
        worked = conv_output_cell(x.value, w.value, None if b is None else b.value, d[z_id].value, stride, padding,
                                  batched, (x.symbol, w.symbol, None if b is None else b.symbol))
        d.annotate(z_id, worked=worked)
        delta_id = f"deltas:z[{l}]"
        if delta_id not in d:
            return
        delta = d[delta_id]
        if f"gradients:W{l}" in d:
            gradient = d[f"gradients:W{l}"]
            d.annotate(gradient.id, worked=conv_weight_gradient_cell(
                x.value, delta.value, gradient.value, tuple(spec["kernel_size"]), stride, padding, batched,
                (x.symbol, delta.symbol)))
        input_delta_id = "deltas:" + input_id.partition(":")[2]
        node = d[input_delta_id] if input_delta_id in d else None
        if node is not None and getattr(node.formula, "name", None) == "conv_input_grad":
            d.annotate(input_delta_id, worked=conv_input_delta_cell(delta.value, w.value, node.value, stride,
                                                                    padding, batched, (delta.symbol, w.symbol)))


KIND = Conv2d()

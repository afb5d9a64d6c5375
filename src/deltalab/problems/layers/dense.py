"""``type = "dense"``: z[l] = W<l> x[l−1] + b<l>, x[l] = f(z[l]) on a flat input."""
from __future__ import annotations

from ... import limits, ops
from ...derivation.expressions import op
from ...errors import ConfigurationError
from ...models.elman import OUTPUT_ACTIVATIONS as ENGINE_ACTIVATIONS
from .base import OUTPUT_ACTIVATIONS, ActivatedLayer, LayerCount


class Dense(ActivatedLayer):
    name = "dense"
    order = 10
    keys = ("type", "units", "activation", "bias")
    class_scores = True

    def read(self, layer, spec, where, reader):
        spec.units = reader.positive_int(layer, "units", f"{where}.units", largest=limits.WIDTH)
        spec.activation = reader.choice(layer, "activation", OUTPUT_ACTIVATIONS, f"{where}.activation", "identity")
        spec.bias = reader.boolean(layer, "bias", f"{where}.bias", True)

    def count(self, spec, shape, batch, where, reader):
        if len(shape) != 1:
            return None
        units = spec["units"]
        return LayerCount((units,), units * (shape[0] + (1 if spec["bias"] else 0)), batch * units * shape[0])

    def build(self, l, spec, shape):
        if len(shape) != 1:
            raise ConfigurationError(f"layer {l} (dense): needs a flat input but gets shape {shape}; "
                                     "put a flatten layer before it")
        parameters = {f"W{l}": ((spec["units"], shape[0]), shape[0])}
        if spec.get("bias", True):
            parameters[f"b{l}"] = ((spec["units"],), shape[0])
        return (spec["units"],), parameters

    def forward(self, spec, x, weight, bias):
        z = ops.linear(x, weight, bias)
        return z, ENGINE_ACTIVATIONS[spec.get("activation", "identity")](z)

    def torch_forward(self, torch, spec, x, weight, bias):
        z = torch.nn.functional.linear(x, weight, bias)
        return z, self.torch_activation(torch, spec.get("activation", "identity"), z)

    def describe(self, l, spec, shape_text):
        line = f"layer {l}: dense {spec['units']} units, {spec.get('activation', 'identity')} → {shape_text}"
        equation = f"z[{l}] = W{l} x[{l - 1}]" + (" + b%d" % l if spec.get("bias", True) else "")
        return line, [equation] + self.activation_equations(l, spec)

    def derive_preactivation(self, spec, x, weight, bias, batched):
        z = x @ weight.T if batched else weight @ x
        return z + bias if bias is not None else z

    def derive_input_delta(self, spec, l, x_in, upstream, weight, input_shape, batched):
        return upstream @ weight if batched else weight.T @ upstream

    def derive_gradients(self, spec, delta, x, batched):
        return op("outer_sum" if batched else "outer", delta, x), (op("sum_rows", delta, keep=1) if batched else delta)

    def exact_equations(self, l, spec, previous, bias):
        from ...equations.translate import ACTIVATION

        return [(f"z{l}", f"W{l} @ {previous}" + (f" + b{l}" if bias else "")),
                (f"x{l}", ACTIVATION[spec["activation"]].format(f"z{l}"))]


KIND = Dense()

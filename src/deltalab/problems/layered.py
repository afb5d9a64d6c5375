"""Layered problems (``model.type = "mlp"`` or ``"cnn"``): a list of ``[[model.layers]]``, each
one of the layer registry's kinds (:mod:`.layers`), trained on one sample or a batch."""
from __future__ import annotations

import numpy as np

from .. import limits
from ..errors import SpecError
from ..models.layered import LayeredNetwork
from ..trace import StepTrace, Value
from .file import NetworkSize
from .layers import LAYER_TYPES, LAYERS, LayerSpec, spec_dict
from .network import NetworkKind, vector
from .reader import describe_value


class LayeredKind(NetworkKind):
    model_keys = ("type", "input_shape", "layers", "loss")

    def __init__(self, name, image):
        self.names = (name,)
        self.image = image  # cnn: a (channels, height, width) input

    # ------------------------------------------------------------------ reading
    def read_model(self, model, problem, r):
        problem.input_shape = self._input_shape(model, r)
        problem.layers = self._layers(model, r)

    def _input_shape(self, model, r):
        if "input_shape" not in model:
            r.fail("model.input_shape", "missing; expected a list of positive integers"
                   + (" (channels, height, width)" if self.image else " (features)"))
        value = model["input_shape"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            r.fail("model.input_shape", f"expected a list of positive integers, got {describe_value(value)}")
        if self.image and len(value) != 3:
            r.fail("model.input_shape", f"a cnn needs (channels, height, width), got {value}")
        if not self.image and len(value) != 1:
            r.fail("model.input_shape", f"an mlp needs (features,), got {value}; use type = \"cnn\" for images")
        for i, n in enumerate(value):
            r.at_most(n, limits.WIDTH, f"model.input_shape[{i}]")
        r.at_most(int(np.prod(value, dtype=object)), limits.VALUES, "model.input_shape",
                  f"one sample of {'×'.join(map(str, value))} = {int(np.prod(value, dtype=object)):,} values")
        return tuple(value)

    def _layers(self, model, r):
        layers = model.get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
            r.fail("model.layers", "expected one or more [[model.layers]] tables")
        specs = []
        for i, layer in enumerate(layers):
            where = f"model.layers[{i}]"
            kind = LAYERS[r.choice(layer, "type", LAYER_TYPES, f"{where}.type")]
            r.check_keys(layer, kind.keys, where)
            if kind.needs_cnn and not self.image:
                r.fail(f"{where}.type", f"{kind.name} layers need model.type = \"cnn\"")
            spec = LayerSpec(type=kind.name)
            kind.read(layer, spec, where, r)
            specs.append(spec)
        return specs

    def output_activation(self, problem):
        return next((s.activation for s in reversed(problem.layers) if LAYERS[s.type].activated), "identity")

    def read_inputs(self, inputs, problem):
        if inputs.ndim == 0:  # a single number fills one sample (shape exercises need no real image)
            return np.full(problem.input_shape, float(inputs))
        return inputs

    def check_data(self, problem, r):
        sample, x = problem.input_shape, problem.inputs
        if x.shape != sample and x.shape[1:] != sample:
            r.fail("data.inputs", f"expected one sample of shape {sample} or a batch (N, {', '.join(map(str, sample))}), "
                                  f"got shape {x.shape}")

    def count(self, problem, r):
        """Counts up to the first layer that does not fit its input (building the network refuses
        that one with its own message, after allocating only the layers counted here); then the
        targets must have the network's output shape."""
        inputs = problem.inputs
        batch = 1 if inputs.shape == problem.input_shape else inputs.shape[0]
        shape = problem.input_shape
        size = NetworkSize(values=batch * int(np.prod(shape)))
        per_layer = []
        for i, layer in enumerate(problem.layers):
            spec = spec_dict(layer)
            kind = LAYERS[layer.type]
            counted = kind.count(spec, shape, batch, f"model.layers[{i}]", r)
            if counted is None:
                return size, per_layer
            shape = counted.shape
            values = batch * int(np.prod(shape)) * kind.output_values(spec)
            per_layer.append((counted.parameters, values, counted.multiply_adds))
            size.parameters += counted.parameters
            size.values += values
            size.multiply_adds += counted.multiply_adds
        self._check_targets(problem, shape, r)
        return size, per_layer

    @staticmethod
    def _check_targets(problem, output_shape, r):
        if problem.targets is None:
            return
        batched = problem.inputs.shape != problem.input_shape
        batch = problem.inputs.shape[0] if batched else 1
        whole = (batch,) + tuple(output_shape)
        if problem.targets.shape not in (whole, whole[1:]):
            r.fail("data.targets", f"expected shape {whole[1:]}{' or ' + str(whole) if batched else ''} "
                                   f"(the network's output), got {problem.targets.shape}")

    def summary_input_shape(self, problem):
        return problem.input_shape

    # ------------------------------------------------------------------ the model
    def make_network(self, problem):
        return LayeredNetwork(problem.input_shape, problem.layers, dtype=np.float64)

    def describe(self, problem, model):
        lines, equations = [f"input x[0]: {'×'.join(map(str, problem.input_shape))}"], []
        for l, spec in enumerate(model.specs, start=1):
            line, more = LAYERS[spec["type"]].describe(l, spec, "×".join(map(str, model.shapes[l])))
            lines.append(line)
            equations += more
        return self.header(problem, lines, equations)

    # ------------------------------------------------------------------ one step
    def run(self, problem, model, x, fwd):
        batched = problem.inputs.shape != problem.input_shape
        fwd.batched = batched
        fwd.values = model.run(x if batched else x.reshape((1,) + x.shape))
        last_z = next((v.tensor for v in reversed(fwd.values) if v.kind == "preactivation"), None)
        fwd.output = fwd.values[-1].tensor
        fwd.preactivation = last_z if last_z is not None else fwd.output
        fwd.retained = [v.tensor for v in fwd.values[1:]]
        target = fwd.target
        if target is not None and target.shape not in (fwd.output.shape, fwd.output.shape[1:]):
            raise SpecError(f"{problem.path}: data.targets: expected shape {fwd.output.shape[1:]}"
                            f"{' or ' + str(fwd.output.shape) if batched else ''} (the network's output), "
                            f"got {target.shape}")
        if target is not None and target.shape != fwd.output.shape:
            fwd.target = target.reshape(fwd.output.shape)

    def class_axis(self, preactivation):
        return 1 if preactivation.ndim > 1 else -1

    def step_trace(self, problem, fwd, index, before):
        def view(array):
            return vector(array if fwd.batched else array[0])

        forward = [Value(v.key, view(v.tensor.data), v.layer, None, v.kind) for v in fwd.values]
        outputs = [Value("y", view(fwd.output.data), len(fwd.model.specs), None, "output")]
        targets = [] if fwd.target is None else [Value("t", view(fwd.target.data), None, None, "target")]
        errors, error_steps = {}, {}
        if fwd.target is not None and fwd.batched and fwd.output.shape[0] > 1:
            per_sample = fwd.terms.data.reshape(fwd.output.shape[0], -1).sum(axis=1)
            errors = {f"E(sample {n + 1})": float(e) for n, e in enumerate(per_sample)}
            error_steps = dict.fromkeys(errors)  # per sample, not per time step
        step = StepTrace(index, before, forward, outputs, targets, errors, None if fwd.loss is None else fwd.loss.item(),
                         error_steps=error_steps)
        if fwd.loss is not None:
            step.deltas = [Value(v.key, view(v.tensor.grad.data), v.layer, None, v.kind)
                           for v in reversed(fwd.values[1:]) if v.tensor.grad is not None]
        return step

    def derive(self, problem, model, step):
        from ..derivation.layered import derive_layered

        return derive_layered(problem, model, step, problem.inputs.shape != problem.input_shape)

    # ------------------------------------------------------------------ checks
    def torch_outputs(self, problem, torch, p):
        x = torch.tensor(problem.inputs)
        if problem.inputs.shape == problem.input_shape:
            x = x.unsqueeze(0)
        z = None
        for l, layer in enumerate(problem.layers, start=1):
            new_z, x = LAYERS[layer.type].torch_forward(torch, spec_dict(layer), x, p.get(f"W{l}"), p.get(f"b{l}"))
            z = new_z if new_z is not None else z
        if problem.inputs.shape == problem.input_shape:
            return (x if z is None else z)[0], x[0]
        return (x if z is None else z), x

    def as_equations(self, problem, parameters):
        from ..equations.translate import layered_equations

        if self.image:
            return super().as_equations(problem, parameters)
        return layered_equations(problem, parameters)


MLP = LayeredKind("mlp", image=False)
CNN = LayeredKind("cnn", image=True)

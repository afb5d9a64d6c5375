"""The derivation of one step of a layered (mlp / cnn) problem: forward, loss, the backward
recursion δ[l] = (W[l+1]ᵀ δ[l+1]) ⊙ f′(z[l]) (conv: a full convolution with the kernel;
pooling: routing), gradients and updates -- each value as recorded by the engine, each
formula written over the values it comes from.  Each layer kind's own formulas are in its
module of the layer registry (:mod:`deltalab.problems.layers`)."""
from __future__ import annotations

import numpy as np

from .expressions import Const, op, total
from .losses import loss_formulas
from .record import Derivation


def activation_derivative(function, z, x):
    """f′(z[l]) written over the recorded values: the lecture's 1 − x², x ⊙ (1 − x), relu′(z)."""
    if function == "tanh":
        return 1 - op("square", x)
    if function == "sigmoid":
        return x * (1 - x)
    if function == "relu":
        return op("relu_prime", z)
    return None  # identity: f′ = 1


def through_activation(function, upstream, z, x, axis):
    """∂E/∂z from ∂E/∂x for x = f(z)."""
    if function == "identity":
        return upstream
    if function == "softmax":
        return op("softmax_backward", x, upstream, axis=axis)
    return upstream * activation_derivative(function, z, x)


def derive_layered(problem, model, step, batched) -> Derivation:
    from ..problems.layers import LAYERS  # the layer kinds: only layered problems load them
    d = _derive_layered(problem, model, step, batched)
    for l, spec in enumerate(model.specs, start=1):  # a layer kind's worked entries (conv cells, pooling winners)
        input_id = "forward:x[0]" if l == 1 else f"forward:x[{l - 1}]" if f"forward:x[{l - 1}]" in d \
            else f"forward:z[{l - 1}]"
        LAYERS[spec["type"]].annotate(d, l, spec, input_id, batched)
    return d


def _derive_layered(problem, model, step, batched) -> Derivation:
    from ..problems.layers import LAYERS  # the layer kinds: only layered problems load them
    d = Derivation()
    specs = model.specs
    sample_axis = 1 if batched else 0  # the channel / class axis of a recorded value
    values = {v.key: v for v in step.forward}
    params = {name: d.add(f"parameters_before:{name}", name, "parameter", value, section="parameters_before",
                          key=name) for name, value in step.parameters_before.items()}
    current = d.add("forward:x[0]", "x[0]", "input", values["x[0]"].array, section="forward", key="x[0]")
    layer_input, layer_output, activations = {}, {}, {}  # per layer l
    for l, spec in enumerate(specs, start=1):
        layer = LAYERS[spec["type"]]
        layer_input[l] = current
        w, b = params.get(f"W{l}"), params.get(f"b{l}")
        if layer.activated:
            z = layer.derive_preactivation(spec, current, w, b, batched)
            z_ref = d.add(f"forward:z[{l}]", f"z[{l}]", "forward", values[f"z[{l}]"].array, z, section="forward",
                          key=f"z[{l}]")
            function = spec.get("activation", "identity")
            activations[l] = function
            if function == "identity":
                current = z_ref
            else:
                axis = layer.activation_axis(sample_axis, batched)
                current = d.add(f"forward:x[{l}]", f"x[{l}]", "forward", values[f"x[{l}]"].array,
                                op("apply", z_ref, function=function, axis=axis), section="forward", key=f"x[{l}]")
        else:
            array = values[f"x[{l}]"].array
            current = d.add(f"forward:x[{l}]", f"x[{l}]", "forward", array,
                            layer.derive_output(spec, current, array.shape), section="forward", key=f"x[{l}]")
        layer_output[l] = current
    last = len(specs)
    y = d.add("outputs:y", "y", "output", step.outputs[0].array, current, section="outputs", key="y")
    if not step.targets:
        return d
    t = d.add("targets:t", "t", "target", step.targets[0].array, section="targets", key="t")
    last_z = next((d.ref(f"forward:z[{l}]") for l in range(last, 0, -1) if f"forward:z[{l}]" in d), None)
    class_axis = sample_axis if batched or np.ndim(step.outputs[0].array) > 1 else -1
    softmax_output = bool(activations) and activations.get(last) == "softmax"
    loss = loss_formulas(problem.loss, y, t, last_z, class_axis, np.size(problem.targets), softmax_output,
                         step.targets[0].array)
    if step.errors:
        rows = []
        for n, (key, value) in enumerate(step.errors.items()):
            rows.append(d.add(f"errors:{key}", key, "error", value,
                              loss.per_sample(n), section="errors", key=key))
        d.add("loss", "E", "loss", step.loss, total(rows), section=None, key="loss")
    else:
        d.add("loss", "E", "loss", step.loss, loss.total, key="loss")
    # ---- backward, the last layer first
    recorded = {v.key: v.array for v in step.deltas}
    delta_in = {}  # l -> ∂E/∂(what layer l computes first): δ[l] = ∂E/∂z[l], or ∂E/∂x[l]
    for l in range(last, 0, -1):
        spec = specs[l - 1]
        layer = LAYERS[spec["type"]]
        if l == last:
            out_grad = loss.output_gradient  # None: the loss gives δ[L] directly (softmax + cross-entropy)
        else:
            out_grad = backprop(d, specs[l], l + 1, layer_input[l + 1], delta_in[l + 1], params, batched)
        if layer.activated:
            function = activations[l]
            if out_grad is None:
                formula = loss.output_delta
            elif function == "identity":
                formula = out_grad
            else:
                if f"x[{l}]" in recorded:
                    out_grad = d.add(f"deltas:x[{l}]", f"∂E/∂x[{l}]", "delta", recorded[f"x[{l}]"], out_grad,
                                     section="deltas", key=f"x[{l}]")
                axis = layer.activation_axis(sample_axis, batched)
                formula = through_activation(function, out_grad, d.ref(f"forward:z[{l}]"), layer_output[l], axis)
            delta_in[l] = d.add(f"deltas:z[{l}]", f"δ[{l}]", "delta", recorded[f"z[{l}]"], formula,
                                section="deltas", key=f"z[{l}]")
        elif f"x[{l}]" in recorded:
            delta_in[l] = d.add(f"deltas:x[{l}]", f"∂E/∂x[{l}]", "delta", recorded[f"x[{l}]"], out_grad,
                                section="deltas", key=f"x[{l}]")
        else:
            return d  # nothing recorded behind this layer (the input needs no delta)
    for l, spec in enumerate(specs, start=1):
        layer = LAYERS[spec["type"]]
        if not layer.activated:
            continue
        gw, gb = layer.derive_gradients(spec, delta_in[l], layer_input[l], batched)
        for name, formula in ((f"W{l}", gw), (f"b{l}", gb)):
            if name in step.gradients:
                d.add(f"gradients:{name}", f"∂E/∂{name}", "gradient", step.gradients[name], formula,
                      section="gradients", key=name)
    add_updates(d, step, problem.learning_rate)
    return d


def backprop(d, spec, l, x_in, upstream, params, batched):
    """∂E/∂x[l−1] from layer l's upstream delta."""
    from ..problems.layers import LAYERS  # the layer kinds: only layered problems load them
    return LAYERS[spec["type"]].derive_input_delta(spec, l, x_in, upstream, params.get(f"W{l}"),
                                                   d[x_in.node].value.shape, batched)


def add_updates(d, step, learning_rate):
    """θ′ = θ − η ∂E/∂θ for every parameter with a gradient."""
    if learning_rate is None or not step.parameters_after:
        return
    eta = Const(learning_rate, "η")
    for name, value in step.parameters_after.items():
        if f"gradients:{name}" not in d:
            continue
        formula = d.ref(f"parameters_before:{name}") - eta * d.ref(f"gradients:{name}")
        d.add(f"parameters_after:{name}", f"{name}′", "update", value, formula, section="parameters_after", key=name)

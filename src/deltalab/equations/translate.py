"""``--exact`` for the standard problem types: a small ``mlp`` (dense layers) or ``rnn`` written as
equations with the same parameter names, evaluated by SymPy and checked against the numeric solve.

A problem kind's ``as_equations`` (:mod:`deltalab.problems`) calls the writer here;
node names: ``x0`` the input, ``z<l>``/``x<l>`` per layer (``z1(t)``, ``x1(t)`` per step for an
rnn), ``y`` the output, ``target`` the targets, ``E`` the error. ``cnn`` and ``lstm`` problems are refused.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from .parser import EquationError, parse_equation
from .spec import EquationProblem

ACTIVATION = {"identity": "{}", "tanh": "tanh({})", "relu": "relu({})", "sigmoid": "sigmoid({})",
              "softmax": "softmax({})"}


def error_equation(loss, y, z, target, count):
    """The error E of ``loss`` as an equation over the output ``y`` (or pre-activation ``z``)."""
    if loss == "half_squared_error":
        return f"half_squared_error({y}, {target})"
    if loss == "squared_error":
        return f"squared_error({y}, {target})"
    if loss == "mse":
        return f"squared_error({y}, {target}) / {count}"
    if loss == "cross_entropy":
        return f"-sum({target} * ({z} - log(sum(exp({z})))))"
    return f"-sum({target} * log({y}) + (1 - {target}) * log(1 - {y}))"


def layered_equations(problem, parameters):
    """One sample of an mlp of dense layers as equations: ``x0`` the input, ``z<l>``/``x<l>`` per
    layer, ``target`` and ``E``."""
    from ..problems.layers import LAYERS, spec_dict

    if problem.inputs.shape != tuple(problem.input_shape):
        raise SpecError(f"{problem.path}: --exact solves one sample; data.inputs has shape {problem.inputs.shape}")
    texts, previous = [], "x0"
    for l, layer in enumerate(problem.layers, start=1):
        more = LAYERS[layer.type].exact_equations(l, spec_dict(layer), previous, f"b{l}" in parameters)
        if more is None:
            raise SpecError(f"{problem.path}: --exact supports dense layers only, layer {l} is {layer.type}")
        texts += more
        previous = more[-1][0]
    last = len(problem.layers)
    data = {"x0": np.array(problem.inputs, dtype=np.float64)}
    loss = None
    if problem.targets is not None:
        data["target"] = np.array(problem.targets, dtype=np.float64).reshape(-1)
        texts.append(("E", error_equation(problem.loss, f"x{last}", f"z{last}", "target", data["target"].size)))
        loss = "E"
    equations = [parse_equation(name, text) for name, text in texts]
    return EquationProblem(equations, [], dict(parameters), data, {}, loss, outputs=[f"x{last}"])


def recurrent_equations(problem, parameters):
    """The Elman network as a recurrence: ``z1(t)``, ``x1(t)``, ``z2(t)``, ``y(t)`` and ``E``."""
    hidden = ACTIVATION[problem.hidden_activation].format("z1")
    bias1 = " + b1" if "b1" in parameters else ""
    bias2 = " + b2" if "b2" in parameters else ""
    texts = [("z1", f"W1 @ x[t] + H1 @ x1[t-1]{bias1}"), ("x1", hidden), ("z2", f"W2 @ x1{bias2}"),
             ("y", ACTIVATION[problem.output_activation].format("z2"))]
    steps = problem.inputs.shape[0]
    data = {"x": np.array(problem.inputs, dtype=np.float64)}
    initial = {"x1": np.zeros(problem.hidden_size) if problem.initial_state is None
               else np.array(problem.initial_state, dtype=np.float64)}
    loss, loss_steps = None, "all"
    if problem.targets is not None:
        target = np.zeros((steps, problem.output_size))
        if problem.many_to_one:
            target[-1] = problem.targets
            loss_steps = "last"
        elif problem.target_steps is not None:
            for row, step in enumerate(problem.target_steps):
                target[step - 1] = problem.targets[row]
            loss_steps = tuple(problem.target_steps)
        else:
            target[:] = problem.targets
        data["target"] = target
        count = int(np.size(problem.targets))
        texts.append(("E", error_equation(problem.loss, "y", "z2", "target[t]", count)))
        loss = "E"
    recurrence = [parse_equation(name, text, recurrent=True) for name, text in texts]
    return EquationProblem([], recurrence, dict(parameters), data, initial, loss, loss_steps=loss_steps,
                           time_steps=steps, outputs=["y"], sequences={"x", "target"} if loss else {"x"})


def solve_exact_standard(problem, trace, as_equations, tolerance):
    """Add exact values to the numeric ``trace`` of a standard problem (its first step);
    ``as_equations(problem, parameters)`` writes the problem as equations."""
    from .exact import compare, exact_entries, exact_pass
    from .graph import build

    step = trace.steps[0]
    equations = as_equations(problem, {n: np.array(a, dtype=np.float64) for n, a in step.parameters_before.items()})
    graph = build(equations)
    try:
        values, deltas, local = exact_pass(graph)
    except EquationError as exc:  # beyond exact mode's limits: the equations are ours, so no place in them
        raise SpecError(f"{problem.path}: --exact: {exc.message}") from None
    step.exact = exact_entries(graph, values, deltas, local, "E")
    trace.checks.append(compare(step, graph, values, deltas, {}, tolerance))
    return trace

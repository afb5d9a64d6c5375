"""``--exact`` for the standard problem types: a small ``mlp`` (dense layers) or ``rnn`` written as
equations with the same parameter names, evaluated by SymPy and checked against the numeric solve.

Node names: ``x0`` the input, ``z<l>``/``x<l>`` per layer (``z1(t)``, ``x1(t)`` per step for an
rnn), ``y`` the output, ``target`` the targets, ``E`` the error. ``cnn`` and ``lstm`` problems are refused.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from .parser import parse_equation
from .spec import EquationProblem

_ACTIVATION = {"identity": "{}", "tanh": "tanh({})", "relu": "relu({})", "sigmoid": "sigmoid({})",
               "softmax": "softmax({})"}


def _error(loss, y, z, target, count):
    if loss == "half_squared_error":
        return f"half_squared_error({y}, {target})"
    if loss == "squared_error":
        return f"squared_error({y}, {target})"
    if loss == "mse":
        return f"squared_error({y}, {target}) / {count}"
    if loss == "cross_entropy":
        return f"-sum({target} * ({z} - log(sum(exp({z})))))"
    return f"-sum({target} * log({y}) + (1 - {target}) * log(1 - {y}))"


def to_equations(problem, parameters) -> EquationProblem:
    """The standard ``problem`` with ``parameters`` (name -> array) as an EquationProblem."""
    if problem.model_type == "rnn":
        return _rnn(problem, parameters)
    if problem.model_type == "mlp":
        return _mlp(problem, parameters)
    raise SpecError(f"{problem.path}: --exact supports equations, mlp and rnn problems, not {problem.model_type}")


def _mlp(problem, parameters):
    if problem.inputs.shape != tuple(problem.input_shape):
        raise SpecError(f"{problem.path}: --exact solves one sample; data.inputs has shape {problem.inputs.shape}")
    texts, previous = [], "x0"
    dense = [s for s in problem.layers]
    for l, spec in enumerate(dense, start=1):
        if spec.type != "dense":
            raise SpecError(f"{problem.path}: --exact supports dense layers only, layer {l} is {spec.type}")
        bias = f" + b{l}" if f"b{l}" in parameters else ""
        texts.append((f"z{l}", f"W{l} @ {previous}{bias}"))
        texts.append((f"x{l}", _ACTIVATION[spec.activation].format(f"z{l}")))
        previous = f"x{l}"
    last = len(dense)
    data = {"x0": np.array(problem.inputs, dtype=np.float64)}
    loss = None
    if problem.targets is not None:
        data["target"] = np.array(problem.targets, dtype=np.float64).reshape(-1)
        texts.append(("E", _error(problem.loss, f"x{last}", f"z{last}", "target", data["target"].size)))
        loss = "E"
    equations = [parse_equation(name, text) for name, text in texts]
    return EquationProblem(equations, [], dict(parameters), data, {}, loss, outputs=[f"x{last}"])


def _rnn(problem, parameters):
    hidden = _ACTIVATION[problem.hidden_activation].format("z1")
    bias1 = " + b1" if "b1" in parameters else ""
    bias2 = " + b2" if "b2" in parameters else ""
    texts = [("z1", f"W1 @ x[t] + H1 @ x1[t-1]{bias1}"), ("x1", hidden), ("z2", f"W2 @ x1{bias2}"),
             ("y", _ACTIVATION[problem.output_activation].format("z2"))]
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
        texts.append(("E", _error(problem.loss, "y", "z2", "target[t]", count)))
        loss = "E"
    recurrence = [parse_equation(name, text, recurrent=True) for name, text in texts]
    return EquationProblem([], recurrence, dict(parameters), data, initial, loss, loss_steps=loss_steps,
                           time_steps=steps, outputs=["y"], sequences={"x", "target"} if loss else {"x"})


def solve_exact_standard(problem, trace):
    """Add exact values to the numeric ``trace`` of a standard problem (its first step)."""
    from .exact import _exact_entries, compare, exact_pass
    from .graph import build

    step = trace.steps[0]
    equations = to_equations(problem, {n: np.array(a, dtype=np.float64) for n, a in step.parameters_before.items()})
    graph = build(equations)
    values, deltas, local = exact_pass(graph)
    step.exact = _exact_entries(graph, values, deltas, local, "E")
    trace.checks.append(compare(step, graph, values, deltas, {}))
    return trace

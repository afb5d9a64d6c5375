"""``--exact`` for the standard problem types: a small ``mlp`` (dense layers) or ``rnn`` written as
equations with the same parameter names, evaluated by SymPy and checked against the numeric solve.

Each problem kind writes itself as equations (``as_equations`` in :mod:`deltalab.problems`);
node names: ``x0`` the input, ``z<l>``/``x<l>`` per layer (``z1(t)``, ``x1(t)`` per step for an
rnn), ``y`` the output, ``target`` the targets, ``E`` the error. ``cnn`` and ``lstm`` problems are refused.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from .parser import EquationError

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

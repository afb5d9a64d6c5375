"""Solving an equations problem: forward pass, backward pass, chain rule, SGD steps → a Trace.

Values, deltas (∂L/∂node, kept with ``retain_grad``) and gradients come from one run of the
engine over the unrolled graph; the chain-rule fields (local derivatives, paths) come from
:mod:`deltalab.equations.chain_rule`. Checks: central finite differences, and the sum over
all paths against the engine's gradient.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import SpecError
from .. import limits
from ..gradcheck import FD_ATOL, FD_RTOL, compare_with_differences, relative_error, sampled_entries
from ..trace import Check, Contribution, StepTrace, Trace, Value, check_finite_step
from . import chain_rule
from .evaluate import evaluate_graph
from .graph import build, has_symbols
from .parser import EquationError

CHAIN_TOLERANCE = 1e-10


def pretty(text: str) -> str:
    """An equation as the lecture writes it: h[t-1] → h(t−1), x[t] → x(t), a*b → a·b."""
    text = re.sub(r"\[\s*t\s*-\s*1\s*\]", "(t−1)", text)
    text = re.sub(r"\[\s*t\s*\]", "(t)", text)
    text = re.sub(r"(?<!\*)\*(?!\*)", "·", text)
    return text.replace("**", "^")


def describe(problem, graph):
    eq = problem.equations
    lines = [f"parameters (trained): {', '.join(eq.parameters) or 'none'}"]
    constants = [n for n in eq.data if n not in eq.sequences]
    if constants:
        lines.append(f"data (constants): {', '.join(constants)}")
    if eq.recurrence:
        sequences = ", ".join(f"{n}(t)" for n in sorted(eq.sequences)) or "none"
        lines.append(f"recurrence unrolled over t = 1 … {eq.time_steps}; sequences read at step t: {sequences}")
    if eq.symbols:
        lines.append(f"unknown symbols: {', '.join(eq.symbols)}")
    if graph.loss is None:
        lines.append("no loss node: forward pass only")
    equations = [f"{e.name} = {pretty(e.text)}" for e in eq.equations]
    for name, value in eq.initial.items():
        equations.append(f"{name}(0) = {_short(value)}")
    equations += [f"{e.name}(t) = {pretty(e.text)}" for e in eq.recurrence]
    formula = ""
    if graph.step_losses and len(graph.step_losses) > 1:
        formula = f"{eq.loss} = " + " + ".join(graph.step_losses)
    return lines, equations, formula


def _short(value):
    array = np.asarray(value)
    if array.dtype != object and array.ndim == 0:
        return f"{float(array):g}"
    return str(array.tolist()).replace("'", "")


def _array(tensor):
    return np.array(getattr(tensor, "data", tensor), dtype=np.float64)


def record_step(problem, graph, parameters, index, learning_rate):
    """One forward/backward pass and SGD update, recorded as a StepTrace."""
    values = evaluate_graph(graph, parameters=parameters, keep=True)
    before = {name: np.array(parameters[name], dtype=np.float64) for name in graph.parameters}
    loss = None
    if graph.loss is not None:
        loss_tensor = values[graph.loss]
        loss = float(_array(loss_tensor).reshape(-1)[0])
        if loss_tensor.requires_grad:
            loss_tensor.backward()
    hidden = set(graph.outputs) | set(graph.step_losses) | ({graph.loss} if graph.loss else set())
    forward, outputs = [], []
    for key, node in graph.nodes.items():
        if node.kind == "data" and not has_symbols(node.value):
            forward.append(Value(key, _array(node.value), None, node.step, "input"))
        elif node.kind == "initial" and not has_symbols(node.value):
            forward.append(Value(key, _array(node.value), None, 0, "state"))
        elif node.kind == "equation" and key not in hidden:
            forward.append(Value(key, _array(values[key]), None, node.step, "node"))
    for key in graph.outputs:
        outputs.append(Value(key, _array(values[key]), None, graph.nodes[key].step, "output"))
    errors = {}
    if len(graph.step_losses) > 1 or (graph.step_losses and graph.nodes[graph.step_losses[0]].step is not None):
        errors = {key: float(_array(values[key]).reshape(-1)[0]) for key in graph.step_losses}
    step = StepTrace(index, before, forward, outputs, [], errors, loss)
    if loss is None:
        return step, values
    edges, chain_delta = chain_rule.local_derivatives(graph, values, graph.loss)
    for key in reversed(list(graph.nodes)):
        node = graph.nodes[key]
        if node.kind in ("equation", "total") and key != graph.loss:
            grad = values[key].grad if hasattr(values[key], "grad") else None
            if grad is not None:
                delta = _array(grad)
            elif key in chain_delta:  # a node computed from constants only (o(1) = h(0) + x(1)): the
                delta = _array(chain_delta[key])  # engine keeps no gradient for it, the chain rule does
            else:
                delta = np.zeros(np.shape(_array(values[key])))
            step.deltas.append(Value(key, delta, None, node.step, "node"))
    for name in graph.parameters:
        grad = values[name].grad
        step.gradients[name] = np.zeros(before[name].shape) if grad is None else _array(grad)
    step.local_derivatives = edges
    loss_ndim = np.ndim(_array(values[graph.loss]))
    step.paths = chain_rule.path_sums(graph, edges, chain_delta, graph.loss, loss_ndim)
    symbol = problem.equations.loss

    def formula(edge):
        return f"∂{symbol}/∂{edge.output} · ∂{edge.output}/∂{edge.input}"

    for name, items in chain_rule.contributions(graph, edges, formula).items():
        step.contributions[name] = [Contribution(s, f, a) for s, f, a in items]
    step.parameters_after = {name: before[name] - learning_rate * step.gradients[name] for name in graph.parameters}
    return step, values


def loss_value(graph, parameters):
    values = evaluate_graph(graph, "shapes", parameters=parameters)
    return float(_array(values[graph.loss]).reshape(-1)[0])


def _perturbed_loss(graph, parameters):
    """The loss at perturbed parameters; nan where a step of ε leaves a function's domain
    (binary_cross_entropy of 0 − ε): that entry then fails the check instead of crashing it."""
    try:
        return loss_value(graph, parameters)
    except EquationError:
        return float("nan")


def finite_difference_check(graph, parameters, gradients, max_entries=4000):
    """Central differences of the loss for every parameter entry (a fixed sample of them for big ones)."""
    comparisons = {}
    chosen = sampled_entries({name: np.size(parameters[name]) for name in graph.parameters}, max_entries)
    for name in graph.parameters:
        trial = {n: np.array(v, dtype=np.float64) for n, v in parameters.items()}
        entries = chosen[name]
        indices = [np.unravel_index(i, trial[name].shape) for i in entries]
        comparisons[name] = compare_with_differences(lambda: _perturbed_loss(graph, trial), trial[name], indices,
                                                     gradients[name].reshape(-1)[entries])
    return Check.from_differences(comparisons, FD_RTOL, FD_ATOL)


def _finite_difference_entries(graph, step):
    """Fewer sampled entries for a bigger graph: each costs two evaluations of every node."""
    values = sum(np.size(v.array) for v in step.forward) + sum(np.size(a) for a in step.gradients.values())
    return limits.finite_difference_entries(values + limits.FORWARD_OVERHEAD * len(graph.nodes) // 20)


def chain_check(step):
    per_parameter = {name: relative_error(step.paths[name].value, step.gradients[name]) for name in step.paths}
    return Check("chain rule: sum over paths vs autodiff", max(per_parameter.values(), default=0.0), per_parameter,
                 CHAIN_TOLERANCE)


def solve_equations(problem, exact=False, check_torch=False, differences=True) -> Trace:
    """Run ``problem.steps`` SGD steps of an equations problem and record the worked solution."""
    eq = problem.equations
    graph = build(eq)
    if check_torch:
        raise SpecError(f"{problem.path}: --check-torch is not available for equations problems "
                        "(every solve checks finite differences and the sum over paths)")
    if eq.symbols:
        if not exact:
            raise SpecError(f"{problem.path}: {', '.join(eq.symbols)} "
                            f"{'is an unknown symbol' if len(eq.symbols) == 1 else 'are unknown symbols'}; "
                            "only `deltalab solve --exact` keeps symbols (or give numbers in [data])")
        from .exact import solve_symbolic

        return solve_symbolic(problem, graph)
    lines, equations, formula = describe(problem, graph)
    loss_name = f"the node {eq.loss}" if eq.loss else "none"
    trace = Trace(problem.title, "equations", lines, equations, loss_name, formula, problem.learning_rate, [],
                  loss_symbol=eq.loss or "E")
    parameters = {n: np.array(v, dtype=np.float64) for n, v in eq.parameters.items()}
    first = {n: v.copy() for n, v in parameters.items()}
    steps = problem.steps if graph.loss is not None else 1
    try:
        for index in range(1, steps + 1):
            step, _ = record_step(problem, graph, parameters, index, problem.learning_rate)
            trace.steps.append(step)
            check_finite_step(problem.path, step, f"the loss {eq.loss}")
            if step.parameters_after:
                parameters = {n: v.copy() for n, v in step.parameters_after.items()}
    except EquationError as exc:
        raise SpecError(f"{problem.path}: {getattr(exc, 'where', 'equations')}: {exc.message}") from None
    if graph.loss is not None and differences:
        trace.checks.append(finite_difference_check(graph, first, trace.steps[0].gradients,
                                                    max_entries=_finite_difference_entries(graph, trace.steps[0])))
        trace.checks.append(chain_check(trace.steps[0]))
    if exact:
        from .exact import annotate

        annotate(trace, problem, graph, first)
    return trace

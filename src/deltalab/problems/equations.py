"""Equations problems (``model.type = "equations"``): any small graph or recurrent cell given as
named equations (see :mod:`deltalab.equations`), trained like the other kinds.

Values, deltas (∂L/∂node, kept with ``retain_grad``) and gradients come from one run of the
engine over the unrolled graph; the chain-rule fields (local derivatives, paths) come from
:mod:`deltalab.equations.chain_rule`.  A problem with unknown symbols has no numbers to train:
its one step is recorded in exact arithmetic (``--exact``).
"""
from __future__ import annotations

import re

import numpy as np

from .. import limits
from ..errors import SpecError
from ..tensor import Tensor
from ..trace import Contribution, StepTrace, Value
from .base import Header, ProblemKind
from .file import Problem


def pretty(text: str) -> str:
    """An equation as the lecture writes it: h[t-1] → h(t−1), x[t] → x(t), a*b → a·b."""
    text = re.sub(r"\[\s*t\s*-\s*1\s*\]", "(t−1)", text)
    text = re.sub(r"\[\s*t\s*\]", "(t)", text)
    text = re.sub(r"(?<!\*)\*(?!\*)", "·", text)
    return text.replace("**", "^")


def _short(value):
    array = np.asarray(value)
    if array.dtype != object and array.ndim == 0:
        return f"{float(array):g}"
    return str(array.tolist()).replace("'", "")


def _array(tensor):
    return np.array(getattr(tensor, "data", tensor), dtype=np.float64)


class EquationsModel:
    """The unrolled graph with its parameters as Tensors (``optim.SGD`` updates them in place);
    ``symbolic``: unknown symbols remain, the step is recorded exactly and nothing is trained."""

    def __init__(self, graph, parameters, symbolic):
        self.graph, self.symbolic = graph, symbolic
        self.tensors = {} if symbolic else {
            name: Tensor(np.array(parameters[name], dtype=np.float64), requires_grad=True) for name in graph.parameters}
        self.trains = graph.loss is not None and not symbolic

    def named_parameters(self):
        return iter(self.tensors.items())

    def parameters(self):
        return iter(self.tensors.values())

    def zero_grad(self):
        for tensor in self.tensors.values():
            tensor.grad = None


class EquationsKind(ProblemKind):
    names = ("equations",)
    layer_names = False
    graph = True
    own_layout = True
    records_paths = True

    def read_file(self, data, r, model_type, heading):
        from ..equations.spec import read

        title, description = heading
        equations, learning_rate, steps = read(data, r, r.path)
        return Problem(path=r.path, title=title, model_type="equations", loss=equations.loss or "",
                       description=description, learning_rate=learning_rate, steps=steps, equations=equations)

    def solved_exactly(self, problem):
        return bool(problem.equations.symbols)

    def grading_loss(self, problem):
        return "equations"

    # ------------------------------------------------------------------ the model
    def build(self, problem):
        from ..equations.graph import build

        eq = problem.equations
        return EquationsModel(build(eq), eq.parameters, bool(eq.symbols))

    def check_options(self, problem, model, check_torch, exact):
        eq = problem.equations
        if check_torch:
            raise SpecError(f"{problem.path}: --check-torch is not available for equations problems "
                            "(every solve checks finite differences and the sum over paths)")
        if eq.symbols and not exact:
            raise SpecError(f"{problem.path}: {', '.join(eq.symbols)} "
                            f"{'is an unknown symbol' if len(eq.symbols) == 1 else 'are unknown symbols'}; "
                            "only `deltalab solve --exact` keeps symbols (or give numbers in [data])")

    def describe(self, problem, model):
        eq, graph = problem.equations, model.graph
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
        if model.symbolic:
            lines.append("exact mode with unknown symbols: the loss and the gradients are expressions in them "
                         "(see Exact values)")
        equations = [f"{e.name} = {pretty(e.text)}" for e in eq.equations]
        for name, value in eq.initial.items():
            equations.append(f"{name}(0) = {_short(value)}")
        equations += [f"{e.name}(t) = {pretty(e.text)}" for e in eq.recurrence]
        formula = ""
        if graph.step_losses and len(graph.step_losses) > 1:
            formula = f"{eq.loss} = " + " + ".join(graph.step_losses)
        return Header(lines, equations, f"the node {eq.loss}" if eq.loss else "none", formula, eq.loss or "E")

    def loss_label(self, problem):
        return f"the loss {problem.equations.loss}"

    def refusal(self, problem, error):
        from ..equations.parser import EquationError

        if isinstance(error, EquationError):
            return SpecError(f"{problem.path}: {getattr(error, 'where', 'equations')}: {error.message}")
        return None

    # ------------------------------------------------------------------ one step
    def record(self, problem, model, index):
        if model.symbolic:
            return self._record_exact(problem, model)
        from ..equations import chain_rule
        from ..equations.evaluate import evaluate_graph
        from ..equations.graph import has_symbols

        graph = model.graph
        model.zero_grad()
        before = {name: p.data.copy() for name, p in model.named_parameters()}
        values = evaluate_graph(graph, parameters=model.tensors, keep=True)
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
        errors, error_steps = {}, {}
        if len(graph.step_losses) > 1 or (graph.step_losses and graph.nodes[graph.step_losses[0]].step is not None):
            errors = {key: float(_array(values[key]).reshape(-1)[0]) for key in graph.step_losses}
            error_steps = {key: graph.nodes[key].step for key in graph.step_losses}
        step = StepTrace(index, before, forward, outputs, [], errors, loss, error_steps=error_steps)
        if loss is None:
            return step
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

        def general(edge):
            node = graph.nodes[edge.output]
            output = node.key if node.step is None else f"{node.name}({relative_step(node.step, edge.step)})"
            return f"∂{symbol}/∂{output} · ∂{output}/∂{edge.input}"

        for name, items in chain_rule.contributions(graph, edges, formula, general).items():
            step.contributions[name] = [Contribution(s, f, a, g) for s, f, g, a in items]
        return step

    def _record_exact(self, problem, model):
        """A problem with unknown symbols: everything exact, numbers shown where no symbol remains."""
        from ..equations.exact import decimal, exact_entries, exact_pass, simplified

        graph, eq = model.graph, problem.equations
        values, deltas, local = exact_pass(graph)
        before = {n: np.array(v, dtype=np.float64) for n, v in eq.parameters.items()}
        forward, outputs = [], []
        hidden = set(graph.outputs) | set(graph.step_losses) | ({graph.loss} if graph.loss else set())
        for key, node in graph.nodes.items():
            number = decimal(values[key])
            if number is None:
                continue
            if node.kind == "data":
                forward.append(Value(key, number, None, node.step, "input"))
            elif node.kind == "initial":
                forward.append(Value(key, number, None, 0, "state"))
            elif node.kind == "equation" and key not in hidden:
                forward.append(Value(key, number, None, node.step, "node"))
        for key in graph.outputs:
            number = decimal(values[key])
            if number is not None:
                outputs.append(Value(key, number, None, graph.nodes[key].step, "output"))
        loss = None if graph.loss is None else decimal(values[graph.loss])
        step = StepTrace(1, before, forward, outputs, [], {}, None if loss is None else float(loss.reshape(-1)[0]))
        step.exact = exact_entries(graph, values, deltas, local, eq.loss or "E")
        gradients = {n: decimal(simplified(deltas[n])) for n in graph.parameters if n in deltas}
        step.gradients = {n: g for n, g in gradients.items() if g is not None}
        return step

    def derive(self, problem, model, step):
        from ..derivation.equations import derive_equations

        return derive_equations(problem, step)

    # ------------------------------------------------------------------ checks
    def difference_probe(self, problem, model, first, step):
        from ..equations.evaluate import evaluate_graph
        from ..equations.parser import EquationError

        graph = model.graph
        trial = {n: np.array(v, dtype=np.float64) for n, v in first.items()}

        def loss():
            """The loss at perturbed parameters; nan where a step of ε leaves a function's domain
            (binary_cross_entropy of 0 − ε): that entry then fails the check instead of crashing it."""
            try:
                values = evaluate_graph(graph, "shapes", parameters=trial)
            except EquationError:
                return float("nan")
            return float(_array(values[graph.loss]).reshape(-1)[0])

        # fewer sampled entries for a bigger graph: each costs two evaluations of every node
        values = sum(np.size(v.array) for v in step.forward) + sum(np.size(a) for a in step.gradients.values())
        return trial, loss, limits.finite_difference_entries(values + limits.FORWARD_OVERHEAD * len(graph.nodes) // 20)

    def exact(self, problem, model, trace, first, tolerance):
        if model.symbolic:
            return trace  # recorded exactly already
        from ..equations.exact import annotate

        return annotate(trace, problem, model.graph, first, tolerance)


EQUATIONS = EquationsKind()


def relative_step(step, t):
    """``step`` written relative to the step ``t`` a formula is read at: t, t−1, t+1 (else the number)."""
    return {t: "t", t - 1: "t−1", t + 1: "t+1"}.get(step, str(step))

"""The computation graph of an equations problem: every node once, recurrences unrolled.

Node keys: a feed-forward equation or leaf by its name (``h3``, ``w21``); a recurrence node
at step t as ``h(2)`` (``h(0)`` is the initial value), a data sequence at step t as ``x(2)``.
A loss defined in ``[recurrence]`` is summed over the chosen steps into one node named
after it (``E = E(1) + E(2)``); with a single step the loss node is that step's node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .parser import EquationError

LEAF_KINDS = ("parameter", "data", "initial")


@dataclass
class Node:
    key: str
    name: str
    step: int | None
    kind: str  # "parameter" | "data" | "initial" | "equation" | "total"
    table: str = ""  # "equations" | "recurrence" for equation nodes
    equation: object = None  # parser.Equation
    bindings: dict = field(default_factory=dict)  # (name, when) -> operand key
    operands: list = field(default_factory=list)  # operand keys, unique, in reading order
    value: object = None  # leaves: the given array

    @property
    def differentiable(self) -> bool:
        """Does ∂L/∂(this node) take part in the chain rule (not a constant)?"""
        return self.kind not in ("data", "initial")

    def where(self, column=None) -> str:
        text = f"{self.table}.{self.name}"
        if column:
            text += f" (column {column})"
        if self.step is not None:
            text += f" at t = {self.step}"
        return text


@dataclass
class Graph:
    nodes: dict  # key -> Node, in evaluation order
    loss: str | None  # key of the loss node
    step_losses: list  # keys of per-step losses summed into the loss (recurrent loss)
    outputs: list  # keys shown as outputs
    parameters: list  # parameter names

    def backward_order(self):
        """(key, node, differentiable operand keys) of every equation, consumers first: the
        order in which deltas flow back (numeric chain rule and exact mode walk it alike)."""
        for key in reversed(list(self.nodes)):
            node = self.nodes[key]
            if node.kind not in ("equation", "total"):
                continue
            targets = [k for k in node.operands if self.nodes[k].differentiable]
            if targets:
                yield key, node, targets

    def consumers(self) -> dict:
        """key -> [keys of the nodes that read it]."""
        out = {key: [] for key in self.nodes}
        for node in self.nodes.values():
            for operand in node.operands:
                out[operand].append(node.key)
        return out


def has_symbols(value) -> bool:
    """Does a leaf value hold unknown symbols (strings)?"""
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        return False
    return any(isinstance(v, str) for v in np.asarray(value, dtype=object).reshape(-1))


def step_key(name, step):
    return name if step is None else f"{name}({step})"


def build(problem) -> Graph:
    """Unroll ``problem`` (an EquationProblem) into a Graph."""
    nodes = {}

    def add(node):
        nodes[node.key] = node
        return node.key

    for name, value in problem.parameters.items():
        add(Node(name, name, None, "parameter", value=value))

    def leaf_key(name, when, step):
        """The key a reference resolves to, creating data/initial leaves on first use."""
        if name in problem.parameters:
            return name
        if name in problem.data:
            if when == "now":
                key = step_key(name, step)
                if key not in nodes:
                    add(Node(key, name, step, "data", value=problem.data[name][step - 1]))
                return key
            if name not in nodes:
                add(Node(name, name, None, "data", value=problem.data[name]))
            return name
        return None

    def equation_node(equation, table, step):
        node = Node(step_key(equation.name, step), equation.name, step, "equation", table, equation)
        for ref in equation.references:
            key = leaf_key(ref.name, ref.when, step)
            if key is None:
                if ref.when == "previous":
                    key = step_key(ref.name, step - 1)
                    if step - 1 == 0 and key not in nodes:
                        add(Node(key, ref.name, 0, "initial", value=problem.initial[ref.name]))
                elif table == "recurrence" and ref.name in recurrent:
                    key = step_key(ref.name, step)
                else:
                    key = ref.name
            node.bindings[(ref.name, ref.when)] = key
            if key not in node.operands:
                node.operands.append(key)
        return add(node)

    recurrent = {e.name for e in problem.recurrence}
    for equation in problem.equations:
        equation_node(equation, "equations", None)
    for step in range(1, problem.time_steps + 1):
        for equation in problem.recurrence:
            equation_node(equation, "recurrence", step)
    loss, step_losses = None, []
    if problem.loss is not None:
        if problem.loss in recurrent:
            steps = problem.loss_steps
            if steps == "all":
                steps = range(1, problem.time_steps + 1)
            elif steps == "last":
                steps = (problem.time_steps,)
            step_losses = [step_key(problem.loss, s) for s in steps]
            if len(step_losses) == 1:
                loss = step_losses[0]
            else:
                loss = add(Node(problem.loss, problem.loss, None, "total", operands=list(step_losses)))
        else:
            loss = problem.loss
    outputs = _outputs(problem, nodes, loss, step_losses)
    return Graph(nodes, loss, step_losses, outputs, list(problem.parameters))


def _outputs(problem, nodes, loss, step_losses):
    if problem.outputs is not None:
        names = set(problem.outputs)
        return [k for k, n in nodes.items() if n.kind == "equation" and n.name in names]
    if loss is None:
        consumed = {o for n in nodes.values() for o in n.operands}
        return [k for k, n in nodes.items() if n.kind == "equation" and k not in consumed]
    readers = step_losses or [loss]
    return [o for r in readers for o in nodes[r].operands if nodes[o].kind == "equation"]


def dry_run(problem):
    """Evaluate the forward pass once with plain arrays (symbols as 0) so shapes are checked on load."""
    from .evaluate import evaluate_graph

    graph = build(problem)
    values = evaluate_graph(graph, "shapes")
    if graph.loss is not None:
        graph_loss = graph.nodes[graph.loss]
        value = values[graph.loss]
        if np.size(value) != 1:
            error = EquationError(f"the loss must be one number, it has shape {np.shape(value)} (use sum(…))")
            error.where = graph_loss.where() if graph_loss.kind == "equation" else f"model.loss ({graph.loss})"
            raise error
    return graph

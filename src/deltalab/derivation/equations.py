"""The derivation of one step of an equations problem: each node by its own equation, each
delta by the chain rule over its consumers, δ(m) = Σₙ (∂n/∂m)ᵀ · δ(n), with the local
derivatives ∂n/∂m the engine computed for every edge."""
from __future__ import annotations

import re

import numpy as np

from ..equations.evaluate import EngineBackend, evaluate
from ..equations.graph import build
from ..records import dataclass
from ..tensor import Tensor
from .expressions import SUM, Const, Expr, op, total
from .layered import add_updates
from .record import Derivation


@dataclass(frozen=True, eq=False)
class EquationExpr(Expr):
    """A node's own equation (as written in the problem file) over its operands."""

    graph_node: object  # deltalab.equations.graph.Node
    operands: tuple  # Ref per operand key, in the node's operand order

    precedence = SUM

    def evaluate(self, values):
        inputs = {key: Tensor(np.asarray(ref.evaluate(values), dtype=np.float64))
                  for key, ref in zip(self.graph_node.operands, self.operands)}
        return np.asarray(evaluate(self.graph_node, inputs, EngineBackend()).data, dtype=np.float64)

    def text(self):
        return written(self.graph_node)

    def latex(self):
        return written(self.graph_node).replace("·", r"\cdot ").replace("−", "-")

    def tree(self):
        return {"op": "equation", "text": written(self.graph_node), "args": [r.tree() for r in self.operands]}

    def refs(self):
        return [r.node for r in self.operands]


def written(node) -> str:
    """The equation with its time step filled in: h[t-1] → h(1), x[t] → x(2) at t = 2."""
    text = node.equation.text
    if node.step is not None:
        text = re.sub(r"\[\s*t\s*-\s*1\s*\]", f"({node.step - 1})", text)
        text = re.sub(r"\[\s*t\s*\]", f"({node.step})", text)
    text = re.sub(r"(?<!\*)\*(?!\*)", "·", text)
    return text.replace("**", "^")



def derive_equations(problem, step) -> Derivation:
    graph = build(problem.equations)
    d = Derivation()
    symbol = problem.equations.loss or "E"
    recorded = {v.key: v.array for v in step.forward + step.outputs}
    recorded.update({key: np.asarray(value) for key, value in step.errors.items()})
    if graph.loss is not None and step.loss is not None:
        recorded[graph.loss] = np.asarray(step.loss)
    refs = {}
    forward_keys, output_keys = {v.key for v in step.forward}, {v.key for v in step.outputs}
    for key, node in graph.nodes.items():
        if node.kind == "parameter":
            refs[key] = d.add(f"parameters_before:{key}", key, "parameter", step.parameters_before[key],
                              section="parameters_before", key=key)
        elif node.kind in ("data", "initial"):
            if key not in recorded:
                return d  # unknown symbols: the exact mode's derivation, not this one
            refs[key] = d.add(f"forward:{key}", key, "input", recorded[key], time_step=node.step,
                              section="forward", key=key)
        else:
            formula = EquationExpr(node, tuple(refs[k] for k in node.operands))
            if node.kind == "total":
                formula = total([refs[k] for k in node.operands])
            kind = "loss" if key == graph.loss else ("error" if key in step.errors else "forward")
            section = "forward" if key in forward_keys else (
                "outputs" if key in output_keys else ("errors" if key in step.errors else None))
            refs[key] = d.add(f"forward:{key}", key, kind, recorded[key], formula, time_step=node.step,
                              section=section, key=key)
    if graph.loss is None or step.loss is None:
        return d
    # ---- the chain rule, consumers first
    deltas = {v.key: v.array for v in step.deltas}
    incoming = {}  # operand key -> [(consumer key, edge)]
    for edge in step.local_derivatives:
        incoming.setdefault(edge.input, []).append(edge)
    delta_refs = {}
    order = [k for k in reversed(list(graph.nodes)) if k in deltas or graph.nodes[k].kind == "parameter"]
    for key in order:
        terms = []
        for edge in incoming.get(key, []):
            share = _share(d, edge, delta_refs, graph.loss, symbol)
            if share is not None:
                terms.append(share)
        formula = total(terms) if terms else Const(np.zeros(np.shape(deltas.get(key, step.gradients.get(key)))), "0")
        if graph.nodes[key].kind == "parameter":
            d.add(f"gradients:{key}", f"∂{symbol}/∂{key}", "gradient", step.gradients[key], formula,
                  section="gradients", key=key)
        else:
            delta_refs[key] = d.add(f"deltas:{key}", f"∂{symbol}/∂{key}", "delta", deltas[key], formula,
                                    time_step=graph.nodes[key].step, section="deltas", key=key)
    add_updates(d, step, problem.learning_rate)
    return d


def _share(d, edge, delta_refs, loss_key, symbol):
    """One consumer's term (∂n/∂m)ᵀ · δ(n) of δ(m)."""
    if edge.output != loss_key and edge.output not in delta_refs:
        return None
    local_id = f"local:{edge.output}/{edge.input}"
    name = f"∂{edge.output}/∂{edge.input}"
    if edge.value is None:  # too big to keep the Jacobian: its product, as the engine formed it
        return d.add(local_id, f"({name})ᵀ · ∂{symbol}/∂{edge.output}", "local", edge.backprop)
    jacobian = d.add(local_id, name, "local", edge.value)
    if edge.output == loss_key:
        loss_value = d[f"forward:{loss_key}"].value
        return jacobian if np.ndim(loss_value) == 0 else op("vjp", jacobian, Const(np.ones(np.shape(loss_value)), "1"))
    return op("vjp", jacobian, delta_refs[edge.output])


__all__ = ["EquationExpr", "derive_equations"]

"""Where a derivation applies a nonlinearity, and to what: the facts the degenerate-draw
constraints (dead ReLU, saturation, ties) are about.

Layered and recurrent derivations write activations as ``apply`` operations and pooling as
``pool``; equations problems write their own equations, evaluated here with a backend that
notes every function call (relu, sigmoid, tanh, softmax, max) and its arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..derivation.equations import EquationExpr
from ..derivation.expressions import Op
from ..equations.evaluate import EngineBackend, evaluate
from ..tensor import Tensor

FORWARD_KINDS = ("forward", "output", "error", "loss")


@dataclass
class Application:
    function: str  # "relu", "tanh", "sigmoid", "softmax", "max_pool", "max"
    arguments: tuple  # argument values (arrays)
    node: object  # the derivation node whose formula applies it
    params: dict


class _NotingBackend(EngineBackend):
    def __init__(self):
        super().__init__()
        self.calls = []

    def call(self, name, args):
        self.calls.append((name, tuple(np.asarray(a.data, dtype=np.float64) for a in args)))
        return super().call(name, args)


def applications(derivation):
    """Every nonlinearity applied in the forward pass of ``derivation``, in reading order."""
    values = derivation.values()
    found = []
    for node in derivation:
        if node.kind not in FORWARD_KINDS or node.formula is None:
            continue
        _walk(node.formula, node, values, found)
    return found


def _walk(formula, node, values, found):
    if isinstance(formula, EquationExpr):
        backend = _NotingBackend()
        inputs = {key: Tensor(np.asarray(ref.evaluate(values), dtype=np.float64))
                  for key, ref in zip(formula.graph_node.operands, formula.operands)}
        evaluate(formula.graph_node, inputs, backend)
        found += [Application(name, args, node, {}) for name, args in backend.calls]
    elif isinstance(formula, Op):
        params = dict(formula.params)
        if formula.name == "apply":
            found.append(Application(params["function"], (formula.args[0].evaluate(values),), node, params))
        elif formula.name == "pool" and params.get("kind") == "max":
            found.append(Application("max_pool", (formula.args[0].evaluate(values),), node, params))
        for arg in formula.args:
            _walk(arg, node, values, found)


__all__ = ["Application", "applications"]

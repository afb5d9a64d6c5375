"""The library of mistakes: named, documented alternative rules of backpropagation.

Each rule is one module of this package that registers itself with :func:`mistake`.  A
rule is a generator: given the formula of a quantity (with the unanswered quantities before
it written out, see :mod:`..formulas`) it yields :class:`Variant`\\ s -- the formula as the
mistaken rule would have it, with a sentence in the lecture's notation.  ``check`` evaluates
each variant on the student's own inputs; a wrong answer that a variant reproduces (within
the answer's tolerance) is diagnosed with that rule.  Rules rewrite the formula tree
generically (drop one term of a sum, one factor of a product, …), so they work for every
problem kind; none branches on a problem's name.

The stable ids are ``IDS`` below (reports list diagnoses in that order).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...derivation import Const, Expr, Op, Ref
from ..formulas import Inlined, ref_node, unwrap

IDS = ("path_dropped", "factor_dropped", "derivative_omitted", "derivative_at_wrong_point", "transposed",
       "update_sign", "learning_rate_missing", "loss_scale", "cross_entropy_sign", "time_index_shifted",
       "sum_over_time_missing", "stale_weights", "rounded_early", "softmax_diagonal", "conv_flip",
       "padding_ignored", "pool_routing")


@dataclass
class Variant:
    formula: Expr
    explanation: str
    values: dict | None = None  # evaluate on these instead of the student's values (rounded_early)


@dataclass(frozen=True)
class Mistake:
    id: str
    summary: str  # one line, for listings
    example: str  # a worked example in the lecture's notation
    variants: Callable  # (Context) -> iterable of Variant
    doc: str = ""


MISTAKES: dict = {}


def mistake(id, summary, example):
    """Register the decorated generator ``variants(context)`` as the rule ``id``."""
    if id not in IDS:
        raise ValueError(f"mistake id {id!r} is not one of the stable ids")

    def register(function):
        MISTAKES[id] = Mistake(id, summary, example, function, (function.__doc__ or "").strip())
        return function

    return register


def load_mistakes() -> dict:
    """Every rule, in the stable order (importing a rule's module registers it)."""
    for id in IDS:
        if id not in MISTAKES:
            importlib.import_module(f".{id}", __name__)
    return {id: MISTAKES[id] for id in IDS}


@dataclass
class Context:
    """What a rule sees: the checked quantity, its written-out formula, the derivation and
    the values the student's own answers give."""

    node: object  # derivation.Node being checked
    formula: Expr  # its formula, unanswered quantities before it written out
    derivation: object
    values: dict  # node id -> value, the student's answers carried forward
    loss: str  # the problem's loss name ("cross_entropy", …; "equations": read from its formulas)
    answered: set = field(default_factory=set)

    @property
    def owner(self):
        from ..formulas import Owner

        if not hasattr(self, "_owner"):
            self._owner = Owner(self.node.id, self.node.symbol, self.formula)
        return self._owner

    def kind(self, node_id):
        node = self.derivation.nodes.get(node_id)
        return None if node is None else node.kind

    def time_of(self, expr):
        """The time step of a term: its quantity's, or the latest of the quantities it is built
        from (not looking inside them); None when not recurrent."""
        from ..formulas import children

        node = ref_node(expr)
        if node is not None:
            return self.derivation[node].time_step if node in self.derivation.nodes else None
        steps = [self.time_of(c) for c in children(expr)]
        steps = [s for s in steps if s is not None]
        return max(steps) if steps else None

    def is_target(self, expr):
        return any(self.kind(r) == "target" or r.startswith("forward:") and self._equation_target(r)
                   for r in expr.refs())

    def _equation_target(self, node_id):
        node = self.derivation[node_id]
        return node.kind == "input" and node.formula is None and self._loss_reads(node_id)

    def _loss_reads(self, node_id):
        return any(n.kind in ("loss", "error") and node_id in n.inputs for n in self.derivation)

    def cross_entropy(self) -> bool:
        if self.loss in ("cross_entropy", "binary_cross_entropy"):
            return True
        return any(n.kind in ("loss", "error") and n.formula is not None and "entropy" in n.formula.text()
                   for n in self.derivation)

    def equation_of(self, node_id):
        """The equation text of an equations problem's node, else None."""
        node = self.derivation.nodes.get(node_id)
        if node is None or node.formula is None or type(node.formula).__name__ != "EquationExpr":
            return None
        return node.formula.text()


def owner_text(owner, note):
    return f"{owner[1]} = {owner.text} {note}"


def constant_value(expr):
    """The number a constant stands for (arrays: when all entries are equal), else None."""
    if isinstance(expr, Const):
        value = np.asarray(expr.value, dtype=np.float64)
        if value.size and np.all(value == value.flat[0]):
            return float(value.flat[0])
    return None


def is_learning_rate(expr):
    return isinstance(expr, Const) and expr.symbol == "η"


# ---------------------------------------------------------------- activation derivatives
ACTIVATION_CALL = r"^\s*(sigmoid|tanh|relu|softmax)\(\s*([A-Za-z_]\w*)\s*(\[\s*t\s*(-\s*1\s*)?\])?\s*\)\s*$"


def activation_of(ctx, expr):
    """(function, z, x) when ``expr`` is f′ of a layer written the lecture's way -- 1 − x²
    (tanh), x ⊙ (1 − x) (sigmoid), relu′(z) -- with z the pre-activation and x = f(z); else None."""
    expr = unwrap(expr)
    if isinstance(expr, Op) and expr.name == "relu_prime":
        z = expr.args[0]
        return ("relu", z, None)
    if isinstance(expr, Op) and expr.name == "sub" and constant_value(expr.args[0]) == 1.0:
        square = unwrap(expr.args[1])
        if isinstance(square, Op) and square.name == "square":
            found = _applied(ctx, square.args[0], "tanh")
            if found:
                return ("tanh", found, square.args[0])
    if isinstance(expr, Op) and expr.name == "mul":
        x, rest = expr.args
        rest = unwrap(rest)
        if (isinstance(rest, Op) and rest.name == "sub" and constant_value(rest.args[0]) == 1.0
                and _same(rest.args[1], x)):
            found = _applied(ctx, x, "sigmoid")
            if found:
                return ("sigmoid", found, x)
    return None


def _same(a, b):
    return a is b or (ref_node(a) is not None and ref_node(a) == ref_node(b))


def _applied(ctx, x, function):
    """z when x = function(z) (a reference to such a quantity, or the application itself)."""
    formula = unwrap(x)
    node = ref_node(x)
    if node is not None and node in ctx.derivation.nodes and ctx.derivation[node].formula is not None:
        formula = unwrap(ctx.derivation[node].formula)
    if isinstance(formula, Op) and formula.name == "apply" and dict(formula.params).get("function") == function:
        return formula.args[0]
    return None


def activation_local(ctx, expr):
    """(function, pre-activation Ref, output Ref) when ``expr`` is an equations problem's
    local derivative ∂h/∂a of h = f(a); else None."""
    import re

    node = ref_node(expr)
    if node is None or not node.startswith("local:"):
        return None
    out, _, inp = node[len("local:"):].partition("/")
    text = ctx.equation_of(f"forward:{out}")
    if text is None:
        return None
    match = re.match(ACTIVATION_CALL, text)
    if not match or f"forward:{inp}" not in ctx.derivation.nodes:
        return None
    if ctx.derivation[f"forward:{out}"].formula.refs() != [f"forward:{inp}"]:
        return None
    return (match.group(1), ctx.derivation.ref(f"forward:{inp}"), ctx.derivation.ref(f"forward:{out}"))


def is_loss_local(ctx, expr):
    """An equations problem's ∂L/∂n, where the backward pass starts."""
    node = ref_node(expr)
    if node is None or not node.startswith("local:"):
        return False
    out = node[len("local:"):].partition("/")[0]
    return ctx.kind(f"forward:{out}") in ("loss", "error")


@dataclass(frozen=True, eq=False)
class Computed(Expr):
    """A formula a rule builds that the derivation's operations do not have (a flipped
    kernel, a diagonal Jacobian): ``compute`` on the children's values, written as ``label``."""

    label: str
    compute: Callable
    children: tuple

    def evaluate(self, values):
        return self.compute(*(c.evaluate(values) for c in self.children))

    def text(self):
        return self.label.format(*(c.text() for c in self.children))

    def latex(self):
        return self.text()

    def tree(self):
        return {"op": self.label, "args": [c.tree() for c in self.children]}

    def refs(self):
        seen = []
        for c in self.children:
            seen += [r for r in c.refs() if r not in seen]
        return seen

    def with_children(self, new):
        return Computed(self.label, self.compute, tuple(new))


def activation_derivative_value(function, a):
    """f′ evaluated at a (elementwise functions)."""
    if function == "tanh":
        return 1 - np.tanh(a) ** 2
    if function == "sigmoid":
        s = 0.5 * (1 + np.tanh(0.5 * a))
        return s * (1 - s)
    return (np.asarray(a) > 0).astype(np.float64)


def as_jacobian(local_shape):
    """Turns an elementwise derivative (shape of the output) into the local Jacobian's shape."""

    def shape(v):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim == 0 or len(local_shape) == v.ndim:
            return v
        return np.diag(v.reshape(-1)).reshape(local_shape)

    return shape


__all__ = ["Computed", "Context", "IDS", "Inlined", "MISTAKES", "Mistake", "Ref", "Variant", "activation_local",
           "activation_of", "load_mistakes", "mistake", "owner_text"]

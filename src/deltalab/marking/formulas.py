"""Tools the mistake rules share: formulas with unanswered intermediate quantities written
out (so a rule can reach a factor several steps back), rewriting one site of a tree at a
time, and evaluating many variants of one tree quickly (unchanged subtrees are shared
between variants, so their values are computed once)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..derivation import Const, Expr, Op, Ref
from ..derivation.expressions import total

INLINE_KINDS = ("forward", "output", "error", "delta", "contribution", "gradient")
MAX_DEPTH = 3  # how many quantities back a rule may look through unanswered ones
MAX_SIZE = 400  # tree nodes of a written-out formula


@dataclass(frozen=True, eq=False)
class Inlined(Expr):
    """An unanswered quantity written out by its formula (evaluates as the formula, reads as
    its symbol)."""

    node: str
    symbol: str
    formula: Expr

    @property
    def precedence(self):
        return 40

    def evaluate(self, values):
        return self.formula.evaluate(values)

    def text(self):
        return self.symbol

    def latex(self):
        return self.formula.latex()

    def tree(self):
        return self.formula.tree()

    def refs(self):
        return self.formula.refs()


def children(expr) -> tuple:
    if isinstance(expr, Op):
        return expr.args
    if isinstance(expr, Inlined):
        return (expr.formula,)
    return getattr(expr, "children", ())


def with_children(expr, new):
    if isinstance(expr, Op):
        return Op(expr.name, tuple(new), expr.params)
    if isinstance(expr, Inlined):
        return Inlined(expr.node, expr.symbol, new[0])
    return expr.with_children(tuple(new))


def size(expr) -> int:
    return 1 + sum(size(c) for c in children(expr))


def expand(formula, derivation, answered, depth=MAX_DEPTH):
    """``formula`` with references to unanswered computed quantities replaced by their own
    formulas, ``depth`` levels deep (a student's own answers stay references)."""
    budget = [MAX_SIZE]

    def walk(e, level):
        budget[0] -= 1
        if isinstance(e, Ref):
            node = derivation.nodes.get(e.node)
            if (level < depth and budget[0] > 0 and node is not None and node.formula is not None
                    and e.node not in answered and node.kind in INLINE_KINDS):
                inner = walk(node.formula, level + 1)
                return Inlined(e.node, node.symbol, inner)
            return e
        kids = children(e)
        if not kids:
            return e
        return with_children(e, [walk(k, level) for k in kids])

    return walk(formula, 0)


class Owner(tuple):
    """(node id, symbol, formula) of the quantity whose formula holds a site; its written
    formula is computed once, however many variants mention it."""

    def __new__(cls, node, symbol, formula):
        return super().__new__(cls, (node, symbol, formula))

    @property
    def text(self):
        cached = self.__dict__.get("text")
        if cached is None:
            cached = self.__dict__["text"] = self[2].text()
        return cached


def sites(expr, owner, rewrite):
    """Every tree with one subtree replaced: ``rewrite(subtree, owner)`` yields
    (replacement, note); ``owner`` is the quantity whose formula holds the subtree (an
    :class:`Inlined` node id, or the checked quantity's).  Yields (new tree, owner, note)."""
    for replacement, note in rewrite(expr, owner):
        yield replacement, owner, note
    kids = children(expr)
    inner_owner = Owner(expr.node, expr.symbol, expr.formula) if isinstance(expr, Inlined) else owner
    for i, kid in enumerate(kids):
        for new_kid, where, note in sites(kid, inner_owner, rewrite):
            yield with_children(expr, kids[:i] + (new_kid,) + kids[i + 1:]), where, note


class Evaluator:
    """Evaluates variants of one formula on one set of values, each shared subtree once."""

    def __init__(self, values):
        self.values = values
        self.cache = {}  # id(expr) -> (expr, value); the expr is kept so its id stays unique

    def __call__(self, expr):
        hit = self.cache.get(id(expr))
        if hit is not None:
            return hit[1]
        if isinstance(expr, Op):
            value = expr.kind.evaluate(*(self(a) for a in expr.args), **dict(expr.params))
        elif isinstance(expr, Inlined):
            value = self(expr.formula)
        elif hasattr(expr, "compute"):
            value = expr.compute(*(self(c) for c in expr.children))
        else:
            value = expr.evaluate(self.values)
        value = np.asarray(value, dtype=np.float64)
        self.cache[id(expr)] = (expr, value)
        return value


def ref_node(expr):
    """The node id a reference (or a written-out quantity) stands for, else None."""
    if isinstance(expr, Ref):
        return expr.node
    if isinstance(expr, Inlined):
        return expr.node
    return None


def unwrap(expr):
    """A written-out quantity's formula (other trees as they are)."""
    return expr.formula if isinstance(expr, Inlined) else expr


def terms_of_sum(expr):
    """a + b + c → [a, b, c] (through additions and the derivation's n-ary sums)."""
    if isinstance(expr, Op) and expr.name == "add":
        return terms_of_sum(expr.args[0]) + terms_of_sum(expr.args[1])
    if isinstance(expr, Op) and expr.name == "sum_of":
        return [t for arg in expr.args for t in terms_of_sum(arg)]
    return [expr]


def sum_of(terms):
    return total(terms)


def one(shape=()):
    return Const(np.ones(shape), "1") if shape else Const(1.0, "1")


__all__ = ["Evaluator", "Inlined", "Owner", "children", "expand", "one", "ref_node", "sites", "size", "sum_of",
           "terms_of_sum", "unwrap", "with_children"]

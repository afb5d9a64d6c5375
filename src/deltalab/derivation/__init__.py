"""The derivation record of a worked step (see :mod:`.record`) and the formulas in it."""
from .expressions import Const, Expr, Op, Ref, op
from .record import KINDS, Derivation, Node, Windows, Worked

__all__ = ["Const", "Derivation", "Expr", "KINDS", "Node", "Op", "Ref", "Windows", "Worked", "node_dict", "op"]


def node_dict(node, array) -> dict:
    """One node as the JSON ``derivation`` section writes it (``array``: the value writer)."""
    out = {"id": node.id, "symbol": node.symbol, "kind": node.kind, "value": array(node.value),
           "step": node.time_step, "section": node.section, "key": node.key, "inputs": node.inputs,
           "formula": None if node.formula is None else node.formula.text(),
           "latex": None if node.formula is None else node.formula.latex(),
           "tree": None if node.formula is None else node.formula.tree()}
    if node.sequence is not None:  # a batch of sequences: which one (absent for one sequence)
        out["sequence"] = node.sequence
    if node.worked is not None:  # only on the nodes that have one: every other node's keys are as before
        out["worked"] = node.worked.as_dict()
    if node.windows is not None:
        out["windows"] = node.windows.as_dict()
    return out

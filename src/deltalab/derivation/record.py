"""The derivation record: every quantity of a worked step with its symbol, value and formula.

One :class:`Derivation` per training step.  Its nodes are in the order a lecture writes
them: givens (inputs, targets, parameters), the forward pass, the errors, the deltas in
backward order (BPTT: the last time step first), per-step contributions, gradients and
updates.  A node's formula is an expression tree over other nodes (:mod:`.expressions`), so
a reader can show it (formula → numbers → value), re-evaluate it with other inputs (a
student's own numbers, in ``check``) or test a constraint on it (``generate``).
"""
from __future__ import annotations

from dataclasses import field
from types import MappingProxyType

import numpy as np

from ..records import dataclass
from .expressions import Expr, Ref

KINDS = ("input", "target", "parameter", "forward", "output", "error", "loss", "delta", "contribution",
         "gradient", "update", "local")


@dataclass
class Worked:
    """One entry of a node worked out by hand, as the lecture does for one cell of a
    convolution: ``value = Σ a·b (+ bias)`` over ``products``, each pair as recorded (the
    window's input next to its weight, an input next to a delta); a factor outside the image
    (zero padding) is 0 with ``padded`` True.  ``index`` is 0-based into the node's value; the
    formula text counts from 1, as the solution writes entries."""

    index: tuple
    general: str  # the entry's formula, e.g. "Σ_{c,i,j} W1(1, c, i, j) · x[0](c, i, j)"
    products: list  # [(a, b)] floats, in reading order
    padded: list  # per product: whether b is the zero padding
    bias: float | None = None
    value: float = 0.0  # the node's recorded entry at ``index``

    def as_dict(self) -> dict:
        return {"index": list(self.index), "general": self.general,
                "products": [[float(a), float(b)] for a, b in self.products], "padded": list(self.padded),
                "bias": self.bias, "value": self.value}


@dataclass
class Windows:
    """Max pooling's windows: ``winners`` holds, for every output entry (the pooled value's
    axes), the (row, column) in the unpadded input of the window's largest entry (the first on
    a tie, as the engine and PyTorch pick it) -- where the window's δ goes back."""

    kernel: tuple
    stride: tuple
    padding: tuple
    winners: np.ndarray  # int, shape = output shape + (2,)
    input_shape: tuple

    def mask(self) -> np.ndarray:
        """True at every input entry that wins a window (one may win several)."""
        marks = np.zeros(self.input_shape, dtype=bool)
        for index in np.ndindex(self.winners.shape[:-1]):  # (samples, channel, y, x)
            row, column = self.winners[index]
            marks[index[:-2] + (int(row), int(column))] = True
        return marks

    def as_dict(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding),
                "winners": self.winners.tolist()}


@dataclass
class Node:
    id: str  # unique in its derivation: "<section>:<key>", e.g. "deltas:z[1](2)"
    symbol: str  # the lecture's notation, e.g. "δ[1](2)"
    kind: str  # one of KINDS
    value: np.ndarray
    formula: Expr | None = None  # None for a given (an input, a target, a parameter before the step)
    time_step: int | None = None  # t of a recurrent net (1-based), else None
    section: str | None = None  # the key's section in ``solve --format json`` ("deltas", ...)
    key: str | None = None  # the key there, e.g. "z[1](2)"
    sequence: int | None = None  # n of a batch of sequences (1-based), None for one sequence
    worked: Worked | None = None  # one entry worked out term by term (a convolution's cell)
    windows: Windows | None = None  # max pooling: each window's winner (on the pooled node and its routed delta)

    @property
    def inputs(self) -> list:
        return [] if self.formula is None else self.formula.refs()


@dataclass
class Derivation:
    """The nodes of one training step, in reading order."""

    nodes: dict = field(default_factory=dict)  # id -> Node
    keyed: dict = field(default_factory=dict)  # (section, key) -> Node, for by_key
    recorded: dict = field(default_factory=dict)  # id -> value, kept as nodes are added

    def add(self, id, symbol, kind, value, formula=None, time_step=None, section=None, key=None,
            sequence=None) -> Ref:
        if id in self.nodes:
            raise ValueError(f"derivation: node {id!r} recorded twice")
        if kind not in KINDS:
            raise ValueError(f"derivation: unknown kind {kind!r}")
        node = self.nodes[id] = Node(id, symbol, kind, np.asarray(value, dtype=np.float64), formula, time_step,
                                     section, key, sequence)
        self.keyed.setdefault((section, key), node)
        self.recorded[id] = node.value
        return Ref(id, symbol)

    def annotate(self, id, worked=None, windows=None) -> None:
        """Attach a worked entry or pooling windows to a recorded node."""
        node = self.nodes[id]
        node.worked = worked if worked is not None else node.worked
        node.windows = windows if windows is not None else node.windows

    def ref(self, id) -> Ref:
        return Ref(id, self.nodes[id].symbol)

    def __contains__(self, id):
        return id in self.nodes

    def __getitem__(self, id) -> Node:
        return self.nodes[id]

    def __iter__(self):
        return iter(self.nodes.values())

    def values(self):
        """id -> recorded value, a read-only view (no copy: large derivations ask often)."""
        return MappingProxyType(self.recorded)

    def evaluate(self, id, values=None):
        """The node's formula evaluated on ``values`` (id -> array; default: the recorded ones)."""
        node = self.nodes[id]
        if node.formula is None:
            return node.value
        return node.formula.evaluate(self.values() if values is None else values)

    def replay(self, overrides: dict) -> dict:
        """Every node recomputed in order from its formula, with the nodes in ``overrides``
        (id -> value) taken as given: what the step gives from other inputs, e.g. a student's
        own δ carried forward."""
        values = {}
        for id, node in self.nodes.items():
            if id in overrides:
                values[id] = np.asarray(overrides[id], dtype=np.float64)
            elif node.formula is None:
                values[id] = node.value
            else:
                values[id] = node.formula.evaluate(values)
        return values

    def by_key(self, section, key):
        return self.keyed.get((section, key))


__all__ = ["Derivation", "KINDS", "Node", "Windows", "Worked"]

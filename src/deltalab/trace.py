"""What happened in one training step, recorded from the engine: the data a worked solution shows.

A :class:`Trace` is plain data (NumPy arrays and floats, no tensors, no graph).  The recorder
in :mod:`deltalab.recorder` fills it while the engine runs the step; reports only format it.

Keys are the lecture's notation and are stable (they are the JSON contract):
- forward values: ``x[0](t)`` input, ``z[l](t)`` pre-activation, ``x[l](t)`` activation
  (a layer without an activation has ``x[l]`` only); ``(t)`` is omitted for feed-forward nets;
- outputs: ``y(t)`` (or ``y``);
- deltas: keyed by the node they belong to, ``z[l](t)`` → δ[l](t) = ∂E/∂z[l](t), and
  ``x[l]`` → ∂E/∂x[l] for layers without parameters (pooling, flatten);
- parameters: ``W<l>``, ``H<l>`` (recurrent), ``b<l>``; conv kernels (out, in, kh, kw);
- a batch of sequences (rnn / lstm): every key carries its sequence's mark, ``x[0]⁽²⁾(1)``,
  ``E⁽²⁾(1)``, ``E⁽²⁾`` (:func:`sequence_mark`), and its Values their ``sequence``.

Problems of type ``equations`` (:mod:`deltalab.equations`) key everything by the node names
of their equations (``h3``, ``h(2)`` at step 2) and also fill the optional chain-rule fields
``local_derivatives`` and ``paths``, and in exact mode ``exact``; other types leave them empty.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from .errors import NonFiniteResult
from .records import dataclass


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sequence_mark(n) -> str:
    """⁽ⁿ⁾, the mark of sequence n of a batch on a key or symbol (``x[0]⁽²⁾(1)``: sequence 2's
    input at t = 1); "" for None (one sequence)."""
    return "" if n is None else f"⁽{str(n).translate(_SUPERSCRIPT)}⁾"


@dataclass
class Value:
    """One labelled array of the solution."""

    key: str  # e.g. "z[1](2)"
    array: np.ndarray
    layer: int | None = None  # l, or None
    step: int | None = None  # time step t (1-based), or None
    kind: str = ""  # "input" | "preactivation" | "activation" | "output" | "state"
    sequence: int | None = None  # n of a batch of sequences (1-based), or None for one sequence

    @property
    def delta_symbol(self) -> str:
        """How a report names ∂E/∂(this value): δ[l](t) for a pre-activation."""
        if self.kind == "preactivation" and self.key.startswith("z"):
            return "δ" + self.key[1:]
        return f"∂E/∂{self.key}"


@dataclass
class Contribution:
    """One time step's part of a shared weight's gradient, e.g. δ[1](t)·x[0](t)ᵀ for W1."""

    step: int
    formula: str  # e.g. "δ[1](2) · x[0](2)ᵀ"
    array: np.ndarray
    general: str = ""  # the same formula at any step t, e.g. "δ[1](t) · x[0](t)ᵀ" ("": none)
    sequence: int | None = None  # n of a batch of sequences (1-based), or None for one sequence


@dataclass
class LocalDerivative:
    """One edge of an equations graph: ∂output/∂input of that one equation, computed by the engine.

    ``value`` is the local Jacobian of shape ``output.shape + input.shape`` (a number for two
    scalar nodes; None when too big to keep); ``backprop`` is the edge's share of ∂L/∂input,
    the vector-Jacobian product (∂output/∂input)ᵀ · ∂L/∂output (None without a loss).
    """

    output: str  # node key, e.g. "o1" or "h(2)"
    input: str  # operand key, e.g. "h3" or "h(1)"
    step: int | None
    shape: tuple  # the Jacobian's shape
    value: np.ndarray | None
    backprop: np.ndarray | None = None
    expression: str = ""  # exact mode: the derivative as an expression in the equation's names, e.g. "w31"


@dataclass
class ChainPath:
    """One path from the loss to a parameter and the product of the local derivatives along it."""

    nodes: list  # keys from the loss to the parameter, e.g. ["L", "o1", "h3", "h1", "w21"]
    factors: list  # the local derivatives along the path (arrays), len(nodes) − 1 of them
    value: np.ndarray  # their (Jacobian) product: this path's share of ∂L/∂parameter


@dataclass
class PathSum:
    """∂L/∂parameter as the sum over every path from the loss to the parameter."""

    parameter: str
    total: int  # number of paths
    paths: list  # [ChainPath] shown (at most a few; ``total`` may be larger)
    value: np.ndarray  # the sum over all ``total`` paths
    method: str  # how the sum was formed: "sum over all paths" or "backward accumulation"


@dataclass
class ExactValue:
    """Exact mode: a value or derivative as an exact expression next to its decimal value."""

    key: str  # "h(2)", "∂L/∂w_hh", "∂o1/∂h3"
    expression: str  # the lecture's way: "0.3·tanh(0.3·tanh(0.5) + 1.1) + 0.1", "4 − 4·y2"
    sympy: str  # SymPy's own text of the expression
    value: np.ndarray | None  # decimal value (None while unknown symbols remain)
    kind: str = "value"  # "value" | "gradient" | "local"


@dataclass
class StepTrace:
    """One SGD step: values before, forward, errors, deltas, gradients, the update."""

    index: int  # 1-based training step
    parameters_before: dict  # name -> array
    forward: list  # [Value] in computation order (inputs, pre-activations, activations)
    outputs: list  # [Value] the network outputs y(t)
    targets: list  # [Value] the targets t(t) (empty without targets)
    errors: dict  # "E(1)" -> float per time step / sample; empty for a single error
    loss: float | None  # total error E (None without targets: forward pass only)
    deltas: list = field(default_factory=list)  # [Value] keyed by node, see module doc
    gradients: dict = field(default_factory=dict)  # name -> array ∂E/∂θ
    contributions: dict = field(default_factory=dict)  # name -> [Contribution] (recurrent weights)
    parameters_after: dict = field(default_factory=dict)  # name -> array θ − η ∂E/∂θ
    derivation: object = None  # deltalab.derivation.Derivation: every value with its formula
    local_derivatives: list = field(default_factory=list)  # [LocalDerivative] (equations problems)
    paths: dict = field(default_factory=dict)  # parameter -> PathSum (equations problems)
    exact: list = field(default_factory=list)  # [ExactValue] (solve --exact)
    error_steps: dict = field(default_factory=dict)  # errors' key -> its time step ("E(1)" -> 1), None: per sample
    # a batch of sequences: each error's (sequence n, time step t) ("E⁽²⁾(1)" -> (2, 1))
    error_places: dict = field(default_factory=dict)
    sequences: int | None = None  # N of a batch of sequences (rnn / lstm), None for one sequence


@dataclass
class Check:
    """Independent verification of the gradients of the first step."""

    method: str  # "central finite differences" | "PyTorch float64"
    max_relative_error: float
    per_parameter: dict  # name -> relative error
    tolerance: float  # relative; with ``atol`` the per-entry |a − n| ≤ atol + tolerance·|n|
    atol: float | None = None  # None: the check passes on max_relative_error ≤ tolerance
    max_excess: float = 0.0  # max of |a − n| − (atol + tolerance·|n|) over the entries
    entries: int = 0  # how many gradient entries were compared
    one_sided: list = field(default_factory=list)  # "W1[0, 1]": an input exactly at a kink

    @classmethod
    def from_differences(cls, comparisons, rtol, atol):
        """The finite-difference check from one comparison per parameter (name -> a
        :class:`deltalab.gradcheck.DifferenceComparison`)."""
        per_parameter = {name: c.relative_error for name, c in comparisons.items()}
        one_sided = [f"{name}[{', '.join(str(int(k)) for k in index)}]"
                     for name, c in comparisons.items() for index in c.one_sided]
        return cls("central finite differences", max(per_parameter.values(), default=0.0), per_parameter, rtol,
                   atol=atol, max_excess=max((c.max_excess for c in comparisons.values()), default=0.0),
                   entries=sum(c.entries for c in comparisons.values()), one_sided=one_sided)

    @property
    def passed(self) -> bool:
        if self.atol is not None:
            return self.max_excess <= 0
        return self.max_relative_error <= self.tolerance


@dataclass
class Trace:
    """The whole worked solution of a problem file."""

    title: str
    model_type: str  # "mlp" | "cnn" | "rnn" | "lstm"
    description: list  # human lines describing the model (layers, activations, sizes)
    equations: list  # the model's equations in the lecture's notation (plain text)
    loss_name: str  # "half_squared_error" ...
    loss_formula: str  # e.g. "E = ½ Σ_t ‖t(t) − y(t)‖²"
    learning_rate: float | None
    steps: list  # [StepTrace]
    checks: list = field(default_factory=list)  # [Check]
    loss_symbol: str = "E"  # the loss's name in ∂E/∂θ ("L" for an equations problem whose loss is L)


def check_finite_step(path, step, loss_name):
    """A training step whose error, gradients or updated parameters are not finite ends the solve
    with one line (exit code 1): the numbers after it would mean nothing."""
    if step.loss is None:
        return
    advice = "lower training.learning_rate or use smaller inputs and parameters"
    if not np.isfinite(step.loss):
        raise NonFiniteResult(f"{path}: {loss_name} became {step.loss} at step {step.index}; {advice}")
    for what, arrays in (("the gradient of", step.gradients), ("the updated", step.parameters_after)):
        for name, array in arrays.items():
            bad = np.asarray(array)[~np.isfinite(array)]
            if bad.size:
                raise NonFiniteResult(f"{path}: {what} {name} became {bad.reshape(-1)[0]} at step {step.index}; "
                                      f"{advice}")


def non_finite_values(trace) -> list:
    """Names of the recorded values (forward, outputs, deltas) that hold inf or nan, in order."""
    names = []
    for step in trace.steps:
        for value in list(step.forward) + list(step.outputs) + list(step.deltas):
            data = np.asarray(value.array)
            if data.dtype.kind == "f" and not np.all(np.isfinite(data)) and value.key not in names:
                names.append(value.key)
    return names

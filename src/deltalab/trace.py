"""What happened in one training step, recorded from the engine: the data a worked solution shows.

A :class:`Trace` is plain data (NumPy arrays and floats, no tensors, no graph).  The recorder
in :mod:`deltalab.solve` fills it while the engine runs the step; reports only format it.

Keys are the lecture's notation and are stable (they are the JSON contract):
- forward values: ``x[0](t)`` input, ``z[l](t)`` pre-activation, ``x[l](t)`` activation
  (a layer without an activation has ``x[l]`` only); ``(t)`` is omitted for feed-forward nets;
- outputs: ``y(t)`` (or ``y``);
- deltas: keyed by the node they belong to, ``z[l](t)`` → δ[l](t) = ∂E/∂z[l](t), and
  ``x[l]`` → ∂E/∂x[l] for layers without parameters (pooling, flatten);
- parameters: ``W<l>``, ``H<l>`` (recurrent), ``b<l>``; conv kernels (out, in, kh, kw).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Value:
    """One labelled array of the solution."""

    key: str  # e.g. "z[1](2)"
    array: np.ndarray
    layer: int | None = None  # l, or None
    step: int | None = None  # time step t (1-based), or None
    kind: str = ""  # "input" | "preactivation" | "activation" | "output" | "state"

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


@dataclass
class Check:
    """Independent verification of the gradients of the first step."""

    method: str  # "central finite differences" | "PyTorch float64"
    max_relative_error: float
    per_parameter: dict  # name -> relative error
    tolerance: float

    @property
    def passed(self) -> bool:
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

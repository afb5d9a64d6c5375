"""The JSON contract of ``deltalab solve --format json`` (stable: scripts and graders read it).

Full precision: every number is a float (``float()``; arrays via ``tolist()`` as nested lists of
floats, a scalar array as a float); nothing is rounded, so ``json.loads`` gives back the exact
float64 values. NaN and ±inf are written as ``null`` (strict JSON).

Top level::

    {
      "title": str,
      "model": {"type": "mlp"|"cnn"|"rnn"|"lstm", "description": [str], "equations": [str]},
      "loss_function": str,            # e.g. "half_squared_error"
      "loss_formula": str,             # e.g. "E = ½ Σ_t ‖t(t) − y(t)‖²"
      "learning_rate": float | null,
      "loss_symbol": str,              # the loss's name: "E", or an equations problem's loss node ("L")
      ... the per-step keys below, for step 1 ...
      "check": [{"method": str, "max_relative_error": float, "per_parameter": {name: float},
                 "tolerance": float, "passed": bool,
                 "atol": float, "entries": int, "one_sided": [str]}],  (finite differences: an entry
                 passes when |analytic − numeric| ≤ atol + tolerance·|numeric|; one_sided lists
                 entries at a kink where the one-sided difference agrees)
      "steps": [ {per-step keys} for each training step ]
    }

Per-step keys (top level = step 1; ``steps[i]`` = step i + 1)::

    "index": int,                     # 1-based training step
    "loss": float | null,             # total error E (null: no targets, forward pass only)
    "errors": {"E(1)": float, ...},   # per time step / sample; {} for a single error
    "outputs": {"y(1)": [...], ...},  # network outputs
    "targets": {"t(1)": [...], ...},
    "forward": {"x[0](1)": [...], "z[1](1)": [...], "x[1](1)": [...], ...},   # computation order
    "deltas": {"z[1](2)": [...], ...},  # keyed by node: "z[l](t)" holds δ[l](t) = ∂E/∂z[l](t)
    "gradients": {"W1": [[...]], "H1": [[...]], "b1": [...], ...},            # ∂E/∂θ
    "contributions": {"H1": [{"step": 1, "formula": "δ[1](1) · x[1](0)ᵀ", "value": [[...]]}, ...]},
                                      # a batch of sequences (rnn / lstm): each entry also has
                                      # "sequence": n, and keys carry n as x[0]⁽ⁿ⁾(t), δ⁽ⁿ⁾ = ∂E⁽ⁿ⁾/∂z⁽ⁿ⁾
    "parameters_before": {"W1": [[...]], ...},
    "parameters_after": {"W1": [[...]], ...},      # θ − η ∂E/∂θ
    "local_derivatives": [            # equations problems (else []): one entry per edge of the graph
        {"output": "o1", "input": "h3", "step": int | null,
         "shape": [...],              # the local Jacobian's shape: output.shape + input.shape
         "value": ... | null,         # the Jacobian ∂output/∂input (null when too big to keep)
         "backprop": ... | null,      # (∂output/∂input)ᵀ · ∂L/∂output, the edge's share of ∂L/∂input
         "expression": str}, ...],    # exact mode: e.g. "w31" ("" otherwise)
    "paths": {"w21": {                # equations problems (else {}): ∂L/∂θ as a sum over paths
        "total": int, "method": str, "value": ...,          # number of paths, how summed, the sum
        "shown": [{"nodes": ["L", "o1", "h3", "h1", "w21"], "factors": [...], "value": ...}, ...]}},
    "exact": {"h(2)": {"expression": str, "sympy": str, "value": ... | null, "kind": str}, ...}
                                      # solve --exact: exact expression beside the decimal value
                                      # (value null while unknown symbols remain); kind is
                                      # "value" | "local" | "gradient"; else {}
    "derivation": [                   # every quantity of the step with its formula, in reading
        {"id": "deltas:z[1](2)",      # order (forward, errors, deltas in backward order,
         "symbol": "δ[1](2)",         # contributions, gradients, updates)
         "kind": str,                 # input | target | parameter | forward | output | error | loss |
                                      # delta | contribution | gradient | update | local
         "value": ..., "step": int | null,     # the time step t of a recurrent net
         "section": str | null, "key": str | null,   # where the value is above ("deltas", "z[1](2)")
         "sequence": int,              # only in a batch of sequences: the node's sequence n
         "inputs": [id, ...],          # the nodes the formula reads
         "formula": str | null, "latex": str | null,   # null for givens
         "tree": {...} | null,        # the formula: {"ref": id, "symbol"} | {"const": number,
                                      # "symbol"?} | {"op": name, "args": [...], "params"?: {...}}
         "worked": {...},             # only on a conv layer's z[l], weight gradient and input
                                      # delta: one entry term by term: {"index": [0-based],
                                      # "general": str, "products": [[a, b], ...], "padded":
                                      # [bool, ...], "bias": number | null, "value": number}
         "windows": {...}}, ...]      # only on a max pooling output and its routed delta:
                                      # {"kernel", "stride", "padding", "winners": [...]: per
                                      # output entry the 0-based [row, column] of its window's
                                      # largest input entry (the first on a tie)}

Keys follow :mod:`deltalab.trace`: parameters ``W<l>``, ``H<l>``, ``b<l>`` (dense weights
out × in, conv kernels out × in × kh × kw); values ``x[l](t)``, ``z[l](t)``, ``y(t)``, ``t(t)``
(``(t)`` omitted for feed-forward networks). Dict order is the recorded order.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..derivation import node_dict


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(item):
    if isinstance(item, list):
        return [_clean(i) for i in item]
    return _number(item)


def array(value):
    """A float64 array as nested lists of floats (a 0-d array as one float), non-finite → None."""
    a = np.asarray(value, dtype=float)
    data = a.tolist()
    if a.size and not np.isfinite(a).all():
        data = _clean(data) if isinstance(data, list) else _number(data)
    return data


def step_dict(step) -> dict:
    return {
        "index": int(step.index),
        "loss": None if step.loss is None else _number(step.loss),
        "errors": {name: _number(v) for name, v in step.errors.items()},
        "outputs": {v.key: array(v.array) for v in step.outputs},
        "targets": {v.key: array(v.array) for v in step.targets},
        "forward": {v.key: array(v.array) for v in step.forward},
        "deltas": {v.key: array(v.array) for v in step.deltas},
        "gradients": {name: array(a) for name, a in step.gradients.items()},
        "contributions": {
            name: [{"step": int(c.step), "formula": c.formula, "value": array(c.array),
                    **({} if c.sequence is None else {"sequence": int(c.sequence)})} for c in items]
            for name, items in step.contributions.items()
        },
        "parameters_before": {name: array(a) for name, a in step.parameters_before.items()},
        "parameters_after": {name: array(a) for name, a in step.parameters_after.items()},
        "local_derivatives": [
            {"output": e.output, "input": e.input, "step": None if e.step is None else int(e.step),
             "shape": [int(n) for n in e.shape], "value": None if e.value is None else array(e.value),
             "backprop": None if e.backprop is None else array(e.backprop), "expression": e.expression}
            for e in getattr(step, "local_derivatives", [])
        ],
        "paths": {
            name: {"total": int(p.total), "method": p.method, "value": array(p.value),
                   "shown": [{"nodes": list(c.nodes), "factors": [array(f) for f in c.factors],
                              "value": array(c.value)} for c in p.paths]}
            for name, p in getattr(step, "paths", {}).items()
        },
        "exact": {e.key: {"expression": e.expression, "sympy": e.sympy,
                          "value": None if e.value is None else array(e.value), "kind": e.kind}
                  for e in getattr(step, "exact", [])},
        "derivation": [] if step.derivation is None else [node_dict(n, array) for n in step.derivation],
    }


_EMPTY_STEP = {"index": None, "loss": None, "errors": {}, "outputs": {}, "targets": {}, "forward": {},
               "deltas": {}, "gradients": {}, "contributions": {}, "parameters_before": {},
               "parameters_after": {}, "local_derivatives": [], "paths": {}, "exact": {}, "derivation": []}


def to_dict(trace) -> dict:
    """The contract above as plain Python data."""
    steps = [step_dict(s) for s in trace.steps]
    first = steps[0] if steps else dict(_EMPTY_STEP)
    return {
        "title": trace.title,
        "model": {"type": trace.model_type, "description": list(trace.description),
                  "equations": list(trace.equations)},
        "loss_function": trace.loss_name,
        "loss_formula": trace.loss_formula,
        "learning_rate": None if trace.learning_rate is None else _number(trace.learning_rate),
        "loss_symbol": getattr(trace, "loss_symbol", "E"),
        **first,
        "check": [
            {"method": c.method, "max_relative_error": _number(c.max_relative_error),
             "per_parameter": {name: _number(v) for name, v in c.per_parameter.items()},
             "tolerance": _number(c.tolerance), "passed": bool(c.passed),
             **({"atol": _number(c.atol), "entries": c.entries, "one_sided": list(c.one_sided)}
                if c.atol is not None else {})}
            for c in trace.checks
        ],
        "steps": steps,
    }


def render(trace, decimals=4) -> str:
    """JSON text (``decimals`` is ignored: JSON keeps full precision)."""
    return json.dumps(to_dict(trace), ensure_ascii=False, indent=2, allow_nan=False)

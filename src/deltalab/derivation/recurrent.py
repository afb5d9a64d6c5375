"""The derivation of one step of a recurrent (rnn / lstm) problem, in the lecture's BPTT
order: the forward pass t = 1 … T, then the deltas from t = T back to 1 --
δ[1](t) = (W2ᵀ δ[2](t) + H1ᵀ δ[1](t+1)) ⊙ f′(z[1](t)) for the Elman layer; for the LSTM the
cell-state recursion δc(t) = ∂E/∂x[1](t) ⊙ o(t) ⊙ (1 − tanh² c(t)) + δc(t+1) ⊙ f(t+1) and
the gate deltas -- then each time step's contribution to the shared weights and their sums.

A batch of sequences (``step.sequences``) is worked sequence by sequence, every symbol marked
with its sequence (x[0]⁽ⁿ⁾(t), δ[1]⁽ⁿ⁾(t)): each forward pass, E⁽ⁿ⁾ and the BPTT deltas of
sequence n's own error, δ⁽ⁿ⁾ = ∂E⁽ⁿ⁾/∂z⁽ⁿ⁾; then E and every gradient as the sum (or mean) of
the sequences' parts, ∂E/∂θ = Σₙ ∂E⁽ⁿ⁾/∂θ (or 1/N Σₙ ∂E⁽ⁿ⁾/∂θ)."""
from __future__ import annotations

import numpy as np

from ..trace import sequence_mark
from .expressions import Const, op, total
from .layered import add_updates, through_activation
from .losses import loss_formulas
from .record import Derivation

GATES = "ifgo"
GATE_FUNCTIONS = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}


def _gate_rows(ref, gate, n):
    k = GATES.index(gate)
    return op("gate_rows", ref, start=k * n, stop=(k + 1) * n, gate=gate)


class _Sequence:
    """The references of one sequence's nodes (``mark``: ⁽ⁿ⁾ in a batch, "" for one sequence)."""

    def __init__(self, index, mark):
        self.index, self.mark = index, mark  # 1-based n (None: one sequence)
        self.h, self.c, self.x, self.z1, self.gates, self.z2, self.y = {}, {}, {}, {}, {}, {}, {}
        self.targets, self.losses = {}, {}
        self.delta1, self.delta2, self.cell_delta = {}, {}, {}


def derive_recurrent(problem, step, cell) -> Derivation:
    """``cell``: the LSTM's cell state and gates (else the Elman layer)."""
    d = Derivation()
    count = step.sequences
    params = {name: d.add(f"parameters_before:{name}", name, "parameter", value, section="parameters_before",
                          key=name) for name, value in step.parameters_before.items()}
    sequences = [_Sequence(None, "")] if count is None else [_Sequence(n, sequence_mark(n)) for n in range(1, count + 1)]
    forward = {v.key: v.array for v in step.forward}
    for seq in sequences:
        _forward_pass(d, problem, step, params, cell, seq, forward)
    if not step.targets:
        return d
    for seq in sequences:
        seq.targets = {v.step: d.add(f"targets:{v.key}", v.key, "target", v.array, time_step=v.step, section="targets",
                                     key=v.key, sequence=seq.index) for v in step.targets if v.sequence == seq.index}
    targets_each = np.size(problem.targets) // (count or 1)  # mse averages over one sequence's targets
    for seq in sequences:
        seq.losses = {s: loss_formulas(problem.loss, seq.y[s], seq.targets[s], seq.z2[s], -1, targets_each,
                                       problem.output_activation == "softmax", d[seq.targets[s].node].value)
                      for s in seq.targets}
    if count is None:
        seq = sequences[0]
        if step.errors:
            terms = [d.add(f"errors:E({s})", f"E({s})", "error", step.errors[f"E({s})"], seq.losses[s].total,
                           time_step=s, section="errors", key=f"E({s})") for s in sorted(seq.targets)]
            loss = total(terms)
        else:
            loss = seq.losses[max(seq.targets)].total
    else:
        errors = []
        for seq in sequences:
            mark = seq.mark
            if problem.many_to_one:
                formula = seq.losses[max(seq.targets)].total
            else:
                formula = total([d.add(f"errors:E{mark}({s})", f"E{mark}({s})", "error", step.errors[f"E{mark}({s})"],
                                       seq.losses[s].total, time_step=s, section="errors", key=f"E{mark}({s})",
                                       sequence=seq.index) for s in sorted(seq.targets)])
            errors.append(d.add(f"errors:E{mark}", f"E{mark}", "error", step.errors[f"E{mark}"], formula,
                                section="errors", key=f"E{mark}", sequence=seq.index))
        loss = _reduced(errors, _factor(problem, count), count)
    d.add("loss", "E", "loss", step.loss, loss, key="loss")
    recorded = {(v.key, v.step): v.array for v in step.deltas}
    for seq in sequences:
        _backward_pass(d, problem, params, cell, seq, recorded)
    if count is None:
        _gradients(d, step, problem, params, sequences[0])
    else:
        _batch_gradients(d, step, problem, params, sequences, _factor(problem, count), count)
    add_updates(d, step, problem.learning_rate)
    return d


def _factor(problem, count):
    """E = factor · Σₙ E⁽ⁿ⁾: 1 for reduction = "sum", 1/N for "mean"."""
    return 1.0 if problem.reduction == "sum" else 1.0 / count


def _reduced(refs, factor, count):
    """Σₙ refs, or 1/N · (Σₙ refs) for the mean."""
    return total(refs) if factor == 1.0 else op("mean_of", *refs, count=count)


def _forward_pass(d, problem, step, params, lstm, seq, forward):
    """x[0](t), the cell's values, x[1](t), z[2](t) and y(t) of one sequence, t = 1 … T."""
    w1, h1, b1, w2, b2 = (params.get(k) for k in ("W1", "H1", "b1", "W2", "b2"))
    n = problem.hidden_size
    mark, index = seq.mark, seq.index
    steps = problem.inputs.shape[-2]
    row = 0 if index is None else index - 1

    def given(value):  # a file's initial state: (H,) for every sequence, or one row per sequence
        value = np.asarray(value, float)
        return value[row] if value.ndim == 2 else value.reshape(-1)

    def add(key, kind, value, formula=None, section="forward", s=None):
        return d.add(f"{section}:{key}", key, kind, value, formula, time_step=s, section=section, key=key,
                     sequence=index)

    initial = np.zeros(n) if problem.initial_state is None else given(problem.initial_state)
    h, c, x, z1, gates, z2, y = seq.h, seq.c, seq.x, seq.z1, seq.gates, seq.z2, seq.y
    h[0] = d.add(f"initial:x[1]{mark}(0)", f"x[1]{mark}(0)", "input", initial, time_step=0, sequence=index)
    if lstm:
        cell = np.zeros(n) if problem.initial_cell is None else given(problem.initial_cell)
        c[0] = d.add(f"initial:c[1]{mark}(0)", f"c[1]{mark}(0)", "input", cell, time_step=0, sequence=index)
    output_steps = [steps] if problem.many_to_one else list(range(1, steps + 1))
    f1 = problem.hidden_activation
    for s in range(1, steps + 1):
        x[s] = add(f"x[0]{mark}({s})", "input", forward[f"x[0]{mark}({s})"], s=s)
        if lstm:
            for gate in GATES:
                pre = _gate_rows(w1, gate, n) @ x[s] + _gate_rows(h1, gate, n) @ h[s - 1]
                if b1 is not None:
                    pre = pre + _gate_rows(b1, gate, n)
                key = f"{gate}[1]{mark}({s})"
                gates[gate, s] = add(key, "forward", forward[key], op("apply", pre, function=GATE_FUNCTIONS[gate]), s=s)
            key = f"c[1]{mark}({s})"
            c[s] = add(key, "forward", forward[key], gates["f", s] * c[s - 1] + gates["i", s] * gates["g", s], s=s)
            hidden = gates["o", s] * op("apply", c[s], function="tanh")
        else:
            pre = w1 @ x[s] + h1 @ h[s - 1]
            key = f"z[1]{mark}({s})"
            z1[s] = add(key, "forward", forward[key], pre + b1 if b1 is not None else pre, s=s)
            hidden = op("apply", z1[s], function=f1)
        h[s] = add(f"x[1]{mark}({s})", "forward", forward[f"x[1]{mark}({s})"], hidden, s=s)
        if s in output_steps:
            pre = w2 @ h[s]
            key = f"z[2]{mark}({s})"
            z2[s] = add(key, "forward", forward[key], pre + b2 if b2 is not None else pre, s=s)
            key = f"y{mark}({s})"
            output = next(v.array for v in step.outputs if v.key == key)
            formula = z2[s] if problem.output_activation == "identity" else op(
                "apply", z2[s], function=problem.output_activation, axis=-1)
            y[s] = add(key, "output", output, formula, section="outputs", s=s)


def _backward_pass(d, problem, params, lstm, seq, recorded):
    """BPTT of one sequence, from t = T back to t = 1 (a batch: of the sequence's own error E⁽ⁿ⁾)."""
    w2, h1 = params.get("W2"), params.get("H1")
    n = problem.hidden_size
    steps = problem.inputs.shape[-2]
    mark, index = seq.mark, seq.index
    output_steps = [steps] if problem.many_to_one else list(range(1, steps + 1))
    f1, f2 = problem.hidden_activation, problem.output_activation
    delta2, delta1, cell_delta = seq.delta2, seq.delta1, seq.cell_delta
    z1, z2, y, h, c, gates, losses = seq.z1, seq.z2, seq.y, seq.h, seq.c, seq.gates, seq.losses

    def add(key, symbol, value, formula, s):
        return d.add(f"deltas:{key}", symbol, "delta", value, formula, time_step=s, section="deltas", key=key,
                     sequence=index)

    for s in range(steps, 0, -1):
        if s in output_steps:
            key = f"z[2]{mark}({s})"
            if s not in losses:
                formula = Const(np.zeros_like(recorded[key, s]), "0")  # no target at this step
            elif losses[s].output_gradient is None:
                formula = losses[s].output_delta
            else:
                formula = through_activation(f2, losses[s].output_gradient, z2[s], y[s], -1)
            delta2[s] = add(key, f"δ[2]{mark}({s})", recorded[key, s], formula, s)
        upstream = None  # ∂E/∂x[1](s)
        if s in delta2:
            upstream = w2.T @ delta2[s]
        if s < steps:
            back = h1.T @ delta1[s + 1]
            upstream = back if upstream is None else upstream + back
        if upstream is None:
            upstream = Const(np.zeros(n), "0")
        if lstm:
            dh = d.add(f"deltas:x[1]{mark}({s})", f"∂E{mark}/∂x[1]{mark}({s})", "delta", upstream.evaluate(d.values()),
                       upstream, time_step=s, sequence=index)
            through = dh * gates["o", s] * (1 - op("square", op("apply", c[s], function="tanh")))
            if s < steps:
                through = through + cell_delta[s + 1] * gates["f", s + 1]
            key = f"c[1]{mark}({s})"
            cell_delta[s] = add(key, f"δc[1]{mark}({s})", recorded[key, s], through, s)
            i, f, g, o = (gates[k, s] for k in GATES)
            parts = (cell_delta[s] * g * (i * (1 - i)), cell_delta[s] * c[s - 1] * (f * (1 - f)),
                     cell_delta[s] * i * (1 - op("square", g)),
                     dh * op("apply", c[s], function="tanh") * (o * (1 - o)))
            formula = op("concat", *parts)
        else:
            formula = through_activation(f1, upstream, z1[s], h[s], -1)
        key = f"z[1]{mark}({s})"
        delta1[s] = add(key, f"δ[1]{mark}({s})", recorded[key, s], formula, s)


def _shares(seq):
    """Each parameter's share at step s: δ[1](s) x[0](s)ᵀ for W1, …"""
    x, h, delta1, delta2 = seq.x, seq.h, seq.delta1, seq.delta2
    return {"W1": lambda s: op("outer", delta1[s], x[s]), "H1": lambda s: op("outer", delta1[s], h[s - 1]),
            "b1": lambda s: delta1[s], "W2": lambda s: op("outer", delta2[s], h[s]), "b2": lambda s: delta2[s]}


def _gradients(d, step, problem, params, seq):
    """One sequence: each step's share of the shared weights, and the gradients."""
    shares = _shares(seq)
    steps = problem.inputs.shape[-2]
    for name in ("W1", "H1", "b1", "W2", "b2"):
        if name not in step.gradients:
            continue
        contributions = step.contributions.get(name, [])
        if contributions:
            refs = [d.add(f"contributions:{name}:{share.step}", f"∂E/∂{name}({share.step})", "contribution",
                          share.array, shares[name](share.step), time_step=share.step, section="contributions",
                          key=name) for share in contributions]
            formula = total(refs)
        else:  # many-to-one output layer: one step only
            formula = shares[name](steps)
        d.add(f"gradients:{name}", f"∂E/∂{name}", "gradient", step.gradients[name], formula, section="gradients",
              key=name)


def _batch_gradients(d, step, problem, params, sequences, factor, count):
    """A batch: each sequence's gradient ∂E⁽ⁿ⁾/∂θ = Σ_t (its steps' shares), then ∂E/∂θ as their sum
    (or mean)."""
    steps = problem.inputs.shape[-2]
    for name in ("W1", "H1", "b1", "W2", "b2"):
        if name not in step.gradients:
            continue
        parts = []
        for seq in sequences:
            shares = _shares(seq)
            shown = [steps] if problem.many_to_one and name in ("W2", "b2") else range(1, steps + 1)
            formula = total([shares[name](s) for s in shown])
            parts.append(d.add(f"contributions:{name}{seq.mark}", f"∂E{seq.mark}/∂{name}", "contribution",
                               formula.evaluate(d.values()), formula, section="contributions", key=name,
                               sequence=seq.index))
        d.add(f"gradients:{name}", f"∂E/∂{name}", "gradient", step.gradients[name], _reduced(parts, factor, count),
              section="gradients", key=name)


__all__ = ["derive_recurrent"]

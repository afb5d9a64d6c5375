"""The derivation of one step of a recurrent (rnn / lstm) problem, in the lecture's BPTT
order: the forward pass t = 1 … T, then the deltas from t = T back to 1 --
δ[1](t) = (W2ᵀ δ[2](t) + H1ᵀ δ[1](t+1)) ⊙ f′(z[1](t)) for the Elman layer; for the LSTM the
cell-state recursion δc(t) = ∂E/∂x[1](t) ⊙ o(t) ⊙ (1 − tanh² c(t)) + δc(t+1) ⊙ f(t+1) and
the gate deltas -- then each time step's contribution to the shared weights and their sums."""
from __future__ import annotations

import numpy as np

from .expressions import Const, op, total
from .layered import add_updates, through_activation
from .losses import loss_formulas
from .record import Derivation

GATES = "ifgo"
GATE_FUNCTIONS = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}


def _gate_rows(ref, gate, n):
    k = GATES.index(gate)
    return op("gate_rows", ref, start=k * n, stop=(k + 1) * n, gate=gate)


def derive_recurrent(problem, step, cell) -> Derivation:
    """``cell``: the LSTM's cell state and gates (else the Elman layer)."""
    d = Derivation()
    lstm = cell
    n = problem.hidden_size
    steps = problem.inputs.shape[0]
    forward = {v.key: v.array for v in step.forward}
    params = {name: d.add(f"parameters_before:{name}", name, "parameter", value, section="parameters_before",
                          key=name) for name, value in step.parameters_before.items()}
    w1, h1, b1, w2, b2 = (params.get(k) for k in ("W1", "H1", "b1", "W2", "b2"))
    initial = np.zeros(n) if problem.initial_state is None else np.asarray(problem.initial_state, float).reshape(-1)
    h = {0: d.add("initial:x[1](0)", "x[1](0)", "input", initial, time_step=0)}
    c = {}
    if lstm:
        cell = np.zeros(n) if problem.initial_cell is None else np.asarray(problem.initial_cell, float).reshape(-1)
        c[0] = d.add("initial:c[1](0)", "c[1](0)", "input", cell, time_step=0)
    x, z1, gates, z2, y = {}, {}, {}, {}, {}
    output_steps = [steps] if problem.many_to_one else list(range(1, steps + 1))
    f1 = problem.hidden_activation
    for s in range(1, steps + 1):
        x[s] = d.add(f"forward:x[0]({s})", f"x[0]({s})", "input", forward[f"x[0]({s})"], time_step=s,
                     section="forward", key=f"x[0]({s})")
        if lstm:
            for gate in GATES:
                pre = _gate_rows(w1, gate, n) @ x[s] + _gate_rows(h1, gate, n) @ h[s - 1]
                if b1 is not None:
                    pre = pre + _gate_rows(b1, gate, n)
                key = f"{gate}[1]({s})"
                gates[gate, s] = d.add(f"forward:{key}", key, "forward", forward[key],
                                       op("apply", pre, function=GATE_FUNCTIONS[gate]), time_step=s,
                                       section="forward", key=key)
            c[s] = d.add(f"forward:c[1]({s})", f"c[1]({s})", "forward", forward[f"c[1]({s})"],
                         gates["f", s] * c[s - 1] + gates["i", s] * gates["g", s], time_step=s, section="forward",
                         key=f"c[1]({s})")
            hidden = gates["o", s] * op("apply", c[s], function="tanh")
        else:
            pre = w1 @ x[s] + h1 @ h[s - 1]
            z1[s] = d.add(f"forward:z[1]({s})", f"z[1]({s})", "forward", forward[f"z[1]({s})"],
                          pre + b1 if b1 is not None else pre, time_step=s, section="forward", key=f"z[1]({s})")
            hidden = op("apply", z1[s], function=f1)
        h[s] = d.add(f"forward:x[1]({s})", f"x[1]({s})", "forward", forward[f"x[1]({s})"], hidden, time_step=s,
                     section="forward", key=f"x[1]({s})")
        if s in output_steps:
            pre = w2 @ h[s]
            z2[s] = d.add(f"forward:z[2]({s})", f"z[2]({s})", "forward", forward[f"z[2]({s})"],
                          pre + b2 if b2 is not None else pre, time_step=s, section="forward", key=f"z[2]({s})")
            output = next(v.array for v in step.outputs if v.key == f"y({s})")
            formula = z2[s] if problem.output_activation == "identity" else op(
                "apply", z2[s], function=problem.output_activation, axis=-1)
            y[s] = d.add(f"outputs:y({s})", f"y({s})", "output", output, formula, time_step=s, section="outputs",
                         key=f"y({s})")
    if not step.targets:
        return d
    targets = {v.step: d.add(f"targets:{v.key}", v.key, "target", v.array, time_step=v.step, section="targets",
                             key=v.key) for v in step.targets}
    count = np.size(problem.targets)
    losses = {s: loss_formulas(problem.loss, y[s], targets[s], z2[s], -1, count,
                               problem.output_activation == "softmax", d[targets[s].node].value)
              for s in targets}
    if step.errors:
        terms = [d.add(f"errors:E({s})", f"E({s})", "error", step.errors[f"E({s})"], losses[s].total,
                       time_step=s, section="errors", key=f"E({s})") for s in sorted(targets)]
        loss = total(terms)
    else:
        loss = losses[max(targets)].total
    d.add("loss", "E", "loss", step.loss, loss, key="loss")
    # ---- BPTT: deltas from t = T back to t = 1
    recorded = {(v.key, v.step): v.array for v in step.deltas}
    delta2, delta1, cell_delta = {}, {}, {}
    f2 = problem.output_activation
    for s in range(steps, 0, -1):
        if s in output_steps:
            if s not in losses:
                formula = Const(np.zeros_like(recorded[f"z[2]({s})", s]), "0")  # no target at this step
            elif losses[s].output_gradient is None:
                formula = losses[s].output_delta
            else:
                formula = through_activation(f2, losses[s].output_gradient, z2[s], y[s], -1)
            delta2[s] = d.add(f"deltas:z[2]({s})", f"δ[2]({s})", "delta", recorded[f"z[2]({s})", s], formula,
                              time_step=s, section="deltas", key=f"z[2]({s})")
        upstream = None  # ∂E/∂x[1](s)
        if s in delta2:
            upstream = w2.T @ delta2[s]
        if s < steps:
            back = h1.T @ delta1[s + 1]
            upstream = back if upstream is None else upstream + back
        if upstream is None:
            upstream = Const(np.zeros(n), "0")
        if lstm:
            dh = d.add(f"deltas:x[1]({s})", f"∂E/∂x[1]({s})", "delta", upstream.evaluate(d.values()), upstream,
                       time_step=s)
            through = dh * gates["o", s] * (1 - op("square", op("apply", c[s], function="tanh")))
            if s < steps:
                through = through + cell_delta[s + 1] * gates["f", s + 1]
            cell_delta[s] = d.add(f"deltas:c[1]({s})", f"δc[1]({s})", "delta", recorded[f"c[1]({s})", s], through,
                                  time_step=s, section="deltas", key=f"c[1]({s})")
            i, f, g, o = (gates[k, s] for k in GATES)
            parts = (cell_delta[s] * g * (i * (1 - i)), cell_delta[s] * c[s - 1] * (f * (1 - f)),
                     cell_delta[s] * i * (1 - op("square", g)),
                     dh * op("apply", c[s], function="tanh") * (o * (1 - o)))
            formula = op("concat", *parts)
        else:
            formula = through_activation(f1, upstream, z1[s], h[s], -1)
        delta1[s] = d.add(f"deltas:z[1]({s})", f"δ[1]({s})", "delta", recorded[f"z[1]({s})", s], formula,
                          time_step=s, section="deltas", key=f"z[1]({s})")
    # ---- each step's share of the shared weights, and the gradients
    shares = {"W1": lambda s: op("outer", delta1[s], x[s]), "H1": lambda s: op("outer", delta1[s], h[s - 1]),
              "b1": lambda s: delta1[s], "W2": lambda s: op("outer", delta2[s], h[s]), "b2": lambda s: delta2[s]}
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
    add_updates(d, step, problem.learning_rate)
    return d


__all__ = ["derive_recurrent"]

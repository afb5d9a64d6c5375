"""Solve a problem: run training steps on the engine and record everything into a Trace.

The recorder reads values straight from the engine -- forward tensors, deltas kept with
``retain_grad``, the per-step deltas a fused recurrent op records -- and never re-derives them;
reports only format the Trace.  Every solve checks its gradients against central finite
differences (an independent path); ``check_torch`` adds PyTorch.
"""
from __future__ import annotations

import numpy as np

from . import limits, losses, ops
from .autograd import no_grad
from .derivation import derive_step
from .errors import ConfigurationError, ShapeError, SpecError
from .gradcheck import FD_ATOL, FD_RTOL, compare_with_differences, sampled_entries
from .models.elman import ElmanNetwork, LSTMNetwork
from .models.layered import LayeredNetwork
from .ops.recurrent import sequence_record
from .tensor import Tensor
from .trace import Check, Contribution, StepTrace, Trace, Value, check_finite_step

LOSS_FORMULAS = {
    "half_squared_error": "E = ½ Σ (t − y)²",
    "squared_error": "E = Σ (t − y)²",
    "mse": "E = mean (t − y)²",
    "cross_entropy": "E = −Σ t · log y,  y = softmax(z)",
    "binary_cross_entropy": "E = −Σ [t · log y + (1 − t) · log(1 − y)]",
}


# ------------------------------------------------------------------ building
def build_model(problem):
    """The engine model of a problem, with parameters filled, drawn or given explicitly."""
    from . import random as dl_random

    if problem.model_type == "equations":
        raise SpecError(f"{problem.path}: an equations problem has no layered model; its parameters are "
                        f"{', '.join(problem.equations.parameters) or 'none'}")
    dl_random.manual_seed(problem.seed)
    where = f"{problem.path}: model"
    try:
        if problem.model_type == "rnn":
            model = ElmanNetwork(problem.input_size, problem.hidden_size, problem.output_size,
                                 problem.hidden_activation, problem.output_activation, problem.many_to_one,
                                 bias=problem.bias, dtype=np.float64)
        elif problem.model_type == "lstm":
            model = LSTMNetwork(problem.input_size, problem.hidden_size, problem.output_size,
                                problem.output_activation, problem.many_to_one, bias=problem.bias, dtype=np.float64)
        else:
            model = LayeredNetwork(problem.input_shape, problem.layers, dtype=np.float64)
    except ConfigurationError as exc:
        raise SpecError(f"{where}: {exc}") from None
    own = dict(model.named_parameters())
    for name, value in problem.parameters.items():
        if name not in own:
            raise SpecError(f"{problem.path}: parameters.{name}: this model has no parameter {name} "
                            f"(it has {', '.join(own)})")
        if value.shape != own[name].shape:
            raise SpecError(f"{problem.path}: parameters.{name}: expected shape {own[name].shape}, got {value.shape}")
    for name, p in own.items():
        if name in problem.parameters:
            p.data = problem.parameters[name].astype(np.float64).copy()
        elif problem.init == "fill":
            p.data = np.full(p.shape, problem.fill, dtype=np.float64)
    return model


def _description(problem, model):
    if problem.model_type in ("rnn", "lstm"):
        kind = "Elman RNN" if problem.model_type == "rnn" else "LSTM"
        lines = [f"{kind}: {problem.input_size} inputs → {problem.hidden_size} hidden"
                 + (f" ({problem.hidden_activation})" if problem.model_type == "rnn" else "")
                 + f" → {problem.output_size} outputs ({problem.output_activation}), "
                 + ("many-to-one" if problem.many_to_one else "many-to-many")]
        if problem.model_type == "rnn":
            f1 = problem.hidden_activation
            equations = ["z[1](t) = W1 x[0](t) + H1 x[1](t−1) + b1", f"x[1](t) = {f1}(z[1](t))",
                         "z[2](t) = W2 x[1](t) + b2", f"y(t) = {problem.output_activation}(z[2](t))"]
        else:
            equations = ["[i f g o](t) = [σ σ tanh σ](W1 x[0](t) + H1 x[1](t−1) + b1)",
                         "c[1](t) = f(t) ∘ c[1](t−1) + i(t) ∘ g(t)", "x[1](t) = o(t) ∘ tanh(c[1](t))",
                         "z[2](t) = W2 x[1](t) + b2", f"y(t) = {problem.output_activation}(z[2](t))"]
        return lines, equations
    lines, equations = [f"input x[0]: {'×'.join(map(str, problem.input_shape))}"], []
    for l, spec in enumerate(model.specs, start=1):
        shape = "×".join(map(str, model.shapes[l]))
        kind = spec["type"]
        if kind == "dense":
            lines.append(f"layer {l}: dense {spec['units']} units, {spec.get('activation', 'identity')} → {shape}")
            equations.append(f"z[{l}] = W{l} x[{l - 1}]" + (" + b%d" % l if spec.get("bias", True) else ""))
        elif kind == "conv2d":
            lines.append(f"layer {l}: conv2d {spec['out_channels']} kernels {spec['kernel_size'][0]}×{spec['kernel_size'][1]}, "
                         f"stride {tuple(spec['stride'])}, padding {tuple(spec['padding'])}, "
                         f"{spec.get('activation', 'identity')} → {shape}")
            equations.append(f"z[{l}] = W{l} ⋆ x[{l - 1}]" + (" + b%d" % l if spec.get("bias", True) else ""))
        else:
            extra = "" if kind == "flatten" else (f" {spec['kernel_size'][0]}×{spec['kernel_size'][1]}, stride "
                                                  f"{tuple(spec['stride'])}, padding {tuple(spec['padding'])}")
            lines.append(f"layer {l}: {kind}{extra} → {shape}")
            equations.append(f"x[{l}] = {kind}(x[{l - 1}])")
        if kind in ("dense", "conv2d") and spec.get("activation", "identity") != "identity":
            equations.append(f"x[{l}] = {spec['activation']}(z[{l}])")
    return lines, equations


# ------------------------------------------------------------------ loss
def _error_terms(problem, output, preactivation, target):
    """Elementwise error terms whose sum is E, so per-step errors add up to E.

    For mse each term is divided by the number of target values (problem.targets, which has
    rows only for the targeted steps), like torch's mse_loss on the targeted outputs.
    """
    if problem.loss in ("half_squared_error", "squared_error", "mse"):
        diff = output - target
        terms = diff * diff
        if problem.loss == "half_squared_error":
            terms = 0.5 * terms
        if problem.loss == "mse":
            terms = terms / float(np.size(problem.targets))
        return terms
    if problem.loss == "cross_entropy":
        axis = 1 if problem.model_type in ("mlp", "cnn") and preactivation.ndim > 1 else -1
        return -(target * ops.log_softmax(preactivation, axis=axis))
    probability = output  # binary cross-entropy on a sigmoid output
    return -(target * losses._clamped_log(probability) + (1 - target) * losses._clamped_log(1 - probability))


# ------------------------------------------------------------------ one step
class _Forward:
    """One forward pass with everything the solution shows; ``loss`` is None without targets."""

    def __init__(self, problem, model, keep_deltas):
        self.problem, self.model = problem, model
        x = Tensor(problem.inputs)
        target = None if problem.targets is None else Tensor(problem.targets)
        self.mask = None
        if target is not None and problem.target_steps is not None:
            full = np.zeros((problem.inputs.shape[0], problem.output_size))
            self.mask = np.zeros_like(full)
            for row, step in enumerate(problem.target_steps):
                full[step - 1] = problem.targets[row]
                self.mask[step - 1] = 1.0
            target = Tensor(full)
        if problem.model_type in ("rnn", "lstm"):
            h0 = None if problem.initial_state is None else Tensor(problem.initial_state)
            if problem.model_type == "lstm":
                c0 = None if problem.initial_cell is None else Tensor(problem.initial_cell)
                h0 = (h0, c0)
            run = model.run(x, h0)
            self.hidden, self.preactivation, self.output = run
        else:
            batched = problem.inputs.shape != problem.input_shape
            self.batched = batched
            self.values = model.run(x if batched else x.reshape((1,) + x.shape))
            last_z = next((v.tensor for v in reversed(self.values) if v.kind == "preactivation"), None)
            self.output = self.values[-1].tensor
            self.preactivation = last_z if last_z is not None else self.output
            if not batched:
                self.output_view = self.output.reshape(self.output.shape[1:])
                self.preactivation_view = self.preactivation.reshape(self.preactivation.shape[1:])
            if target is not None and target.shape not in (self.output.shape, self.output.shape[1:]):
                raise SpecError(f"{problem.path}: data.targets: expected shape {self.output.shape[1:]}"
                                f"{' or ' + str(self.output.shape) if batched else ''} (the network's output), "
                                f"got {target.shape}")
            if target is not None and target.shape != self.output.shape:
                target = target.reshape(self.output.shape)
        if keep_deltas:
            self.preactivation.retain_grad()
            if problem.model_type in ("mlp", "cnn"):
                for v in self.values[1:]:
                    v.tensor.retain_grad()
        self.target = target
        self.terms = self.loss = None
        if target is not None:
            self.terms = _error_terms(problem, self.output, self.preactivation, target)
            if self.mask is not None:
                self.terms = self.terms * self.mask
            self.loss = self.terms.sum()


def problem_forward(problem, model):
    """One forward pass of ``model`` on the problem's data, as every solve step runs it: ``.output``,
    ``.target`` (None without targets), ``.mask`` (None, or 1 on the steps that have targets) and
    ``.loss`` (E with its graph, ready for ``backward``).  ``deltalab train file`` trains with it."""
    return _Forward(problem, model, keep_deltas=False)


def _vector(array):
    return np.array(array, dtype=np.float64)


def _record_step(problem, model, index):
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    fwd = _Forward(problem, model, keep_deltas=True)
    if fwd.loss is not None:
        fwd.loss.backward()
    if problem.model_type in ("rnn", "lstm"):
        step = _recurrent_step(problem, fwd, index, before)
    else:
        step = _layered_step(problem, fwd, index, before)
    if fwd.loss is not None:
        step.gradients = {name: p.grad.data.copy() if p.grad is not None else np.zeros_like(p.data)
                          for name, p in model.named_parameters()}
        with no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.data = p.data - problem.learning_rate * p.grad.data
        step.parameters_after = {name: p.data.copy() for name, p in model.named_parameters()}
    return step


def _recurrent_step(problem, fwd, index, before):
    record = sequence_record(fwd.hidden)
    steps = problem.inputs.shape[0]
    last_only = problem.many_to_one
    forward, outputs, targets, deltas, errors = [], [], [], [], {}
    for t in range(steps):
        s = t + 1
        forward.append(Value(f"x[0]({s})", _vector(problem.inputs[t]), 0, s, "input"))
        if problem.model_type == "rnn":
            forward.append(Value(f"z[1]({s})", _vector(record["z"][t, 0]), 1, s, "preactivation"))
        else:
            gates = record["gates"][t, 0]
            n = problem.hidden_size
            for k, gate in enumerate("ifgo"):
                forward.append(Value(f"{gate}[1]({s})", _vector(gates[k * n:(k + 1) * n]), 1, s, "gate"))
            forward.append(Value(f"c[1]({s})", _vector(record["c"][t + 1, 0]), 1, s, "state"))
        forward.append(Value(f"x[1]({s})", _vector(record["h"][t + 1, 0]), 1, s, "activation"))
        if last_only and s != steps:
            continue
        row = None if last_only else t
        z2 = fwd.preactivation.data if row is None else fwd.preactivation.data[row]
        y = fwd.output.data if row is None else fwd.output.data[row]
        forward.append(Value(f"z[2]({s})", _vector(z2), 2, s, "preactivation"))
        outputs.append(Value(f"y({s})", _vector(y), 2, s, "output"))
        if fwd.target is not None and (fwd.mask is None or fwd.mask[t].any()):
            tv = fwd.target.data if row is None else fwd.target.data[row]
            targets.append(Value(f"t({s})", _vector(tv), None, s, "target"))
            errors[f"E({s})"] = float(np.sum(fwd.terms.data if row is None else fwd.terms.data[row]))
    step = StepTrace(index, before, forward, outputs, targets, errors if not last_only else {},
                     None if fwd.loss is None else fwd.loss.item())
    if fwd.loss is None:
        return step
    delta2 = fwd.preactivation.grad.data
    for t in range(steps):
        s = t + 1
        deltas.append(Value(f"z[1]({s})", _vector(record["delta"][t, 0]), 1, s, "preactivation"))
        if problem.model_type == "lstm":
            deltas.append(Value(f"c[1]({s})", _vector(record["cell_delta"][t, 0]), 1, s, "state"))
    for t in range(steps):
        s = t + 1
        if last_only and s != steps:
            continue
        deltas.append(Value(f"z[2]({s})", _vector(delta2 if last_only else delta2[t]), 2, s, "preactivation"))
    step.deltas = deltas
    contributions = {"W1": [], "H1": [], "b1": [], "W2": [], "b2": []}
    for t in range(steps):
        s = t + 1
        contributions["W1"].append(Contribution(s, f"δ[1]({s}) · x[0]({s})ᵀ", record["dW_ih"][t]))
        contributions["H1"].append(Contribution(s, f"δ[1]({s}) · x[1]({s - 1})ᵀ", record["dW_hh"][t]))
        if problem.bias:
            contributions["b1"].append(Contribution(s, f"δ[1]({s})", record["db"][t]))
        if not last_only:
            x1 = record["h"][t + 1, 0]
            contributions["W2"].append(Contribution(s, f"δ[2]({s}) · x[1]({s})ᵀ", np.outer(delta2[t], x1)))
            if problem.bias:
                contributions["b2"].append(Contribution(s, f"δ[2]({s})", _vector(delta2[t])))
    step.contributions = {k: v for k, v in contributions.items() if v}
    return step


def _layered_step(problem, fwd, index, before):
    def view(array):
        return _vector(array if fwd.batched else array[0])

    forward = [Value(v.key, view(v.tensor.data), v.layer, None, v.kind) for v in fwd.values]
    outputs = [Value("y", view(fwd.output.data), len(fwd.model.specs), None, "output")]
    targets = [] if fwd.target is None else [Value("t", view(fwd.target.data), None, None, "target")]
    errors = {}
    if fwd.target is not None and fwd.batched and fwd.output.shape[0] > 1:
        per_sample = fwd.terms.data.reshape(fwd.output.shape[0], -1).sum(axis=1)
        errors = {f"E(sample {n + 1})": float(e) for n, e in enumerate(per_sample)}
    step = StepTrace(index, before, forward, outputs, targets, errors, None if fwd.loss is None else fwd.loss.item())
    if fwd.loss is not None:
        step.deltas = [Value(v.key, view(v.tensor.grad.data), v.layer, None, v.kind)
                       for v in reversed(fwd.values[1:]) if v.tensor.grad is not None]
    return step


# ------------------------------------------------------------------ checks
def _loss_value(problem, model):
    with no_grad():
        return _Forward(problem, model, keep_deltas=False).loss.item()


def finite_difference_check(problem, model, gradients, max_entries=4000):
    """Central differences of E for every parameter entry (a fixed sample of them for big nets)."""
    params = dict(model.named_parameters())
    chosen = sampled_entries({name: p.numel() for name, p in params.items()}, max_entries)
    comparisons = {}
    for name, p in params.items():
        entries = chosen[name]
        indices = [np.unravel_index(i, p.shape) for i in entries]
        comparisons[name] = compare_with_differences(lambda: _loss_value(problem, model), p.data, indices,
                                                     gradients[name].reshape(-1)[entries])
    return Check.from_differences(comparisons, FD_RTOL, FD_ATOL)


# ------------------------------------------------------------------ entry point
def solve_problem(problem, check_torch=False, exact=False, differences=True) -> Trace:
    """Run ``problem.steps`` SGD steps and return the recorded worked solution.

    ``differences=False`` skips the finite-difference check (``generate`` solves many draws
    and checks only the variants it keeps).

    ``exact`` adds SymPy's exact values and derivatives (equations problems, and small mlp /
    rnn problems translated into equations; see :mod:`deltalab.equations.exact`).
    """
    if problem.model_type == "equations":
        from .equations.solver import solve_equations

        trace = solve_equations(problem, exact=exact, check_torch=check_torch, differences=differences)
        for step in trace.steps:
            step.derivation = derive_step(problem, step)
        return trace
    if exact:
        from .equations.translate import solve_exact_standard

        return solve_exact_standard(problem, solve_problem(problem, check_torch=check_torch))
    model = build_model(problem)
    lines, equations = _description(problem, model)
    trace = Trace(problem.title, problem.model_type, lines, equations, problem.loss, LOSS_FORMULAS[problem.loss],
                  problem.learning_rate, [])
    steps = problem.steps if problem.targets is not None else 1
    try:
        for index in range(1, steps + 1):
            if index == 1 and problem.targets is not None:
                first_parameters = {n: p.data.copy() for n, p in model.named_parameters()}
            step = _record_step(problem, model, index)
            check_finite_step(problem.path, step, "the error E")
            step.derivation = derive_step(problem, step, model)
            trace.steps.append(step)
    except ShapeError as exc:
        raise SpecError(f"{problem.path}: {exc}") from None
    if problem.targets is not None and differences:
        checked = build_model(problem)
        for name, p in checked.named_parameters():
            p.data = first_parameters[name].copy()
        entries = limits.finite_difference_entries(problem.size.cost) if problem.size else 4000
        trace.checks.append(finite_difference_check(problem, checked, trace.steps[0].gradients, max_entries=entries))
        if check_torch:
            from .torch_check import torch_check

            trace.checks.append(torch_check(problem, first_parameters, trace.steps[0].gradients))
    return trace

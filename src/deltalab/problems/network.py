"""What the network kinds (layered mlp / cnn, recurrent rnn / lstm) share: the file's
``[parameters]``, ``[data]`` and ``[training]`` tables, the size limits, the loss, filling the
parameters, one forward pass with its error terms, central differences and PyTorch's loss.
The kinds themselves (:mod:`.layered`, :mod:`.recurrent`) add what differs."""
from __future__ import annotations

import contextlib
import re

import numpy as np

from .. import limits, ops
from ..autograd import no_grad
from ..errors import ConfigurationError, ShapeError, SpecError
from ..tensor import Tensor
from .base import Header, ProblemKind
from .file import Problem
from .reader import describe_value

LOSSES = ("half_squared_error", "squared_error", "mse", "cross_entropy", "binary_cross_entropy")
LOSS_FORMULAS = {
    "half_squared_error": "E = ½ Σ (t − y)²",
    "squared_error": "E = Σ (t − y)²",
    "mse": "E = mean (t − y)²",
    "cross_entropy": "E = −Σ t · log y,  y = softmax(z)",
    "binary_cross_entropy": "E = −Σ [t · log y + (1 − t) · log(1 − y)]",
}
PARAMETER_OPTIONS = ("fill", "init", "seed")
DATA_KEYS = ("inputs", "targets", "target_steps", "initial_state", "initial_cell")
TRAINING_KEYS = ("learning_rate", "steps")


class NetworkKind(ProblemKind):
    """A network with named parameters (W<l>, H<l>, b<l>) trained on ``[data]``."""

    model_keys: tuple = ()
    initial_keys: tuple = ()  # data.initial_state / data.initial_cell this kind takes

    # ------------------------------------------------------------------ reading
    def read_file(self, data, r, model_type, heading):
        title, description = heading
        model = data["model"]
        problem = Problem(path=r.path, title=title, model_type=model_type, loss="half_squared_error",
                          description=description)
        r.check_keys(model, self.model_keys, "model")
        self.read_model(model, problem, r)
        problem.loss = r.choice(model, "loss", LOSSES, "model.loss", "half_squared_error")
        last = self.output_activation(problem)
        if problem.loss == "cross_entropy" and last not in ("softmax", "identity"):
            r.fail("model.loss", f"cross_entropy needs a softmax (or identity = logits) output, the output "
                                 f"activation is {last!r}")
        if problem.loss == "binary_cross_entropy" and last != "sigmoid":
            r.fail("model.loss", f"binary_cross_entropy needs a sigmoid output, the output activation is {last!r}")
        _parameters(r.table(data, "parameters", "parameters", required=False), problem, r)
        self._data(r.table(data, "data", "data"), problem, r)
        # without [training] (or its learning_rate) a question asks for the gradients only: no update
        training = r.table(data, "training", "training", required=False)
        r.check_keys(training, TRAINING_KEYS, "training")
        if "learning_rate" in training:
            problem.learning_rate = r.number(training, "learning_rate", "training.learning_rate", positive=True)
        problem.steps = r.positive_int(training, "steps", "training.steps", default=1, largest=limits.STEPS)
        if problem.steps > 1 and problem.targets is not None and problem.learning_rate is None:
            r.fail("training.steps", f"{problem.steps} training steps need training.learning_rate "
                                     "(without it the gradients of one pass are worked out)")
        self._check_size(problem, r)
        return problem

    def read_model(self, model, problem, r):
        raise NotImplementedError

    def output_activation(self, problem) -> str:
        raise NotImplementedError

    def read_inputs(self, inputs, problem):
        return inputs

    def takes_target_steps(self, problem) -> bool:
        return False

    def check_data(self, problem, r):
        """The shapes of data.inputs, data.targets and the initial states."""
        raise NotImplementedError

    def count(self, problem, r):
        """(NetworkSize, per-layer [parameters, values, multiply-adds]) from the file's numbers alone."""
        raise NotImplementedError

    def check_raw_data(self, table, r):
        """Checks of the ``[data]`` table as written, before its lists become arrays."""

    def _data(self, table, problem, r):
        r.check_keys(table, DATA_KEYS, "data")
        self.check_raw_data(table, r)
        if "inputs" not in table:
            r.fail("data.inputs", "missing; expected the input values")
        problem.inputs = self.read_inputs(r.array(table["inputs"], "data.inputs"), problem)
        if "target_steps" in table:
            steps = table["target_steps"]
            if not self.takes_target_steps(problem):
                r.fail("data.target_steps", "only a many-to-many rnn or lstm has targets per time step")
            if (not isinstance(steps, list) or not steps
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in steps)):
                r.fail("data.target_steps",
                       f"expected a list of time steps (1-based integers), got {describe_value(steps)}")
            problem.target_steps = tuple(steps)
        if "targets" in table:
            problem.targets = r.array(table["targets"], "data.targets")
        for key in ("initial_state", "initial_cell"):
            if key in table:
                if key not in self.initial_keys:
                    r.fail(f"data.{key}", f"only {'an lstm' if key == 'initial_cell' else 'an rnn or lstm'} has an "
                                          f"initial {key.split('_')[1]}")
                setattr(problem, key, r.array(table[key], f"data.{key}"))
        self.check_data(problem, r)

    def _check_size(self, problem, r):
        """Count parameters, values and multiply-adds from the file's numbers alone and refuse a network
        beyond the limits (:mod:`deltalab.limits`) before a single array of it is allocated; also the
        static checks a forward pass would otherwise make (so ``summary`` refuses what ``solve`` does)."""
        size, per_layer = self.count(problem, r)
        problem.size = size

        def biggest(index):
            if not per_layer:
                return ""
            layer = max(range(len(per_layer)), key=lambda i: per_layer[i][index])
            return f" (most in model.layers[{layer}], a {problem.layers[layer].type} layer)"

        r.at_most(size.parameters, limits.PARAMETERS, "model",
                  f"the network has {size.parameters:,} parameters{biggest(0)}, which")
        r.at_most(size.values, limits.VALUES, "model",
                  f"one forward pass over the data computes {size.values:,} values{biggest(1)}, which")
        r.at_most(size.multiply_adds, limits.MULTIPLY_ADDS, "model",
                  f"one forward pass takes {size.multiply_adds:,} multiply-adds{biggest(2)}, which")
        steps = problem.steps if problem.targets is not None else 1
        shown = steps * (size.values + size.parameters)
        r.at_most(shown, limits.SHOWN, "training.steps",
                  f"{steps:,} steps of {size.values + size.parameters:,} values and parameters each = {shown:,} "
                  "numbers to show, which")
        work = steps * size.multiply_adds
        r.at_most(work, limits.TOTAL_MULTIPLY_ADDS, "training.steps",
                  f"{steps:,} steps of {size.multiply_adds:,} multiply-adds each = {work:,}, which")

    # ------------------------------------------------------------------ the model
    def make_network(self, problem):
        """The engine network with drawn parameters (ConfigurationError if it cannot be built)."""
        raise NotImplementedError

    def build(self, problem):
        """The engine model of a problem, with parameters filled, drawn or given explicitly."""
        from .. import random as dl_random

        dl_random.reseed(problem.seed)
        # every parameter is filled or given below: its drawn initial value is never read
        overwritten = dl_random.draws_overwritten() if problem.init == "fill" else contextlib.nullcontext()
        try:
            with overwritten:
                model = self.make_network(problem)
        except ConfigurationError as exc:
            raise SpecError(f"{problem.path}: model: {exc}") from None
        own = dict(model.named_parameters())
        for name, value in problem.parameters.items():
            if name not in own:
                raise SpecError(f"{problem.path}: parameters.{name}: this model has no parameter {name} "
                                f"(it has {', '.join(own)})")
            if value.shape != own[name].shape:
                raise SpecError(f"{problem.path}: parameters.{name}: expected shape {own[name].shape}, "
                                f"got {value.shape}")
        for name, p in own.items():
            if name in problem.parameters:
                p.data = problem.parameters[name].astype(np.float64).copy()
            elif problem.init == "fill":
                p.data = np.full(p.shape, problem.fill, dtype=np.float64)
        model.trains = problem.targets is not None
        return model

    def header(self, problem, lines, equations):
        return Header(lines, equations, problem.loss, LOSS_FORMULAS[problem.loss])

    # ------------------------------------------------------------------ one step
    def run(self, problem, model, x, forward):
        """Fill ``forward`` (a :class:`Forward`) with the model's outputs on inputs ``x``."""
        raise NotImplementedError

    def class_axis(self, preactivation) -> int:
        """The axis softmax / cross-entropy runs over on the last pre-activation."""
        return -1

    def forward(self, problem, model, keep_deltas=False):
        return Forward(self, problem, model, keep_deltas)

    def record(self, problem, model, index):
        before = {name: p.data.copy() for name, p in model.named_parameters()}
        model.zero_grad()
        fwd = self.forward(problem, model, keep_deltas=True)
        if fwd.loss is not None:
            fwd.loss.backward()
        step = self.step_trace(problem, fwd, index, before)
        if fwd.loss is not None:
            step.gradients = {name: p.grad.data.copy() if p.grad is not None else np.zeros_like(p.data)
                              for name, p in model.named_parameters()}
        return step

    def step_trace(self, problem, fwd, index, before):
        raise NotImplementedError

    def refusal(self, problem, error):
        if isinstance(error, ShapeError):
            return SpecError(f"{problem.path}: {error}")
        return None

    # ------------------------------------------------------------------ checks
    def difference_probe(self, problem, model, first, step):
        checked = self.build(problem)
        params = dict(checked.named_parameters())
        for name, p in params.items():
            p.data = first[name].copy()

        def loss():
            with no_grad():
                return self.forward(problem, checked).loss.item()

        entries = limits.finite_difference_entries(problem.size.cost) if problem.size else 4000
        return {name: p.data for name, p in params.items()}, loss, entries

    def torch_outputs(self, problem, torch, parameters):
        """(last pre-activation z, output y) in PyTorch, written independently of the engine."""
        raise NotImplementedError

    def torch_loss(self, problem, torch, parameters):
        z, y = self.torch_outputs(problem, torch, parameters)
        t = torch.tensor(problem.targets)
        if problem.target_steps is not None:
            rows = [s - 1 for s in problem.target_steps]
            z, y = z[rows], y[rows]
        if problem.loss == "half_squared_error":
            return 0.5 * ((y - t) ** 2).sum()
        if problem.loss == "squared_error":
            return ((y - t) ** 2).sum()
        if problem.loss == "mse":
            return ((y - t) ** 2).mean()
        if problem.loss == "cross_entropy":
            return -(t * torch.log_softmax(z, dim=self.class_axis(z))).sum()
        return torch.nn.functional.binary_cross_entropy(y, t, reduction="sum")

    def as_equations(self, problem, parameters):
        """``--exact``: the problem with ``parameters`` as an EquationProblem (SpecError if this kind has none)."""
        raise SpecError(f"{problem.path}: --exact supports equations, mlp and rnn problems, not {problem.model_type}")

    def exact(self, problem, model, trace, first, tolerance):
        from ..equations.translate import solve_exact_standard

        return solve_exact_standard(problem, trace, self.as_equations, tolerance)


class Forward:
    """One forward pass with everything the solution shows; ``loss`` is None without targets.

    The kind fills ``output`` and ``preactivation`` (and its own values); this class adds the
    targets (spread over the time steps when only some have one), the error terms and E.
    """

    def __init__(self, kind, problem, model, keep_deltas):
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
        self.target = target
        self.retained = []  # further values whose deltas are recorded (a layered network's pooling, flatten)
        kind.run(problem, model, x, self)
        target = self.target
        if keep_deltas:
            self.preactivation.retain_grad()
            for tensor in self.retained:
                tensor.retain_grad()
        self.terms = self.loss = None
        if target is not None:
            self.terms = error_terms(problem, self.output, self.preactivation, target, kind.class_axis(self.preactivation))
            if self.mask is not None:
                self.terms = self.terms * self.mask
            self.loss = self.terms.sum()


def error_terms(problem, output, preactivation, target, axis, count=None):
    """Elementwise error terms whose sum is E, so per-step errors add up to E.

    For mse each term is divided by the number of target values (problem.targets, which has
    rows only for the targeted steps), like torch's mse_loss on the targeted outputs;
    ``count``: another number to divide by (a batch of sequences: one sequence's values).
    """
    if problem.loss in ("half_squared_error", "squared_error", "mse"):
        diff = output - target
        terms = diff * diff
        if problem.loss == "half_squared_error":
            terms = 0.5 * terms
        if problem.loss == "mse":
            terms = terms / float(np.size(problem.targets) if count is None else count)
        return terms
    if problem.loss == "cross_entropy":
        return -(target * ops.log_softmax(preactivation, axis=axis))
    probability = output  # binary cross-entropy on a sigmoid output
    from .. import losses  # binary cross-entropy only

    return -(target * losses.clamped_log(probability) + (1 - target) * losses.clamped_log(1 - probability))


def vector(array):
    return np.array(array, dtype=np.float64)


def _parameters(table, problem, r):
    for key, value in table.items():
        if key in PARAMETER_OPTIONS:
            continue
        if not re.fullmatch(r"[WHb][1-9][0-9]*", key):
            import difflib  # only for the message: a correct file never loads it

            close = difflib.get_close_matches(key, list(PARAMETER_OPTIONS) + ["W1", "H1", "b1", "W2", "b2"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            r.fail(f"parameters.{key}", f"unknown key: parameters are named W<l>, H<l>, b<l> or are one of "
                                        f"{', '.join(PARAMETER_OPTIONS)}{hint}")
        problem.parameters[key] = r.array(value, f"parameters.{key}")
    if "fill" in table:
        problem.fill = r.number(table, "fill", "parameters.fill")
    problem.init = r.choice(table, "init", ("fill", "random"), "parameters.init",
                            "fill" if "fill" in table else "random")
    if problem.init == "fill" and problem.fill is None:
        problem.fill = 0.0
    if "seed" in table:
        problem.seed = r.non_negative_int(table["seed"], "parameters.seed")


__all__ = ["DATA_KEYS", "LOSSES", "LOSS_FORMULAS", "Forward", "NetworkKind", "error_terms", "vector"]

"""Recurrent problems: an Elman RNN (``model.type = "rnn"``) or an LSTM (``"lstm"``) layer with a
dense output layer, run over the sequence in ``data.inputs`` (many-to-many or many-to-one).

``data.inputs`` may also hold a batch of sequences, (N, T, F): the engine runs them side by
side as PyTorch's ``nn.RNN`` runs a batch, each sequence n has its own error E⁽ⁿ⁾, and
``model.reduction`` says how they make E: ``"sum"`` (E = Σₙ E⁽ⁿ⁾) or ``"mean"`` (E = 1/N Σₙ E⁽ⁿ⁾),
PyTorch's names for the two.  The solution works every sequence on its own (its forward pass
and BPTT deltas δ⁽ⁿ⁾ = ∂E⁽ⁿ⁾/∂z⁽ⁿ⁾) and then combines the sequences' gradients.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import limits
from ..errors import SpecError
from ..models.elman import OUTPUT_ACTIVATIONS as ENGINE_ACTIVATIONS
from ..models.elman import ElmanNetwork, LSTMNetwork
from ..ops.recurrent import sequence_record
from ..tensor import Tensor
from ..trace import Contribution, StepTrace, Value, sequence_mark
from .file import NetworkSize
from .network import LOSS_FORMULAS, NetworkKind, error_terms, vector

HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
OUTPUT_ACTIVATIONS = tuple(ENGINE_ACTIVATIONS)  # identity, softmax, sigmoid, tanh, relu
REDUCTIONS = ("sum", "mean")  # how a batch's sequence errors make E, PyTorch's reduction names


def sequence_count(problem):
    """N for a batch of sequences (``data.inputs`` of shape (N, T, F)); None for one sequence (T, F)."""
    x = problem.inputs
    return None if x is None or x.ndim != 3 else x.shape[0]


def one_sequence(problem, n):
    """The problem of sequence n (0-based) of a batch alone, as a file holding that sequence would say."""
    def row(value):
        return value if value is None or value.ndim == 1 else value[n]

    return replace(problem, inputs=problem.inputs[n], targets=None if problem.targets is None else problem.targets[n],
                   initial_state=row(problem.initial_state), initial_cell=row(problem.initial_cell), reduction=None)


class RecurrentKind(NetworkKind):
    model_keys = ("type", "input_size", "hidden_size", "output_size", "hidden_activation", "output_activation",
                  "many_to_one", "loss", "reduction", "bias")
    initial_keys = ("initial_state",)
    gates = 1  # weight blocks per hidden unit (an LSTM has four: i, f, g, o)
    name = "Elman RNN"
    sequence = True

    def __init__(self, name):
        self.names = (name,)

    # ------------------------------------------------------------------ reading
    def read_model(self, model, problem, r):
        for key in ("input_size", "hidden_size", "output_size"):
            setattr(problem, key, r.positive_int(model, key, f"model.{key}", largest=limits.WIDTH))
        self.read_hidden_activation(model, problem, r)
        problem.output_activation = r.choice(model, "output_activation", OUTPUT_ACTIVATIONS,
                                             "model.output_activation", "identity")
        problem.many_to_one = r.boolean(model, "many_to_one", "model.many_to_one", False)
        problem.bias = r.boolean(model, "bias", "model.bias", True)
        if "reduction" in model:
            if model["reduction"] == "none":
                r.fail("model.reduction", 'expected one of sum, mean, got \'none\' (a solution needs one error E '
                                          "to differentiate: sum or average the sequences' errors)")
            problem.reduction = r.choice(model, "reduction", REDUCTIONS, "model.reduction")

    def read_hidden_activation(self, model, problem, r):
        problem.hidden_activation = r.choice(model, "hidden_activation", HIDDEN_ACTIVATIONS,
                                             "model.hidden_activation", "tanh")

    def output_activation(self, problem):
        return problem.output_activation

    def takes_target_steps(self, problem):
        return not problem.many_to_one

    def check_raw_data(self, table, r):
        """Sequences of a batch of different lengths, named as such (not as a ragged list)."""
        for key, rows in (("inputs", "time steps"), ("targets", "target rows")):
            value = table.get(key)
            if not (isinstance(value, list) and len(value) > 1
                    and all(isinstance(v, list) and v and all(isinstance(w, list) for w in v) for v in value)):
                continue
            lengths = [len(v) for v in value]
            if len(set(lengths)) > 1:
                r.fail(f"data.{key}", f"the sequences of the batch have different lengths "
                                      f"({', '.join(map(str, lengths))} {rows}); every sequence needs the same number")

    def check_data(self, problem, r):
        x, t = problem.inputs, problem.targets
        n = sequence_count(problem)
        if x.ndim == 1 and x.size == 0:
            r.fail("data.inputs", "empty; expected a sequence (one row per time step) or a list of sequences")
        if n is not None:
            if x.shape[2] != problem.input_size:
                r.fail("data.inputs", f"expected a batch of sequences of shape (N, T, {problem.input_size}) (one "
                                      f"row per time step), got shape {x.shape}")
            if x.shape[1] == 0:
                r.fail("data.inputs", "the sequences are empty")
            if problem.reduction is None and n == 1:
                problem.reduction = "sum"  # one sequence: its sum and its mean are the same
            if problem.reduction is None and t is not None:  # (without targets there is no E to reduce)
                r.fail("model.reduction", f"missing; data.inputs holds {n} sequences: say how their errors make E, "
                                          "\"sum\" (E = Σₙ E⁽ⁿ⁾) or \"mean\" (E = 1/N Σₙ E⁽ⁿ⁾)")
            if t is not None and (t.ndim == 0 or t.shape[0] != n):
                r.fail("data.targets", f"expected the targets of {n} sequences (one entry per sequence of "
                                       f"data.inputs), got {'one number' if t.ndim == 0 else t.shape[0]}")
            for key in ("initial_state", "initial_cell"):
                value = getattr(problem, key)
                if value is not None and value.shape not in ((problem.hidden_size,), (n, problem.hidden_size)):
                    r.fail(f"data.{key}", f"expected shape ({problem.hidden_size},) (every sequence) or "
                                          f"({n}, {problem.hidden_size}) (one row per sequence), got {value.shape}")
            for index in range(n):  # each sequence as a file of its own is checked
                self.check_sequence(one_sequence(problem, index), r, " of each sequence")
            return
        if x.ndim != 2 or x.shape[1] != problem.input_size:
            r.fail("data.inputs", f"expected a sequence of shape (T, {problem.input_size}) (one row per time step), "
                                  f"or a batch of them (N, T, {problem.input_size}), got shape {x.shape}")
        self.check_sequence(problem, r)

    def check_sequence(self, problem, r, each=""):
        x, t = problem.inputs, problem.targets
        if x.shape[0] == 0:
            r.fail("data.inputs", "the sequence is empty")
        r.at_most(x.shape[0], limits.SEQUENCE, "data.inputs", f"a sequence of {x.shape[0]:,} time steps")
        if problem.target_steps is not None:
            bad = [v for v in problem.target_steps if not 1 <= v <= x.shape[0]]
            if bad or len(set(problem.target_steps)) != len(problem.target_steps):
                r.fail("data.target_steps",
                       f"expected distinct steps between 1 and {x.shape[0]}, got {list(problem.target_steps)}")
        rows = x.shape[0] if problem.target_steps is None else len(problem.target_steps)
        expected = (problem.output_size,) if problem.many_to_one else (rows, problem.output_size)
        for key in ("initial_state", "initial_cell"):
            value = getattr(problem, key)
            if value is not None and value.shape != (problem.hidden_size,):
                r.fail(f"data.{key}", f"expected shape ({problem.hidden_size},), got {value.shape}")
        if t is not None and t.shape != expected:
            r.fail("data.targets", f"expected shape {expected}{each}"
                   + (" (the output at the last step)" if problem.many_to_one else " (one row per time step)")
                   + f", got shape {t.shape}")

    def count(self, problem, r):
        n_in, hidden, n_out = problem.input_size, problem.hidden_size, problem.output_size
        bias = 1 if problem.bias else 0
        steps = problem.inputs.shape[-2]
        sequences = sequence_count(problem) or 1
        parameters = self.gates * hidden * (n_in + hidden + bias) + n_out * (hidden + bias)
        per_step = n_in + self.state_values * hidden + 2 * n_out
        multiply_adds = sequences * steps * (self.gates * hidden * (n_in + hidden) + n_out * hidden)
        return NetworkSize(parameters, sequences * (steps * per_step + 2 * hidden), multiply_adds), []

    state_values = 2  # values per hidden unit and step: z[1] and x[1]

    def summary_input_shape(self, problem):
        return (problem.inputs.shape[-2], problem.input_size)  # one sequence (of a batch)

    # ------------------------------------------------------------------ the model
    def make_network(self, problem):
        return ElmanNetwork(problem.input_size, problem.hidden_size, problem.output_size, problem.hidden_activation,
                            problem.output_activation, problem.many_to_one, bias=problem.bias, dtype=np.float64)

    def describe(self, problem, model):
        lines = [f"{self.name}: {problem.input_size} inputs → {problem.hidden_size} hidden"
                 + self.hidden_text(problem)
                 + f" → {problem.output_size} outputs ({problem.output_activation}), "
                 + ("many-to-one" if problem.many_to_one else "many-to-many")]
        n = sequence_count(problem)
        if n is not None:
            lines.append(f"a batch of {n} sequence{'s' if n != 1 else ''} of {problem.inputs.shape[1]} time steps"
                         + ("" if problem.targets is None else f", each with its own error E⁽ⁿ⁾; reduction = "
                            f"{problem.reduction}: {self.batch_loss_text(problem, n)}"))
        return self.header(problem, lines, self.cell_equations(problem)
                           + ["z[2](t) = W2 x[1](t) + b2", f"y(t) = {problem.output_activation}(z[2](t))"])

    def batch_loss_text(self, problem, n):
        return "E = Σₙ E⁽ⁿ⁾" if problem.reduction != "mean" else f"E = 1/N Σₙ E⁽ⁿ⁾ (N = {n})"

    def header(self, problem, lines, equations):
        header = super().header(problem, lines, equations)
        n = sequence_count(problem)
        if n is not None:  # the file's loss is each sequence's error; E combines them
            header.loss_formula = (LOSS_FORMULAS[problem.loss].replace("E = ", "E⁽ⁿ⁾ = ", 1)
                                   + ",  " + self.batch_loss_text(problem, n))
        return header

    def hidden_text(self, problem):
        return f" ({problem.hidden_activation})"

    def cell_equations(self, problem):
        return ["z[1](t) = W1 x[0](t) + H1 x[1](t−1) + b1", f"x[1](t) = {problem.hidden_activation}(z[1](t))"]

    # ------------------------------------------------------------------ one step
    def initial(self, problem):
        return _state(problem, problem.initial_state)

    def run(self, problem, model, x, fwd):
        fwd.hidden, fwd.preactivation, fwd.output = model.run(x, self.initial(problem))

    def cell_values(self, problem, record, t, s, n=0, mark=""):
        """The hidden layer's recorded values at step s (index t) before x[1](s), of sequence n of the batch."""
        return [Value(f"z[1]{mark}({s})", vector(record["z"][t, n]), 1, s, "preactivation")]

    def cell_deltas(self, record, t, s, n=0, mark=""):
        return [Value(f"z[1]{mark}({s})", vector(record["delta"][t, n]), 1, s, "preactivation")]

    # ------------------------------------------------------------------ a batch of sequences
    def forward(self, problem, model, keep_deltas=False):
        if sequence_count(problem) is None:
            return super().forward(problem, model, keep_deltas)
        return SequenceBatchForward(self, problem, model, keep_deltas)

    def record(self, problem, model, index):
        if sequence_count(problem) is None:
            return super().record(problem, model, index)
        before = {name: p.data.copy() for name, p in model.named_parameters()}
        model.zero_grad()
        fwd = self.forward(problem, model, keep_deltas=True)
        if fwd.loss is not None:
            # Σₙ E⁽ⁿ⁾ first: the sequences never meet, so its deltas are each sequence's own, ∂E⁽ⁿ⁾/∂z⁽ⁿ⁾
            fwd.sequence_sum.backward()
        step = self.batch_step_trace(problem, fwd, index, before)
        if fwd.loss is not None:
            if fwd.loss is not fwd.sequence_sum:  # the mean: the gradients of E itself, from its own pass
                model.zero_grad()
                self.forward(problem, model).loss.backward()
            step.gradients = {name: p.grad.data.copy() if p.grad is not None else np.zeros_like(p.data)
                              for name, p in model.named_parameters()}
        return step

    def batch_step_trace(self, problem, fwd, index, before):
        """The StepTrace of a batch: every sequence's values, keyed with its mark (x[0]⁽ⁿ⁾(t))."""
        record = sequence_record(fwd.hidden)
        count, steps = problem.inputs.shape[:2]
        last_only = problem.many_to_one
        forward, outputs, targets, deltas, errors, places = [], [], [], [], {}, {}

        def tagged(values, sequence):
            for value in values:
                value.sequence = sequence
            return values

        z2_all, y_all = fwd.preactivation.data, fwd.output.data  # (T, N, O), or (N, O) for many-to-one
        for n in range(count):
            m, mark = n + 1, sequence_mark(n + 1)
            for t in range(steps):
                s = t + 1
                values = [Value(f"x[0]{mark}({s})", vector(problem.inputs[n, t]), 0, s, "input")]
                values += self.cell_values(problem, record, t, s, n, mark)
                values.append(Value(f"x[1]{mark}({s})", vector(record["h"][t + 1, n]), 1, s, "activation"))
                forward += tagged(values, m)
                if last_only and s != steps:
                    continue
                at = (n,) if last_only else (t, n)
                forward += tagged([Value(f"z[2]{mark}({s})", vector(z2_all[at]), 2, s, "preactivation")], m)
                outputs += tagged([Value(f"y{mark}({s})", vector(y_all[at]), 2, s, "output")], m)
                if fwd.target is not None and (fwd.mask is None or fwd.mask[at].any()):
                    targets += tagged([Value(f"t{mark}({s})", vector(fwd.target.data[at]), None, s, "target")], m)
                    if not last_only:
                        errors[f"E{mark}({s})"] = float(np.sum(fwd.terms.data[at]))
                        places[f"E{mark}({s})"] = (m, s)
            if fwd.target is not None:
                errors[f"E{mark}"] = float(np.sum(fwd.terms.data[n] if last_only else fwd.terms.data[:, n]))
        step = StepTrace(index, before, forward, outputs, targets, errors, None if fwd.loss is None else fwd.loss.item(),
                         error_places=places, sequences=count)
        if fwd.loss is None:
            return step
        delta2 = fwd.preactivation.grad.data
        contributions = {"W1": [], "H1": [], "b1": [], "W2": [], "b2": []}
        for n in range(count):
            m, mark = n + 1, sequence_mark(n + 1)
            for t in range(steps):
                deltas += tagged(self.cell_deltas(record, t, t + 1, n, mark), m)
            for t in range(steps):
                s = t + 1
                if last_only and s != steps:
                    continue
                at = (n,) if last_only else (t, n)
                deltas += tagged([Value(f"z[2]{mark}({s})", vector(delta2[at]), 2, s, "preactivation")], m)
            for t in range(steps):
                s = t + 1
                delta = record["delta"][t, n]

                def share(name, formula, array, general):
                    contributions[name].append(Contribution(s, formula, array, general, sequence=m))

                share("W1", f"δ[1]{mark}({s}) · x[0]{mark}({s})ᵀ", np.outer(delta, record["x"][t, n]),
                      "δ[1]⁽ⁿ⁾(t) · x[0]⁽ⁿ⁾(t)ᵀ")
                share("H1", f"δ[1]{mark}({s}) · x[1]{mark}({s - 1})ᵀ", np.outer(delta, record["h"][t, n]),
                      "δ[1]⁽ⁿ⁾(t) · x[1]⁽ⁿ⁾(t−1)ᵀ")
                if problem.bias:
                    share("b1", f"δ[1]{mark}({s})", vector(delta), "δ[1]⁽ⁿ⁾(t)")
                if not last_only:
                    share("W2", f"δ[2]{mark}({s}) · x[1]{mark}({s})ᵀ", np.outer(delta2[t, n], record["h"][t + 1, n]),
                          "δ[2]⁽ⁿ⁾(t) · x[1]⁽ⁿ⁾(t)ᵀ")
                    if problem.bias:
                        share("b2", f"δ[2]{mark}({s})", vector(delta2[t, n]), "δ[2]⁽ⁿ⁾(t)")
        step.deltas = deltas
        step.contributions = {k: v for k, v in contributions.items() if v}
        return step

    def step_trace(self, problem, fwd, index, before):
        record = sequence_record(fwd.hidden)
        steps = problem.inputs.shape[0]
        last_only = problem.many_to_one
        forward, outputs, targets, deltas, errors, error_steps = [], [], [], [], {}, {}
        for t in range(steps):
            s = t + 1
            forward.append(Value(f"x[0]({s})", vector(problem.inputs[t]), 0, s, "input"))
            forward += self.cell_values(problem, record, t, s)
            forward.append(Value(f"x[1]({s})", vector(record["h"][t + 1, 0]), 1, s, "activation"))
            if last_only and s != steps:
                continue
            row = None if last_only else t
            z2 = fwd.preactivation.data if row is None else fwd.preactivation.data[row]
            y = fwd.output.data if row is None else fwd.output.data[row]
            forward.append(Value(f"z[2]({s})", vector(z2), 2, s, "preactivation"))
            outputs.append(Value(f"y({s})", vector(y), 2, s, "output"))
            if fwd.target is not None and (fwd.mask is None or fwd.mask[t].any()):
                tv = fwd.target.data if row is None else fwd.target.data[row]
                targets.append(Value(f"t({s})", vector(tv), None, s, "target"))
                errors[f"E({s})"] = float(np.sum(fwd.terms.data if row is None else fwd.terms.data[row]))
                error_steps[f"E({s})"] = s
        if last_only:
            errors, error_steps = {}, {}
        step = StepTrace(index, before, forward, outputs, targets, errors, None if fwd.loss is None else fwd.loss.item(),
                         error_steps=error_steps)
        if fwd.loss is None:
            return step
        delta2 = fwd.preactivation.grad.data
        for t in range(steps):
            deltas += self.cell_deltas(record, t, t + 1)
        for t in range(steps):
            s = t + 1
            if last_only and s != steps:
                continue
            deltas.append(Value(f"z[2]({s})", vector(delta2 if last_only else delta2[t]), 2, s, "preactivation"))
        step.deltas = deltas
        contributions = {"W1": [], "H1": [], "b1": [], "W2": [], "b2": []}
        for t in range(steps):
            s = t + 1
            contributions["W1"].append(Contribution(s, f"δ[1]({s}) · x[0]({s})ᵀ", record["dW_ih"][t], "δ[1](t) · x[0](t)ᵀ"))
            contributions["H1"].append(Contribution(s, f"δ[1]({s}) · x[1]({s - 1})ᵀ", record["dW_hh"][t],
                                                         "δ[1](t) · x[1](t−1)ᵀ"))
            if problem.bias:
                contributions["b1"].append(Contribution(s, f"δ[1]({s})", record["db"][t], "δ[1](t)"))
            if not last_only:
                x1 = record["h"][t + 1, 0]
                contributions["W2"].append(Contribution(s, f"δ[2]({s}) · x[1]({s})ᵀ", np.outer(delta2[t], x1),
                                                             "δ[2](t) · x[1](t)ᵀ"))
                if problem.bias:
                    contributions["b2"].append(Contribution(s, f"δ[2]({s})", vector(delta2[t]), "δ[2](t)"))
        step.contributions = {k: v for k, v in contributions.items() if v}
        return step

    def derive(self, problem, model, step):
        from ..derivation.recurrent import derive_recurrent

        return derive_recurrent(problem, step, cell=self.gates > 1)

    def refusal_for(self, command, problem):
        n = sequence_count(problem)
        if n is None or command not in ("check", "generate"):
            return None
        return (f"data.inputs: deltalab {command} does not support a batch of sequences yet (this file holds {n}); "
                "give it one sequence per problem file")

    # ------------------------------------------------------------------ checks
    def check_options(self, problem, model, check_torch, exact):
        if exact and sequence_count(problem) is not None:
            raise SpecError(f"{problem.path}: --exact works on one sequence; data.inputs holds a batch of "
                            f"{sequence_count(problem)} sequences (solve them one file each for exact values)")

    def torch_cell(self, torch, problem, a, h, c):
        """(h(t), c(t)) from the pre-activation a = W1 x(t) + H1 h(t−1) + b1."""
        return {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu,
                "sigmoid": torch.sigmoid}[problem.hidden_activation](a), c

    def torch_loss(self, problem, torch, parameters):
        n = sequence_count(problem)
        if n is None:
            return super().torch_loss(problem, torch, parameters)
        # each sequence's error as PyTorch computes it for a file holding that sequence, then reduced
        one_loss = super().torch_loss
        total = sum(one_loss(one_sequence(problem, k), torch, parameters) for k in range(n))
        return total if problem.reduction == "sum" else total / n

    def torch_outputs(self, problem, torch, p):
        x = torch.tensor(problem.inputs)
        n = problem.hidden_size
        h = torch.zeros(n, dtype=torch.float64) if problem.initial_state is None else torch.tensor(problem.initial_state)
        c = torch.zeros(n, dtype=torch.float64) if problem.initial_cell is None else torch.tensor(problem.initial_cell)
        b1 = p.get("b1", torch.zeros(p["W1"].shape[0], dtype=torch.float64))
        b2 = p.get("b2", torch.zeros(problem.output_size, dtype=torch.float64))
        hs = []
        for t in range(x.shape[0]):
            h, c = self.torch_cell(torch, problem, p["W1"] @ x[t] + p["H1"] @ h + b1, h, c)
            hs.append(h)
        top = hs[-1] if problem.many_to_one else torch.stack(hs)
        z = top @ p["W2"].T + b2
        activation = {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
                      "softmax": lambda v: torch.softmax(v, dim=-1)}[problem.output_activation]
        return z, activation(z)

    def as_equations(self, problem, parameters):
        from ..equations.translate import recurrent_equations

        return recurrent_equations(problem, parameters)


class LSTMKind(RecurrentKind):
    """The LSTM: sigmoid gates i, f, o and a tanh candidate g; the cell state c[1](t)."""

    initial_keys = ("initial_state", "initial_cell")
    gates = 4
    state_values = 6  # the four gates, c[1] and x[1]
    name = "LSTM"

    def read_hidden_activation(self, model, problem, r):
        if "hidden_activation" in model:
            r.fail("model.hidden_activation", "an LSTM's activations are fixed (sigmoid gates, tanh cell); remove this key")

    def make_network(self, problem):
        return LSTMNetwork(problem.input_size, problem.hidden_size, problem.output_size, problem.output_activation,
                           problem.many_to_one, bias=problem.bias, dtype=np.float64)

    def hidden_text(self, problem):
        return ""

    def cell_equations(self, problem):
        return ["[i f g o](t) = [σ σ tanh σ](W1 x[0](t) + H1 x[1](t−1) + b1)",
                "c[1](t) = f(t) ∘ c[1](t−1) + i(t) ∘ g(t)", "x[1](t) = o(t) ∘ tanh(c[1](t))"]

    def initial(self, problem):
        return super().initial(problem), _state(problem, problem.initial_cell)

    def cell_values(self, problem, record, t, s, n=0, mark=""):
        gates = record["gates"][t, n]
        size = problem.hidden_size
        values = [Value(f"{gate}[1]{mark}({s})", vector(gates[k * size:(k + 1) * size]), 1, s, "gate")
                  for k, gate in enumerate("ifgo")]
        return values + [Value(f"c[1]{mark}({s})", vector(record["c"][t + 1, n]), 1, s, "state")]

    def cell_deltas(self, record, t, s, n=0, mark=""):
        return super().cell_deltas(record, t, s, n, mark) + [
            Value(f"c[1]{mark}({s})", vector(record["cell_delta"][t, n]), 1, s, "state")]

    def torch_cell(self, torch, problem, a, h, c):
        n = problem.hidden_size
        i, f, g, o = torch.sigmoid(a[:n]), torch.sigmoid(a[n:2 * n]), torch.tanh(a[2 * n:3 * n]), torch.sigmoid(a[3 * n:])
        c = f * c + i * g
        return o * torch.tanh(c), c

    def as_equations(self, problem, parameters):
        return NetworkKind.as_equations(self, problem, parameters)


def _state(problem, value):
    """An initial state as the engine takes it: (H,) for one sequence, (N, H) for a batch (a
    file's (H,) is every sequence's)."""
    if value is None:
        return None
    n = sequence_count(problem)
    if n is not None and value.ndim == 1:
        value = np.tile(value, (n, 1))
    return Tensor(value)


class SequenceBatchForward:
    """One forward pass over a batch of sequences, run side by side as (T, N, F): ``terms`` are
    the error terms, ``sequence_sum`` = Σₙ E⁽ⁿ⁾ and ``loss`` = E, that sum or its mean over the N
    sequences (``model.reduction``); both None without targets."""

    def __init__(self, kind, problem, model, keep_deltas):
        self.problem, self.model = problem, model
        count, steps = problem.inputs.shape[:2]
        x = Tensor(np.ascontiguousarray(np.transpose(problem.inputs, (1, 0, 2))))
        self.mask = self.target = None
        if problem.targets is not None:
            full = problem.targets if problem.many_to_one else np.transpose(problem.targets, (1, 0, 2))
            if problem.target_steps is not None and not problem.many_to_one:
                spread = np.zeros((steps, count, problem.output_size))
                self.mask = np.zeros_like(spread)
                for row, step in enumerate(problem.target_steps):
                    spread[step - 1] = full[row]
                    self.mask[step - 1] = 1.0
                full = spread
            self.target = Tensor(np.ascontiguousarray(full))
        self.retained = []
        kind.run(problem, model, x, self)
        if keep_deltas:
            self.preactivation.retain_grad()
        self.terms = self.sequence_sum = self.loss = None
        if self.target is not None:
            per_sequence = np.size(problem.targets) // count  # mse averages over one sequence's targets
            self.terms = error_terms(problem, self.output, self.preactivation, self.target, -1, count=per_sequence)
            if self.mask is not None:
                self.terms = self.terms * self.mask
            self.sequence_sum = self.terms.sum()
            self.loss = self.sequence_sum if problem.reduction == "sum" else self.sequence_sum / count


RNN = RecurrentKind("rnn")
LSTM = LSTMKind("lstm")

"""Recurrent problems: an Elman RNN (``model.type = "rnn"``) or an LSTM (``"lstm"``) layer with a
dense output layer, run over the sequence in ``data.inputs`` (many-to-many or many-to-one)."""
from __future__ import annotations

import numpy as np

from .. import limits
from ..models.elman import OUTPUT_ACTIVATIONS as ENGINE_ACTIVATIONS
from ..models.elman import ElmanNetwork, LSTMNetwork
from ..ops.recurrent import sequence_record
from ..tensor import Tensor
from ..trace import Contribution, StepTrace, Value
from .file import NetworkSize
from .network import NetworkKind, vector

HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
OUTPUT_ACTIVATIONS = tuple(ENGINE_ACTIVATIONS)  # identity, softmax, sigmoid, tanh, relu


class RecurrentKind(NetworkKind):
    model_keys = ("type", "input_size", "hidden_size", "output_size", "hidden_activation", "output_activation",
                  "many_to_one", "loss", "bias")
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

    def read_hidden_activation(self, model, problem, r):
        problem.hidden_activation = r.choice(model, "hidden_activation", HIDDEN_ACTIVATIONS,
                                             "model.hidden_activation", "tanh")

    def output_activation(self, problem):
        return problem.output_activation

    def takes_target_steps(self, problem):
        return not problem.many_to_one

    def check_data(self, problem, r):
        x, t = problem.inputs, problem.targets
        if x.ndim != 2 or x.shape[1] != problem.input_size:
            r.fail("data.inputs", f"expected a sequence of shape (T, {problem.input_size}) (one row per time step), "
                                  f"got shape {x.shape}")
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
            r.fail("data.targets", f"expected shape {expected}"
                   + (" (the output at the last step)" if problem.many_to_one else " (one row per time step)")
                   + f", got shape {t.shape}")

    def count(self, problem, r):
        n_in, hidden, n_out = problem.input_size, problem.hidden_size, problem.output_size
        bias = 1 if problem.bias else 0
        steps = problem.inputs.shape[0]
        parameters = self.gates * hidden * (n_in + hidden + bias) + n_out * (hidden + bias)
        per_step = n_in + self.state_values * hidden + 2 * n_out
        multiply_adds = steps * (self.gates * hidden * (n_in + hidden) + n_out * hidden)
        return NetworkSize(parameters, steps * per_step + 2 * hidden, multiply_adds), []

    state_values = 2  # values per hidden unit and step: z[1] and x[1]

    def summary_input_shape(self, problem):
        return (problem.inputs.shape[0], problem.input_size)

    # ------------------------------------------------------------------ the model
    def make_network(self, problem):
        return ElmanNetwork(problem.input_size, problem.hidden_size, problem.output_size, problem.hidden_activation,
                            problem.output_activation, problem.many_to_one, bias=problem.bias, dtype=np.float64)

    def describe(self, problem, model):
        lines = [f"{self.name}: {problem.input_size} inputs → {problem.hidden_size} hidden"
                 + self.hidden_text(problem)
                 + f" → {problem.output_size} outputs ({problem.output_activation}), "
                 + ("many-to-one" if problem.many_to_one else "many-to-many")]
        return self.header(problem, lines, self.cell_equations(problem)
                           + ["z[2](t) = W2 x[1](t) + b2", f"y(t) = {problem.output_activation}(z[2](t))"])

    def hidden_text(self, problem):
        return f" ({problem.hidden_activation})"

    def cell_equations(self, problem):
        return ["z[1](t) = W1 x[0](t) + H1 x[1](t−1) + b1", f"x[1](t) = {problem.hidden_activation}(z[1](t))"]

    # ------------------------------------------------------------------ one step
    def initial(self, problem):
        return None if problem.initial_state is None else Tensor(problem.initial_state)

    def run(self, problem, model, x, fwd):
        fwd.hidden, fwd.preactivation, fwd.output = model.run(x, self.initial(problem))

    def cell_values(self, problem, record, t, s):
        """The hidden layer's recorded values at step s (index t) before x[1](s)."""
        return [Value(f"z[1]({s})", vector(record["z"][t, 0]), 1, s, "preactivation")]

    def cell_deltas(self, record, t, s):
        return [Value(f"z[1]({s})", vector(record["delta"][t, 0]), 1, s, "preactivation")]

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

    # ------------------------------------------------------------------ checks
    def torch_cell(self, torch, problem, a, h, c):
        """(h(t), c(t)) from the pre-activation a = W1 x(t) + H1 h(t−1) + b1."""
        return {"identity": lambda v: v, "tanh": torch.tanh, "relu": torch.relu,
                "sigmoid": torch.sigmoid}[problem.hidden_activation](a), c

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
        c0 = None if problem.initial_cell is None else Tensor(problem.initial_cell)
        return super().initial(problem), c0

    def cell_values(self, problem, record, t, s):
        gates = record["gates"][t, 0]
        n = problem.hidden_size
        values = [Value(f"{gate}[1]({s})", vector(gates[k * n:(k + 1) * n]), 1, s, "gate")
                  for k, gate in enumerate("ifgo")]
        return values + [Value(f"c[1]({s})", vector(record["c"][t + 1, 0]), 1, s, "state")]

    def cell_deltas(self, record, t, s):
        return super().cell_deltas(record, t, s) + [Value(f"c[1]({s})", vector(record["cell_delta"][t, 0]), 1, s,
                                                          "state")]

    def torch_cell(self, torch, problem, a, h, c):
        n = problem.hidden_size
        i, f, g, o = torch.sigmoid(a[:n]), torch.sigmoid(a[n:2 * n]), torch.tanh(a[2 * n:3 * n]), torch.sigmoid(a[3 * n:])
        c = f * c + i * g
        return o * torch.tanh(c), c

    def as_equations(self, problem, parameters):
        return NetworkKind.as_equations(self, problem, parameters)


RNN = RecurrentKind("rnn")
LSTM = LSTMKind("lstm")

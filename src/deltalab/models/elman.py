"""The lecture's Elman network -- and its LSTM variant -- as one object with the lecture's parameter names.

    z[1](t) = W1 x[0](t) + H1 x[1](t−1) + b1,   x[1](t) = f1(z[1](t))     (hidden layer)
    z[2](t) = W2 x[1](t) + b2,                  y(t)    = f2(z[2](t))     (output layer)

W1 (hidden × input), H1 (hidden × hidden), b1 (hidden), W2 (output × hidden), b2 (output).
In PyTorch terms W1, H1, b1 are an ``nn.RNN``'s weight_ih, weight_hh and bias_ih + bias_hh.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import ops
from ..errors import ConfigurationError
from ..nn.module import Module, uniform_
from ..nn.recurrent import initial_state, sequence_input, run_elman
from ..ops.recurrent import ACTIVATIONS

OUTPUT_ACTIVATIONS = {
    "identity": lambda z: z,
    "softmax": lambda z: ops.softmax(z, axis=-1),
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "relu": ops.relu,
}


class ElmanRun(NamedTuple):
    """Every tensor of one forward pass: hidden x[1](1..T), output pre-activation z[2], output y."""

    hidden: object
    output_preactivation: object
    output: object


class ElmanNetwork(Module):
    """Elman RNN with an output layer; ``many_to_one`` gives an output at the last step only.

    Input (T, B, F) or (T, F); returns y as (T, B, O) / (T, O), or (B, O) / (O,) for many-to-one.
    """

    gate_count = 1  # rows of W1/H1/b1 per hidden unit (4 for an LSTM's i, f, g, o)

    def __init__(self, input_size, hidden_size, output_size, hidden_activation="tanh",
                 output_activation="identity", many_to_one=False, bias=True, bptt_truncate=None, dtype=None):
        super().__init__()
        if hidden_activation not in ACTIVATIONS:
            raise ConfigurationError(
                f"ElmanNetwork: hidden_activation must be one of {sorted(ACTIVATIONS)}, got {hidden_activation!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ConfigurationError(
                f"ElmanNetwork: output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, got {output_activation!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.hidden_activation, self.output_activation = hidden_activation, output_activation
        self.many_to_one, self.bptt_truncate = many_to_one, bptt_truncate
        rows = self.gate_count * hidden_size
        self.W1 = uniform_((rows, input_size), hidden_size, dtype)
        self.H1 = uniform_((rows, hidden_size), hidden_size, dtype)
        self.register_parameter("b1", uniform_((rows,), hidden_size, dtype) if bias else None)
        self.W2 = uniform_((output_size, hidden_size), hidden_size, dtype)
        self.register_parameter("b2", uniform_((output_size,), hidden_size, dtype) if bias else None)

    def run(self, x, h0=None) -> ElmanRun:
        """The forward pass with its intermediate tensors (what a worked solution shows)."""
        x, unbatched = sequence_input(self, x, self.input_size, False)
        hidden = self._hidden_sequence(x, h0, unbatched)
        if unbatched:
            hidden = hidden.reshape((hidden.shape[0], self.hidden_size))
        top = hidden[-1] if self.many_to_one else hidden
        z2 = ops.linear(top, self.W2, self.b2)
        return ElmanRun(hidden, z2, OUTPUT_ACTIVATIONS[self.output_activation](z2))

    def _hidden_sequence(self, x, h0, unbatched):
        h = initial_state(self, h0, x.shape[1], self.hidden_size, x.dtype, unbatched)
        return run_elman(x, h, self.W1, self.H1, self.b1, self.hidden_activation, self.bptt_truncate)

    def forward(self, x, h0=None):
        return self.run(x, h0).output

    def layer_rows(self, input_shape):
        """(name, type, output shape, parameters) for ``deltalab.summary``; input (T, features)."""
        steps = input_shape[0]
        hidden = sum(p.numel() for p in (self.W1, self.H1, self.b1) if p is not None)
        output = sum(p.numel() for p in (self.W2, self.b2) if p is not None)
        out_shape = (self.output_size,) if self.many_to_one else (steps, self.output_size)
        kind = type(self).__name__.replace("Network", "")
        return [("layer 1 (W1, H1, b1)", f"{kind} hidden, {self.hidden_activation if kind == 'Elman' else 'gates'}",
                 (steps, self.hidden_size), int(hidden)),
                ("layer 2 (W2, b2)", f"dense, {self.output_activation}", out_shape, int(output))]

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, {self.output_size}, hidden_activation={self.hidden_activation!r}, "
                f"output_activation={self.output_activation!r}, many_to_one={self.many_to_one}")


class LSTMNetwork(ElmanNetwork):
    """An LSTM hidden layer with the lecture's output layer: W1 (4H × in), H1 (4H × H), b1 (4H)
    stack the gates i, f, g, o as PyTorch does; x[1](t) = h(t) feeds z[2](t) = W2 x[1](t) + b2.
    ``h0`` may be a (h0, c0) pair.
    """

    gate_count = 4

    def __init__(self, input_size, hidden_size, output_size, output_activation="identity", many_to_one=False,
                 bias=True, bptt_truncate=None, dtype=None):
        super().__init__(input_size, hidden_size, output_size, "tanh", output_activation, many_to_one, bias,
                         bptt_truncate, dtype)

    def _hidden_sequence(self, x, h0, unbatched):
        from ..nn.recurrent import run_lstm

        h0, c0 = h0 if isinstance(h0, tuple) else (h0, None)
        h = initial_state(self, h0, x.shape[1], self.hidden_size, x.dtype, unbatched, "h0")
        c = initial_state(self, c0, x.shape[1], self.hidden_size, x.dtype, unbatched, "c0")
        return run_lstm(x, h, c, self.W1, self.H1, self.b1, self.bptt_truncate)[0]

"""Recurrent layers with PyTorch's interface: RNN, RNNCell, LSTM, LSTMCell.

Each sequence runs as one fused node (``ops.recurrent``), so BPTT over thousands of steps
costs one matrix product per step and no per-step graph.

The lecture's Elman layer has ONE hidden bias b: z(t) = W x(t) + H h(t−1) + b.  PyTorch keeps
two (``bias_ih`` + ``bias_hh``); their sum is this ``bias`` (``interop`` converts).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..ops.recurrent import ACTIVATIONS, elman_sequence, lstm_sequence
from ..tensor import Tensor
from .module import Module, uniform_


def _sequence_input(layer, x, input_size, batch_first):
    """x as (T, B, F); returns it with a flag saying whether the input had no batch axis."""
    if x.ndim not in (2, 3):
        raise ShapeError(
            f"{layer!r}: expected a sequence of shape (T, batch, {input_size})"
            f"{' with batch_first (batch, T, features)' if batch_first else ''} or (T, {input_size}), got shape {x.shape}"
        )
    if x.shape[-1] != input_size:
        raise ShapeError(f"{layer!r}: expected {input_size} input features per step, got input of shape {x.shape}")
    unbatched = x.ndim == 2
    if unbatched:
        x = x.reshape((x.shape[0], 1, input_size))
    elif batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[0] == 0:
        raise ShapeError(f"{layer!r}: the sequence is empty (input of shape {x.shape}); need at least one step")
    return x, unbatched


def _initial_state(layer, state, batch, hidden, dtype, unbatched, what="h0"):
    """A given state as (B, H), accepting PyTorch's (1, B, H) / unbatched (1, H) or (B, H) / (H,)."""
    if state is None:
        return Tensor(np.zeros((batch, hidden), dtype=dtype))
    state = state if isinstance(state, Tensor) else Tensor(np.asarray(state, dtype=dtype))
    accepted = [(1, batch, hidden), (batch, hidden)] + ([(1, hidden), (hidden,)] if unbatched else [])
    if state.shape not in accepted:
        raise ShapeError(
            f"{layer!r}: initial state {what} has shape {state.shape}, expected {(1, batch, hidden)} "
            f"(or {(batch, hidden)}) for a batch of {batch}"
        )
    return state.reshape((batch, hidden))


def _chunks(steps, truncate):
    if not truncate or truncate >= steps:
        return [(0, steps)]
    return [(s, min(s + truncate, steps)) for s in range(0, steps, truncate)]


def init_recurrent_parameters(module, input_size, hidden_size, gates, bias, dtype):
    """weight_ih (gates·H × in), weight_hh (gates·H × H), bias (gates·H), U(±1/√H) as PyTorch."""
    rows = gates * hidden_size
    module.weight_ih = uniform_((rows, input_size), hidden_size, dtype)
    module.weight_hh = uniform_((rows, hidden_size), hidden_size, dtype)
    module.register_parameter("bias", uniform_((rows,), hidden_size, dtype) if bias else None)


class RNN(Module):
    """Elman RNN layer: h(t) = f(W_ih x(t) + W_hh h(t−1) + bias), like ``torch.nn.RNN`` (one layer).

    Returns ``(output, h_n)``: output (T, B, H) (or (B, T, H) with batch_first), h_n (1, B, H).
    ``bptt_truncate=k`` runs truncated BPTT: the state's values are carried across chunks of k
    steps but the gradient is cut between chunks (full BPTT when k ≥ T).
    ``nonlinearity``: "tanh" or "relu" (PyTorch's), also "sigmoid" and "identity" (the lecture's).
    """

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True, batch_first=False,
                 bptt_truncate=None, dtype=None):
        super().__init__()
        if nonlinearity not in ACTIVATIONS:
            raise ValueError(f"RNN: nonlinearity must be one of {sorted(ACTIVATIONS)}, got {nonlinearity!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity, self.batch_first, self.bptt_truncate = nonlinearity, batch_first, bptt_truncate
        init_recurrent_parameters(self, input_size, hidden_size, 1, bias, dtype)

    def forward(self, x, h0=None):
        x, unbatched = _sequence_input(self, x, self.input_size, self.batch_first)
        h = _initial_state(self, h0, x.shape[1], self.hidden_size, x.dtype, unbatched)
        output = run_elman(x, h, self.weight_ih, self.weight_hh, self.bias, self.nonlinearity, self.bptt_truncate)
        return _finish(output, output[-1], unbatched, self.batch_first)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}, bias={self.bias is not None}"


def run_elman(x, h, weight_ih, weight_hh, bias, nonlinearity, truncate=None):
    """h(1..T) for x (T, B, F), in chunks of ``truncate`` steps with the gradient cut between them."""
    outputs = []
    for start, stop in _chunks(x.shape[0], truncate):
        if start:
            h = h.detach()
        out = elman_sequence(x if stop - start == x.shape[0] else x[start:stop], h, weight_ih, weight_hh, bias,
                             nonlinearity)
        outputs.append(out)
        h = out[-1]
    return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=0)


def run_lstm(x, h, c, weight_ih, weight_hh, bias, truncate=None):
    """(h(1..T), c(1..T)) for x (T, B, F), in chunks of ``truncate`` steps (gradient cut between)."""
    hs, cs = [], []
    for start, stop in _chunks(x.shape[0], truncate):
        if start:
            h, c = h.detach(), c.detach()
        h_seq, c_seq = lstm_sequence(x if stop - start == x.shape[0] else x[start:stop], h, c, weight_ih, weight_hh, bias)
        hs.append(h_seq)
        cs.append(c_seq)
        h, c = h_seq[-1], c_seq[-1]
    if len(hs) == 1:
        return hs[0], cs[0]
    return ops.concatenate(hs, axis=0), ops.concatenate(cs, axis=0)


def _finish(output, last, unbatched, batch_first):
    if unbatched:
        return output.reshape((output.shape[0], output.shape[2])), last.reshape((1, last.shape[-1]))
    if batch_first:
        output = output.transpose(1, 0, 2)
    return output, last.reshape((1,) + last.shape)


class RNNCell(Module):
    """One Elman step h' = f(W_ih x + W_hh h + bias), like ``torch.nn.RNNCell``; x (B, F), h (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        init_recurrent_parameters(self, input_size, hidden_size, 1, bias, dtype)

    def forward(self, x, h=None):
        x, unbatched = _sequence_input(self, x.reshape((1,) + x.shape), self.input_size, False)
        h = _initial_state(self, h, x.shape[1], self.hidden_size, x.dtype, unbatched, "h")
        out = elman_sequence(x, h, self.weight_ih, self.weight_hh, self.bias, self.nonlinearity)[0]
        return out.reshape((self.hidden_size,)) if unbatched else out

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class LSTM(Module):
    """LSTM layer like ``torch.nn.LSTM`` (one layer): gates i, f, g, o stacked in the 4·H rows.

    c(t) = f∘c(t−1) + i∘g,  h(t) = o∘tanh(c(t)).  Returns ``(output, (h_n, c_n))``.
    One ``bias`` (4·H); PyTorch's ``bias_ih + bias_hh`` is this bias.
    """

    def __init__(self, input_size, hidden_size, bias=True, batch_first=False, bptt_truncate=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.batch_first, self.bptt_truncate = batch_first, bptt_truncate
        init_recurrent_parameters(self, input_size, hidden_size, 4, bias, dtype)

    def forward(self, x, state=None):
        x, unbatched = _sequence_input(self, x, self.input_size, self.batch_first)
        h0, c0 = (None, None) if state is None else state
        h = _initial_state(self, h0, x.shape[1], self.hidden_size, x.dtype, unbatched, "h0")
        c = _initial_state(self, c0, x.shape[1], self.hidden_size, x.dtype, unbatched, "c0")
        output, c_seq = run_lstm(x, h, c, self.weight_ih, self.weight_hh, self.bias, self.bptt_truncate)
        h, c = output[-1], c_seq[-1]
        output, h_n = _finish(output, h, unbatched, self.batch_first)
        c_n = c.reshape((1, c.shape[-1])) if unbatched else c.reshape((1,) + c.shape)
        return output, (h_n, c_n)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"


class LSTMCell(Module):
    """One LSTM step like ``torch.nn.LSTMCell``: (h', c') = cell(x, (h, c))."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        init_recurrent_parameters(self, input_size, hidden_size, 4, bias, dtype)

    def forward(self, x, state=None):
        x, unbatched = _sequence_input(self, x.reshape((1,) + x.shape), self.input_size, False)
        h0, c0 = (None, None) if state is None else state
        h = _initial_state(self, h0, x.shape[1], self.hidden_size, x.dtype, unbatched, "h")
        c = _initial_state(self, c0, x.shape[1], self.hidden_size, x.dtype, unbatched, "c")
        hs, cs = lstm_sequence(x, h, c, self.weight_ih, self.weight_hh, self.bias)
        h, c = hs[0], cs[0]
        if unbatched:
            return h.reshape((self.hidden_size,)), c.reshape((self.hidden_size,))
        return h, c

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"

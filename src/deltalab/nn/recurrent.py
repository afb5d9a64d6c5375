"""Recurrent layers with PyTorch's interface: RNN, LSTM, GRU and their cells.

Each layer and direction runs as one fused node (``ops.recurrent``, ``ops.gru``), so BPTT over
thousands of steps costs one matrix product per step and no per-step graph; ``num_layers``
stacks them, ``bidirectional`` runs a second one over the reversed sequence.

Parameters are torch's: ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0`` (and
``_reverse`` for the second direction; the cells ``weight_ih, weight_hh, bias_ih, bias_hh``),
two biases each a Parameter of its own, so an optimiser moves each as torch does.  For
Elman and LSTM the fused op sees their sum (the gradient of each is the gradient of the sum).

The lecture's Elman layer has ONE hidden bias b: z(t) = W x(t) + H h(t−1) + b.  That form is
``single_bias=True`` (parameters ``bias_l0``, ...); ``models.ElmanNetwork`` keeps its own b1.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import ops
from ..errors import ConfigurationError, ShapeError
from ..ops.dropout import dropout as functional_dropout
from ..ops.gru import gru_sequence
from ..ops.recurrent import ACTIVATIONS, elman_sequence, lstm_sequence
from ..tensor import Tensor
from .module import Module, check_device, uniform_


def sequence_input(layer, x, input_size, batch_first):
    """x as (T, B, F); returns it with a flag saying whether the input had no batch axis."""
    if x.ndim not in (2, 3):
        raise ShapeError(
            f"{layer!r}: expected a sequence of shape (T, batch, {input_size})"
            f"{' with batch_first (batch, T, features)' if batch_first else ''} or (T, {input_size}), got shape {x.shape}"
        )
    if x.shape[-1] != input_size:
        raise ShapeError(f"{layer!r}: input.size(-1) must be equal to input_size: expected {input_size} input "
                                f"features per step, got input of shape {x.shape}")
    unbatched = x.ndim == 2
    if unbatched:
        x = x.reshape((x.shape[0], 1, input_size))
    elif batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[0] == 0:
        raise ShapeError(f"{layer!r}: the sequence is empty (input of shape {x.shape}); need at least one step")
    return x, unbatched


def initial_state(layer, state, batch, hidden, dtype, unbatched, what="h0"):
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


def run_in_chunks(x, states, sequence, truncate=None):
    """The state sequences of ``sequence(x_chunk, *states)`` over x (T, B, F), run in chunks of
    ``truncate`` steps: each chunk starts from the last states of the one before, detached (the
    gradient is cut between chunks); one chunk when ``truncate`` is None."""
    pieces = []
    for start, stop in _chunks(x.shape[0], truncate):
        if start:
            states = tuple(s.detach() for s in states)
        sequences = sequence(x if stop - start == x.shape[0] else x[start:stop], *states)
        pieces.append(sequences)
        states = tuple(s[-1] for s in sequences)
    if len(pieces) == 1:
        return pieces[0]
    return tuple(ops.concatenate(list(chunks), axis=0) for chunks in zip(*pieces))


def run_elman(x, h, weight_ih, weight_hh, bias, nonlinearity, truncate=None):
    """h(1..T) for x (T, B, F), in chunks of ``truncate`` steps with the gradient cut between them."""
    (out,) = run_in_chunks(x, (h,), lambda xs, h: (elman_sequence(xs, h, weight_ih, weight_hh, bias, nonlinearity),),
                           truncate)
    return out


def run_lstm(x, h, c, weight_ih, weight_hh, bias, truncate=None):
    """(h(1..T), c(1..T)) for x (T, B, F), in chunks of ``truncate`` steps (gradient cut between)."""
    return tuple(run_in_chunks(x, (h, c), lambda xs, h, c: lstm_sequence(xs, h, c, weight_ih, weight_hh, bias),
                               truncate))


def run_gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh, truncate=None):
    """h(1..T) of a GRU for x (T, B, F), in chunks of ``truncate`` steps (gradient cut between)."""
    (out,) = run_in_chunks(x, (h,), lambda xs, h: (gru_sequence(xs, h, weight_ih, weight_hh, bias_ih, bias_hh),),
                           truncate)
    return out


GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _check_sizes(kind, input_size, hidden_size, num_layers, dropout):
    """torch's checks of the constructor arguments, with torch's exception types."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{kind}: {name} should be of type int, got: {type(value).__name__}")
    if hidden_size <= 0:
        raise ValueError(f"{kind}: hidden_size must be greater than zero, got {hidden_size}")
    if num_layers <= 0:
        raise ValueError(f"{kind}: num_layers must be greater than or equal to 1, got {num_layers}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"{kind}: dropout should be a number in range [0, 1] representing the probability of an "
                         f"element being zeroed, got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                      f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}", UserWarning,
                      stacklevel=3)


class RNNBase(Module):
    """What RNN, LSTM and GRU share: torch's parameters per layer and direction, the stacking
    of fused layers, inter-layer dropout, batch_first and the initial state's shape.

    Keyword-only deltalab options: ``single_bias=True`` (the lecture's one bias per layer,
    parameters ``bias_l0``...; RNN and LSTM only), ``bptt_truncate=k`` (truncated BPTT: the
    state's values are carried across chunks of k steps, the gradient is cut between them).
    """

    kind = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, *, device=None, dtype=None, single_bias=False, bptt_truncate=None):
        super().__init__()
        kind = self.kind
        _check_sizes(kind, input_size, hidden_size, num_layers, dropout)
        if device is not None:
            check_device(device)
        if single_bias and kind == "GRU":
            raise ConfigurationError("GRU: single_bias is not possible: b_hn sits inside r ∘ (W_hn h + b_hn), "
                                     "so the two biases are not a sum")
        if bptt_truncate is not None and (not isinstance(bptt_truncate, (int, np.integer)) or bptt_truncate < 1):
            raise ConfigurationError(f"{kind}: bptt_truncate must be a positive number of steps or None, "
                                     f"got {bptt_truncate!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.single_bias = bool(bidirectional), bool(single_bias) and bool(bias)
        self.bptt_truncate = bptt_truncate
        self.proj_size = 0
        directions = 2 if bidirectional else 1
        rows = GATES[kind] * hidden_size
        self._flat_weights_names = []
        for layer in range(self.num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                setattr(self, names[0], uniform_((rows, layer_input), hidden_size, dtype))
                setattr(self, names[1], uniform_((rows, hidden_size), hidden_size, dtype))
                if self.single_bias:
                    names.append(f"bias{suffix}")
                elif self.bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                for name in names[2:]:
                    setattr(self, name, uniform_((rows,), hidden_size, dtype))
                self._flat_weights_names.extend(names)

    def flatten_parameters(self):
        """torch's cuDNN weight packing: nothing to do on the CPU (as in torch on the CPU)."""

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self):
        """Per layer and direction, the list of its parameters (as torch's ``all_weights``)."""
        per = len(self._flat_weights_names) // (self.num_layers * self.num_directions)
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i : i + per]] for i in range(0, len(names), per)]

    def _layer_parameters(self, layer, direction):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction; for a single bias
        (bias, None), without bias (None, None)."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        weights = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        if self.single_bias:
            return weights + (getattr(self, f"bias{suffix}"), None)
        if self.bias:
            return weights + (getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
        return weights + (None, None)

    def _run_layer(self, x, states, layer, direction):
        """One layer and direction over x (T, B, F): (outputs (T, B, H), final states)."""
        raise NotImplementedError  # pragma: no cover - interface

    def _state_count(self):
        return 1

    def forward(self, input, hx=None):
        x, unbatched = sequence_input(self, input, self.input_size, self.batch_first)
        count, batch = self.num_layers * self.num_directions, x.shape[1]
        given = [hx] if self._state_count() == 1 else (list(hx) if hx is not None else [None, None])
        if self._state_count() == 2 and hx is not None and len(given) != 2:
            raise ValueError(f"{self.kind}: the initial state must be a pair (h_0, c_0)")
        names = ["hx"] if self._state_count() == 1 else ["h_0", "c_0"]
        initial = [_stacked_state(self, s, count, batch, self.hidden_size, x.dtype, unbatched, n)
                   for s, n in zip(given, names)]
        finals = [[] for _ in initial]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                states = [s[index] for s in initial]
                sequence = layer_input[::-1] if direction else layer_input
                out, last = self._run_layer(sequence, states, layer, direction)
                outputs.append(out[::-1] if direction else out)
                for kept, state in zip(finals, last):
                    kept.append(state)
            layer_input = outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = functional_dropout(layer_input, self.dropout, True)
        output = layer_input
        finals = [ops.stack(states, axis=0) for states in finals]  # (layers·directions, B, H)
        if unbatched:
            output = output.reshape((output.shape[0], output.shape[2]))
            finals = [f.reshape((count, self.hidden_size)) for f in finals]
        elif self.batch_first:
            output = output.transpose(1, 0, 2)
        return output, (finals[0] if len(finals) == 1 else tuple(finals))

    def extra_repr(self):
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            parts.append(f"nonlinearity={self.nonlinearity!r}")
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("single_bias", False)):
            if getattr(self, name) != default:
                parts.append(f"{name}={getattr(self, name)}")
        return ", ".join(parts)


def _summed_bias(bias_ih, bias_hh):
    """The one bias the fused Elman/LSTM op adds: bias_ih + bias_hh (each gets its gradient)."""
    if bias_hh is None:
        return bias_ih
    return bias_ih + bias_hh


def _stacked_state(layer, state, count, batch, hidden, dtype, unbatched, what):
    """The initial state as a list of ``count`` (B, H) tensors (zeros when None).  torch's shape
    is (layers·directions, B, H), unbatched (layers·directions, H); for one layer and direction
    (B, H) and (H,) are accepted too."""
    if state is None:
        zeros = Tensor(np.zeros((batch, hidden), dtype=dtype))
        return [zeros] * count
    state = state if isinstance(state, Tensor) else Tensor(np.asarray(state, dtype=dtype))
    expected = (count, hidden) if unbatched else (count, batch, hidden)
    legacy = [(hidden,)] if unbatched else [(batch, hidden)]
    if state.shape == expected:
        stacked = state.reshape((count, batch, hidden))
        return [stacked[i] for i in range(count)] if count > 1 else [stacked.reshape((batch, hidden))]
    if count == 1 and state.shape in legacy:
        return [state.reshape((batch, hidden))]
    raise ShapeError(f"{layer!r}: Expected hidden size {expected} for {what}, got {tuple(state.shape)}")


class RNN(RNNBase):
    """Elman RNN, like ``torch.nn.RNN``: h(t) = f(W_ih x(t) + b_ih + W_hh h(t−1) + b_hh) per layer.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``.  Returns ``(output, h_n)``: output (T, B, D·H) (or
    (B, T, D·H) with batch_first), h_n (num_layers·D, B, H).  ``nonlinearity``: "tanh" or "relu"
    (torch's), also "sigmoid" and "identity" (the lecture's).
    """

    kind = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, device=None, dtype=None, single_bias=False, bptt_truncate=None):
        if nonlinearity not in ACTIVATIONS:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from {sorted(ACTIVATIONS)}.")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype, single_bias=single_bias, bptt_truncate=bptt_truncate)
        self.nonlinearity = nonlinearity

    def _run_layer(self, x, states, layer, direction):
        weight_ih, weight_hh, bias_ih, bias_hh = self._layer_parameters(layer, direction)
        out = run_elman(x, states[0], weight_ih, weight_hh, _summed_bias(bias_ih, bias_hh), self.nonlinearity,
                        self.bptt_truncate)
        return out, [out[-1]]


class LSTM(RNNBase):
    """LSTM like ``torch.nn.LSTM``: gates i, f, g, o stacked in the 4·H rows of each layer's weights.

    c(t) = f∘c(t−1) + i∘g,  h(t) = o∘tanh(c(t)).  ``LSTM(input_size, hidden_size, num_layers=1,
    bias=True, batch_first=False, dropout=0.0, bidirectional=False)``; returns
    ``(output, (h_n, c_n))``.  ``proj_size`` is not supported.
    """

    kind = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, *, device=None, dtype=None, single_bias=False, bptt_truncate=None):
        if proj_size:
            raise NotImplementedError("deltalab has no torch.nn.LSTM proj_size (projected LSTM)")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype, single_bias=single_bias, bptt_truncate=bptt_truncate)

    def _state_count(self):
        return 2

    def _run_layer(self, x, states, layer, direction):
        weight_ih, weight_hh, bias_ih, bias_hh = self._layer_parameters(layer, direction)
        h_seq, c_seq = run_lstm(x, states[0], states[1], weight_ih, weight_hh, _summed_bias(bias_ih, bias_hh),
                                self.bptt_truncate)
        return h_seq, [h_seq[-1], c_seq[-1]]


class GRU(RNNBase):
    """GRU like ``torch.nn.GRU`` (gates r, z, n in the 3·H rows):
    n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn)),  h' = (1 − z) ∘ n + z ∘ h.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``; returns ``(output, h_n)``.
    """

    kind = "GRU"

    def _run_layer(self, x, states, layer, direction):
        weight_ih, weight_hh, bias_ih, bias_hh = self._layer_parameters(layer, direction)
        out = run_gru(x, states[0], weight_ih, weight_hh, bias_ih, bias_hh, self.bptt_truncate)
        return out, [out[-1]]


# ------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """What the cells share: torch's ``weight_ih, weight_hh, bias_ih, bias_hh`` (read at every
    call, so assigning any of them takes effect) and the input checks."""

    kind = None

    def __init__(self, input_size, hidden_size, bias=True, *, device=None, dtype=None):
        super().__init__()
        _check_sizes(self.kind, input_size, hidden_size, 1, 0.0)
        if device is not None:
            check_device(device)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        rows = GATES[self.kind.replace("Cell", "")] * hidden_size
        self.weight_ih = uniform_((rows, input_size), hidden_size, dtype)
        self.weight_hh = uniform_((rows, hidden_size), hidden_size, dtype)
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, uniform_((rows,), hidden_size, dtype) if bias else None)

    def _step_input(self, x):
        if x.ndim not in (1, 2):
            raise ValueError(f"{self.kind}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{self!r}: input has inconsistent input_size: got {x.shape[-1]} expected "
                                    f"{self.input_size}")
        unbatched = x.ndim == 1
        return x.reshape((1, 1, self.input_size)) if unbatched else x.reshape((1,) + x.shape), unbatched

    def _step_state(self, state, batch, dtype, unbatched, what):
        if state is None:
            return Tensor(np.zeros((batch, self.hidden_size), dtype=dtype))
        state = state if isinstance(state, Tensor) else Tensor(np.asarray(state, dtype=dtype))
        expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if state.shape != expected:
            raise ShapeError(f"{self!r}: {what} has shape {tuple(state.shape)}, expected {expected}")
        return state.reshape((batch, self.hidden_size))

    def extra_repr(self):
        extra = f", bias={self.bias}" if not self.bias else ""
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        return f"{self.input_size}, {self.hidden_size}{extra}" + (
            f", nonlinearity={nonlinearity!r}" if nonlinearity != "tanh" else "")


class RNNCell(RNNCellBase):
    """One Elman step h' = f(W_ih x + b_ih + W_hh h + b_hh), like ``torch.nn.RNNCell``; x (B, F), h (B, H)."""

    kind = "RNNCell"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, device=None, dtype=None):
        if nonlinearity not in ACTIVATIONS:
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, unbatched = self._step_input(input)
        h = self._step_state(hx, x.shape[1], x.dtype, unbatched, "hx")
        out = elman_sequence(x, h, self.weight_ih, self.weight_hh, _cell_bias(self), self.nonlinearity)[0]
        return out.reshape((self.hidden_size,)) if unbatched else out


def _cell_bias(cell):
    if cell.bias_ih is None and cell.bias_hh is None:
        return None
    if cell.bias_ih is None or cell.bias_hh is None:
        return cell.bias_ih if cell.bias_hh is None else cell.bias_hh
    return cell.bias_ih + cell.bias_hh


class LSTMCell(RNNCellBase):
    """One LSTM step like ``torch.nn.LSTMCell``: (h', c') = cell(x, (h, c))."""

    kind = "LSTMCell"

    def forward(self, input, hx=None):
        x, unbatched = self._step_input(input)
        h0, c0 = (None, None) if hx is None else hx
        h = self._step_state(h0, x.shape[1], x.dtype, unbatched, "h")
        c = self._step_state(c0, x.shape[1], x.dtype, unbatched, "c")
        hs, cs = lstm_sequence(x, h, c, self.weight_ih, self.weight_hh, _cell_bias(self))
        h, c = hs[0], cs[0]
        if unbatched:
            return h.reshape((self.hidden_size,)), c.reshape((self.hidden_size,))
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step like ``torch.nn.GRUCell`` (gates r, z, n; b_hn inside r ∘ (W_hn h + b_hn))."""

    kind = "GRUCell"

    def forward(self, input, hx=None):
        x, unbatched = self._step_input(input)
        h = self._step_state(hx, x.shape[1], x.dtype, unbatched, "hx")
        out = gru_sequence(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)[0]
        return out.reshape((self.hidden_size,)) if unbatched else out

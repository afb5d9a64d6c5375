"""The recurrent cells of the exam exercises, written as cells for ``nn.Recurrent``.

Each cell is ``forward(x_t, state) -> (y_t, state)`` built from engine primitives, so
``nn.Recurrent(cell)`` unrolls it and ``backward`` is BPTT through every path the equations
contain.  The scalar cells keep the lecture's parameter names and hold 0-d weights; their
inputs may be scalars per step (x of shape (T,)) or a batch of them (x of shape (T, N)).

Example (the exam's Elman ReLU cell; the exam gives h = (4, 2), ŷ = (2, 1))::

    cell = ElmanReLUCell(w_xh=2.0, w_hh=1.0, w_hy=0.5)
    y, h_T = nn.Recurrent(cell)(dl.tensor([2.0, -1.0]))
"""
from __future__ import annotations

from .. import ops
from ..nn.module import Module, Parameter, check_input
from ..nn.recurrent import init_recurrent_parameters
from ..random import generator
from ..tensor import zeros


def _scalar(value, dtype=None):
    """A 0-d Parameter: the given value, or U(−1, 1) from deltalab's seeded generator."""
    if value is None:
        value = generator().uniform(-1.0, 1.0)
    return Parameter(float(value), dtype=dtype)


class _ScalarCell(Module):
    """Shared parts of the scalar exam cells: zero initial state of the step's shape."""

    def initial_state(self, x_t):
        return zeros(x_t.shape, dtype=self.dtype)

    def extra_repr(self):
        return ", ".join(f"{name}={p.item():g}" for name, p in self._parameters.items())


class ElmanReLUCell(_ScalarCell):
    """Simplified Elman cell: h_t = ReLU(h_{t−1} w_hh + w_xh x_t), ŷ_t = ReLU(h_t w_hy).

    State h_t, output ŷ_t.  With x = (2, −1), w_xh = 2, w_hh = 1, w_hy = 0.5, h_0 = 0:
    h = (4, 2) and ŷ = (2, 1).  The exam loss is Σ_t (ŷ_t − y_t)² (``F.squared_error``).
    """

    def __init__(self, w_xh=None, w_hh=None, w_hy=None, dtype=None):
        super().__init__()
        self.w_xh = _scalar(w_xh, dtype)
        self.w_hh = _scalar(w_hh, dtype)
        self.w_hy = _scalar(w_hy, dtype)

    def forward(self, x_t, h):
        h = ops.relu(h * self.w_hh + self.w_xh * x_t)
        return ops.relu(h * self.w_hy), h


class AdditiveCell(_ScalarCell):
    """The 'novel' cell: o_t = h_{t−1} + x_t, h_t = o_t w, ŷ_t = h_t (exam loss: BCE).

    With x = (1, 0.5), w = 0.5, h_0 = 0: h = ŷ = (0.5, 0.5).
    """

    def __init__(self, w=None, dtype=None):
        super().__init__()
        self.w = _scalar(w, dtype)

    def forward(self, x_t, h):
        o = h + x_t
        h = o * self.w
        return h, h


class ModifiedCell(_ScalarCell):
    """The 'modified' cell: s_t = h_{t−1} + x_t, o_t = w s_t, ŷ_t = o_t + h_{t−1}, and the
    state passed on is h_t = o_t (the exam's ∂L/∂o_t = ∂L/∂ŷ_t + ∂L/∂h_t).  Loss Σ(ŷ_t − y_t)².
    """

    def __init__(self, w=None, dtype=None):
        super().__init__()
        self.w = _scalar(w, dtype)

    def forward(self, x_t, h):
        s = h + x_t
        o = self.w * s
        return o + h, o


class GateLSTMCell(Module):
    """The exam's LSTM cell written gate by gate with engine primitives.

    i_t = σ(W_ii x_t + W_hi h_{t−1} + b_i)        input gate
    f_t = σ(W_if x_t + W_hf h_{t−1} + b_f)        forget gate
    c̃_t = tanh(W_ig x_t + W_hg h_{t−1} + b_g)     candidate
    o_t = σ(W_io x_t + W_ho h_{t−1} + b_o)        output gate
    C_t = f_t C_{t−1} + i_t c̃_t,   h_t = o_t tanh(C_t),   output ŷ_t = h_t

    Parameters stacked in PyTorch's gate order i, f, g, o: ``weight_ih`` (4·hidden × input),
    ``weight_hh`` (4·hidden × hidden) and one ``bias`` (4·hidden) -- PyTorch's
    ``bias_ih + bias_hh``.  State ``(h, C)``, each (batch, hidden) or (hidden,) unbatched.
    ∂L/∂C_{t−1} = ∂L/∂C_t · f_t (the exam's answer) falls out of the graph.
    """

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        init_recurrent_parameters(self, input_size, hidden_size, 4, bias, dtype)

    def initial_state(self, x_t):
        shape = x_t.shape[:-1] + (self.hidden_size,)
        return zeros(shape, dtype=self.dtype), zeros(shape, dtype=self.dtype)

    def _gate(self, k, x_t, h):
        """Pre-activation of gate k (0 = i, 1 = f, 2 = g, 3 = o) from its own weight rows."""
        rows = slice(k * self.hidden_size, (k + 1) * self.hidden_size)
        bias = self.bias[rows] if self.bias is not None else None
        return ops.linear(x_t, self.weight_ih[rows], bias) + ops.linear(h, self.weight_hh[rows])

    def forward(self, x_t, state):
        check_input(self, x_t, (1, 2), -1, self.input_size, "input features")
        h, c = state
        input_gate = ops.sigmoid(self._gate(0, x_t, h))
        forget_gate = ops.sigmoid(self._gate(1, x_t, h))
        candidate = ops.tanh(self._gate(2, x_t, h))
        output_gate = ops.sigmoid(self._gate(3, x_t, h))
        c = forget_gate * c + input_gate * candidate
        h = output_gate * ops.tanh(c)
        return h, (h, c)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"


__all__ = ["AdditiveCell", "ElmanReLUCell", "GateLSTMCell", "ModifiedCell"]

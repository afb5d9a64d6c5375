"""``Recurrent(cell)``: unroll a user-written cell over a sequence; BPTT comes from the engine.

A *cell* is any Module with ``forward(x_t, state) -> (y_t, state)`` written with engine ops.
The state may be one Tensor or a tuple/list of Tensors (an LSTM's ``(h, c)``).  Optionally the
cell defines ``initial_state(x_t)`` returning the state to start from when none is given
(zeros of the right shape, usually); :class:`Recurrent` also uses it to check the shape of a
state passed in by the caller.

Because every step is recorded as ordinary graph nodes, ``loss.backward()`` after the unroll
*is* backpropagation through time, through every path the cell's equations contain.  The
fused ``nn.RNN``/``nn.LSTM`` layers are the fast path; this is the general one.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ConfigurationError, ShapeError
from ..ops import stack
from ..tensor import Tensor
from .module import Module


class _Unbind(Function):
    """Split axis 0 into its T slices in one node (T getitem nodes would each scatter a
    full-size zero array in backward: O(T²) for a long sequence)."""

    @staticmethod
    def forward(ctx, a):
        ctx.shape, ctx.dtype = a.shape, a.dtype
        return tuple(a[t] for t in range(a.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        out = np.zeros(ctx.shape, dtype=ctx.dtype)
        for t, g in enumerate(grads):
            if g is not None:
                out[t] = g
        return out


def unbind(x):
    """The slices ``x[0], …, x[T-1]`` of a tensor, as one graph node."""
    if x.shape[0] == 1:
        return (x[0],)
    return _Unbind.apply(x)


def detach_state(state):
    """The same state values, cut from the graph (a Tensor, or a tuple/list of them)."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state


def _state_shapes(state):
    if isinstance(state, Tensor):
        return state.shape
    if isinstance(state, (tuple, list)):
        return tuple(_state_shapes(s) for s in state)
    return np.shape(state)


def _retain_state(state):
    if isinstance(state, Tensor):
        state.retain_grad()
    elif isinstance(state, (tuple, list)):
        for s in state:
            _retain_state(s)


class Recurrent(Module):
    """Unroll ``cell`` over axis 0 of x: ``outputs, final_state = Recurrent(cell)(x, state)``.

    ``x`` is a sequence ``(T, ...)`` (time-major, like ``nn.RNN`` with batch_first=False); the
    cell sees ``x[t]``.  ``outputs`` stacks the cell's ``y_t`` along a new axis 0.

    ``state``: given, or ``cell.initial_state(x[0])``.  A given state is checked against the
    shapes ``initial_state`` returns, when the cell defines it.

    ``truncate=k``: truncated BPTT.  The state's *values* are carried across the whole
    sequence, but its graph is cut (``detach``) before steps k, 2k, …, so no gradient flows
    from a step back into an earlier chunk.  ``truncate=None`` (default) or ``k >= T`` is full
    BPTT.  The gradient from the loss at each step still reaches the parameters.

    ``retain_grad=True`` keeps every step's output and state in ``self.steps`` (a list of
    ``(y_t, state_t)``) with ``retain_grad`` set, so after ``backward`` their ``.grad`` holds the
    per-step deltas ∂E/∂y_t and ∂E/∂state_t (for reports).
    """

    def __init__(self, cell, truncate=None, retain_grad=False):
        super().__init__()
        if not isinstance(cell, Module):
            raise TypeError(f"Recurrent: the cell must be a Module, got {type(cell).__name__}")
        if truncate is not None and (not isinstance(truncate, (int, np.integer)) or truncate < 1):
            raise ConfigurationError(f"Recurrent: truncate must be a positive number of steps or None, got {truncate!r}")
        self.cell = cell
        self.truncate = None if truncate is None else int(truncate)
        self.retain_grad = retain_grad
        self.steps = []

    @property
    def _label(self):
        return f"Recurrent({type(self.cell).__name__})"

    def forward(self, x, state=None):
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ShapeError(
                f"{self._label}: needs a sequence with at least one step on axis 0, got input of shape {x.shape}"
            )
        steps = unbind(x)
        state = self._start_state(steps[0], state)
        outputs, self.steps = [], []
        for t, x_t in enumerate(steps):
            if self.truncate is not None and t > 0 and t % self.truncate == 0:
                state = detach_state(state)
            y_t, state = self.cell(x_t, state)
            if self.retain_grad:
                _retain_state(y_t)
                _retain_state(state)
                self.steps.append((y_t, state))
            outputs.append(y_t)
        return stack(outputs, axis=0), state

    def _start_state(self, x_0, state):
        initial_state = getattr(self.cell, "initial_state", None)
        if state is None:
            if initial_state is None:
                raise ConfigurationError(
                    f"{self._label}: no initial state given and {type(self.cell).__name__} defines no "
                    "initial_state(x_t) method"
                )
            return initial_state(x_0)
        if initial_state is not None:
            expected, got = _state_shapes(initial_state(x_0)), _state_shapes(state)
            if expected != got:
                raise ShapeError(
                    f"{self._label}: initial state of shape {got} does not fit; for a step input of shape "
                    f"{x_0.shape} the cell's state has shape {expected}"
                )
        return state

    def extra_repr(self):
        return f"truncate={self.truncate}" if self.truncate is not None else ""

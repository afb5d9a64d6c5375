"""AlarmworkNet (the homework): an Elman network with a slow and a fast tanh layer."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from ..losses import half_squared_error
from ..nn.module import Module, uniform_
from ..tensor import Tensor, zeros


class AlarmworkNet(Module):
    """Two-timescale Elman network: a slow layer in2 that updates every other step, a fast
    layer in1 that reads it, and a tanh output layer.

    Steps are numbered as in the homework, l = 1 … L (the sequence's array index is l − 1):

        in2 (slow):  z2[l] = tanh(w_in2 x[l] + w_rec2 z2[l−1] + b_in2)   if l is even
                     z2[l] = z2[l−1]                                      if l is odd
                     z2[0] = 0
        in1 (fast):  z1[l] = tanh(w_in1 x[l] + w_rec1 z2[l] + b_in1)
        out:         y[l]  = tanh(w_out z1[l] + b_out)

    So the first step (l = 1, array index 0) *holds* z2 at 0, and in2 first updates at the
    second step (l = 2, array index 1): in2 updates at odd **array** indices.  The loss is the
    homework's SSE ½Σ(t − y)² (:meth:`loss`).

    Shapes: x is (L, D) or (L, N, D) time-major; ``forward`` returns y of (L, M) or (L, N, M).
    Weights are (out × in) like the homework (z = W x + b), so a batch computes x Wᵀ + b.
    After a forward pass ``self.z1`` and ``self.z2`` hold the per-step layer values (lists,
    index l − 1); call ``retain_grad()`` on them before ``backward`` to read the deltas.
    """

    def __init__(self, input_size, hidden_size, output_size, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        d, p, m = input_size, hidden_size, output_size
        self.w_in2 = uniform_((p, d), d, dtype)
        self.w_rec2 = uniform_((p, p), p, dtype)
        self.b_in2 = uniform_((p,), d, dtype)
        self.w_in1 = uniform_((p, d), d, dtype)
        self.w_rec1 = uniform_((p, p), p, dtype)
        self.b_in1 = uniform_((p,), d, dtype)
        self.w_out = uniform_((m, p), p, dtype)
        self.b_out = uniform_((m,), p, dtype)
        self.z1, self.z2 = [], []

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(x, dtype=self.dtype)
        if x.ndim not in (2, 3) or x.shape[0] == 0 or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"AlarmworkNet(input_size={self.input_size}): expected a sequence of shape (L, {self.input_size}) "
                f"or (L, N, {self.input_size}) with L >= 1, got {x.shape}"
            )
        z2 = zeros(x.shape[1:-1] + (self.hidden_size,), dtype=self.dtype)  # z2[0] = 0
        outputs, self.z1, self.z2 = [], [], []
        for index in range(x.shape[0]):
            step = index + 1  # the homework's l
            x_l = x[index]
            if step % 2 == 0:
                z2 = ops.tanh(ops.linear(x_l, self.w_in2, self.b_in2) + ops.linear(z2, self.w_rec2))
            z1 = ops.tanh(ops.linear(x_l, self.w_in1, self.b_in1) + ops.linear(z2, self.w_rec1))
            outputs.append(ops.tanh(ops.linear(z1, self.w_out, self.b_out)))
            self.z1.append(z1)
            self.z2.append(z2)
        return ops.stack(outputs, axis=0)

    @staticmethod
    def loss(y, target):
        """The homework's sum of squared errors ½Σ(t − y)² over steps, units and samples."""
        return half_squared_error(y, target)

    def extra_repr(self):
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}"


__all__ = ["AlarmworkNet"]

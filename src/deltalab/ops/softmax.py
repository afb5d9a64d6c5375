"""Numerically stable softmax and log-softmax (logits of +-1e4 stay finite)."""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import Function


def log_softmax_values(a, axis):
    """log softmax of an array along ``axis`` (max-shifted), the arithmetic of :class:`LogSoftmax`."""
    shifted = a - np.max(a, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        out = np.exp(log_softmax_values(a, axis))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return out * (grad - np.sum(grad * out, axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        out = log_softmax_values(a, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad - np.exp(out) * np.sum(grad, axis=ctx.axis, keepdims=True)


def softmax(a, axis=-1):
    return Softmax.apply(a, axis)


def log_softmax(a, axis=-1):
    return LogSoftmax.apply(a, axis)


def implicit_dim(ndim, name, stacklevel):
    """torch's legacy dim for softmax-like calls without one: 0 for 0-, 1- and 3-D inputs, else 1
    (a 3-D input was taken as one unbatched image, C x H x W), with torch's deprecation warning."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", UserWarning, stacklevel=stacklevel + 1)
    return 0 if ndim in (0, 1, 3) else 1

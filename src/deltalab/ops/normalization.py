"""Batch normalisation over every axis but the channel axis 1, as ``torch.nn.functional.batch_norm``.

Training (batch statistics): x̂ = (x − μ_B)/√(σ²_B + ε) with the biased batch variance,
y = γ x̂ + β, and ∂E/∂x = γ/(N√(σ²_B + ε)) · (N·g − Σg − x̂·Σ(g x̂)) over the N values per
channel.  The running statistics move by r ← (1 − m) r + m·stat with torch's *unbiased*
variance.  Evaluation uses the running statistics as constants: y = γ (x − μ_r)/√(σ²_r + ε) + β.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, no_grad
from ..errors import ShapeError
from ..fast import loaded_on_first_use
from ._util import operand

fast_norm = loaded_on_first_use("deltalab.fast.normalization")  # the fast path, loaded with the first call


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, batch_stats):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        ctx.x_hat, ctx.inv_std, ctx.axes, ctx.shape, ctx.batch_stats = x_hat, inv_std, axes, shape, batch_stats
        ctx.weight = weight
        out = x_hat if weight is None else x_hat * weight.reshape(shape)
        return out if bias is None else out + bias.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        axes, shape, x_hat = ctx.axes, ctx.shape, ctx.x_hat
        need = ctx.needs_input_grad
        g_sum = grad.sum(axis=axes)
        gx_hat_sum = (grad * x_hat).sum(axis=axes)
        scale = ctx.inv_std if ctx.weight is None else ctx.inv_std * ctx.weight
        gx = None
        if need[0]:
            if ctx.batch_stats:
                count = grad.size // grad.shape[1]
                gx = (scale / count).reshape(shape) * (
                    count * grad - g_sum.reshape(shape) - x_hat * gx_hat_sum.reshape(shape))
            else:
                gx = grad * scale.reshape(shape)
        gw = gx_hat_sum if ctx.weight is not None and need[1] else None
        gb = g_sum if need[2] else None
        return gx, gw, gb, None, None, None, None


class BatchNormTraining(Function):
    """The float32 training-mode fast path of :class:`BatchNorm` (:mod:`deltalab.fast.normalization`):
    the same maths from the centred input d = x − μ_B, tested against :class:`BatchNorm` and torch."""

    @staticmethod
    def forward(ctx, x, weight, bias, centered, var, eps):
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        ctx.centered, ctx.inv_std, ctx.weight = centered, inv_std, weight
        return fast_norm.normalize(centered, inv_std, weight, bias, x.shape)

    @staticmethod
    def backward(ctx, grad):
        need = ctx.needs_input_grad
        gx, gw, gb = fast_norm.backward(ctx.centered, ctx.inv_std, ctx.weight, grad)
        return (gx if need[0] else None, gw if ctx.weight is not None and need[1] else None,
                gb if need[2] else None, None, None, None)


class BatchNormCompiled(Function):
    """:class:`BatchNormTraining` through the compiled kernels (:mod:`deltalab.fast.normalization_kernels`):
    the forward's y, μ and 1/√(σ² + eps) come from ``fast_norm.compiled_forward``; the backward reads
    the saved input (guarded by autograd's version check) instead of a centred copy."""

    fresh_gradients = True  # dx, dγ, dβ are new arrays of the kernels

    @staticmethod
    def forward(ctx, x, weight, bias, kernels, out, mean, inv_std):
        ctx.save_for_backward(x)
        ctx.kernels, ctx.mean, ctx.inv_std, ctx.weight = kernels, mean, inv_std, weight
        return out

    @staticmethod
    def backward(ctx, grad):
        need = ctx.needs_input_grad
        gx, gw, gb = fast_norm.compiled_backward(ctx.kernels, ctx.saved[0], ctx.mean, ctx.inv_std, ctx.weight, grad)
        return (gx if need[0] else None, gw if ctx.weight is not None and need[1] else None,
                gb if need[2] else None, None, None, None, None)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """``torch.nn.functional.batch_norm``: normalise per channel (axis 1) with the batch's
    statistics when ``training`` (and update ``running_mean``/``running_var`` in place, if
    given), else with the running ones."""
    x = operand(input)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input with a channel axis (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ShapeError(f"batch_norm: {name} should contain {channels} elements not {t.shape[0] if t.ndim else t.shape}")
    batch_stats = training or running_mean is None or running_var is None
    if batch_stats and x.numel() // channels <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
    fast = batch_stats and fast_norm.applies(x.data) and all(
        t is None or t.dtype == x.dtype for t in (weight, bias))
    kernels = fast_norm.kernels(x.data) if fast else None
    if kernels is not None:
        data = [None if t is None else t.data for t in (weight, bias)]
        y, mean, var, inv_std = fast_norm.compiled_forward(kernels, x.data, data[0], data[1], eps)
        out = BatchNormCompiled.apply(x, weight, bias, kernels, y, mean, inv_std)
    elif fast:
        centered, mean, var = fast_norm.center(x.data)
        out = BatchNormTraining.apply(x, weight, bias, centered, var, eps)
    else:
        if batch_stats:
            mean, var = _batch_stats(x.data)
        else:
            mean, var = running_mean.data.astype(x.dtype, copy=False), running_var.data.astype(x.dtype, copy=False)
        out = BatchNorm.apply(x, weight, bias, mean, var, eps, batch_stats)
    if training and running_mean is not None and running_var is not None:
        count = x.numel() // channels
        unbiased = var * (count / (count - 1))
        with no_grad():  # in place, as torch: a reference to the buffer (or its array) sees the update
            running_mean.copy_(((1 - momentum) * running_mean.data + momentum * mean).astype(running_mean.dtype))
            running_var.copy_(((1 - momentum) * running_var.data + momentum * unbiased).astype(running_var.dtype))
    return out


def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)

"""Max and average pooling over NCHW windows, one fused node each.

Max pooling sends each window's gradient to its *first* maximum (row-major), as PyTorch
does: ties are common after ReLU, and feeding every tied element would drift from PyTorch.
Average pooling counts padded zeros in the divisor (PyTorch's ``count_include_pad=True``).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ConfigurationError, ShapeError
from .conv import add_windows_back, check_window_config, pad_spatial, windows
from ._util import pair


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        xp = pad_spatial(x, padding, value=-np.inf)
        win = windows(xp, kernel, stride)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, -1)
        index = np.argmax(flat, axis=-1)
        out = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
        ctx.save_for_backward(index)
        ctx.xp_shape, ctx.kernel, ctx.stride, ctx.padding = xp.shape, kernel, stride, padding
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        kh, kw = ctx.kernel
        one_hot = index[..., None] == np.arange(kh * kw)  # (N, C, Ho, Wo, kh*kw)
        cols = (grad[..., None] * one_hot).reshape(grad.shape + (kh, kw))
        return _scatter(ctx, cols.transpose(0, 1, 4, 5, 2, 3), grad.dtype), None, None, None


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        xp = pad_spatial(x, padding)
        win = windows(xp, kernel, stride)
        ctx.xp_shape, ctx.kernel, ctx.stride, ctx.padding = xp.shape, kernel, stride, padding
        return win.mean(axis=(4, 5))

    @staticmethod
    def backward(ctx, grad):
        kh, kw = ctx.kernel
        cols = np.broadcast_to((grad / (kh * kw))[:, :, None, None], grad.shape[:2] + (kh, kw) + grad.shape[2:])
        return _scatter(ctx, cols, grad.dtype), None, None, None


def _scatter(ctx, cols, dtype):
    """Add per-window gradients cols (N, C, kh, kw, Ho, Wo) back into the input's shape."""
    n, c, hp, wp = ctx.xp_shape
    dxp = np.zeros((n, c, hp, wp), dtype=dtype)
    add_windows_back(dxp, cols, ctx.stride, cols.shape[4:])
    ph, pw = ctx.padding
    return dxp[:, :, ph : hp - ph, pw : wp - pw]


def _pool(function, op_name, x, kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size", op_name)
    stride = kernel if stride is None else pair(stride, "stride", op_name)
    padding = pair(padding, "padding", op_name)
    if x.ndim not in (3, 4):
        raise ShapeError(f"{op_name}: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    check_window_config(op_name, x.shape[-2:], kernel, stride, padding)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ConfigurationError(
            f"{op_name}: padding {padding} must be at most half the kernel size {kernel} "
            "(otherwise a window could hold only padding)"
        )
    if x.ndim == 3:
        out = function.apply(x.reshape((1,) + x.shape), kernel, stride, padding)
        return out.reshape(out.shape[1:])
    return function.apply(x, kernel, stride, padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each kernel window per channel; ``stride`` defaults to ``kernel_size``."""
    return _pool(MaxPool2d, "max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each kernel window per channel; ``stride`` defaults to ``kernel_size``."""
    return _pool(AvgPool2d, "avg_pool2d", x, kernel_size, stride, padding)

"""2-D convolution (cross-correlation, no kernel flip) on NCHW, one fused node.

Forward: im2col through a strided window view and one tensordot.
Backward: the weight gradient is one tensordot with the same windows; the input gradient
is one matmul to column form, then added back window offset by window offset
(a loop over the kh*kw kernel offsets only, never over batch, pixels or channels).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function
from ..errors import ConfigurationError, ShapeError
from ._util import operand, pair


def output_size(size, kernel_size, stride=1, padding=0):
    """floor((size + 2*padding - kernel_size) / stride) + 1, the lecture's formula."""
    return (size + 2 * padding - kernel_size) // stride + 1


def check_window_config(op_name, spatial, kernel, stride, padding):
    """Refuse a stride < 1, negative padding or a kernel larger than the padded input."""
    if min(stride) < 1:
        raise ConfigurationError(f"{op_name}: stride must be at least 1, got {stride}")
    if min(padding) < 0:
        raise ConfigurationError(f"{op_name}: padding cannot be negative, got {padding}")
    if min(kernel) < 1:
        raise ConfigurationError(f"{op_name}: kernel size must be at least 1, got {kernel}")
    padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
    if any(k > n for k, n in zip(kernel, padded)):
        raise ConfigurationError(
            f"{op_name}: kernel {kernel} is larger than the padded input {padded} "
            f"(input {tuple(spatial)}, padding {padding})"
        )


def windows(xp, kernel, stride):
    """View of shape (N, C, Ho, Wo, kh, kw): every kernel window of the padded input."""
    view = sliding_window_view(xp, kernel, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def add_windows_back(dxp, cols, stride, out_hw):
    """Adjoint of ``windows``: add cols (C, N, kh, kw, Ho, Wo)... into dxp (C, N, Hp, Wp) per offset."""
    (sh, sw), (ho, wo) = stride, out_hw
    kh, kw = cols.shape[2], cols.shape[3]
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += cols[:, :, i, j]


def pad_spatial(x, padding, value=0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        kernel = weight.shape[2:]
        xp = pad_spatial(x, padding)
        win = windows(xp, kernel, stride)  # (N, C, Ho, Wo, kh, kw)
        out = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
        if bias is not None:
            out += bias
        ctx.save_for_backward(xp, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, grad):
        xp, weight = ctx.saved
        (sh, sw), (ph, pw) = ctx.stride, ctx.padding
        n, c = xp.shape[:2]
        o, _, kh, kw = weight.shape
        ho, wo = grad.shape[2:]
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            win = windows(xp, (kh, kw), ctx.stride)
            gw = np.tensordot(grad, win, axes=([0, 2, 3], [0, 2, 3]))  # (O, C, kh, kw)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum(axis=(0, 2, 3))
        if ctx.needs_input_grad[0]:
            g2 = grad.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N*Ho*Wo)
            cols = (weight.reshape(o, -1).T @ g2).reshape(c, kh, kw, n, ho, wo).transpose(0, 3, 1, 2, 4, 5)
            dxp = np.zeros((c, n) + xp.shape[2:], dtype=grad.dtype)
            add_windows_back(dxp, cols, (sh, sw), (ho, wo))
            dxp = dxp.transpose(1, 0, 2, 3)
            gx = dxp[:, :, ph : dxp.shape[2] - ph, pw : dxp.shape[3] - pw]
        return gx, gw, gb, None, None


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlate NCHW ``x`` with ``weight`` (out, in, kh, kw), like ``torch.nn.functional.conv2d``.

    ``stride`` and ``padding`` are ints or (height, width) pairs.  A 3-D input (C, H, W) is
    treated as a batch of one and returned without the batch axis.
    """
    x = operand(x, weight)
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must be (out_channels, in_channels, kh, kw), got shape {weight.shape}")
    if x.ndim == 3:
        out = conv2d(x.reshape((1,) + x.shape), weight, bias, stride, padding)
        return out.reshape(out.shape[1:])
    if x.ndim != 4:
        raise ShapeError(f"conv2d: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but weight expects "
            f"{weight.shape[1]} (shape {weight.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv2d: bias of shape {bias.shape} does not fit weight of shape {weight.shape}")
    check_window_config("conv2d", x.shape[2:], weight.shape[2:], stride, padding)
    return Conv2d.apply(x, weight, bias, stride, padding)


"""2-D convolution (cross-correlation, no kernel flip) on NCHW, one fused node.

The fast path (layouts, work buffers, parallel sections) is :mod:`deltalab.fast.conv`;
:func:`conv2d_windows` is the readable reference it is tested against.

Backward: dW = Σ over images and positions of (input window ⊗ δ), a correlation of the
input with δ; dX = every δ spread back through the kernel over its window (a full
convolution with the kernel), exactly what :class:`Conv2dWindows` spells out.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function, is_grad_enabled
from ..errors import ConfigurationError, ShapeError
from ..fast import loaded_on_first_use
from ._util import operand, pair
from .conv_general import GroupedConv2d, dilated_extent

fast_conv = loaded_on_first_use("deltalab.fast.conv")  # the fast path, loaded with the first call


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
    """y[n, o] = Σ_c x[n, c] ⋆ W[o, c] + b[o]; dW[o, c] = Σ_n x[n, c] ⋆ δ[n, o] (a correlation of
    input and δ), dX[n, c] = Σ_o δ[n, o] ∗ W[o, c] (a full convolution with the kernel).

    Computed by the fast path (:mod:`deltalab.fast.conv`: im2col products, or Winograd
    F(2×2, 3×3) for float32 3×3 stride-1 training), which is tested against
    :func:`conv2d_windows` and torch."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        dtype = np.result_type(x, weight) if bias is None else np.result_type(x, weight, bias)
        geo = fast_conv.Geometry(x.shape, weight.shape, stride, padding, dtype)
        w2 = weight.reshape(geo.o, geo.k).astype(dtype, copy=False)
        ctx.save_for_backward(x, w2)
        ctx.geometry, ctx.weight_shape, ctx.has_bias, ctx.dtype = geo, weight.shape, bias is not None, dtype
        keep = ctx.needs_input_grad[1] and is_grad_enabled()  # the weight gradient will rebuild the columns
        out, ctx.kept = fast_conv.forward(x, w2, bias, geo, dtype, keep_columns=keep)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w2 = ctx.saved
        want_x, want_w, want_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
        gx, gw, gb = fast_conv.backward(x, w2, grad, ctx.geometry, ctx.dtype, want_x, want_w, want_b, ctx.kept)
        gw = gw.reshape(ctx.weight_shape) if want_w else None
        return gx, gw, gb, None, None


class Conv2dWindows(Function):
    """The readable reference of :class:`Conv2d`: every kernel window of the padded input as a
    view, one tensordot per direction.  Slower (the window view is copied whole); the fast
    path is tested against it (tests/test_conv_pool_fast_paths.py)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        kernel = weight.shape[2:]
        cols = windows(pad_spatial(x, padding), kernel, stride)  # (N, C, Ho, Wo, kh, kw)
        out = np.tensordot(cols, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)  # (N, O, Ho, Wo)
        if bias is not None:
            out = out + bias.reshape(1, -1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return np.ascontiguousarray(out)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        (ph, pw), kernel = ctx.padding, weight.shape[2:]
        xp = pad_spatial(x, ctx.padding)
        gw = np.tensordot(grad, windows(xp, kernel, ctx.stride), axes=([0, 2, 3], [0, 2, 3]))  # (O, C, kh, kw)
        cols = np.tensordot(weight, grad, axes=([0], [1]))  # (C, kh, kw, N, Ho, Wo)
        dxp = np.zeros((x.shape[1], x.shape[0]) + xp.shape[2:], grad.dtype)  # (C, N, Hp, Wp)
        add_windows_back(dxp, cols.transpose(0, 3, 1, 2, 4, 5), ctx.stride, grad.shape[2:])
        gx = dxp.transpose(1, 0, 2, 3)[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
        gb = grad.sum(axis=(0, 2, 3)) if ctx.has_bias else None
        return np.ascontiguousarray(gx), gw, gb, None, None


def conv2d_windows(x, weight, bias=None, stride=1, padding=0):
    """conv2d (groups 1, no dilation) by the reference path :class:`Conv2dWindows`."""
    x = operand(x, weight)
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    check_window_config("conv2d", x.shape[2:], weight.shape[2:], stride, padding)
    return Conv2dWindows.apply(x, weight, bias, stride, padding)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlate NCHW ``x`` with ``weight`` (out, in/groups, kh, kw), like ``torch.nn.functional.conv2d``.

    ``stride``, ``padding`` and ``dilation`` are ints or (height, width) pairs; ``groups``
    splits the channels into that many independent convolutions.  A 3-D input (C, H, W) is
    treated as a batch of one and returned without the batch axis.

    NaN and inf follow torch's own (native) CPU kernels: the input is zero-padded and the
    zeros ARE multiplied, so an inf weight tap that reads padding gives 0 · inf = NaN in that
    output (and an inf upstream gradient likewise in dW), while dx only ever sums real
    products.  (torch's oneDNN float32 path, used for some shapes, sometimes skips the padding
    instead: which one depends on the kernel oneDNN picks, so it is not a rule to follow.)
    """
    x = operand(x, weight)
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    dilation = pair(dilation, "dilation", "conv2d")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must be (out_channels, in_channels/groups, kh, kw), got shape {weight.shape}")
    if x.ndim == 3:
        out = conv2d(x.reshape((1,) + x.shape), weight, bias, stride, padding, dilation, groups)
        return out.reshape(out.shape[1:])
    if x.ndim != 4:
        raise ShapeError(f"conv2d: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ConfigurationError(f"conv2d: groups must be a positive integer, got {groups!r}")
    if min(dilation) < 1:
        raise ConfigurationError(f"conv2d: dilation must be at least 1, got {dilation}")
    if weight.shape[0] % groups:
        raise ShapeError(f"conv2d: weight of shape {weight.shape} has {weight.shape[0]} output channels, which "
                         f"{groups} groups do not divide")
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but weight expects "
            f"{weight.shape[1] * groups} (shape {weight.shape}" + (f", groups={groups})" if groups > 1 else ")")
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"conv2d: bias of shape {bias.shape} does not fit weight of shape {weight.shape}")
    if dilation != (1, 1) or groups != 1:
        check_window_config("conv2d", x.shape[2:], dilated_extent(weight.shape[2:], dilation), stride, padding)
        return GroupedConv2d.apply(x, weight, bias, stride, padding, dilation, int(groups))
    check_window_config("conv2d", x.shape[2:], weight.shape[2:], stride, padding)
    return Conv2d.apply(x, weight, bias, stride, padding)

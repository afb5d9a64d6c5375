"""Max and average pooling over NCHW windows, one fused node each.

Max pooling sends each window's gradient to its *first* maximum (row-major), as PyTorch
does: ties are common after ReLU, and feeding every tied element would drift from PyTorch.
A window with NaNs gives it to its *last* NaN, as torch's CPU kernel does (see _route_by_choice).
Average pooling counts padded zeros in the divisor (PyTorch's ``count_include_pad=True``).

Both loop over the kh*kw kernel offsets only: offset (i, j) of every window at once is the
strided slice ``x[:, :, i::sh, j::sw]`` (cropped to the output size), so the forward is
kh*kw elementwise maxima/sums over views (no window copies) and the backward adds the
gradient back through the same slices.  The first-maximum rule falls out of visiting the
offsets in row-major order and giving each window's gradient to the first offset whose
value equals the window maximum.  Non-overlapping pooling without padding (the common
2x2/2 case) reads the input in place; only padding makes a padded copy.  float32 2×2 / 2 max
pooling runs compiled kernels instead (:mod:`deltalab.fast.pooling`, the same bits).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import ConfigurationError, ShapeError
from ..fast import pooling as fast_pooling
from ..fast import threads
from .conv import check_window_config, pad_spatial
from ._util import pair


def _offset_slices(kernel, stride, out_hw):
    """(i, j, index) per kernel offset, row-major: index[(2, 3)] selects offset (i, j) of every window."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield (Ellipsis, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))


def _output_hw(xp_shape, kernel, stride):
    return tuple((n - k) // s + 1 for n, k, s in zip(xp_shape[2:], kernel, stride))


def _fold_windows(xp, kernel, stride, fold):
    """Each output cell folded over its window's entries, ``fold(part, window)`` in place, one
    kernel offset at a time; image by image over the batch (any thread split gives the same bits)."""
    out_hw = _output_hw(xp.shape, kernel, stride)
    out = np.empty(xp.shape[:2] + out_hw, xp.dtype)

    def images(lo, hi):
        part, source = out[lo:hi], xp[lo:hi]
        offsets = _offset_slices(kernel, stride, out_hw)
        np.copyto(part, source[next(offsets)])
        for index in offsets:
            fold(part, source[index])

    threads.over_batch(xp.shape[0], xp.size, images)
    return out


class MaxPool2d(Function):
    fresh_gradients = True  # the input gradient is a new array (a view of one when padded: copied)

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.kernel, ctx.stride, ctx.padding = kernel, stride, padding
        compiled = ctx.compiled = fast_pooling.kernels(x, kernel, stride, padding)
        if compiled is not None:  # float32 2×2 / 2: one compiled pass (deltalab.fast.pooling)
            out, where = fast_pooling.forward(compiled, x)
            ctx.save_for_backward(where)
            return out
        xp = pad_spatial(x, padding, value=-np.inf)
        out = _fold_windows(xp, kernel, stride, lambda part, window: np.maximum(part, window, out=part))
        # np.maximum propagates NaN, like torch
        ctx.save_for_backward(xp, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.compiled is not None:
            (where,) = ctx.saved
            return fast_pooling.backward(ctx.compiled, grad, where), None, None, None
        xp, out = ctx.saved
        if np.isnan(out).any() or (any(ctx.padding) and np.isneginf(out).any()):
            return _route_by_choice(xp, out, grad, ctx.kernel, ctx.stride, ctx.padding), None, None, None
        # g * mask is the fast way to route gradients, but inf * 0 = nan would leak into
        # positions that are not the maximum; such gradients take the slower masked copy.
        finite = bool(np.isfinite(grad).all())
        tiles = _tiles(xp.shape, ctx.kernel, ctx.stride, out.shape)
        dxp = (np.empty if tiles and finite else np.zeros)(xp.shape, dtype=grad.dtype)
        overlap = any(s < k for s, k in zip(ctx.stride, ctx.kernel))
        offsets = list(_offset_slices(ctx.kernel, ctx.stride, out.shape[2:]))

        def images(lo, hi):
            source, best, upstream, dx = xp[lo:hi], out[lo:hi], grad[lo:hi], dxp[lo:hi]
            taken = None  # windows whose gradient has already gone to an earlier offset
            last = len(offsets) - 1
            for k, index in enumerate(offsets):
                if taken is None:
                    first = taken = source[index] == best
                elif k == last:
                    # no NaN here (those windows take _route_by_choice), so a window's maximum is
                    # one of its entries: the windows left take it from the last offset
                    first = np.logical_not(taken)
                else:
                    is_max = source[index] == best
                    first = np.greater(is_max, taken)  # is_max and not taken
                    if k + 1 < last:
                        taken = np.logical_or(taken, is_max)
                    else:
                        taken = np.logical_or(taken, is_max, out=is_max)
                target = dx[index]
                if not finite:
                    np.copyto(target, target + upstream, where=first)
                elif overlap:
                    target += upstream * first
                else:  # disjoint windows: every slot of target belongs to this offset alone
                    np.multiply(upstream, first, out=target)

        threads.over_batch(xp.shape[0], xp.size, images)
        return _crop(dxp, ctx.padding), None, None, None


def window_choice(xp, out, kernel, stride, padding):
    """The kernel offset (row-major number) each window's maximum comes from, as torch's CPU
    kernel picks it: it scans a window row-major and takes an element when ``val > max or
    isnan(val)``, so the LAST NaN of a window with NaNs, the first maximum otherwise, and never
    padding (a window of only -inf takes its first real element)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    rows = np.arange(out.shape[2]) * sh
    cols = np.arange(out.shape[3]) * sw
    height, width = xp.shape[2] - 2 * ph, xp.shape[3] - 2 * pw
    nan_window = np.isnan(out)
    choice = np.full(out.shape, -1)
    for k, index in enumerate(_offset_slices(kernel, stride, out.shape[2:])):
        i, j = divmod(k, kw)
        real = (((rows + i >= ph) & (rows + i < ph + height))[:, None]
                & ((cols + j >= pw) & (cols + j < pw + width))[None, :])
        values = xp[index]
        first_max = (values == out) & (choice < 0) & ~nan_window
        last_nan = np.isnan(values)  # only in NaN windows; a later NaN overrides
        np.copyto(choice, k, where=(first_max | last_nan) & real)
    return choice


def _route_by_choice(xp, out, grad, kernel, stride, padding):
    """Max pooling's gradient for the windows the fast rule cannot decide (NaN, or -inf next
    to padding): each window's gradient goes to the element ``window_choice`` picks."""
    choice = window_choice(xp, out, kernel, stride, padding)
    dxp = np.zeros(xp.shape, dtype=grad.dtype)
    for k, index in enumerate(_offset_slices(kernel, stride, out.shape[2:])):
        target = dxp[index]
        np.copyto(target, target + grad, where=choice == k)
    return _crop(dxp, padding)


def max_indices(xp, out, kernel, stride, padding):
    """``return_indices``: each maximum's flat position h·W + w in its (unpadded) input plane."""
    choice = window_choice(xp, out, kernel, stride, padding)
    (kw, (sh, sw), (ph, pw)) = kernel[1], stride, padding
    width = xp.shape[3] - 2 * pw
    row = np.arange(out.shape[2])[:, None] * sh + choice // kw - ph
    col = np.arange(out.shape[3])[None, :] * sw + choice % kw - pw
    return (row * width + col).astype(np.int64)


class AvgPool2d(Function):
    fresh_gradients = True

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        xp = pad_spatial(x, padding)
        out = _fold_windows(xp, kernel, stride, lambda part, window: np.add(part, window, out=part))
        out /= kernel[0] * kernel[1]
        ctx.xp_shape, ctx.kernel, ctx.stride, ctx.padding = xp.shape, kernel, stride, padding
        return out

    @staticmethod
    def backward(ctx, grad):
        kh, kw = ctx.kernel
        share = grad / (kh * kw)
        tiles = _tiles(ctx.xp_shape, ctx.kernel, ctx.stride, grad.shape)
        dxp = (np.empty if tiles else np.zeros)(ctx.xp_shape, dtype=grad.dtype)

        def images(lo, hi):
            dx, part = dxp[lo:hi], share[lo:hi]
            for index in _offset_slices(ctx.kernel, ctx.stride, grad.shape[2:]):
                if tiles:
                    dx[index] = part
                else:
                    dx[index] += part

        threads.over_batch(grad.shape[0], dxp.size, images)
        return _crop(dxp, ctx.padding), None, None, None


def _tiles(xp_shape, kernel, stride, out_shape):
    """True when the windows are disjoint and cover every input element exactly once."""
    return tuple(stride) == tuple(kernel) and all(
        n == k * m for n, k, m in zip(xp_shape[2:], kernel, out_shape[2:])
    )


def _crop(dxp, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return dxp
    return dxp[:, :, ph : dxp.shape[2] - ph, pw : dxp.shape[3] - pw]


def _pool(function, op_name, x, kernel_size, stride, padding, return_indices=False):
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
    batched = x if x.ndim == 4 else x.reshape((1,) + x.shape)
    out = function.apply(batched, kernel, stride, padding)
    if return_indices:
        from ..tensor import from_array

        xp = pad_spatial(batched.data, padding, value=-np.inf)
        indices = from_array(max_indices(xp, out.data, kernel, stride, padding))
        return (out, indices) if x.ndim == 4 else (out.reshape(out.shape[1:]), indices.reshape(indices.shape[1:]))
    return out if x.ndim == 4 else out.reshape(out.shape[1:])


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each kernel window per channel; ``stride`` defaults to ``kernel_size``.

    ``return_indices=True`` also returns where each maximum is (h·W + w in its input plane,
    int64, as torch).  ``dilation`` and ``ceil_mode`` exist for torch's signature: only their
    defaults are supported."""
    if pair(dilation, "dilation", "max_pool2d") != (1, 1):
        raise ConfigurationError(f"max_pool2d: dilation={dilation} is not supported (only 1)")
    if ceil_mode:
        raise ConfigurationError("max_pool2d: ceil_mode=True is not supported (output sizes round down)")
    return _pool(MaxPool2d, "max_pool2d", x, kernel_size, stride, padding, return_indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each kernel window per channel; ``stride`` defaults to ``kernel_size``."""
    return _pool(AvgPool2d, "avg_pool2d", x, kernel_size, stride, padding)

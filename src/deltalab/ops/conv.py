"""2-D convolution (cross-correlation, no kernel flip) on NCHW, one fused node.

Forward: im2col into a channel-major column matrix ``cols`` of shape (C*kh*kw, N*Ho*Wc),
then ONE matmul ``W (O, C*kh*kw) @ cols``.  Backward: ``dW = dY @ cols.T`` and
``dcols = W.T @ dY`` (one matmul each), then dcols is added back offset by offset
(a loop over the kh*kw kernel offsets only, never over batch, pixels or channels).

Why this layout (benchmarks/README.md has the numbers): every matmul has contiguous
operands, so BLAS runs at full speed with no hidden transposed copies; and with stride 1 in
width the output is computed on the *padded* width ``Wc = Wp`` (``Wp - Wo`` throw-away
columns per row), which makes each kernel offset a plain shift of the flattened padded
image: im2col and its adjoint become kh*kw copies/adds of long contiguous runs instead of
many rows of ``Wo`` elements.  The throw-away columns get a zero upstream gradient, so
they contribute exactly nothing to dW or dX.  Work buffers (padded input, column
gradients) are reused between calls; the columns saved for backward come from a small
pool and return to it when the graph is freed.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from ..autograd import Function, is_grad_enabled
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


class _Workspace(threading.local):
    """Per-thread work buffers reused between calls (fresh large arrays cost page faults).

    ``scratch`` arrays never leave an op call.  ``zeroed`` arrays are created zero-filled and
    callers only ever write the same interior region, so their borders stay zero.  ``take``
    hands out a buffer that is owned by the caller until ``give`` returns it.
    """

    max_keys = 24

    def __init__(self):
        self.buffers = {}
        self.pool = {}

    def _get(self, key, make):
        array = self.buffers.get(key)
        if array is None:
            if len(self.buffers) >= self.max_keys:
                self.buffers.clear()
            array = self.buffers[key] = make()
        return array

    def scratch(self, tag, shape, dtype):
        return self._get((tag, shape, dtype), lambda: np.empty(shape, dtype))

    def zeroed(self, tag, shape, dtype):
        return self._get((tag, shape, dtype), lambda: np.zeros(shape, dtype))

    def take(self, shape, dtype):
        free = self.pool.get((shape, np.dtype(dtype)))
        return free.pop() if free else np.empty(shape, dtype)

    def give(self, array):
        if len(self.pool) >= self.max_keys:
            self.pool.clear()
        free = self.pool.setdefault((array.shape, array.dtype), [])
        if len(free) < 2:
            free.append(array)


_workspace = _Workspace()


def _release_later(ctx, array):
    """Return ``array`` to the pool once the graph node that saved it is garbage."""
    workspace = _workspace
    weakref.finalize(ctx, workspace.give, array)


class _Geometry:
    """Sizes of one conv call; ``wc`` is the computed output width (``wp`` when wide)."""

    def __init__(self, x_shape, w_shape, stride, padding):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        (self.sh, self.sw), (self.ph, self.pw) = stride, padding
        self.hp, self.wp = self.h + 2 * self.ph, self.w + 2 * self.pw
        self.ho = output_size(self.h, self.kh, self.sh, self.ph)
        self.wo = output_size(self.w, self.kw, self.sw, self.pw)
        # Wide rows (computing Wp - Wo extra columns) pay when they are few.
        self.wide = self.sw == 1 and 4 * (self.wp - self.wo) <= self.wo
        self.wc = self.wp if self.wide else self.wo
        self.k = self.c * self.kh * self.kw
        self.m = self.n * self.ho * self.wc
        self.plane = self.hp * self.wp
        self.flat_size = self.c * self.n * self.plane + self.kw  # wide rows may run kw-1 past the end

    def key(self):
        return (self.n, self.c, self.h, self.w, self.o, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw)

    def offset_view(self, flat, i, j):
        """(C, N, Ho, Wc) view of the channel-major padded image shifted by kernel offset (i, j)."""
        s = flat.itemsize
        return as_strided(
            flat[i * self.wp + j :],
            shape=(self.c, self.n, self.ho, self.wc),
            strides=(self.n * self.plane * s, self.plane * s, self.sh * self.wp * s, self.sw * s),
            writeable=True,
        )

    def interior(self, flat):
        """(C, N, H, W) view of the unpadded region of a channel-major padded image."""
        planes = flat[: self.c * self.n * self.plane].reshape(self.c, self.n, self.hp, self.wp)
        return planes[:, :, self.ph : self.ph + self.h, self.pw : self.pw + self.w]


def _im2col(x, geo, dtype):
    """Columns (C, kh, kw, N, Ho, Wc) of x: cols[c, i, j, n, y, z] = xpad[n, c, y*sh + i, z*sw + j]."""
    flat = _workspace.zeroed("conv-x", (geo.flat_size,), dtype)
    geo.interior(flat)[...] = x.transpose(1, 0, 2, 3)  # borders stay zero: never written
    cols = _workspace.take((geo.c, geo.kh, geo.kw, geo.n, geo.ho, geo.wc), dtype)
    for i in range(geo.kh):
        for j in range(geo.kw):
            cols[:, i, j] = geo.offset_view(flat, i, j)
    return cols


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        dtype = np.result_type(x, weight) if bias is None else np.result_type(x, weight, bias)
        geo = _Geometry(x.shape, weight.shape, stride, padding)
        w2 = weight.reshape(geo.o, geo.k).astype(dtype, copy=False)
        cols = _im2col(x, geo, dtype)
        prod = _workspace.scratch("conv-out", (geo.o, geo.m), dtype)
        np.matmul(w2, cols.reshape(geo.k, geo.m), out=prod)
        prod = prod.reshape(geo.o, geo.n, geo.ho, geo.wc)[..., : geo.wo].transpose(1, 0, 2, 3)
        out = np.empty((geo.n, geo.o, geo.ho, geo.wo), dtype)
        if bias is None:
            np.copyto(out, prod)
        else:
            np.add(prod, bias.reshape(1, geo.o, 1, 1), out=out)
        if is_grad_enabled() and any(ctx.needs_input_grad[:2]):
            # dW needs the columns; dX needs only the weight.
            saved_cols = cols if ctx.needs_input_grad[1] else None
            ctx.save_for_backward(saved_cols, w2)
            if saved_cols is not None:
                _release_later(ctx, cols)
            else:
                _workspace.give(cols)
        else:
            _workspace.give(cols)
        ctx.geometry, ctx.weight_shape, ctx.has_bias, ctx.dtype = geo, weight.shape, bias is not None, dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        cols, w2 = ctx.saved
        geo = ctx.geometry
        gx = gw = gb = None
        # Upstream gradient in the columns' layout (O, N, Ho, Wc); the wide columns stay zero.
        g = _workspace.zeroed("conv-grad", (geo.o, geo.n, geo.ho, geo.wc), ctx.dtype)
        g[..., : geo.wo] = grad.transpose(1, 0, 2, 3)
        g2 = g.reshape(geo.o, geo.m)
        if ctx.needs_input_grad[1]:
            gw = (g2 @ cols.reshape(geo.k, geo.m).T).reshape(ctx.weight_shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(axis=1)
        if ctx.needs_input_grad[0]:
            dcols = _workspace.scratch("conv-dcols", (geo.k, geo.m), ctx.dtype)
            np.matmul(w2.T, g2, out=dcols)
            dcols = dcols.reshape(geo.c, geo.kh, geo.kw, geo.n, geo.ho, geo.wc)
            flat = _workspace.scratch("conv-dx", (geo.flat_size,), ctx.dtype)
            flat.fill(0)
            # Offset views never overlap themselves; a wide row's spill into the next image
            # adds the exact zeros of a throw-away column.
            for i in range(geo.kh):
                for j in range(geo.kw):
                    view = geo.offset_view(flat, i, j)
                    view += dcols[:, i, j]
            gx = np.ascontiguousarray(geo.interior(flat).transpose(1, 0, 2, 3))
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


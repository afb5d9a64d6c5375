"""2-D convolution (cross-correlation, no kernel flip) on NCHW, one fused node.

Forward: im2col into a column matrix ``cols`` (C*kh*kw, rows*N*Wc), one matmul
``W (O, C*kh*kw) @ cols`` per band of output rows.  Backward, per band: the columns are
rebuilt, ``dW += dY @ cols.T``, ``dcols = W.T @ dY`` and dcols is added back offset by
offset (loops over the kh*kw kernel offsets and the bands only, never over batch, pixels
or channels).

Why this shape (benchmarks/README.md has the numbers): every matmul has contiguous
operands, so BLAS runs at full speed with no hidden transposed copies.  The padded input
is stored (C, Hp, N, pitch), so one kernel offset is one shift of the whole buffer and the
columns of a (channel, offset) pair are long contiguous runs.  With stride 1 in width the
output is computed on the full row pitch (a few throw-away columns per row; their upstream
gradient is zero, so they add nothing to dW or dX).  Bands of ~3 MiB of columns stay in
cache from im2col to the matmuls to the scatter back, and the work buffers are reused
between calls (fresh large arrays cost page faults).
"""
from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

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


class _Workspace(threading.local):
    """Per-thread work buffers reused between calls (fresh large arrays cost page faults).

    ``scratch`` arrays never leave an op call.  ``zeroed`` arrays are created zero-filled and
    callers only ever write the same region of them, so the rest stays zero.
    """

    max_keys = 24

    def __init__(self):
        self.buffers = {}

    def _get(self, key, make):
        array = self.buffers.get(key)
        if array is None:
            if len(self.buffers) >= self.max_keys:
                self.buffers.clear()
            array = self.buffers[key] = make()
        return array

    def scratch(self, tag, shape, dtype):
        return self._get((tag, shape, np.dtype(dtype)), lambda: np.empty(shape, dtype))

    def zeroed(self, tag, shape, dtype):
        return self._get((tag, shape, np.dtype(dtype)), lambda: np.zeros(shape, dtype))


_workspace = _Workspace()

# Output rows per chunk are chosen so one chunk's columns take about this many bytes: small
# enough to stay in cache between im2col, the matmuls and the scatter back, large enough
# for BLAS to run at full speed (measured on 512 KiB L2 / 32 MiB L3: 2-4 MiB is best).
_CHUNK_BYTES = 3 << 20


class _Geometry:
    """Sizes and the padded-image layout of one conv call.

    The input is copied into a flat buffer laid out (C, Hp, N, pitch): for each channel and
    padded row, that row of every image side by side.  A kernel offset (i, j) then shifts
    the whole buffer by ``i*N*pitch + j`` elements, so the columns of one (channel, offset)
    for a band of output rows are ONE long contiguous run (stride 1 in height and width).

    Wide layout (stride 1 in width): pitch = W + pw, so one run of pw zeros is the right
    padding of an image row *and* the left padding of the next, and outputs are computed on
    ``wc = pitch`` columns, of which the last ``pitch - wo`` are thrown away.  Plain layout:
    pitch = W + 2*pw and exactly ``wo`` columns are computed.
    """

    def __init__(self, x_shape, w_shape, stride, padding):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        (self.sh, self.sw), (self.ph, self.pw) = stride, padding
        self.hp = self.h + 2 * self.ph
        self.ho = output_size(self.h, self.kh, self.sh, self.ph)
        self.wo = output_size(self.w, self.kw, self.sw, self.pw)
        narrow = self.w + self.pw
        # Wide rows pay when the thrown-away columns are few.
        self.wide = self.sw == 1 and self.wo <= narrow and 4 * (narrow - self.wo) <= self.wo
        if self.wide:
            self.pitch, self.col0, self.lead, self.wc = narrow, 0, self.pw, narrow
        else:
            self.pitch, self.col0, self.lead, self.wc = self.w + 2 * self.pw, self.pw, 0, self.wo
        self.k = self.c * self.kh * self.kw
        self.per_image = self.ho * self.wc
        # Large output images: per-image matmuls W @ cols[n] are long enough for BLAS and
        # write NCHW directly, saving the layout transposes (A/B-timed: conv c 0.81x,
        # conv a equal, conv b 1.26x slower -- hence the size rule).
        self.image_major = self.wide and self.per_image >= 512
        self.image_plane = self.hp * self.pitch
        self.row = self.n * self.pitch  # one padded row of every image
        self.per_row = self.n * self.wc  # columns per output row
        self.channel = self.hp * self.row
        # the lead zeros, the channels, and room for a wide row's last read past the end
        self.flat_size = self.lead + self.c * self.channel + self.kw

    def image_chunk(self, itemsize):
        """Images per chunk (image-major layout)."""
        return max(1, min(self.n, _CHUNK_BYTES // max(1, self.k * self.per_image * itemsize)))

    def image_view(self, flat, i, j, first, count):
        """Image-major layout (N, C, Hp, pitch): (count, C, Ho, Wc) view shifted by offset (i, j)."""
        s = flat.itemsize
        start = self.lead + first * self.c * self.image_plane + i * self.pitch + j - self.pw + self.col0
        return as_strided(
            flat[start:],
            shape=(count, self.c, self.ho, self.wc),
            strides=(self.c * self.image_plane * s, self.image_plane * s, self.sh * self.pitch * s, self.sw * s),
            writeable=True,
        )

    def image_interior(self, flat):
        """(N, C, H, W) view of the unpadded region of an image-major flat padded buffer."""
        planes = flat[self.lead : self.lead + self.n * self.c * self.image_plane]
        planes = planes.reshape(self.n, self.c, self.hp, self.pitch)
        return planes[:, :, self.ph : self.ph + self.h, self.col0 : self.col0 + self.w]

    def chunk(self, itemsize):
        """Output rows per chunk."""
        return max(1, min(self.ho, _CHUNK_BYTES // max(1, self.k * self.per_row * itemsize)))

    def offset_view(self, flat, i, j, first, count):
        """(C, count, N, Wc) view: output rows first.. of the padded input shifted by offset (i, j)."""
        s = flat.itemsize
        start = self.lead + (first * self.sh + i) * self.row + j - self.pw + self.col0
        return as_strided(
            flat[start:],
            shape=(self.c, count, self.n, self.wc),
            strides=(self.channel * s, self.sh * self.row * s, self.pitch * s, self.sw * s),
            writeable=True,
        )

    def interior(self, flat):
        """(C, H, N, W) view of the unpadded image region of a flat padded buffer."""
        planes = flat[self.lead : self.lead + self.c * self.channel]
        planes = planes.reshape(self.c, self.hp, self.n, self.pitch)
        return planes[:, self.ph : self.ph + self.h, :, self.col0 : self.col0 + self.w]


def _padded_input(x, geo, dtype):
    flat = _workspace.zeroed("conv-x", (geo.flat_size,), dtype)
    geo.interior(flat)[...] = x.transpose(1, 2, 0, 3)  # padding is never written: stays zero
    return flat


def _im2col(flat, geo, cols, first, count):
    """cols (K, count*N*Wc): cols[(c, i, j), (y, n, z)] = xpad[n, c, (first + y)*sh + i, z*sw + j]."""
    cols = cols[:, : count * geo.per_row].reshape(geo.c, geo.kh, geo.kw, count, geo.n, geo.wc)
    for i in range(geo.kh):
        for j in range(geo.kw):
            cols[:, i, j] = geo.offset_view(flat, i, j, first, count)


def _forward_per_image(x, w2, bias, geo, dtype):
    flat = _workspace.zeroed("conv-xi", (geo.flat_size,), dtype)
    geo.image_interior(flat)[...] = x
    chunk = geo.image_chunk(np.dtype(dtype).itemsize)
    cols = _workspace.scratch("conv-icols", (chunk, geo.c, geo.kh, geo.kw, geo.ho, geo.wc), dtype)
    prod = _workspace.scratch("conv-iprod", (chunk, geo.o, geo.per_image), dtype)
    out = np.empty((geo.n, geo.o, geo.ho, geo.wo), dtype)
    for first in range(0, geo.n, chunk):
        count = min(chunk, geo.n - first)
        _image_im2col(flat, geo, cols[:count], first, count)
        part = prod[:count]
        np.matmul(w2, cols[:count].reshape(count, geo.k, geo.per_image), out=part)
        part = part.reshape(count, geo.o, geo.ho, geo.wc)[..., : geo.wo]
        if bias is None:
            out[first : first + count] = part
        else:
            np.add(part, bias.reshape(1, geo.o, 1, 1), out=out[first : first + count])
    return out


def _image_im2col(flat, geo, cols, first, count):
    for i in range(geo.kh):
        for j in range(geo.kw):
            cols[:, :, i, j] = geo.image_view(flat, i, j, first, count)


def _backward_per_image(x, w2, grad, geo, dtype, want_x, want_w, want_b):
    chunk = geo.image_chunk(np.dtype(dtype).itemsize)
    g = _workspace.zeroed("conv-igrad", (chunk, geo.o, geo.ho, geo.wc), dtype)  # wide columns stay 0
    gw = np.zeros((geo.o, geo.k), dtype) if want_w else None
    gb = np.zeros(geo.o, dtype) if want_b else None
    if want_w:
        flat = _workspace.zeroed("conv-xi", (geo.flat_size,), dtype)
        geo.image_interior(flat)[...] = x
        cols = _workspace.scratch("conv-icols", (chunk, geo.c, geo.kh, geo.kw, geo.ho, geo.wc), dtype)
        gw_parts = _workspace.scratch("conv-igw", (chunk, geo.o, geo.k), dtype)
    if want_x:
        dflat = _workspace.scratch("conv-idx", (geo.flat_size,), dtype)
        dflat.fill(0)
        dcols = _workspace.scratch("conv-idcols", (chunk, geo.k, geo.per_image), dtype)
    for first in range(0, geo.n, chunk):
        count = min(chunk, geo.n - first)
        g[:count, :, :, : geo.wo] = grad[first : first + count]
        g3 = g[:count].reshape(count, geo.o, geo.per_image)
        if want_w:
            _image_im2col(flat, geo, cols[:count], first, count)
            cols3 = cols[:count].reshape(count, geo.k, geo.per_image)
            np.matmul(g3, cols3.transpose(0, 2, 1), out=gw_parts[:count])
            gw += gw_parts[:count].sum(axis=0)
        if want_b:
            gb += g3.sum(axis=(0, 2))
        if want_x:
            part = dcols[:count]
            np.matmul(w2.T, g3, out=part)
            part = part.reshape(count, geo.c, geo.kh, geo.kw, geo.ho, geo.wc)
            for i in range(geo.kh):
                for j in range(geo.kw):
                    view = geo.image_view(dflat, i, j, first, count)
                    view += part[:, :, i, j]
    gx = np.array(geo.image_interior(dflat)) if want_x else None
    return gx, gw, gb


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        dtype = np.result_type(x, weight) if bias is None else np.result_type(x, weight, bias)
        geo = _Geometry(x.shape, weight.shape, stride, padding)
        w2 = weight.reshape(geo.o, geo.k).astype(dtype, copy=False)
        ctx.save_for_backward(x, w2)
        ctx.geometry, ctx.weight_shape, ctx.has_bias, ctx.dtype = geo, weight.shape, bias is not None, dtype
        if geo.image_major:
            return _forward_per_image(x, w2, bias, geo, dtype)
        flat = _padded_input(x, geo, dtype)
        chunk = geo.chunk(np.dtype(dtype).itemsize)
        cols = _workspace.scratch("conv-cols", (geo.k, chunk * geo.per_row), dtype)
        prod = _workspace.scratch("conv-prod", (geo.o, chunk * geo.per_row), dtype)
        out = np.empty((geo.n, geo.o, geo.ho, geo.wo), dtype)
        bias4 = None if bias is None else bias.reshape(1, geo.o, 1, 1)
        for first in range(0, geo.ho, chunk):
            count = min(chunk, geo.ho - first)
            width = count * geo.per_row
            _im2col(flat, geo, cols, first, count)
            part = prod[:, :width]
            np.matmul(w2, cols[:, :width], out=part)
            part = part.reshape(geo.o, count, geo.n, geo.wc)[..., : geo.wo].transpose(2, 0, 1, 3)
            if bias4 is None:
                out[:, :, first : first + count] = part
            else:
                np.add(part, bias4, out=out[:, :, first : first + count])
        # Backward rebuilds the columns band by band (cheap, and cache-hot) from x.
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w2 = ctx.saved
        geo, dtype = ctx.geometry, ctx.dtype
        want_x, want_w, want_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
        if geo.image_major:
            gx, gw, gb = _backward_per_image(x, w2, grad, geo, dtype, want_x, want_w, want_b)
            return gx, None if gw is None else gw.reshape(ctx.weight_shape), gb, None, None
        chunk = geo.chunk(np.dtype(dtype).itemsize)
        # Upstream gradient in the columns' layout (O, rows, N, Wc); thrown-away columns stay 0,
        # so they add nothing to dW and scatter exact zeros into padding in dX.
        g = _workspace.zeroed("conv-grad", (geo.o, chunk, geo.n, geo.wc), dtype)
        gw = np.zeros((geo.o, geo.k), dtype) if want_w else None
        gb = np.zeros(geo.o, dtype) if want_b else None
        if want_w:
            flat = _padded_input(x, geo, dtype)
            cols = _workspace.scratch("conv-cols", (geo.k, chunk * geo.per_row), dtype)
            gw_part = _workspace.scratch("conv-gw", (geo.o, geo.k), dtype)
        if want_x:
            dflat = _workspace.scratch("conv-dx", (geo.flat_size,), dtype)
            dflat.fill(0)
            dcols = _workspace.scratch("conv-dcols", (geo.k, chunk * geo.per_row), dtype)
        for first in range(0, geo.ho, chunk):
            count = min(chunk, geo.ho - first)
            width = count * geo.per_row
            g[:, :count, :, : geo.wo] = grad[:, :, first : first + count].transpose(1, 2, 0, 3)
            g2 = g[:, :count].reshape(geo.o, width)
            if want_w:
                _im2col(flat, geo, cols, first, count)
                np.matmul(g2, cols[:, :width].T, out=gw_part)
                gw += gw_part
            if want_b:
                gb += g2.sum(axis=1)
            if want_x:
                part = dcols[:, :width]
                np.matmul(w2.T, g2, out=part)
                part = part.reshape(geo.c, geo.kh, geo.kw, count, geo.n, geo.wc)
                # An offset view never overlaps itself; a wide row's spill past its image row
                # only adds the exact zeros of thrown-away columns to padding.
                for i in range(geo.kh):
                    for j in range(geo.kw):
                        view = geo.offset_view(dflat, i, j, first, count)
                        view += part[:, i, j]
        gx = np.ascontiguousarray(geo.interior(dflat).transpose(2, 0, 1, 3)) if want_x else None
        gw = gw.reshape(ctx.weight_shape) if want_w else None
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


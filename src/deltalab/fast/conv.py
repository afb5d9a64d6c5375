"""conv2d's fast path: the im2col layouts, work buffers and parallel sections.

The maths (cross-correlation, its two gradients) is :class:`deltalab.ops.conv.Conv2d`; its
readable reference, :func:`deltalab.ops.conv.conv2d_windows`, is what this path is tested
against (tests/test_conv_pool_fast_paths.py).

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

Large output images run per-image products instead (``Geometry.image_major``); in float32 on
plain rows, with the bias as a row of ones in the columns, the forward's columns kept for dW and
dX added back by a compiled scatter (:mod:`.conv_kernels`, the NumPy scatter's bits).

float32 training with 3×3 kernels at stride 1 and enough channels runs Winograd F(2×2, 3×3)
instead (the section at the end: 2.25× fewer multiplies, compiled transforms); float64 -- every
worked solution -- and everything else keeps the direct path above.
"""
from __future__ import annotations

import threading
from functools import partial

import numpy as np

from . import kernels as compiled
from . import threads
from .tuning import current as current_tuning

__all__ = ["Geometry", "backward", "forward", "parallel_ranges"]


class _Workspace(threading.local):
    """Per-thread work buffers reused between calls (fresh large arrays cost page faults).

    The only buffer cache of the convolution lives here (one per thread).  ``scratch``
    arrays are fully written before they are read in every op call, so (tag, shape, dtype)
    keys them.  ``zeroed`` arrays are created zero-filled and a call writes only part of
    them (the interior of a padded image, the kept columns of a gradient), relying on the
    rest staying zero: their key is the whole geometry of the call (input and kernel shape,
    stride, padding), because two geometries with the same buffer shape write different
    regions -- keyed by shape only, a later call read the earlier call's leftovers as
    padding.
    """

    max_keys = 64  # the Winograd path alone holds a dozen buffers per geometry

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

    def zeroed(self, tag, shape, dtype, geometry):
        key = (tag, shape, np.dtype(dtype), geometry.key)
        return self._get(key, lambda: np.zeros(shape, dtype))


_workspace = _Workspace()

# Output rows per chunk are chosen so one chunk's columns take about Tuning.conv_chunk_bytes:
# small enough to stay in cache between im2col, the matmuls and the scatter back, large
# enough for BLAS to run at full speed (benchmarks/README.md, "Tuning rules").


class Geometry:
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

    def __init__(self, x_shape, w_shape, stride, padding, dtype=None):
        self.w_shape, self.stride, self.padding, self.dtype = w_shape, stride, padding, dtype
        plain_images = dtype is not None and np.dtype(dtype) == np.float32
        # everything that decides which region of a buffer a call writes
        self.key = (tuple(x_shape), tuple(w_shape), tuple(stride), tuple(padding), plain_images)
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        (self.sh, self.sw), (self.ph, self.pw) = stride, padding
        self.hp = self.h + 2 * self.ph
        self.ho = (self.h + 2 * self.ph - self.kh) // self.sh + 1  # ops.conv.output_size
        self.wo = (self.w + 2 * self.pw - self.kw) // self.sw + 1
        narrow = self.w + self.pw
        # Wide rows pay when the thrown-away columns are few.
        self.wide = self.sw == 1 and self.wo <= narrow and 4 * (narrow - self.wo) <= self.wo
        # Large output images: per-image matmuls W @ cols[n] are long enough for BLAS and
        # write NCHW directly, saving the layout transposes (A/B-timed: conv c 0.81x,
        # conv a equal, conv b 1.26x slower -- hence the size rule).
        self.image_major = self.wide and self.ho * narrow >= 512
        if self.image_major and plain_images:
            # float32 per-image products on plain rows (exactly wo columns): the product's
            # output is the NCHW output itself and the upstream gradient its own column
            # layout, no cropping copies (conv c, 1 thread: forward + backward 7.4 -> 6.2 ms
            # with the compiled column scatter).  float64 -- every worked solution -- keeps
            # the wide rows and their exact old bits.
            self.wide = False
        if self.wide:
            self.pitch, self.col0, self.lead, self.wc = narrow, 0, self.pw, narrow
        else:
            self.pitch, self.col0, self.lead, self.wc = self.w + 2 * self.pw, self.pw, 0, self.wo
        self.k = self.c * self.kh * self.kw
        self.per_image = self.ho * self.wc
        self.image_plane = self.hp * self.pitch
        self.row = self.n * self.pitch  # one padded row of every image
        self.per_row = self.n * self.wc  # columns per output row
        self.channel = self.hp * self.row
        # the lead zeros, the channels, and room for a wide row's last read past the end
        self.flat_size = self.lead + self.c * self.channel + self.kw

    def images(self, count):
        """The geometry of a batch of ``count`` of these images."""
        return Geometry((count, self.c, self.h, self.w), self.w_shape, self.stride, self.padding, self.dtype)

    def image_chunk(self, itemsize):
        """Images per chunk (image-major layout)."""
        return max(1, min(self.n, current_tuning().conv_chunk_bytes // max(1, self.k * self.per_image * itemsize)))

    def image_windows(self, flat, first, count):
        """Image-major layout (N, C, Hp, pitch): (count, C, kh, kw, Ho, Wc) view of every kernel
        offset of images first..; [:, :, i, j] is the input shifted by offset (i, j)."""
        s = flat.itemsize
        start = self.lead + first * self.c * self.image_plane - self.pw + self.col0
        shape = (count, self.c, self.kh, self.kw, self.ho, self.wc)
        strides = (self.c * self.image_plane, self.image_plane, self.pitch, 1, self.sh * self.pitch, self.sw)
        # np.ndarray, not as_strided: ~10x less Python overhead, and it checks the bounds
        return np.ndarray(shape, flat.dtype, flat, start * s, tuple(v * s for v in strides))

    def image_interior(self, flat):
        """(N, C, H, W) view of the unpadded region of an image-major flat padded buffer."""
        planes = flat[self.lead : self.lead + self.n * self.c * self.image_plane]
        planes = planes.reshape(self.n, self.c, self.hp, self.pitch)
        return planes[:, :, self.ph : self.ph + self.h, self.col0 : self.col0 + self.w]

    def largest_product(self, itemsize):
        """M·N·K of the largest single BLAS call of a serial forward or backward."""
        if self.image_major:
            return self.o * self.k * self.per_image
        return self.o * self.k * self.chunk(itemsize) * self.per_row

    def chunk(self, itemsize):
        """Output rows per chunk."""
        return max(1, min(self.ho, current_tuning().conv_chunk_bytes // max(1, self.k * self.per_row * itemsize)))

    def windows(self, flat, first, count):
        """(C, kh, kw, count, N, Wc) view of every kernel offset for output rows first..;
        [:, i, j] is the padded input shifted by offset (i, j)."""
        s = flat.itemsize
        start = self.lead + first * self.sh * self.row - self.pw + self.col0
        shape = (self.c, self.kh, self.kw, count, self.n, self.wc)
        strides = (self.channel, self.row, 1, self.sh * self.row, self.pitch, self.sw)
        return np.ndarray(shape, flat.dtype, flat, start * s, tuple(v * s for v in strides))

    def interior(self, flat):
        """(C, H, N, W) view of the unpadded image region of a flat padded buffer."""
        planes = flat[self.lead : self.lead + self.c * self.channel]
        planes = planes.reshape(self.c, self.hp, self.n, self.pitch)
        return planes[:, self.ph : self.ph + self.h, :, self.col0 : self.col0 + self.w]


def _padded_input(x, geo, dtype):
    flat = _workspace.zeroed("conv-x", (geo.flat_size,), dtype, geo)
    geo.interior(flat)[...] = x.transpose(1, 2, 0, 3)  # padding is never written: stays zero
    return flat


def _im2col(flat, geo, cols, first, count):
    """cols (K, count*N*Wc): cols[(c, i, j), (y, n, z)] = xpad[n, c, (first + y)*sh + i, z*sw + j]."""
    cols = cols[:, : count * geo.per_row].reshape(geo.c, geo.kh, geo.kw, count, geo.n, geo.wc)
    cols[...] = geo.windows(flat, first, count)  # one copy; runs of count*N*Wc in wide rows


def _forward_per_image(x, w2, bias, geo, dtype, out, keep=False):
    flat = _workspace.zeroed("conv-xi", (geo.flat_size,), dtype, geo)
    geo.image_interior(flat)[...] = x
    chunk = geo.image_chunk(np.dtype(dtype).itemsize)
    plain = geo.wc == geo.wo
    ones = plain and bias is not None  # the bias as one more column row (see _image_columns)
    keep = keep and plain  # all images' columns, for the weight gradient (see "Kept columns")
    cols = _image_columns(geo, geo.n if keep else chunk, dtype, ones, fresh=keep)
    if ones:
        w2 = np.concatenate([w2, bias.reshape(geo.o, 1).astype(dtype, copy=False)], axis=1)
    prod = None if plain else _workspace.scratch("conv-iprod", (chunk, geo.o, geo.per_image), dtype)
    for first in range(0, geo.n, chunk):
        count = min(chunk, geo.n - first)
        block = cols[first:] if keep else cols
        _image_im2col(flat, geo, block, first, count)
        part = out[first : first + count].reshape(count, geo.o, geo.per_image) if plain else prod[:count]
        np.matmul(w2, block[:count], out=part)
        if bias is not None and not ones:  # on the contiguous product, then one plain copy (see _forward_bands)
            np.add(part, bias.reshape(1, geo.o, 1), out=part)
        if not plain:
            out[first : first + count] = part.reshape(count, geo.o, geo.ho, geo.wc)[..., : geo.wo]
    return cols if keep else None


def _image_columns(geo, chunk, dtype, ones, fresh=False):
    """The per-image column buffer (chunk, K [+ 1], Ho·Wc).  ``ones``: one more row of ones
    after the K im2col rows, so W·cols adds the bias (W gets the bias as one more column) and
    dY·colsᵀ gives db as dW's last column: the bias add and the bias sum are no passes of their
    own (conv c, float32 plain rows only: float64 keeps its old bits)."""
    shape = (chunk, geo.k + ones, geo.per_image)
    cols = np.empty(shape, dtype) if fresh else _workspace.scratch("conv-icols", shape, dtype)
    if ones:
        cols[:, geo.k] = 1
    return cols


def _image_im2col(flat, geo, cols, first, count):
    """cols[:count, :K] = every kernel offset of images first..; runs of Ho*Wc in wide rows."""
    s = cols.itemsize
    rows, plane = cols.shape[1], geo.per_image
    shape = (count, geo.c, geo.kh, geo.kw, geo.ho, geo.wc)
    strides = (rows * plane, geo.kh * geo.kw * plane, geo.kw * plane, plane, geo.wc, 1)
    target = np.ndarray(shape, cols.dtype, cols, 0, tuple(v * s for v in strides))
    target[...] = geo.image_windows(flat, first, count)  # one copy


# _thrown_away_columns: a wide row's thrown-away columns read real pixels of the next row;
# their gradient is 0, but 0 · NaN (or inf) is NaN, so with a non-finite input those columns
# are zeroed before dW = g · colsᵀ, or a NaN would reach weights whose true gradient is finite.
# Likewise dcols = Wᵀ · g of those columns is Wᵀ · 0, NaN for a non-finite weight, and the
# scatter back adds it to real pixels of the next row: zeroed then too.  (The zero padding
# itself IS multiplied, in the forward pass and in dW, as torch's own kernels do: 0 · inf is
# NaN at a border tap that reads padding -- see the conv2d docstring.)


def _backward_per_image(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, kept=None):
    chunk = geo.image_chunk(np.dtype(dtype).itemsize)
    plain = geo.wc == geo.wo  # the upstream gradient is its own column layout
    if plain:
        grad = np.ascontiguousarray(grad, dtype=dtype)
    else:
        g = _workspace.zeroed("conv-igrad", (chunk, geo.o, geo.ho, geo.wc), dtype, geo)  # wide columns stay 0
    gw = np.zeros((geo.o, geo.k), dtype) if want_w else None
    gb = np.zeros(geo.o, dtype) if want_b else None
    dirty = want_w and geo.wc > geo.wo and not np.isfinite(x).all()  # see _thrown_away_columns
    dirty_w = want_x and geo.wc > geo.wo and not np.isfinite(w2).all()
    if kept is not None and want_b and kept.shape[1] == geo.k:
        kept = None  # no ones row: rebuild
    ones = plain and want_w and want_b  # db from the ones row of the columns (see _image_columns)
    if want_w and kept is None:
        flat = _workspace.zeroed("conv-xi", (geo.flat_size,), dtype, geo)
        geo.image_interior(flat)[...] = x
        cols = _image_columns(geo, chunk, dtype, ones)
    if want_w:
        gw_parts = _workspace.scratch("conv-igw", (chunk, geo.o, geo.k + ones), dtype)
    scatter = None  # the compiled scatter when it pays (importing numba costs ~0.4 s once)
    if want_x and dtype == np.float32:
        scatter = compiled.for_size("conv_kernels", geo.n * geo.k * geo.per_image)
    if want_x:
        if scatter is None:
            dflat = _workspace.scratch("conv-idx", (geo.flat_size,), dtype)
            dflat.fill(0)
        dcols = _workspace.scratch("conv-idcols", (chunk, geo.k, geo.per_image), dtype)
    for first in range(0, geo.n, chunk):
        count = min(chunk, geo.n - first)
        if plain:
            g3 = grad[first : first + count].reshape(count, geo.o, geo.per_image)
        else:
            g[:count, :, :, : geo.wo] = grad[first : first + count]
            g3 = g[:count].reshape(count, geo.o, geo.per_image)
        if want_w:
            if kept is None:
                _image_im2col(flat, geo, cols, first, count)
            else:
                cols = kept[first : first + count, : geo.k + ones]
            if dirty:
                cols[:count, : geo.k].reshape(count, geo.k, geo.ho, geo.wc)[..., geo.wo :] = 0
            np.matmul(g3, cols[:count].transpose(0, 2, 1), out=gw_parts[:count])
            summed = gw_parts[:count].sum(axis=0)
            gw += summed[:, : geo.k]
            if ones:
                gb += summed[:, geo.k]
        if want_b and not ones:
            gb += g3.sum(axis=(0, 2))
        if want_x:
            part = dcols[:count]
            np.matmul(w2.T, g3, out=part)
            part = part.reshape(count, geo.c, geo.kh, geo.kw, geo.ho, geo.wc)
            if dirty_w:
                part[..., geo.wo :] = 0
            if scatter is not None:  # the same sums in the same order, compiled
                scatter.add_columns_back(part[..., : geo.wo], gx[first : first + count], geo.sh, geo.sw, geo.ph, geo.pw)
                continue
            shifted = geo.image_windows(dflat, first, count)  # offsets overlap: add one at a time
            for i in range(geo.kh):
                for j in range(geo.kw):
                    shifted[:, :, i, j] += part[:, :, i, j]
    if want_x and scatter is None:
        gx[...] = geo.image_interior(dflat)
    return gw, gb


def _forward_bands(x, w2, bias, geo, dtype, out, keep=False):
    flat = _padded_input(x, geo, dtype)
    chunk = geo.chunk(np.dtype(dtype).itemsize)
    bands = -(-geo.ho // chunk)
    # keep: every band's columns in an array of this call's own, for its backward (a graph
    # per call, so two graphs alive at once never share them)
    kept = np.empty((bands, geo.k, chunk * geo.per_row), dtype) if keep else None
    cols = None if keep else _workspace.scratch("conv-cols", (geo.k, chunk * geo.per_row), dtype)
    prod = _workspace.scratch("conv-prod", (geo.o, chunk * geo.per_row), dtype)
    bias2 = None if bias is None else bias.reshape(geo.o, 1)
    for band, first in enumerate(range(0, geo.ho, chunk)):
        count = min(chunk, geo.ho - first)
        width = count * geo.per_row
        if keep:
            cols = kept[band]
        _im2col(flat, geo, cols, first, count)
        part = prod[:, :width]
        np.matmul(w2, cols[:, :width], out=part)
        # the bias on the contiguous product, then a plain transposing copy: adding it during
        # the transposing copy took 1.12 ms against 0.30 ms (conv b, 1 thread, run 7)
        if bias2 is not None:
            np.add(part, bias2, out=part)
        out[:, :, first : first + count] = part.reshape(geo.o, count, geo.n, geo.wc)[..., : geo.wo].transpose(2, 0, 1, 3)
    return kept


def _backward_bands(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, kept=None):
    chunk = geo.chunk(np.dtype(dtype).itemsize)
    # Upstream gradient in the columns' layout (O, rows, N, Wc); thrown-away columns stay 0,
    # so they add nothing to dW and scatter exact zeros into padding in dX.
    g = _workspace.zeroed("conv-grad", (geo.o, chunk, geo.n, geo.wc), dtype, geo)
    gw = np.zeros((geo.o, geo.k), dtype) if want_w else None
    gb = np.zeros(geo.o, dtype) if want_b else None
    dirty = want_w and geo.wc > geo.wo and not np.isfinite(x).all()  # see _thrown_away_columns
    dirty_w = want_x and geo.wc > geo.wo and not np.isfinite(w2).all()
    if want_w:
        if kept is None:
            flat = _padded_input(x, geo, dtype)
            cols = _workspace.scratch("conv-cols", (geo.k, chunk * geo.per_row), dtype)
        gw_part = _workspace.scratch("conv-gwT", (geo.k, geo.o), dtype)
    if want_x:
        dflat = _workspace.scratch("conv-dx", (geo.flat_size,), dtype)
        dflat.fill(0)
        dcols = _workspace.scratch("conv-dcols", (geo.k, chunk * geo.per_row), dtype)
    for band, first in enumerate(range(0, geo.ho, chunk)):
        count = min(chunk, geo.ho - first)
        width = count * geo.per_row
        g[:, :count, :, : geo.wo] = grad[:, :, first : first + count].transpose(1, 2, 0, 3)
        g2 = g[:, :count].reshape(geo.o, width)
        if want_w:
            if kept is None:
                _im2col(flat, geo, cols, first, count)
            else:
                cols = kept[band]  # the forward's columns (zeroing thrown-away ones is idempotent)
            if dirty:
                cols[:, :width].reshape(geo.k, count, geo.n, geo.wc)[..., geo.wo :] = 0
            # dWᵀ = cols · gᵀ: OpenBLAS runs this orientation ~1.7x faster than g · colsᵀ
            # (conv b, 1 thread: 0.74 ms vs 1.29 ms; per-image batches measured equal)
            np.matmul(cols[:, :width], g2.T, out=gw_part)
            gw += gw_part.T
        if want_b:
            gb += g2.sum(axis=1)
        if want_x:
            part = dcols[:, :width]
            np.matmul(w2.T, g2, out=part)
            part = part.reshape(geo.c, geo.kh, geo.kw, count, geo.n, geo.wc)
            if dirty_w:
                part[..., geo.wo :] = 0
            # An offset view never overlaps itself; a wide row's spill past its image row
            # only adds the exact zeros of thrown-away columns to padding.
            shifted = geo.windows(dflat, first, count)  # offsets overlap: add one at a time
            for i in range(geo.kh):
                for j in range(geo.kw):
                    shifted[:, i, j] += part[:, i, j]
    if want_x:
        gx[...] = geo.interior(dflat).transpose(2, 0, 1, 3)
    return gw, gb


def _forward(x, w2, bias, geo, dtype, out, keep=False):
    """Run the forward; with ``keep``, return the column matrices its backward can reuse (or None)."""
    if geo.image_major:
        return _forward_per_image(x, w2, bias, geo, dtype, out, keep)
    return _forward_bands(x, w2, bias, geo, dtype, out, keep)


def _backward(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, kept=None):
    if geo.image_major:
        return _backward_per_image(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, kept)
    return _backward_bands(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, kept)


# Parallel sections (deltalab.fast.threads): with 2+ threads the batch is split into one
# contiguous range of images per thread, and each thread runs the serial code above on its
# range with its own work buffers (_Workspace is per thread) and single-threaded matmuls:
# the copies, im2col and col2im then run in parallel too, not only the matmuls.  A range is
# a convolution of its own, so no two threads ever write the same memory (not even the
# exact-zero spill of wide rows); dW and db are summed over the ranges in range order, so
# results are deterministic (but not bit-identical to the 1-thread path, which sums in
# another order).
# A section costs ~0.1-0.2 ms (waking and pinning the worker, BLAS limit, the GIL handoffs
# between the threads' NumPy calls), so it pays only for large calls.  Work per call is
# estimated as N*Ho*Wc*K*(O + 8): the matmul multiply-adds plus the column copies (one
# copied element ~ 8 multiply-adds).  Forward + backward at 2 threads, parallel / serial
# (serial = 2-thread BLAS), bench-like bursts on a quiet 2-vCPU machine:
#   conv a N=64 (21.5M) 0.76x, conv b N=64 (77M) 0.83x, conv c N=32 (38M) 0.68x,
#   conv c N=16 (18.8M) 0.93x, conv b N=16 (19.4M) 1.01x;
#   conv a N=32 (10.7M) 1.11x, conv b N=8 (9.7M) 1.06x, conv c N=8 (9.4M) 0.97x,
#   conv a N=16 (5.4M) 1.42x, conv a N=8 (2.7M) 1.82x.
# Hence Tuning.conv_parallel_min_work = 16M (benchmarks/README.md, "Tuning rules").


def parallel_ranges(geo):
    """Image ranges, one per thread, or None to run serially (``Tuning.parallel``)."""
    tuning = current_tuning()
    if geo.n < 2 or tuning.parallel is False:
        return None
    if tuning.parallel is None and geo.n * geo.ho * geo.wc * geo.k * (geo.o + 8) < tuning.conv_parallel_min_work:
        return None
    n_threads = min(threads.parallel_threads(), geo.n)
    if n_threads < 2:
        return None
    bounds = [geo.n * t // n_threads for t in range(n_threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


# Kept columns: the row-band layout (conv b's) keeps the forward's column matrices for the
# backward's weight gradient when one will be needed, instead of rebuilding them from a second
# padded copy of x (conv b, 1 thread: im2col 0.58 ms and the padded copy 0.26 ms of a ~11 ms
# step saved, for 7.7 MB held per layer until the backward; thread-CPU A/B 0.92-0.95x;
# benchmarks/README.md, run 7).  The per-image layout keeps them too on float32 plain rows (a fresh
# (N, K [+ 1], Ho·Wo) array; whole step, thread-CPU min / median of 80 interleaved, load 1-2: conv c
# 5.51 / 7.44 -> 5.23 / 6.97 ms at 1 thread, conv a 4.96 / 5.93 -> 3.66 / 5.33); float64's wide
# rows rebuild them (there, keeping measured conv a 1.05x, conv c 0.97x).
# They belong to the image ranges the forward ran; a backward that runs other ranges (a
# different tuning) rebuilds its columns as before.


def forward(x, w2, bias, geo, dtype, keep_columns=False):
    """(The (N, O, Ho, Wo) output of conv2d, what the backward may reuse), in parallel sections
    when they pay; ``keep_columns``: a weight gradient will be wanted."""
    out = np.empty((geo.n, geo.o, geo.ho, geo.wo), dtype)
    if uses_winograd(geo, dtype) and _finite(w2):
        transformed = _winograd_forward(x, w2, bias, geo, out, keep_columns)
        if transformed is not None:  # else the direct path decides what is inf and what NaN
            return out, _WinogradState(transformed)
    ranges = parallel_ranges(geo)
    if ranges is not None:
        tasks = [partial(_forward, x[a:b], w2, bias, geo.images(b - a), dtype, out[a:b], keep_columns)
                 for a, b in ranges]
        kept = threads.run_parallel(tasks)
        if kept is not None:
            return out, (ranges, kept)
    with threads.product(geo.largest_product(np.dtype(dtype).itemsize)):
        kept = _forward(x, w2, bias, geo, dtype, out, keep_columns)
    return out, (None, [kept])


def backward(x, w2, grad, geo, dtype, want_x, want_w, want_b, kept=None):
    """(dX or None, dW as (O, C*kh*kw) or None, db or None), in parallel sections when they pay;
    ``kept``: what :func:`forward` returned for reuse."""
    gx = np.empty(x.shape, dtype) if want_x else None
    if isinstance(kept, _WinogradState):
        if uses_winograd(geo, dtype):
            gradients = _winograd_backward(x, w2, grad, geo, want_x, want_w, want_b, gx, kept.transformed)
            if gradients is not None:
                return (gx,) + gradients
        kept = None  # the direct path rebuilds its columns
    ranges = parallel_ranges(geo)
    columns = kept[1] if kept is not None and kept[0] == ranges else [None] * (1 if ranges is None else len(ranges))
    parts = None
    if ranges is not None:
        tasks = [
            partial(_backward, x[a:b], w2, grad[a:b], geo.images(b - a), dtype, want_x, want_w, want_b,
                    None if gx is None else gx[a:b], cols)
            for (a, b), cols in zip(ranges, columns)
        ]
        parts = threads.run_parallel(tasks)
    if parts is None:
        cols = columns[0] if ranges is None else None
        with threads.product(geo.largest_product(np.dtype(dtype).itemsize)):
            gw, gb = _backward(x, w2, grad, geo, dtype, want_x, want_w, want_b, gx, cols)
    else:  # sum the per-range partial sums in range order: deterministic
        gw, gb = parts[0]
        for pw, pb in parts[1:]:
            if want_w:
                gw += pw
            if want_b:
                gb += pb
    return gx, gw, gb


# ----------------------------------------------------------------------------- Winograd F(2×2, 3×3)
# float32 training with 3×3 kernels at stride 1 (the common CNN layer): each 2×2 output tile is
# Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A of its 4×4 input tile d (deltalab.fast.winograd_kernels has the
# matrices).  The 16 elementwise products per tile become 16 matrix products over all tiles,
# (O, C) · (C, tiles), with 16·O·C multiplies per tile instead of 36·O·C: 2.25× fewer.  The
# backward is the adjoint of the same three steps: dM = A dY Aᵀ per tile, dU = Σ_tiles dM · Vᵀ
# (the weight gradient, then Gᵀ dU G), dV = Uᵀ · dM (then B dV Bᵀ added back per tile: the input
# gradient).  The transforms are compiled (numba); without numba the direct path above runs.
# Only float32: rounding differs from the direct sum (the transformed values are sums of up to
# 4 × 4 inputs), measured in tests/test_conv_winograd.py against float64; float64 -- and so every
# worked solution -- keeps the direct path.  Non-finite values (NaN / inf in x, the weight or
# the upstream gradient, or an overflow) would spread through a whole tile's transform, where
# torch's direct kernels keep them to the pixels they reach: such a call runs the direct path.

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)  # (16, 9): [(a, b), (i, j)] = G[a, i]·G[b, j]


def winograd_kernels():
    """The compiled transforms (:mod:`.winograd_kernels`), or None when numba is unusable
    (loaded once by :func:`deltalab.fast.kernels.load`)."""
    return compiled.load("winograd_kernels")


def conv_kernels():
    """The compiled column scatter (:mod:`.conv_kernels`), or None when numba is unusable
    (loaded once by :func:`deltalab.fast.kernels.load`)."""
    return compiled.load("conv_kernels")


def uses_winograd(geo, dtype):
    """Whether this call runs Winograd F(2×2, 3×3) (``Tuning.winograd``; float32, 3×3, stride 1)."""
    tuning = current_tuning()
    if np.dtype(dtype) != np.float32 or (geo.kh, geo.kw) != (3, 3) or geo.stride != (1, 1) or geo.n == 0:
        return False
    if tuning.winograd is False or tuning.numba is False:
        return False
    if tuning.winograd is None:
        if not compiled.numba_allowed():
            return False
        if (geo.n * geo.ho * geo.wo * geo.c * geo.o < tuning.winograd_min_work or geo.c < tuning.winograd_min_channels
                or geo.n < tuning.winograd_min_batch):
            return False
    return winograd_kernels() is not None


def _finite(a):
    """No NaN or inf in ``a`` (its sum is finite; a sum that overflows reads as not finite,
    which only sends a call to the direct path)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(a, axis=None)))


class _Tiles:
    """Tile counts and batch-last buffer sizes of one Winograd call: th × tw tiles of 2×2
    outputs per image, padded images of hp × wp pixels."""

    def __init__(self, geo):
        self.th, self.tw = -(-geo.ho // 2), -(-geo.wo // 2)
        self.hp, self.wp = 2 * self.th + 2, 2 * self.tw + 2
        self.count = geo.n * self.th * self.tw


def _kernel_transform(w2, geo):
    """U (16, O, C) = G g Gᵀ per (o, c), in float64 and rounded once to float32 (one product
    with G ⊗ G: tensordots took ~0.2 ms a call, conv b)."""
    u = _GG @ w2.reshape(geo.o * geo.c, 9).T.astype(np.float64)  # (16, O·C)
    return u.astype(np.float32).reshape(16, geo.o, geo.c)


def _kernel_gradient(du, geo):
    """dW (O, C·9) = Gᵀ dU G per (o, c) from dU as (16, C, O), in float64, rounded once."""
    dg = _GG.T @ du.reshape(16, geo.c * geo.o).astype(np.float64)  # (9, C·O)
    return np.ascontiguousarray(dg.reshape(9, geo.c, geo.o).transpose(2, 1, 0)).reshape(geo.o, geo.k).astype(np.float32)


# The 16 per-position matrices of a transformed array are stored in one flat buffer, each
# 64 bytes past a multiple of its size: with sizes that are multiples of 4 KiB (conv b: 200 KiB)
# the 16 streams a transform reads or writes at once fell into the same L1 cache sets (the
# transforms ran 1.4-7x slower).
_PLANE_GAP = 16


def _plane_stride(rows, tiles):
    return rows * tiles + _PLANE_GAP


def _planes(flat, rows, tiles, capacity=None):
    """The (16, rows, tiles) view of a flat buffer of 16 position matrices (allocated for
    ``capacity`` tiles, default ``tiles``)."""
    s = flat.itemsize
    plane = _plane_stride(rows, tiles if capacity is None else capacity)
    return np.ndarray((16, rows, tiles), flat.dtype, flat, 0, (plane * s, tiles * s, s))


def _plane_buffer(tag, rows, tiles, fresh=False):
    size = 16 * _plane_stride(rows, tiles)
    return np.empty(size, np.float32) if fresh else _workspace.scratch(tag, (size,), np.float32)


def _transformed_input(kernels, x, geo, tiles, fresh):
    """V, the flat transformed input, or None when x is not finite."""
    v = _plane_buffer("wino-v", geo.c, tiles.count, fresh=fresh)
    # one channel's zero-padded batch-last images (hp, 2, wp/2, N): the padding is never written
    xc = _workspace.zeroed("wino-xc", (tiles.hp, 2, tiles.tw + 1, geo.n), np.float32, geo)
    finite = kernels.input_transform(np.ascontiguousarray(x), geo.ph, geo.pw, xc, tiles.tw + 1, tiles.th, tiles.tw, v,
                                     _plane_stride(geo.c, tiles.count))
    return v if finite else None


def _chunk_rows(geo, tiles):
    """Tile rows per chunk: a chunk's products (16 × O × its tiles) take about
    WINOGRAD_CHUNK_BYTES, so they stay in cache from the matrix product to the transform."""
    per_row = 16 * max(geo.o, geo.c) * tiles.tw * geo.n * 4
    return max(1, min(tiles.th, WINOGRAD_CHUNK_BYTES // per_row))


# conv b (groups of 16 images), 1 thread, forward + backward, thread-time min / median of 300
# interleaved: 512 KiB 3.25 / 4.18 ms, 1 MiB 3.18 / 4.03, 2 MiB (a group's 7 tile rows in one
# chunk) 2.97 / 3.93, 4 MiB 2.99 / 3.91.  (Before the image groups, with the whole batch: 1 MiB
# 3.46 / 4.73, 2 MiB 3.69 / 5.01, 4 MiB 4.33 / 5.66.)
WINOGRAD_CHUNK_BYTES = 2 << 20


def _rows_tile(tag, step, tiles, n):
    """Scratch for one channel's output rows of a chunk, batch-last (2·step, 2, tw, N)."""
    return _workspace.scratch(tag, (2 * step * 2 * tiles.tw * n,), np.float32)


# The images run in groups of WINOGRAD_GROUP_IMAGES, one after another (the last group takes the
# rest): a group's buffers (conv b: 0.8 MB of transformed input, 1.6 MB of products) are a
# quarter of the whole batch's, and more of them is still in cache when the next pass reads them
# (conv b, 1 thread, forward + backward, thread-time min / median of 200 interleaved: the whole
# batch at once 3.57 / 4.17 ms, groups of 32 3.47 / 4.08, of 16 3.34 / 3.76; groups of 8 take
# the one-value-at-a-time copies and scalar lanes: 5.5 / 6.3).  16 images are one
# vector of lanes and one block of the register transposes.  The outputs, dX and the bias
# gradient do not depend on the grouping (the bias sums are per image); dW's float32 sum of the
# chunks' partial products does.
WINOGRAD_GROUP_IMAGES = 16


def _image_groups(n):
    """The image ranges of the groups of a batch of n."""
    count = max(1, n // WINOGRAD_GROUP_IMAGES)
    bounds = [k * WINOGRAD_GROUP_IMAGES for k in range(count)] + [n]
    return list(zip(bounds[:-1], bounds[1:]))


def _each_group(geo, work):
    """[work(k, first, last) for each image group k, images first:last]: in a parallel section when one
    pays, each thread taking the next group when it comes free (a thread that starts late, or
    runs slower, takes fewer), else one group after another.  Nothing a group computes depends
    on the thread that ran it, so the results have the same bits at every thread count."""
    groups = _image_groups(geo.n)
    results = [None] * len(groups)
    ranges = parallel_ranges(geo)
    if ranges is not None and len(groups) > 1:
        pending, lock = iter(range(len(groups))), threading.Lock()

        def take_groups():
            while True:
                with lock:
                    k = next(pending, None)
                if k is None:
                    return
                results[k] = work(k, *groups[k])

        if threads.run_parallel([take_groups] * min(len(ranges), len(groups))) is not None:
            return results
    largest = max(last - first for first, last in groups)
    with threads.product(_winograd_product(geo.images(largest))):
        return [work(k, first, last) for k, (first, last) in enumerate(groups)]


def _winograd_forward(x, w2, bias, geo, out, keep):
    """Winograd forward of images x into out: None when x or the result is not finite (the direct
    path then decides), else each image group's flat transformed input V when ``keep`` (the
    weight gradient reuses them; else Nones)."""
    kernels = winograd_kernels()
    u = _kernel_transform(w2, geo)
    b = np.zeros(geo.o, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)

    def group_forward(k, first, last):
        group = geo.images(last - first)
        tiles = _Tiles(group)
        v = _transformed_input(kernels, x[first:last], group, tiles, fresh=keep)
        if v is None or not _winograd_products(kernels, v, u, b, group, tiles, out[first:last]):
            return False, None
        return True, (v if keep else None)

    parts = _each_group(geo, group_forward)
    return [v for _, v in parts] if all(finite for finite, _ in parts) else None


def _winograd_products(kernels, v, u, b, geo, tiles, out):
    """out = the forward of one group from its transformed input V, chunk by chunk; whether every
    value written was finite."""
    v3 = _planes(v, geo.c, tiles.count)
    step, run = _chunk_rows(geo, tiles), tiles.tw * geo.n
    m = _plane_buffer("wino-m", geo.o, step * run)
    tile = _rows_tile("wino-y-rows", step, tiles, geo.n)
    finite = True
    for t0 in range(0, tiles.th, step):
        t1 = min(tiles.th, t0 + step)
        np.matmul(u, v3[:, :, t0 * run : t1 * run], out=_planes(m, geo.o, (t1 - t0) * run, step * run))
        finite &= kernels.output_transform(m, _plane_stride(geo.o, step * run), b, tiles.tw, t0, t1, out, tile)
    return finite


def _winograd_backward(x, w2, grad, geo, want_x, want_w, want_b, gx, v):
    """Winograd backward: (dW as (O, C·9) or None, db or None), dX written into gx; None when the
    upstream gradient or a result is not finite (the direct path then decides).  ``v``: the
    forward's transformed inputs, one per image group (None each: not kept)."""
    kernels = winograd_kernels()
    grad = np.ascontiguousarray(grad, dtype=np.float32)
    lanes_sum = np.zeros((geo.o, geo.n), np.float64)  # the bias gradient, summed while the gradient is read
    ut = _kernel_transform(w2, geo).transpose(0, 2, 1) if want_x else None

    def group_backward(k, first, last):
        du = np.zeros((16, geo.c, geo.o), np.float32) if want_w else None
        finite = _winograd_group_backward(kernels, x[first:last], grad[first:last], geo.images(last - first), ut,
                                          None if gx is None else gx[first:last], du, lanes_sum[:, first:last],
                                          v[k])
        return finite, du

    parts = _each_group(geo, group_backward)
    sums = np.empty(geo.o, np.float64)
    if not all(finite for finite, _ in parts) or not kernels.lane_totals(lanes_sum, sums):
        return None
    gw = None
    if want_w:
        du = parts[0][1]
        for _, part in parts[1:]:  # in group order: deterministic
            du = du + part
        gw = _kernel_gradient(du, geo)
        if not _finite(gw):
            return None
    return gw, (sums.astype(np.float32) if want_b else None)


def _winograd_group_backward(kernels, x, grad, geo, ut, gx, du, lanes_sum, v):
    """One image group's backward: dX into gx (when ``ut``, the transposed transformed kernel, is
    given), du += its weight-gradient products (when ``du`` is given), lanes_sum += its per-image
    bias sums; whether every value read and written was finite."""
    tiles = _Tiles(geo)
    step, run = _chunk_rows(geo, tiles), tiles.tw * geo.n
    dm = _plane_buffer("wino-dm", geo.o, step * run)
    tile = _rows_tile("wino-g-rows", step, tiles, geo.n)
    if du is not None:
        if v is None:
            v = _transformed_input(kernels, x, geo, tiles, fresh=False)
            if v is None:
                return False
        v3 = _planes(v, geo.c, tiles.count)
        du_part = _workspace.scratch("wino-du", (16, geo.c, geo.o), np.float32)
    if ut is not None:
        dv = _plane_buffer("wino-dv", geo.c, step * run)
        scratch = _workspace.scratch("wino-f", (8 * run,), np.float32)
        db4 = _workspace.scratch("wino-db", (geo.c, tiles.hp, 2, tiles.tw + 1, geo.n), np.float32)
        db4.fill(0)
        done = 0  # rows of gx written
    finite = True
    for t0 in range(0, tiles.th, step):
        t1 = min(tiles.th, t0 + step)
        width = (t1 - t0) * run
        finite &= kernels.gradient_transform(grad, lanes_sum, tiles.tw, t0, t1, dm, _plane_stride(geo.o, step * run),
                                             tile)
        dm3 = _planes(dm, geo.o, width, step * run)
        if du is not None:
            # (C, O) per position: V · dMᵀ ran faster than dM · Vᵀ
            np.matmul(v3[:, :, t0 * run : t1 * run], dm3.transpose(0, 2, 1), out=du_part)
            du += du_part
        if ut is not None:
            np.matmul(ut, dm3, out=_planes(dv, geo.c, width, step * run))
            kernels.input_gradient_transform(dv, _plane_stride(geo.c, step * run), geo.c, tiles.hp, tiles.tw + 1,
                                             geo.n, tiles.th, tiles.tw, t0, t1, db4.reshape(-1), scratch)
            # padded rows above 2·t1 take no more tiles: their image rows are final
            ready = geo.h if t1 == tiles.th else max(done, min(geo.h, 2 * t1 - geo.ph))
            if ready > done:
                finite &= kernels.from_batch_last(db4, geo.ph, geo.pw, gx, done, ready)
                done = ready
    return finite


def _winograd_product(geo):
    """M·N·K of Winograd's largest single BLAS call (one tile position over all tiles)."""
    return geo.o * geo.c * _Tiles(geo).count


class _WinogradState:
    """What a Winograd forward leaves for its backward: each image group's transformed input V
    (or None when no weight gradient is wanted)."""

    __slots__ = ("transformed",)

    def __init__(self, transformed):
        self.transformed = transformed

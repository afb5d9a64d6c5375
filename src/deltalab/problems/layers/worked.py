"""One entry of a window layer worked out term by term, from the recorded values: a
convolution's output cell (Σ w·x over its window), a weight-gradient cell (the input correlated
with δ), an input-delta cell (δ spread back through the kernel), and max pooling's winner of
every window.  The derivation stores these (:class:`~deltalab.derivation.Worked`,
:class:`~deltalab.derivation.Windows`), so reports only read them.

Entries are chosen as a student would pick one on paper: the first cell whose window lies
wholly inside the image (no padding), else the first cell.  Indices in the formula texts count
from 1, as the solutions write entries (channel, row, column); stored indices are 0-based.
"""
from __future__ import annotations

import numpy as np

from ...derivation import Windows, Worked
from ...ops.conv import pad_spatial
from ...ops.pooling import max_indices

PRODUCTS_KEPT = 400  # products of one worked entry at most (larger layers: that entry is not worked out)


def affine(var: str, scale: int, offset: int) -> str:
    """``scale·var + offset`` as the lecture writes an index: i, i + 2, 2y − 1."""
    head = var if scale == 1 else f"{scale}{var}"
    return head if offset == 0 else f"{head} + {offset}" if offset > 0 else f"{head} − {-offset}"


def _lead(batched: bool, sample: str = "1") -> str:
    return f"{sample}, " if batched else ""


def interior_cell(out_hw, kernel, stride, padding, in_hw) -> tuple:
    """(y, x), 0-based: the first output cell whose window holds no padding, else (0, 0)."""
    for y in range(out_hw[0]):
        for x in range(out_hw[1]):
            top, left = y * stride[0] - padding[0], x * stride[1] - padding[1]
            if top >= 0 and left >= 0 and top + kernel[0] <= in_hw[0] and left + kernel[1] <= in_hw[1]:
                return y, x
    return 0, 0


def conv_output_cell(x, w, b, z, stride, padding, batched, names) -> Worked | None:
    """z(1, y, x) = Σ_c,i,j W(1, c, i, j) · x(c, top + i, left + j) (+ b(1)) for the first
    kernel and sample. ``names``: (input symbol, weight symbol, bias symbol or None)."""
    x_name, w_name, b_name = names
    sample = x[0] if batched else x
    channels, kh, kw = w.shape[1:]
    if channels * kh * kw > PRODUCTS_KEPT:
        return None
    y, col = interior_cell(z.shape[-2:], (kh, kw), stride, padding, sample.shape[-2:])
    top, left = y * stride[0] - padding[0], col * stride[1] - padding[1]
    products, padded = [], []
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                r, s = top + i, left + j
                inside = 0 <= r < sample.shape[-2] and 0 <= s < sample.shape[-1]
                products.append((float(w[0, c, i, j]), float(sample[c, r, s]) if inside else 0.0))
                padded.append(not inside)
    general = (f"Σ_{{c,i,j}} {w_name}(1, c, i, j) · {x_name}({_lead(batched)}c, {affine('i', 1, top)}, "
               f"{affine('j', 1, left)})" + (f" + {b_name}(1)" if b_name else ""))
    index = ((0,) if batched else ()) + (0, y, col)
    return Worked(index, general, products, padded, None if b is None else float(b[0]), float(z[index]))


def conv_weight_gradient_cell(x, delta, gradient, kernel, stride, padding, batched, names) -> Worked | None:
    """∂E/∂W(1, 1, i, j) = Σ_(n,)y,x δ(n, 1, y, x) · x(n, 1, s(y−1) + i − p, …) at the kernel's
    centre: the input correlated with δ, one product per output position (and sample)."""
    x_name, d_name = names
    xs = x if batched else x[None]
    ds = delta if batched else delta[None]
    i, j = kernel[0] // 2, kernel[1] // 2
    samples, ho, wo = ds.shape[0], ds.shape[-2], ds.shape[-1]
    if samples * ho * wo > PRODUCTS_KEPT:
        return None
    products, padded = [], []
    for n in range(samples):
        for y in range(ho):
            for col in range(wo):
                r, s = y * stride[0] + i - padding[0], col * stride[1] + j - padding[1]
                inside = 0 <= r < xs.shape[-2] and 0 <= s < xs.shape[-1]
                products.append((float(ds[n, 0, y, col]), float(xs[n, 0, r, s]) if inside else 0.0))
                padded.append(not inside)
    over = "n,y,x" if batched else "y,x"
    lead = "n, " if batched else ""
    general = (f"Σ_{{{over}}} {d_name}({lead}1, y, x) · {x_name}({lead}1, "
               f"{affine('y', stride[0], 1 + i - padding[0] - stride[0])}, "
               f"{affine('x', stride[1], 1 + j - padding[1] - stride[1])})")
    index = (0, 0, i, j)
    return Worked(index, general, products, padded, None, float(gradient[index]))


def conv_input_delta_cell(delta, w, input_delta, stride, padding, batched, names) -> Worked | None:
    """∂E/∂x(1, r, s) = Σ_o,i,j δ(o, y, x) · W(o, 1, i, j) over the windows (y, x) that hold
    x(1, r, s) at kernel position (i, j): δ spread back through the kernel."""
    d_name, w_name = names
    d0 = delta[0] if batched else delta
    target = input_delta[0] if batched else input_delta
    out_channels, _, kh, kw = w.shape
    if out_channels * kh * kw > PRODUCTS_KEPT:
        return None
    r = min(max(kh - 1 - padding[0], 0), target.shape[-2] - 1)
    s = min(max(kw - 1 - padding[1], 0), target.shape[-1] - 1)
    products = []
    for o in range(out_channels):
        for i in range(kh):
            for j in range(kw):
                y, rest_y = divmod(r + padding[0] - i, stride[0])
                x, rest_x = divmod(s + padding[1] - j, stride[1])
                if rest_y or rest_x or not (0 <= y < d0.shape[-2] and 0 <= x < d0.shape[-1]):
                    continue  # no window puts kernel position (i, j) on this entry
                products.append((float(d0[o, y, x]), float(w[o, 0, i, j])))
    if stride == (1, 1):
        general = (f"Σ_{{o,i,j}} {d_name}({_lead(batched)}o, {r + padding[0] + 2} − i, {s + padding[1] + 2} − j)"
                   f" · {w_name}(o, 1, i, j)")
    else:
        general = (f"Σ_{{o,i,j}} {d_name}({_lead(batched)}o, y, x) · {w_name}(o, 1, i, j), (y, x) the window "
                   f"holding it at (i, j)")
    index = ((0,) if batched else ()) + (0, r, s)
    return Worked(index, general, products, [False] * len(products), None, float(input_delta[index]))


def max_pool_windows(x, pooled, kernel, stride, padding) -> Windows:
    """Each window's winner, the (row, column) of its maximum in the unpadded input, as the
    engine's max pooling chose it (its ``return_indices``: ties and NaN as torch), so the marks
    sit where the deltas are routed.  ``pooled``: the recorded output."""
    planes = x if x.ndim == 4 else x[None]
    out = pooled if pooled.ndim == 4 else pooled[None]
    flat = max_indices(pad_spatial(planes, padding, value=-np.inf), out, kernel, stride, padding)
    winners = np.stack(np.divmod(flat, planes.shape[-1]), axis=-1).reshape(tuple(pooled.shape) + (2,))
    return Windows(tuple(kernel), tuple(stride), tuple(padding), winners, tuple(x.shape))

"""``pool_routing``: max pooling's gradient sent to every maximum of a tied window, or to
every entry of the window (as if it were a sum), instead of to the one maximum.

Example: a 2×2 window [[1, 3], [3, 0]] with δ = 1 gets [[0, 1], [0, 0]], not [[0, 1], [1, 0]].
"""
from __future__ import annotations

import numpy as np

from ...derivation import Op
from ..formulas import sites
from . import Computed, Variant, mistake, owner_text


def routed(x, delta, kernel, stride, padding, every):
    """δ of each window to all its maxima (``every`` False) or to all its entries (True)."""
    x, delta = np.asarray(x, dtype=np.float64), np.asarray(delta, dtype=np.float64)
    (ph, pw), (sh, sw), (kh, kw) = padding, stride, kernel
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    xp = np.pad(x, pad, constant_values=-np.inf)
    out = np.zeros_like(xp)
    for y in range(delta.shape[-2]):
        for z in range(delta.shape[-1]):
            window = xp[..., y * sh:y * sh + kh, z * sw:z * sw + kw]
            mask = np.isfinite(window) if every else (window == window.max(axis=(-2, -1), keepdims=True))
            out[..., y * sh:y * sh + kh, z * sw:z * sw + kw] += mask * delta[..., y, z][..., None, None]
    return out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]]


@mistake("pool_routing", "max-pool gradient to every tie or every window entry",
         "route_maxpool(δ) sent to both maxima of a tied window")
def variants(ctx):
    """Each max-pool routing of the formula sent to every tie, or to every window entry."""

    def rewrite(expr, owner):
        if isinstance(expr, Op) and expr.name == "pool_route" and dict(expr.params)["kind"] == "max":
            p = dict(expr.params)
            for every, words in ((False, "to every maximum of a tied window"), (True, "to every window entry")):
                compute = (lambda x, d, every=every: routed(x, d, p["kernel"], p["stride"], p["padding"], every))
                yield Computed("route({0}, {1})", compute, expr.args), f"with δ sent {words}"

    for formula, owner, note in sites(ctx.formula, ctx.owner, rewrite):
        yield Variant(formula, f"{owner_text(owner, note)}: the max-pool gradient was routed wrongly")

"""conv2d with ``dilation`` and ``groups``: windows of the padded input and one einsum.

    y[n, g·O/G + o, y, x] = Σ_{c, i, j} w[g·O/G + o, c, i, j] · xpad[n, g·C/G + c, y·s + i·d, x·s + j·d]

The plain case (dilation 1, one group) runs the fast im2col path of :mod:`.conv`; this one is
the direct reading of the formula, for the less common layers (depthwise, atrous).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function


def dilated_extent(kernel, dilation):
    """The span d·(k − 1) + 1 a dilated kernel covers."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def _windows(xp, kernel, stride, dilation):
    """(N, C, Ho, Wo, kh, kw) view: the dilated window of every output position."""
    view = sliding_window_view(xp, dilated_extent(kernel, dilation), axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


class GroupedConv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        (ph, pw), (n, c, h, w), o = padding, x.shape, weight.shape[0]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        win = _windows(xp, weight.shape[2:], stride, dilation)
        ho, wo = win.shape[2:4]
        win = win.reshape(n, groups, c // groups, ho, wo, *weight.shape[2:])
        w_g = weight.reshape(groups, o // groups, *weight.shape[1:])
        out = np.einsum("ngcyxij,gocij->ngoyx", win, w_g, optimize=True).reshape(n, o, ho, wo)
        if bias is not None:
            out = out + bias.reshape(1, o, 1, 1)
        ctx.save_for_backward(xp, weight)
        ctx.options = (stride, padding, dilation, groups, x.shape, bias is not None)
        return out.astype(np.result_type(x, weight), copy=False)

    @staticmethod
    def backward(ctx, grad):
        xp, weight = ctx.saved
        stride, (ph, pw), dilation, groups, x_shape, has_bias = ctx.options
        n, c = x_shape[:2]
        o, _, kh, kw = weight.shape
        ho, wo = grad.shape[2:]
        g_g = grad.reshape(n, groups, o // groups, ho, wo)
        need = ctx.needs_input_grad
        gw = gx = None
        if need[1]:
            win = _windows(xp, (kh, kw), stride, dilation).reshape(n, groups, c // groups, ho, wo, kh, kw)
            gw = np.einsum("ngoyx,ngcyxij->gocij", g_g, win, optimize=True).reshape(weight.shape)
        if need[0]:
            w_g = weight.reshape(groups, o // groups, c // groups, kh, kw)
            cols = np.einsum("ngoyx,gocij->ngcijyx", g_g, w_g, optimize=True).reshape(n, c, kh, kw, ho, wo)
            dxp = np.zeros(xp.shape, dtype=grad.dtype)
            (sh, sw), (dh, dw) = stride, dilation
            for i in range(kh):  # offsets overlap: add one kernel offset at a time
                for j in range(kw):
                    dxp[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw] += \
                        cols[:, :, i, j]
            gx = dxp[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]]
        gb = grad.sum(axis=(0, 2, 3)) if has_bias and need[2] else None
        return gx, gw, gb, None, None, None, None

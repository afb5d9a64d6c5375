"""Formulas as small expression trees: evaluated with any input values, rendered per format.

A formula refers to other quantities of the derivation by node id (:class:`Ref`), holds
constants (:class:`Const`) and applies operations (:class:`Op`) from one table, ``OPS``: each
operation has a plain NumPy evaluation -- deliberately not the engine's fused ops, so that
re-evaluating a recorded formula is an independent check of the engine -- and a way to be
written in the lecture's notation.  ``check`` (a student's answers) re-evaluates formulas
with the student's own inputs; ``generate`` tests constraints on every recorded quantity.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..records import dataclass

# Binding strength of the written forms: a child that binds more loosely than its parent's
# operator is put in parentheses.
SUM, PRODUCT, UNARY, POSTFIX, ATOM = 10, 20, 25, 30, 40


class Expr:
    """A formula node."""

    precedence = ATOM

    def evaluate(self, values: dict):
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def latex(self) -> str:
        raise NotImplementedError

    def tree(self) -> dict:
        raise NotImplementedError

    def refs(self) -> list:
        """Node ids this formula reads, in first-use order."""
        return []

    # building formulas reads like the maths
    def __add__(self, other):
        return Op("add", (self, as_expr(other)))

    def __sub__(self, other):
        return Op("sub", (self, as_expr(other)))

    def __rsub__(self, other):
        return Op("sub", (as_expr(other), self))

    def __mul__(self, other):
        return Op("mul", (self, as_expr(other)))

    def __rmul__(self, other):
        return Op("mul", (as_expr(other), self))

    def __matmul__(self, other):
        return Op("matmul", (self, as_expr(other)))

    def __neg__(self):
        return Op("neg", (self,))

    @property
    def T(self):  # noqa: N802 - the maths' transpose
        return Op("transpose", (self,))


def as_expr(value):
    return value if isinstance(value, Expr) else Const(value)


@dataclass(frozen=True, eq=False)
class Ref(Expr):
    """The value of another node of the derivation, written by its symbol."""

    node: str  # node id, e.g. "delta:z[1](2)"
    symbol: str  # e.g. "δ[1](2)"

    def evaluate(self, values):
        return np.asarray(values[self.node])

    def text(self):
        return self.symbol

    def latex(self):
        return latex_symbol(self.symbol)

    def tree(self):
        return {"ref": self.node, "symbol": self.symbol}

    def refs(self):
        return [self.node]


@dataclass(frozen=True, eq=False)
class Const(Expr):
    """A number of the formula itself (½, 1, a learning rate η given by the problem)."""

    value: object
    symbol: str | None = None  # written as this symbol (η) instead of the number

    def evaluate(self, values):
        return np.asarray(self.value, dtype=np.float64)

    def text(self):
        return self.symbol or _number_text(self.value)

    def latex(self):
        return latex_symbol(self.symbol) if self.symbol else _number_text(self.value)

    def tree(self):
        value = np.asarray(self.value, dtype=np.float64)
        out = {"const": float(value) if value.ndim == 0 else value.tolist()}
        if self.symbol:
            out["symbol"] = self.symbol
        return out


@dataclass(frozen=True)
class OpKind:
    evaluate: Callable  # (*arg values, **params) -> array
    text: Callable  # (*arg texts, **params) -> str
    latex: Callable  # (*arg latex, **params) -> str
    precedence: int
    # per argument: at least this binding strength, or it gets parentheses
    needs: tuple = ()


@dataclass(frozen=True, eq=False)
class Op(Expr):
    """An operation of ``OPS`` applied to argument formulas; ``params`` are its fixed settings
    (an activation's name, a stride), as sorted (name, value) pairs."""

    name: str
    args: tuple
    params: tuple = ()

    @property
    def kind(self) -> OpKind:
        return OPS[self.name]

    @property
    def precedence(self):
        return self.kind.precedence

    def evaluate(self, values):
        return self.kind.evaluate(*(a.evaluate(values) for a in self.args), **dict(self.params))

    def _wrapped(self, render):
        needs = self.kind.needs or (self.kind.precedence,)
        parts = []
        for i, arg in enumerate(self.args):
            need = needs[min(i, len(needs) - 1)]
            part = render(arg)
            if arg.precedence < need:
                part = f"({part})" if render is _text else rf"\left({part}\right)"
            parts.append(part)
        return parts

    def text(self):
        return self.kind.text(*self._wrapped(_text), **dict(self.params))

    def latex(self):
        return self.kind.latex(*self._wrapped(_latex), **dict(self.params))

    def tree(self):
        out = {"op": self.name, "args": [a.tree() for a in self.args]}
        if self.params:
            out["params"] = {k: _jsonable(v) for k, v in self.params}
        return out

    def refs(self):
        seen = []
        for arg in self.args:
            seen += [r for r in arg.refs() if r not in seen]
        return seen


def op(op_name, *args, **params):
    return Op(op_name, tuple(as_expr(a) for a in args), tuple(sorted(params.items())))


def _text(e):
    return e.text()


def _latex(e):
    return e.latex()


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _number_text(value):
    value = np.asarray(value, dtype=np.float64)
    if value.ndim:
        return "[" + ", ".join(_number_text(v) for v in value) + "]"
    v = float(value)
    if v == 0.5:
        return "½"
    return f"{v:g}".replace("-", "−")


def latex_symbol(symbol: str) -> str:
    """δ[1](2) → \\delta^{[1]}(2); W1 → W_{1}; H1ᵀ → H_{1}^T."""
    greek = {"δ": r"\delta", "η": r"\eta", "σ": r"\sigma", "Σ": r"\Sigma", "∂": r"\partial "}
    out = symbol
    for k, v in greek.items():
        out = out.replace(k, v + (" " if v[-1].isalpha() else ""))
    out = out.replace("ᵀ", "^{T}")
    out = re.sub(r"\[(\d+)\]", r"^{[\1]}", out)
    # a batch's sequence mark: x[0]⁽²⁾ → x^{[0](2)}, y⁽²⁾ → y^{(2)}
    out = re.sub(r"\^\{\[(\d+)\]\}⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾",
                 lambda m: "^{[" + m.group(1) + "](" + _plain_digits(m.group(2)) + ")}", out)
    out = re.sub(r"⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾", lambda m: "^{(" + _plain_digits(m.group(1)) + ")}", out)
    out = re.sub(r"^([A-Za-z])(\d+)", r"\1_{\2}", out)
    return out


def _plain_digits(superscripts: str) -> str:
    return superscripts.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))


# ------------------------------------------------------------------ the operations
def _conv_windows(x, kernel, stride, padding):
    """(…, C, Ho, Wo, kh, kw) windows of a (…, C, H, W) input, zero-padded."""
    (ph, pw), (sh, sw) = padding, stride
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    view = sliding_window_view(np.pad(x, pad), kernel, axis=(-2, -1))
    return view[..., ::sh, ::sw, :, :]


def _conv2d(x, w, *bias, stride, padding):
    """z[o, y, x] = Σ_c,i,j W[o, c, i, j] · xpad[c, y·s + i, x·s + j] + b[o] (cross-correlation)."""
    windows = _conv_windows(x, w.shape[2:], stride, padding)
    z = np.einsum("...chwij,ocij->...ohw", windows, w)
    return z + bias[0][:, None, None] if bias else z


def _conv2d_text(x, w, *bias, **_):
    return f"{w} ⋆ {x}" + (f" + {bias[0]}" if bias else "")


def _conv2d_latex(x, w, *bias, **_):
    return rf"{w} \star {x}" + (f" + {bias[0]}" if bias else "")


def _log_softmax(a, axis):
    shifted = a - np.max(a, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _clamped_log(a):
    """log floored at −100, as PyTorch's binary cross-entropy (and the engine) take it."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(a), -100.0)


def _softmax_backward(y, g, axis):
    """∂E/∂z of y = softmax(z) from g = ∂E/∂y: y ⊙ (g − Σ_k g_k y_k)."""
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def _class_sum(a, axis):
    return np.sum(a, axis=axis, keepdims=True)


def _channel_sum(a):
    """Σ over samples and positions: a conv bias gradient from δ (…, O, H, W)."""
    return a.reshape((-1,) + a.shape[-3:]).sum(axis=(0, 2, 3))


def _conv_weight_grad(x, delta, kernel, stride, padding):
    """∂E/∂W[o, c, i, j] = Σ_y,x δ[o, y, x] · xpad[c, y·s + i, x·s + j]: x correlated with δ."""
    windows = _conv_windows(x, kernel, stride, padding)
    ho, wo = delta.shape[-2:]
    windows = windows[..., :ho, :wo, :, :]
    if delta.ndim == 4:  # a batch: summed over the samples
        return np.einsum("nchwij,nohw->ocij", windows, delta)
    return np.einsum("chwij,ohw->ocij", windows, delta)


def _conv_input_grad(delta, w, stride, padding, input_shape):
    """∂E/∂x: each δ[o, y, x] spreads W[o] back onto its window (a full convolution with the
    kernel for stride 1), the padding cut off."""
    (ph, pw), (sh, sw) = padding, stride
    kh, kw = w.shape[2:]
    lead = delta.shape[:-3]
    h, wd = input_shape[-2:]
    out = np.zeros(lead + (w.shape[1], h + 2 * ph, wd + 2 * pw))
    ho, wo = delta.shape[-2:]
    spread = np.einsum("...ohw,ocij->...chwij", delta, w)
    for i in range(kh):
        for j in range(kw):
            out[..., i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += spread[..., i, j]
    return out[..., ph : ph + h, pw : pw + wd]


def _pool(x, kernel, stride, padding, kind):
    fill = -np.inf if kind == "max" else 0.0
    (ph, pw) = padding
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    view = sliding_window_view(np.pad(x, pad, constant_values=fill), kernel, axis=(-2, -1))
    view = view[..., :: stride[0], :: stride[1], :, :]
    return view.max(axis=(-2, -1)) if kind == "max" else view.mean(axis=(-2, -1))


def _pool_route(x, delta, kernel, stride, padding, kind):
    """Max pooling sends each window's δ to the window's maximum (the first one on a tie, as
    the engine does); average pooling spreads it evenly over the window."""
    (ph, pw), (sh, sw), (kh, kw) = padding, stride, kernel
    fill = -np.inf if kind == "max" else 0.0
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    xp = np.pad(x, pad, constant_values=fill)
    out = np.zeros_like(xp, dtype=np.float64)
    ho, wo = delta.shape[-2:]
    for y in range(ho):
        for z in range(wo):
            window = xp[..., y * sh : y * sh + kh, z * sw : z * sw + kw]
            d = delta[..., y, z]
            if kind == "max":
                flat = window.reshape(window.shape[:-2] + (-1,))
                first = np.argmax(flat, axis=-1)
                mask = np.zeros_like(flat)
                np.put_along_axis(mask, first[..., None], 1.0, axis=-1)
                out[..., y * sh : y * sh + kh, z * sw : z * sw + kw] += mask.reshape(window.shape) * d[..., None, None]
            else:
                out[..., y * sh : y * sh + kh, z * sw : z * sw + kw] += d[..., None, None] / (kh * kw)
    return out[..., ph : ph + x.shape[-2], pw : pw + x.shape[-1]]


def _softmax(a, axis=-1):
    shifted = a - np.max(a, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


ACTIVATIONS = {
    "identity": lambda a: a,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda a: np.maximum(a, 0.0),
    "softmax": _softmax,
}


def _apply(a, function, axis=-1):
    if function == "softmax":
        return _softmax(a, axis)
    return ACTIVATIONS[function](a)


def _transpose(a):
    return a.T if a.ndim >= 2 else a


def _outer(a, b):
    """a bᵀ; for (N, ·) rows of samples, Σ_n a_n b_nᵀ."""
    if a.ndim <= 1:
        return np.outer(a, b)
    return np.einsum("ni,nj->ij", a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))


def _sum_rows(a, keep):
    """Σ over the leading axes down to ``keep`` trailing ones (a bias gradient over samples)."""
    return a.reshape((-1,) + a.shape[a.ndim - keep:]).sum(axis=0) if a.ndim > keep else a


def _vjp(jacobian, delta):
    """(∂n/∂m)ᵀ · δ(n): the Jacobian (axes of n, then of m) contracted with δ(n) over n's axes."""
    return np.tensordot(delta, jacobian, axes=np.ndim(delta))


def _slice(a, start, stop):
    return a[..., start:stop]


def _concat(*parts):
    return np.concatenate(parts, axis=-1)


def total(terms):
    """a + b + … as one n-ary node (a sum over a thousand consumers stays one level deep, so
    evaluating and writing it never recurses once per term); one term is itself."""
    terms = [as_expr(t) for t in terms]
    return terms[0] if len(terms) == 1 else Op("sum_of", tuple(terms))


def _infix(symbol):
    return lambda a, b: f"{a} {symbol} {b}"


def _fn(name):
    return lambda a, **_: f"{name}({a})"


OPS = {
    "add": OpKind(np.add, _infix("+"), _infix("+"), SUM, (SUM, SUM + 1)),
    "sum_of": OpKind(lambda *a: sum(a[1:], a[0]), lambda *a: " + ".join(a), lambda *a: " + ".join(a), SUM, (SUM,)),
    "mean_of": OpKind(lambda *a, count: sum(a[1:], a[0]) / count,
                      lambda *a, count: f"1/{count} · (" + " + ".join(a) + ")",
                      lambda *a, count: rf"\frac{{1}}{{{count}}}\left(" + " + ".join(a) + r"\right)", PRODUCT, (SUM,)),
    "sub": OpKind(np.subtract, _infix("−"), _infix("-"), SUM, (SUM, SUM + 1)),
    "mul": OpKind(np.multiply, lambda a, b: f"{a} ⊙ {b}" if not _scalar_text(a) else f"{a} · {b}",
                  lambda a, b: rf"{a} \odot {b}" if not _scalar_text(a) else rf"{a} \cdot {b}", PRODUCT,
                  (PRODUCT, PRODUCT + 1)),
    "matmul": OpKind(np.matmul, lambda a, b: f"{a} {b}", lambda a, b: f"{a}\\,{b}", PRODUCT, (PRODUCT, PRODUCT + 1)),
    "outer": OpKind(_outer, lambda a, b: f"{a} {b}ᵀ", lambda a, b: f"{a}\\,{b}^{{T}}", PRODUCT, (PRODUCT, POSTFIX)),
    "outer_sum": OpKind(_outer, lambda a, b: f"Σₙ {a} {b}ᵀ", lambda a, b: rf"\sum_n {a}\,{b}^{{T}}", UNARY,
                        (PRODUCT, POSTFIX)),
    "neg": OpKind(np.negative, lambda a: f"−{a}", lambda a: f"-{a}", UNARY),
    "square": OpKind(np.square, lambda a: f"{a}²", lambda a: f"{a}^{{2}}", POSTFIX, (ATOM,)),
    "transpose": OpKind(_transpose, lambda a: f"{a}ᵀ", lambda a: f"{a}^{{T}}", POSTFIX, (ATOM,)),
    "sum": OpKind(lambda a: np.sum(a), lambda a: f"Σ {a}", lambda a: rf"\sum {a}", UNARY, (PRODUCT,)),
    "divide": OpKind(np.divide, lambda a, b: f"{a} / {b}", lambda a, b: rf"\frac{{{a}}}{{{b}}}", PRODUCT,
                     (PRODUCT, POSTFIX)),
    "sum_rows": OpKind(_sum_rows, lambda a, keep: f"Σₙ {a}", lambda a, keep: rf"\sum_n {a}", UNARY, (PRODUCT,)),
    "log": OpKind(np.log, _fn("log"), lambda a: rf"\log\left({a}\right)", ATOM, (0,)),
    "apply": OpKind(_apply, lambda a, function, axis=-1: f"{function}({a})",
                    lambda a, function, axis=-1: rf"\mathrm{{{function}}}\left({a}\right)", ATOM, (0,)),
    "relu_prime": OpKind(lambda a: (a > 0).astype(np.float64), _fn("relu′"),
                         lambda a: rf"\mathrm{{relu}}'\left({a}\right)", ATOM, (0,)),
    "conv2d": OpKind(_conv2d, _conv2d_text, _conv2d_latex, SUM, (POSTFIX, POSTFIX, PRODUCT)),
    "log_softmax": OpKind(_log_softmax, lambda a, axis: f"log softmax({a})",
                          lambda a, axis: rf"\log\mathrm{{softmax}}\left({a}\right)", ATOM, (0,)),
    "clamped_log": OpKind(_clamped_log, _fn("log"), lambda a: rf"\log\left({a}\right)", ATOM, (0,)),
    "softmax_backward": OpKind(_softmax_backward, lambda y, g, axis: f"{y} ⊙ ({g} − Σ {g} ⊙ {y})",
                               lambda y, g, axis: rf"{y} \odot \left({g} - \sum {g} \odot {y}\right)",
                               PRODUCT, (POSTFIX, PRODUCT)),
    "class_sum": OpKind(_class_sum, lambda a, axis: f"Σₖ {a}", lambda a, axis: rf"\sum_k {a}", UNARY, (PRODUCT,)),
    "channel_sum": OpKind(_channel_sum, lambda a: f"Σ_(y,x) {a}", lambda a: rf"\sum_{{y,x}} {a}", UNARY,
                          (PRODUCT,)),
    "row": OpKind(lambda a, index: a[index], lambda a, index: f"{a}[sample {index + 1}]",
                  lambda a, index: rf"{a}_{{\mathrm{{sample}}\,{index + 1}}}", POSTFIX, (ATOM,)),
    "conv_weight_grad": OpKind(_conv_weight_grad, lambda x, d, **_: f"{x} ⋆ {d}",
                               lambda x, d, **_: rf"{x} \star {d}", PRODUCT, (POSTFIX, POSTFIX)),
    "conv_input_grad": OpKind(_conv_input_grad, lambda d, w, **_: f"{d} ∗ rot180({w})",
                              lambda d, w, **_: rf"{d} \ast \mathrm{{rot180}}\left({w}\right)", PRODUCT,
                              (POSTFIX, 0)),
    "pool": OpKind(_pool, lambda x, kind, **_: f"{kind}pool({x})",
                   lambda x, kind, **_: rf"\mathrm{{{kind}pool}}\left({x}\right)", ATOM, (0,)),
    "pool_route": OpKind(_pool_route, lambda x, d, kind, **_: f"route_{kind}pool({d})",
                         lambda x, d, kind, **_: rf"\mathrm{{route}}_{{\mathrm{{{kind}pool}}}}\left({d}\right)",
                         ATOM, (0, 0)),
    "reshape": OpKind(lambda a, shape, label: np.reshape(a, shape), lambda a, shape, label: f"{label}({a})",
                      lambda a, shape, label: rf"\mathrm{{{label}}}\left({a}\right)", ATOM, (0,)),
    "vjp": OpKind(_vjp, lambda j, d: f"{d} · {j}", lambda j, d: rf"{d} \cdot {j}", PRODUCT, (POSTFIX, POSTFIX)),
    "gate_rows": OpKind(lambda a, start, stop, gate: a[start:stop], lambda a, start, stop, gate: f"{a}[{gate}]",
                        lambda a, start, stop, gate: f"{a}_{{{gate}}}", POSTFIX, (ATOM,)),
    "slice": OpKind(_slice, lambda a, start, stop: f"{a}[{start}:{stop}]",
                    lambda a, start, stop: f"{a}_{{[{start}:{stop}]}}", POSTFIX, (ATOM,)),
    "concat": OpKind(_concat, lambda *parts: "[" + "; ".join(parts) + "]",
                     lambda *parts: r"\left[" + "; ".join(parts) + r"\right]", ATOM, (0,)),
}


def _scalar_text(text: str) -> bool:
    """Whether a written factor is a plain number or a scalar symbol (then · not ⊙)."""
    return bool(text) and (text[0].isdigit() or text in ("½", "η", "−1") or text.startswith("−") and text[1:2].isdigit())


__all__ = ["Const", "Expr", "OPS", "Op", "OpKind", "Ref", "as_expr", "latex_symbol", "op", "total"]

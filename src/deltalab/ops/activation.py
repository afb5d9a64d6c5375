"""More activations with torch's definitions and gradients: elu, leaky_relu, softplus, gelu."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ._util import operand


class ELU(Function):
    """y = x for x > 0, α(eᕽ − 1) otherwise; ∂y/∂x = 1 or αeˣ (αeˣ at x = 0, as torch).

    At x = NaN the slope is NaN (αe^NaN): torch's vectorised kernel tests x > 0 and takes the
    exponential branch; only its scalar loop over the last few elements of a tensor tests
    x <= 0 and passes the gradient through, which would hide a NaN input."""

    @staticmethod
    def forward(ctx, x, alpha):
        positive = x > 0
        with np.errstate(over="ignore"):
            scaled_exp = alpha * np.exp(np.where(positive, 0, x))
        ctx.slope = np.where(positive, 1, scaled_exp).astype(x.dtype, copy=False)
        return np.where(positive, x, scaled_exp - alpha).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.slope, None


class LeakyReLU(Function):
    """y = x for x > 0, slope·x otherwise; ∂y/∂x = 1 or slope (slope at x = 0, as torch)."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.positive, ctx.negative_slope = x > 0, negative_slope
        return np.where(ctx.positive, x, x * np.asarray(negative_slope, x.dtype))

    @staticmethod
    def backward(ctx, grad):
        return np.where(ctx.positive, grad, grad * np.asarray(ctx.negative_slope, grad.dtype)), None


class Softplus(Function):
    """y = log(1 + e^(βx))/β, and y = x where βx > threshold (torch's linear region)."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        bx = x * np.asarray(beta, x.dtype)
        linear = bx > threshold
        with np.errstate(over="ignore"):
            z = np.exp(np.where(linear, 0, bx))
        ctx.slope = np.where(linear, 1, z / (z + 1)).astype(x.dtype, copy=False)
        return np.where(linear, x, np.log1p(z) / np.asarray(beta, x.dtype)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.slope, None, None


_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is the C library's


def erf(x):
    """The error function elementwise, in x's dtype."""
    return _erf(x).astype(x.dtype)


class GELU(Function):
    """Exact: y = x·Φ(x) = ½x(1 + erf(x/√2)); "tanh": ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""

    @staticmethod
    def forward(ctx, x, approximate):
        if approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            inner = k * (x + 0.044715 * x**3)
            t = np.tanh(inner)
            ctx.slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
            return (0.5 * x * (1 + t)).astype(x.dtype, copy=False)
        cdf = 0.5 * (1 + erf(x / np.asarray(math.sqrt(2), x.dtype)))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        ctx.slope = (cdf + x * pdf).astype(x.dtype, copy=False)
        return (x * cdf).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.slope.astype(grad.dtype, copy=False), None


def _no_inplace(inplace, name):
    if inplace:
        raise NotImplementedError(f"deltalab has no in-place {name} (inplace=True); use the returned tensor")


def elu(input, alpha=1.0, inplace=False):
    _no_inplace(inplace, "elu")
    return ELU.apply(operand(input), alpha)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    _no_inplace(inplace, "leaky_relu")
    return LeakyReLU.apply(operand(input), negative_slope)


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(operand(input), beta, threshold)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return GELU.apply(operand(input), approximate)

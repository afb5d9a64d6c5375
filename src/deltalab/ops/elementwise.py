"""Elementwise ops: arithmetic with broadcasting, pow, exp/log and the activations."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ._util import binary_operands, check_broadcast, operand, unbroadcast


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(grad, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(-grad, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        ga = unbroadcast(grad * b, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.divide(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        ga = unbroadcast(grad / b, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """``a ** b``; d/da = b a^(b-1), d/db = a^b log a (only where a > 0)."""

    @staticmethod
    def forward(ctx, a, b):
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        ga = gb = None
        if ctx.needs_input_grad[0]:
            # d/da a^0 = 0 everywhere, also at a = 0 where b·a^(b−1) would be 0·inf = nan (as PyTorch)
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.where(b == 0, 0, b * np.power(a, b - 1))
            ga = unbroadcast(grad * local.astype(grad.dtype, copy=False), np.shape(a))
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            gb = unbroadcast(grad * out * log_a, np.shape(b))
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0]


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.saved[0]


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)  # numpy's tanh is stable for large |a|
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return grad * (1 - out * out)


def stable_sigmoid(a):
    """1 / (1 + e^-a) without overflow: e^a / (1 + e^a) on the negative side."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = stable_sigmoid(a).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return grad * out * (1 - out)


class Relu(Function):
    """max(0, a); the derivative at exactly 0 is taken as 0, as PyTorch does.  NaN stays NaN
    (np.maximum propagates it, like torch): a NaN weight must not hide behind a ReLU.  Its
    gradient passes where a is not ≤ 0 (NaN included), as torch's threshold_backward does."""

    @staticmethod
    def forward(ctx, a):
        mask = ~(a <= 0)
        ctx.save_for_backward(mask)
        return np.maximum(a, np.zeros((), a.dtype))

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0]


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


class Where(Function):
    """``where(condition, a, b)``: the gradient flows to the chosen branch only."""

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition, dtype=bool)
        ctx.save_for_backward(condition)
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        condition = ctx.saved[0]
        zero = np.zeros((), dtype=grad.dtype)
        return (
            None,
            unbroadcast(np.where(condition, grad, zero), ctx.shapes[0]),
            unbroadcast(np.where(condition, zero, grad), ctx.shapes[1]),
        )


def _binary(function, name):
    def op(a, b):
        a, b = binary_operands(a, b)
        check_broadcast(name, a, b)
        return function.apply(a, b)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name} with broadcasting; gradients are summed back over broadcast axes."
    return op


add = _binary(Add, "add")
sub = _binary(Sub, "sub")
mul = _binary(Mul, "mul")
div = _binary(Div, "div")
pow = _binary(Pow, "pow")  # noqa: A001 - mirrors torch.pow


def neg(a):
    return Neg.apply(operand(a))


def exp(a):
    return Exp.apply(operand(a))


def log(a):
    return Log.apply(operand(a))


def tanh(a):
    return Tanh.apply(operand(a))


def sigmoid(a):
    return Sigmoid.apply(operand(a))


def relu(a):
    return Relu.apply(operand(a))


def cast(a, dtype):
    if a.data.dtype == dtype:
        return a
    return Cast.apply(a, dtype)


def where(condition, a, b):
    from ..tensor import Tensor

    condition = condition.data if isinstance(condition, Tensor) else condition
    a, b = binary_operands(a, b)
    check_broadcast("where", a, b)
    return Where.apply(condition, a, b)

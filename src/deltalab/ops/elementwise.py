"""Elementwise ops: arithmetic with broadcasting, pow, exp/log and the activations."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..fast import kernels as compiled_kernels
from ._util import binary_operands, check_broadcast, floating, operand, unbroadcast


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
    """1 / (1 + e^-a), as torch's CPU kernel computes it: relatively accurate on both sides, and
    exactly 0 where e^-a overflows (float32 a < -88.7), as torch -- the form e^a / (1 + e^a) on
    the negative side gave subnormals there, so binary_cross_entropy's log met a finite value
    where torch's met 0 (inf gradients in torch, finite ones here; found by the fuzzer)."""
    with np.errstate(over="ignore"):
        e = np.exp(np.negative(a))
    return 1 / (1 + e)


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
    gradient passes where a is not ≤ 0 (NaN included), as torch's threshold_backward does.

    For float arrays both directions are one bitwise AND with a mask of all-ones (keep) or
    zero bits (a ≤ 0), the same values as np.maximum / np.where bit for bit (+0.0 where a ≤ 0,
    a NaN upstream gradient there included) at a fraction of their cost (np.where with a
    boolean mask: 2.6 ms on 32×16×32×32 float32, the AND 0.1 ms)."""

    @staticmethod
    def forward(ctx, a):
        compiled = ctx.compiled = _relu_kernels(a)
        if compiled is not None:  # float32: one pass each way (deltalab.fast.activation_kernels)
            out = np.empty(a.shape, a.dtype)
            keep = np.empty(a.shape, np.bool_)
            compiled.relu_forward(a.reshape(-1), out.reshape(-1), keep.reshape(-1))
            ctx.save_for_backward(keep)
            return out
        bits = _same_size_int(a.dtype)
        if bits is None:
            mask = ~(a <= 0)
            ctx.save_for_backward(mask)
            ctx.bits = None
            return np.maximum(a, np.zeros((), a.dtype))
        keep = np.subtract(a <= 0, 1, dtype=bits)  # 0 where a ≤ 0, all ones elsewhere (NaN too)
        ctx.save_for_backward(keep)
        ctx.bits = bits
        return np.bitwise_and(a.view(bits), keep).view(a.dtype)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved
        if ctx.compiled is not None and grad.dtype == np.float32 and grad.flags.c_contiguous:
            out = np.empty(grad.shape, grad.dtype)
            ctx.compiled.relu_backward(grad.reshape(-1), mask.reshape(-1), out.reshape(-1))
            return out
        if ctx.compiled is not None:
            return np.where(mask, grad, np.zeros((), grad.dtype))
        if ctx.bits is not None and np.dtype(ctx.bits).itemsize == grad.dtype.itemsize and grad.dtype.kind == "f":
            return np.bitwise_and(grad.view(ctx.bits), mask).view(grad.dtype)
        if ctx.bits is not None:
            mask = mask != 0
        # select, not multiply: where a ≤ 0 the gradient is 0 even if the upstream one is NaN or inf
        return np.where(mask, grad, np.zeros((), grad.dtype))


def _relu_kernels(a):
    """The compiled ReLU for a contiguous float32 array of ``Tuning.kernel_min_work`` elements or
    more, once such calls repeat (:func:`deltalab.fast.kernels.for_repeated_size`: importing numba
    costs ~0.4 s), else None: the NumPy path (float64 keeps its bits)."""
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        return None
    return compiled_kernels.for_repeated_size("activation_kernels", a.size)


def _same_size_int(dtype):
    """The signed integer type of a float dtype's size (None for other dtypes)."""
    if dtype.kind != "f":
        return None
    return {4: np.int32, 8: np.int64}.get(dtype.itemsize)


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
_true_div = _binary(Div, "div")


def div(a, b):
    """True division; integers divide as the default float dtype (as torch, not NumPy's float64)."""
    return _true_div(floating(a), floating(b))
pow = _binary(Pow, "pow")  # noqa: A001 - mirrors torch.pow


def neg(a):
    return Neg.apply(operand(a))


def exp(a):
    return Exp.apply(floating(operand(a)))


def log(a):
    return Log.apply(floating(operand(a)))


def tanh(a):
    return Tanh.apply(floating(operand(a)))


def sigmoid(a):
    return Sigmoid.apply(floating(operand(a)))


def relu(a):
    return Relu.apply(operand(a))


def cast(a, dtype):
    if a.data.dtype == dtype:
        return a
    return Cast.apply(a, dtype)


def where(condition, a, b):
    from ..tensor import Tensor

    condition = condition.data if isinstance(condition, Tensor) else condition
    if _python_number(a) and _python_number(b):  # where(mask, 1.0, 0.0): the default dtype, as torch
        a, b = Tensor(a), Tensor(b)
    a, b = binary_operands(a, b)
    check_broadcast("where", a, b)
    return Where.apply(condition, a, b)


def _python_number(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


# ------------------------------------------------------------------ more unary ops
class Clone(Function):
    @staticmethod
    def forward(ctx, a, order):
        return np.array(a, copy=True, order=order)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        with np.errstate(divide="ignore"):
            return grad / (2 * ctx.saved[0])


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.cos(ctx.saved[0])


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad * np.sin(ctx.saved[0])


class Abs(Function):
    """|a|; the derivative at 0 is 0 (sign(0)), as PyTorch."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.sign(ctx.saved[0])


class Log1p(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log1p(a)

    @staticmethod
    def backward(ctx, grad):
        return grad / (1 + ctx.saved[0])


class Expm1(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * (ctx.saved[0] + 1)


class Rounding(Function):
    """floor, ceil, round, trunc, sign: piecewise constant, so the gradient is zero (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, function):
        ctx.shape = a.shape
        return np.asarray(function(a)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return np.zeros(ctx.shape, dtype=grad.dtype), None


class Clamp(Function):
    """clamp(a, min, max); the gradient passes where min <= a <= max (bounds included, as PyTorch)."""

    @staticmethod
    def forward(ctx, a, low, high):
        out = a
        if low is not None:
            out = np.maximum(out, low)
        if high is not None:
            out = np.minimum(out, high)
        keep = np.ones(a.shape, dtype=bool)
        if low is not None:
            keep &= a >= low
        if high is not None:
            keep &= a <= high
        ctx.save_for_backward(keep)
        return np.asarray(out).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0], None, None


class Maximum(Function):
    """Elementwise maximum; where both are equal each side gets half the gradient (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, b, larger):
        ctx.save_for_backward(a, b)
        ctx.larger = larger
        return np.maximum(a, b) if larger else np.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        pick_a = (a > b) if ctx.larger else (a < b)
        share = np.where(a == b, 0.5, pick_a.astype(grad.dtype)).astype(grad.dtype, copy=False)
        return unbroadcast(grad * share, np.shape(a)), unbroadcast(grad * (1 - share), np.shape(b)), None


def clone(a, order="K"):
    """A copy in the graph; ``order="C"`` makes it C-contiguous (``contiguous()``)."""
    return Clone.apply(a, order)


def sqrt(a):
    return Sqrt.apply(floating(operand(a)))


def sin(a):
    return Sin.apply(floating(operand(a)))


def cos(a):
    return Cos.apply(floating(operand(a)))


def abs(a):  # noqa: A001 - mirrors torch.abs
    return Abs.apply(operand(a))


def log1p(a):
    return Log1p.apply(floating(operand(a)))


def expm1(a):
    return Expm1.apply(floating(operand(a)))


def rounding(a, function):
    return Rounding.apply(operand(a), function)


def _bound(value):
    from ..tensor import Tensor

    return value.data if isinstance(value, Tensor) else value


def clamp(a, min=None, max=None):  # noqa: A002 - torch's argument names
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return Clamp.apply(a, _bound(min), _bound(max))


def maximum(a, b):
    a, b = binary_operands(a, b)
    check_broadcast("maximum", a, b)
    return Maximum.apply(a, b, True)


def minimum(a, b):
    a, b = binary_operands(a, b)
    check_broadcast("minimum", a, b)
    return Maximum.apply(a, b, False)


def masked_fill(a, mask, value):
    """``a`` with ``value`` where ``mask`` is true (the gradient flows to ``a`` elsewhere)."""
    from ..tensor import Tensor

    mask_array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if mask_array.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask_array.dtype}")
    if not isinstance(value, Tensor):
        value = np.asarray(value).astype(a.dtype)
    elif value.ndim != 0:
        raise RuntimeError(
            f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {value.ndim} dimension(s).")
    check_broadcast("masked_fill", a, mask_array)
    return where(mask_array, value, a)


def _no_gradient(op_name, *operands):
    from ..autograd import is_grad_enabled
    from ..tensor import Tensor

    if is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in operands):
        raise NotImplementedError(f"deltalab has no gradient of {op_name} (torch's {op_name} backward)")


def _plain(a):
    from ..tensor import Tensor

    return a.data if isinstance(a, Tensor) else a


def floor_divide(a, b):
    """``a // b`` rounded down, without a graph (torch has no gradient for it either)."""
    from ..tensor import from_array

    _no_gradient("floor_divide", a, b)
    a, b = binary_operands(a, b)
    check_broadcast("floor_divide", a, b)
    return from_array(np.asarray(np.floor_divide(_plain(a), _plain(b))))


def remainder(a, b):
    """``a % b`` with the sign of ``b`` (Python's and torch's rule); d/da = 1."""
    from ..tensor import Tensor, from_array

    a, b = binary_operands(a, b)
    check_broadcast("remainder", a, b)
    if isinstance(b, Tensor) and b.requires_grad:
        _no_gradient("remainder", b)
    quotient = np.floor_divide(_plain(a), _plain(b))
    if isinstance(a, Tensor) and a.requires_grad and np.asarray(quotient).dtype.kind == "f":
        return sub(a, mul(from_array(np.asarray(quotient)), b))
    return from_array(np.asarray(np.remainder(_plain(a), _plain(b))))


def rounded_divide(a, b, mode):
    """``div(a, b, rounding_mode='trunc'|'floor')``: integers stay integers, floats get a zero gradient."""
    from ..tensor import from_array

    if mode not in ("trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{mode}'")
    a, b = binary_operands(a, b)
    if np.result_type(_plain(a), _plain(b)).kind in "biu":
        quotient = np.floor_divide(_plain(a), _plain(b))
        if mode == "trunc":
            exact = np.asarray(_plain(a)) / np.asarray(_plain(b))
            quotient = np.trunc(exact).astype(np.asarray(quotient).dtype)
        return from_array(np.asarray(quotient))
    return rounding(div(a, b), np.floor if mode == "floor" else np.trunc)


# ------------------------------------------------------------------ in place
def check_inplace(target, op_name):
    """PyTorch's rules for changing ``target`` in place while grad mode is on."""
    from ..autograd import is_grad_enabled

    if not is_grad_enabled():
        return
    base = target._base
    if base is None and target.grad_fn is None and target.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if base is not None and base.grad_fn is None and base.requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")


def tracks(target, operands):
    """Whether an in-place op on ``target`` must be recorded in the graph."""
    from ..autograd import is_grad_enabled
    from ..tensor import Tensor

    return is_grad_enabled() and (
        target.requires_grad or any(isinstance(x, Tensor) and x.requires_grad for x in operands))


def snapshot(target):
    """A copy of ``target``'s values that takes over its place in the graph (the op's input)."""
    from ..tensor import from_array

    old = from_array(np.array(target.data, copy=True))
    old.grad_fn, old._output_index, old.requires_grad = target.grad_fn, target._output_index, target.requires_grad
    return old


def write_result(target, result, op_name, casting="same_kind"):
    """Write ``result`` into ``target``'s buffer (views see it) and count the change (version)."""
    from ..dtypes import torch_name
    from ..tensor import Tensor

    array = np.asarray(result.data if isinstance(result, Tensor) else result)
    if array.shape != target.data.shape:
        try:
            shape = np.broadcast_shapes(array.shape, target.data.shape)
        except ValueError:
            shape = array.shape
        if shape != target.data.shape:
            raise RuntimeError(
                f"output with shape {list(target.data.shape)} doesn't match the broadcast shape {list(shape)}")
    if casting == "same_kind" and not np.can_cast(array.dtype, target.data.dtype, "same_kind"):
        raise RuntimeError(
            f"result type {torch_name(array.dtype)} can't be cast to the desired output type "
            f"{torch_name(target.data.dtype)}")
    ensure_writable(target)
    np.copyto(target.data, array, casting="unsafe")
    target._version.value += 1


def ensure_writable(target):
    if not target.data.flags.writeable:
        if 0 in target.data.strides and target.data.size > 1:
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers to a single memory "
                "location. Please clone() the tensor before performing the operation.")
        raise RuntimeError("the tensor's values are read-only (a read-only NumPy array): clone() it first")


def adopt(target, result):
    """``target`` now stands for ``result`` in the graph (its history is the in-place op)."""
    target.grad_fn, target._output_index = result.grad_fn, result._output_index
    target.requires_grad = result.requires_grad


def apply_inplace(target, op_name, compute, *operands):
    """Run ``compute(target, *operands)`` out of place and write the result into ``target``."""
    from ..autograd import no_grad

    check_inplace(target, op_name)
    if not tracks(target, operands):
        with no_grad():
            result = compute(target, *operands)
        write_result(target, result, op_name)
        return target
    if target._base is not None:
        return _inplace_on_view(target, op_name, compute, operands)
    result = compute(snapshot(target), *operands)
    write_result(target, result, op_name)
    adopt(target, result)
    return target


def _inplace_on_view(target, op_name, compute, operands):
    """A recorded in-place op on a slice ``base[index]``: written back through ``base[index] = ...``, so
    the base's graph knows too (torch's CopySlices)."""
    index = target._view_index
    base = target._base
    if index is None:
        raise NotImplementedError(
            f"deltalab has no recorded in-place {op_name} on this view (only on slices t[i] of a tensor); "
            "use the out-of-place op")
    result = compute(snapshot(target), *operands)
    from .shape import setitem_

    setitem_(base, index, result, op_name=op_name)
    fresh = base[index]
    adopt(target, fresh)
    return target

"""Loss functions.  Each takes ``reduction`` = "sum" | "mean" | "none".

The lecture sums (½Σ(t − y)², −Σ t·log y) and never averages over the batch, so its losses
default to "sum"; the PyTorch-named ones (``mse_loss``, ``cross_entropy``,
``binary_cross_entropy``) default to "mean" like PyTorch.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .autograd import Function
from .errors import ClassIndexError, ShapeError
from .ops.softmax import log_softmax_values
from .tensor import Tensor

REDUCTIONS = ("sum", "mean", "none")


def _reduce(values, reduction, op_name, count=None):
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.sum() / count if count is not None else values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"{op_name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _target(target, prediction):
    """The target as a tensor in the prediction's float dtype.

    Targets are data, not weights: a float64 NumPy label array must not silently promote a
    float32 network's loss (and every gradient behind it) to float64.
    """
    dtype = prediction.data.dtype
    if isinstance(target, Tensor):
        if target.data.dtype.kind == "f" and dtype.kind == "f" and target.data.dtype != dtype:
            return target.to(dtype)
        return target
    array = np.asarray(target)
    if array.dtype.kind in "fbiu" and dtype.kind == "f":
        array = array.astype(dtype, copy=False)
    return array


def _same_shape(op_name, prediction, target):
    if prediction.shape != target.shape:
        raise ShapeError(f"{op_name}: prediction of shape {prediction.shape} and target of shape {target.shape} differ")


def half_squared_error(prediction, target, reduction="sum"):
    """E = ½ Σ (t − y)², the lecture's error; its delta at a linear output is y − t."""
    target = _target(target, prediction)
    _same_shape("half_squared_error", prediction, target)
    diff = prediction - target
    return _reduce(0.5 * diff * diff, reduction, "half_squared_error")


def squared_error(prediction, target, reduction="sum"):
    """E = Σ (y − t)² (no ½), as in the exam exercises."""
    target = _target(target, prediction)
    _same_shape("squared_error", prediction, target)
    diff = prediction - target
    return _reduce(diff * diff, reduction, "squared_error")


def _no_legacy(op_name, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise NotImplementedError(
            f"deltalab has no torch {op_name}(size_average=, reduce=) (deprecated in PyTorch): use reduction="
        )


def mse_loss(prediction, target, size_average=None, reduce=None, reduction="mean"):
    """Mean of (y − t)², like ``torch.nn.functional.mse_loss``."""
    _no_legacy("mse_loss", size_average, reduce)
    return squared_error(prediction, target, reduction)


def _class_indices(op_name, scores, target_array, axis, ignore_index):
    """Check a class-index target against (N, C, ...) or (C,) scores; (the index tuple that
    picks each sample's target score, the mask of the samples that count)."""
    expected = scores.shape[:axis] + scores.shape[axis + 1 :]
    if target_array.shape != expected:
        raise ShapeError(
            f"{op_name}: class-index target of shape {target_array.shape} does not fit input of "
            f"shape {scores.shape} (expected {expected})"
        )
    if target_array.dtype.kind == "b":
        raise ShapeError(f"{op_name}: class-index target must be integers, got booleans")
    n_classes = scores.shape[axis]
    counted = target_array != ignore_index
    chosen = target_array[counted]
    if chosen.size and (chosen.min() < 0 or chosen.max() >= n_classes):
        raise ClassIndexError(
            f"{op_name}: class indices must lie in 0..{n_classes - 1} (or be ignore_index "
            f"{ignore_index}), got {chosen.min()}..{chosen.max()}"
        )
    classes = np.where(counted, target_array, 0).astype(np.intp)
    grid = list(np.indices(target_array.shape, sparse=True))
    grid.insert(axis, classes)
    return tuple(grid), counted


def _picked_loss(op_name, log_p, target_array, axis, weight, ignore_index, reduction):
    """−w[t]·log p[t] per sample, picked by index (a gather, never one-hot · log p, so a −inf
    log-probability of another class stays out of the sum); "mean" divides by Σ w[t] over the
    counted samples, as PyTorch does."""
    index, counted = _class_indices(op_name, log_p, target_array, axis, ignore_index)
    picked = log_p[index]
    if weight is not None:
        w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
        if w.shape != (log_p.shape[axis],):
            raise ShapeError(f"{op_name}: weight of shape {w.shape} does not fit {log_p.shape[axis]} classes")
        sample_weight = np.where(counted, w.astype(log_p.dtype)[index[axis]], 0).astype(log_p.dtype)
    else:
        sample_weight = counted.astype(log_p.dtype)
    if weight is None and counted.all():
        per_sample = -picked
    else:
        per_sample = -(picked * sample_weight)
    if reduction == "mean":
        return per_sample.sum() / sample_weight.sum()
    return _reduce(per_sample, reduction, op_name)


class CrossEntropy(Function):
    """Mean or summed cross-entropy of float32 (N, C) logits against in-range class indices, as
    one node (a training step's loss: the general path below records five).

    Same arithmetic as that path -- log-softmax, the picked −log p, their sum (over N for
    "mean"); backward: with c the upstream gradient (/ N for "mean"), dx = softmax·c, minus c at
    each sample's class -- so the same bits, in one graph node instead of five."""

    fresh_gradients = True

    @staticmethod
    def forward(ctx, logits, classes, mean):
        log_p = log_softmax_values(logits, 1)
        rows = np.arange(logits.shape[0])
        total = np.negative(log_p[rows, classes]).sum()
        ctx.log_p, ctx.rows, ctx.classes = log_p, rows, classes
        ctx.count = np.float32(logits.shape[0]) if mean else None
        return np.divide(total, ctx.count) if mean else total

    @staticmethod
    def backward(ctx, grad):
        c = grad / ctx.count if ctx.count is not None else grad
        dx = np.exp(ctx.log_p) * c
        dx[ctx.rows, ctx.classes] -= c
        return dx, None, None


def _fused_cross_entropy(logits, target_array, weight, ignore_index, reduction):
    """The one-node cross-entropy when it applies (float32 (N, C) logits, in-range integer
    classes, none ignored, no class weights, "mean" or "sum"), else None."""
    if (weight is not None or reduction not in ("mean", "sum") or logits.ndim != 2 or logits.dtype != np.float32
            or target_array.dtype.kind not in "iu" or target_array.shape != logits.shape[:1] or not target_array.size):
        return None
    low, high = target_array.min(), target_array.max()
    if low < 0 or high >= logits.shape[1] or low <= ignore_index <= high and (target_array == ignore_index).any():
        return None
    return CrossEntropy.apply(logits, target_array.astype(np.intp, copy=False), reduction == "mean")


def cross_entropy(logits, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of softmax(logits) against class indices or class probabilities.

    Like ``torch.nn.functional.cross_entropy`` (same arguments): classes on axis 1 for
    (N, C, ...) logits, axis 0 for an unbatched (C,) vector.  Integer targets are class
    indices (shape without the class axis; ``ignore_index`` entries count for nothing);
    float targets are one-hot rows or probabilities of the logits' shape.  "mean" divides by
    the number of samples (by Σ weight[t] with class weights).
    """
    _no_legacy("cross_entropy", size_average, reduce)
    if label_smoothing:
        raise NotImplementedError("deltalab has no torch cross_entropy(label_smoothing=)")
    axis = 0 if logits.ndim == 1 else 1
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if isinstance(logits, Tensor):
        fused = _fused_cross_entropy(logits, target_array, weight, ignore_index, reduction)
        if fused is not None:
            return fused
    log_p = ops.log_softmax(logits, axis=axis)
    if target_array.dtype.kind in "iub":
        return _picked_loss("cross_entropy", log_p, target_array, axis, weight, ignore_index, reduction)
    if weight is not None:
        raise NotImplementedError("deltalab has no torch cross_entropy(weight=) with probability targets")
    target = _target(target, logits)
    _same_shape("cross_entropy", logits, target)
    per_sample = -(target * log_p).sum(axis=axis)
    return _reduce(per_sample, reduction, "cross_entropy")


def nll_loss(log_probabilities, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """−log p[t] given log-probabilities and class indices, like ``torch.nn.functional.nll_loss``
    (the lecture's NLL); "mean" divides by the number of samples (Σ weight[t] with weights)."""
    _no_legacy("nll_loss", size_average, reduce)
    axis = 0 if log_probabilities.ndim == 1 else 1
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind not in "iu":
        raise ShapeError(
            f"nll_loss: the target must be class indices (integers), got {target_array.dtype} values; "
            "for probability targets use cross_entropy"
        )
    return _picked_loss("nll_loss", log_probabilities, target_array, axis, weight, ignore_index, reduction)


class _BinaryCrossEntropy(Function):
    """−[t log p + (1 − t) log(1 − p)] per element, logs clamped at −100, with PyTorch's
    gradients: ∂/∂p = (p − t) / max(p (1 − p), ε = 1e-12) and ∂/∂t = −logit(p).  Differentiating
    the clamped logs instead gives other numbers where a log is clamped (p = 0 or 1: 0 or 1
    instead of torch's 0 or ±1e12)."""

    @staticmethod
    def forward(ctx, p, t):
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), -100.0)
            log_q = np.maximum(np.log1p(-p), -100.0)
        ctx.save_for_backward(p, t)
        return -(t * log_p + (1 - t) * log_q)

    @staticmethod
    def backward(ctx, grad):
        p, t = ctx.saved
        # torch's epsilon is the float 1e-12 (9.9999999600419e-13) in either precision
        gp = grad * (p - t) / np.maximum((1 - p) * p, np.float32(1e-12).astype(p.dtype)) if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gt = grad * (np.log1p(-p) - np.log(p))
        return gp, gt


def binary_cross_entropy(probability, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """−[t log p + (1 − t) log(1 − p)], logs clamped at −100 as PyTorch does; like PyTorch,
    a probability outside [0, 1] (NaN included) is an error, not a number."""
    _no_legacy("binary_cross_entropy", size_average, reduce)
    target = _target(target, probability)
    _same_shape("binary_cross_entropy", probability, target)
    p = probability.data
    if not np.all((p >= 0) & (p <= 1)):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    values = _BinaryCrossEntropy.apply(probability, target)
    if weight is not None:
        values = values * (weight if isinstance(weight, Tensor) else np.asarray(weight, dtype=p.dtype))
    return _reduce(values, reduction, "binary_cross_entropy")


_LOG_FLOOR = np.exp(-100.0)


def clamped_log(x):
    """log(x) floored at −100 (PyTorch's BCE clamp): 0·log 0 stays finite."""
    ok = x.data > _LOG_FLOOR
    return ops.where(ok, ops.log(ops.where(ok, x, 1.0)), -100.0)

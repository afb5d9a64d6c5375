"""Loss functions.  Each takes ``reduction`` = "sum" | "mean" | "none".

The lecture sums (½Σ(t − y)², −Σ t·log y) and never averages over the batch, so its losses
default to "sum"; the PyTorch-named ones (``mse_loss``, ``cross_entropy``,
``binary_cross_entropy``) default to "mean" like PyTorch.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .errors import ShapeError
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


def mse_loss(prediction, target, reduction="mean"):
    """Mean of (y − t)², like ``torch.nn.functional.mse_loss``."""
    return squared_error(prediction, target, reduction)


def cross_entropy(logits, target, reduction="mean"):
    """Cross-entropy of softmax(logits) against class indices or class probabilities.

    Like ``torch.nn.functional.cross_entropy``: classes on axis 1 for (N, C, ...) logits,
    axis 0 for an unbatched (C,) vector.  Integer targets are class indices (shape without the
    class axis); float targets are one-hot rows or probabilities of the logits' shape.
    "mean" divides by the number of samples.
    """
    axis = 0 if logits.ndim == 1 else 1
    log_p = ops.log_softmax(logits, axis=axis)
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind in "iub":
        expected = logits.shape[:axis] + logits.shape[axis + 1 :]
        if target_array.shape != expected:
            raise ShapeError(
                f"cross_entropy: class-index target of shape {target_array.shape} does not fit logits of "
                f"shape {logits.shape} (expected {expected})"
            )
        n_classes = logits.shape[axis]
        if target_array.size and (target_array.min() < 0 or target_array.max() >= n_classes):
            raise ShapeError(f"cross_entropy: class indices must lie in 0..{n_classes - 1}, got {target_array.min()}..{target_array.max()}")
        one_hot = np.moveaxis(np.eye(n_classes, dtype=logits.dtype)[target_array], -1, axis)
        target = one_hot
    else:
        target = _target(target, logits)
        _same_shape("cross_entropy", logits, target)
    per_sample = -(target * log_p).sum(axis=axis)
    return _reduce(per_sample, reduction, "cross_entropy")


def nll_loss(log_probabilities, target, reduction="mean"):
    """−Σ t·log p given log-probabilities (002's NLL); class-index or probability targets."""
    axis = 0 if log_probabilities.ndim == 1 else 1
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind in "iub":
        n_classes = log_probabilities.shape[axis]
        target = np.moveaxis(np.eye(n_classes, dtype=log_probabilities.dtype)[target_array], -1, axis)
    target = _target(target, log_probabilities)
    _same_shape("nll_loss", log_probabilities, target)
    return _reduce(-(target * log_probabilities).sum(axis=axis), reduction, "nll_loss")


def binary_cross_entropy(probability, target, reduction="mean"):
    """−[t log p + (1 − t) log(1 − p)], logs clamped at −100 as PyTorch does."""
    target = _target(target, probability)
    _same_shape("binary_cross_entropy", probability, target)
    log_p = ops.where(probability.data > 0, ops.log(ops.where(probability.data > 0, probability, 1.0)), -100.0)
    one_minus = 1 - probability
    log_q = ops.where(one_minus.data > 0, ops.log(ops.where(one_minus.data > 0, one_minus, 1.0)), -100.0)
    log_p = ops.where(log_p.data < -100, -100.0, log_p)
    log_q = ops.where(log_q.data < -100, -100.0, log_q)
    return _reduce(-(target * log_p + (1 - target) * log_q), reduction, "binary_cross_entropy")


_LOG_FLOOR = np.exp(-100.0)


def _clamped_log(x):
    """log(x) floored at −100 (PyTorch's BCE clamp): 0·log 0 stays finite."""
    ok = x.data > _LOG_FLOOR
    return ops.where(ok, ops.log(ops.where(ok, x, 1.0)), -100.0)

"""``digits-cnn``: a LeNet-style CNN on scikit-learn's 8×8 digits."""
from __future__ import annotations

from ... import losses, nn
from ..task import Task, TaskData, classification_correct, register_task

__all__ = ["digits_cnn"]


def _digits_data(dtype):
    from ...data import load_digits

    digits = load_digits(dtype=dtype)
    return TaskData(digits.train.x, digits.train.y, digits.test.x, digits.test.y, (1, 8, 8))


def digits_cnn():
    """LeNet-style CNN for 1×8×8 digits: two conv 3×3 (same) + ReLU + max-pool 2 blocks, then 128 → 10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, 10),
    )


register_task(Task(
    name="digits-cnn",
    description="LeNet-style CNN on scikit-learn's 8×8 digits (fixed split: 1,433 train / 364 test)",
    load_data=_digits_data,
    build_model=digits_cnn,
    loss=lambda output, target: losses.cross_entropy(output, target),
    correct=classification_correct,
    defaults={"epochs": 20, "batch_size": 16, "lr": 0.003, "optimizer": "adam", "schedule": "cosine"},
))

"""A training run's settings: :class:`TrainConfig` (checked), the optimiser and the rate schedule."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .. import dtypes, limits, optim
from ..errors import ConfigurationError
from .task import get_task

__all__ = ["BASE_DEFAULTS", "MAX_EPOCHS", "MAX_SEED", "OPTIMIZERS", "SCHEDULES", "TrainConfig", "learning_rate",
           "make_config", "make_optimizer"]

BASE_DEFAULTS = {
    "epochs": 10, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "momentum": 0.9, "schedule": "constant",
    "dtype": "float32",
}
OPTIMIZERS = ("sgd", "adam")
MAX_EPOCHS = limits.EPOCHS  # --epochs, and the epoch a checkpoint may claim
MAX_SEED = limits.SEED  # --seed: any non-negative int64 seeds NumPy's generator
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    task: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    schedule: str
    seed: int = 0
    dtype: str = "float32"
    limit: int | None = None
    momentum: float = 0.9
    problem: str | None = None

    def check(self):
        if self.epochs < 1:
            raise ConfigurationError(f"train: --epochs must be at least 1, got {self.epochs}")
        if self.epochs > MAX_EPOCHS:
            raise ConfigurationError(f"train: --epochs {self.epochs:,} is too many; the largest is {MAX_EPOCHS:,}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigurationError(f"train: --seed must be a whole number from 0 to {MAX_SEED:,}, got {self.seed}")
        if self.batch_size < 1:
            raise ConfigurationError(f"train: --batch-size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigurationError(f"train: --lr must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigurationError(f"train: --optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigurationError(f"train: --schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (0 <= self.momentum < 1):
            raise ConfigurationError(f"train: --momentum must lie in [0, 1), got {self.momentum}")
        if self.limit is not None and self.limit < 1:
            raise ConfigurationError(f"train: --limit must be at least 1, got {self.limit}")
        try:
            dtypes.resolve(self.dtype)
        except ValueError as exc:
            raise ConfigurationError(f"train: {exc}") from None
        return self


def make_config(task_name, problem=None, **overrides):
    """The task's defaults with every override that is not None (``problem``: the file of ``file``)."""
    task = get_task(task_name, problem)
    values = dict(BASE_DEFAULTS, **task.defaults)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(task=task_name, problem=os.fspath(problem) if problem else None, **values).check()


def make_optimizer(name, parameters, lr, momentum=0.9):
    if name == "adam":
        return optim.Adam(parameters, lr=lr)
    return optim.SGD(parameters, lr=lr, momentum=momentum)


def learning_rate(config, epoch):
    """The rate of epoch ``epoch`` (1-based): constant, or cosine from lr down towards 0."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    return config.lr

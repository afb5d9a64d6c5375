"""Training on real data: a registry of tasks and one loop with progress, checkpoints and plots.

Built-in tasks: ``digits-cnn`` (a LeNet-style CNN on scikit-learn's 8×8 digits),
``sequence-completion`` (the exercise sheet: an Elman RNN completes the 25 sequences XY code(X) code(Y)),
``shift-register`` / ``shift-register-seed`` (the exercise sheet's circular shift register by exact
BPTT / by the sheet's own truncated rule) and ``file`` (a problem file, ``deltalab train file
PROBLEM.toml``, trained for many SGD steps with the loss ``deltalab solve`` uses).

A :class:`Task` bundles what differs between problems — the data, the model, the loss and
the accuracy — and the defaults of its hyper-parameters; each built-in task is one module of
:mod:`.tasks` that registers itself.  :func:`train` (:mod:`.loop`) runs any task:
mini-batches shuffled by a seeded generator, a rich progress bar per epoch, a checkpoint at
the end of every epoch (``DIR/checkpoint.npz``, also written before the first epoch so a
good one always exists), ``DIR/metrics.json`` and ``DIR/report.html``.  Add a task with
``register_task(Task(...))``.

Layout: :mod:`.task` (Task and the registry), :mod:`.tasks` (one module per task),
:mod:`.config`, :mod:`.loop`, :mod:`.checkpointing` (save and resume), :mod:`.progress`,
:mod:`.metrics`, :mod:`.report` (report.html) and :mod:`.plots` (matplotlib, on request).

The same seed gives the same final metrics: parameters are drawn from ``manual_seed(seed)``,
batches are shuffled by ``numpy.random.default_rng(seed)`` and nothing else is random.
"""
from __future__ import annotations

from . import tasks  # noqa: F401  (registers the built-in tasks)
from .config import (
    BASE_DEFAULTS,
    MAX_EPOCHS,
    MAX_SEED,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    learning_rate,
    make_config,
    make_optimizer,
)
from .loop import TrainingDiverged, default_out_dir, non_finite_state, train
from .metrics import EpochRecord, Scores, TrainResult, evaluate, percent
from .task import TASKS, Task, TaskData, classification_correct, get_task, register_task, sequence_loss
from .tasks.digits_cnn import digits_cnn
from .tasks.sequence_completion import sequence_completion_network

__all__ = [
    "BASE_DEFAULTS", "EpochRecord", "MAX_EPOCHS", "MAX_SEED", "OPTIMIZERS", "SCHEDULES", "Scores", "TASKS", "Task",
    "TaskData", "TrainConfig", "TrainResult", "TrainingDiverged", "classification_correct", "default_out_dir",
    "digits_cnn", "evaluate", "get_task", "learning_rate", "make_config", "make_optimizer", "non_finite_state",
    "percent", "register_task", "sequence_completion_network", "sequence_loss", "train",
]

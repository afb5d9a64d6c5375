"""What a trainable problem is (:class:`Task`), and the registry tasks add themselves to.

Every built-in task is one module of :mod:`deltalab.training.tasks` that calls
:func:`register_task`; nothing else branches on a task's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import losses, nn
from ..errors import ConfigurationError
from ..tensor import Tensor

__all__ = ["TASKS", "Task", "TaskData", "classification_correct", "get_task", "register_task", "sequence_data",
           "sequence_loss", "time_major"]


@dataclass
class TaskData:
    """Training and test arrays; ``input_shape`` is one sample's shape (for the summary)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    input_shape: tuple


@dataclass
class Task:
    """A trainable problem.

    ``load_data(dtype) -> TaskData``; ``build_model() -> Module`` (draws from deltalab's
    seeded generator); ``loss(output, target) -> scalar Tensor``, the mean over the batch's
    samples; ``correct(output_array, target_array) -> bool array`` shaped like the target,
    True where the output gets that target right (None: the task has no accuracy).
    ``defaults`` holds the hyper-parameters the task reaches its goal with (epochs,
    batch_size, lr, optimizer, momentum, schedule, dtype).

    Optional: ``forward(model, x) -> output`` when the model is not simply called on the
    batch (sequences are stored sample-major and run time-major); ``batch_loss(model, x, y)
    -> (output, loss)`` replacing forward + loss; ``sample_name`` ("sequences") to count the
    samples whose every target is right; ``held_out=False`` when the test data are the
    training data; ``shuffle``; ``hidden_states(model, data) -> [(title, states (T, H), step
    labels)]`` for the hidden-state plot of a recurrent model; ``extra_metrics(result) ->
    {name: text}`` for the metrics line and report; ``prepare(problem_path) -> Task`` for a
    task that needs a file (``file``).
    """

    name: str
    description: str
    load_data: Callable[..., TaskData] = None
    build_model: Callable[[], nn.Module] = None
    loss: Callable = None
    correct: Callable | None = None
    defaults: dict = field(default_factory=dict)
    forward: Callable | None = None
    batch_loss: Callable | None = None
    sample_name: str | None = None
    held_out: bool = True
    shuffle: bool = True
    hidden_states: Callable | None = None
    extra_metrics: Callable | None = None
    prepare: Callable | None = None
    state_label: str = "hidden unit"
    state_title: str = "hidden state"

    def run_batch(self, model, x, y):
        """(output, loss) of one batch; ``output`` is what ``correct`` compares with ``y``."""
        if self.batch_loss is not None:
            return self.batch_loss(model, x, y)
        output = self.forward(model, Tensor(x)) if self.forward is not None else model(Tensor(x))
        return output, self.loss(output, y)


TASKS: dict[str, Task] = {}


def register_task(task):
    """Make ``task`` available to :func:`train` and ``deltalab train NAME``."""
    TASKS[task.name] = task
    return task


def get_task(name, problem=None):
    """The registered task ``name``; a task that needs a file (``file``) is prepared from ``problem``."""
    if name not in TASKS:
        raise ConfigurationError(f"train: unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")
    task = TASKS[name]
    if task.prepare is not None:
        if not problem:
            raise ConfigurationError(f"train {name}: give the problem file: deltalab train {name} PROBLEM.toml")
        return task.prepare(problem)
    if problem:
        raise ConfigurationError(f"train {name}: takes no file (got {problem!r}); only 'train file PROBLEM.toml' does")
    return task


def classification_correct(output, target):
    """Which class-index targets the output gets right: the argmax over the class axis, the last
    one ((N, C) for images, (N, T, C) for sequences), equals the target."""
    return np.asarray(output).argmax(axis=-1) == np.asarray(target)


def sequence_data(inputs, targets, dtype):
    """Time-major (T, N, F) inputs and (T', N) targets stored sample-major, (N, T, F) and (N, T'),
    so batching and shuffling work on axis 0 as for images; the test data are the training data."""
    x = np.ascontiguousarray(np.asarray(inputs).transpose(1, 0, 2), dtype=dtype)
    y = np.ascontiguousarray(np.asarray(targets).T)
    return TaskData(x, y, x, y, x.shape[1:])


def sequence_loss(output, target):
    """Cross-entropy summed over a sequence's scored steps, averaged over the sequences:
    output (N, T', C) logits, target (N, T') class indices."""
    classes = output.shape[-1]
    total = losses.cross_entropy(output.reshape(-1, classes), np.asarray(target).reshape(-1), reduction="sum")
    return total / output.shape[0]


def time_major(x):
    return x.transpose(1, 0, 2)

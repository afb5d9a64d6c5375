"""Training on real data: a registry of tasks and one loop with progress, checkpoints and plots.

A :class:`Task` bundles what differs between problems — the data, the model, the loss and
the accuracy — and the defaults of its hyper-parameters.  :func:`train` runs any task:
mini-batches shuffled by a seeded generator, a rich progress bar per epoch, a checkpoint at
the end of every epoch (``DIR/checkpoint.npz``, also written before the first epoch so a
good one always exists), ``DIR/metrics.json`` and ``DIR/report.html``.  Add a task with
``register_task(Task(...))``.

The same seed gives the same final metrics: parameters are drawn from ``manual_seed(seed)``,
batches are shuffled by ``numpy.random.default_rng(seed)`` and nothing else is random.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from . import checkpoint, dtypes, losses, nn, optim
from .autograd import no_grad
from .errors import CheckpointError, ConfigurationError, DeltalabError
from .random import manual_seed
from .tensor import Tensor


class TrainingDiverged(DeltalabError):
    """The loss became NaN or infinite; the message says where and which checkpoint survives."""


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
    seeded generator); ``loss(output, target) -> scalar Tensor``; ``correct(output_array,
    target_array) -> number of correct samples``.  ``defaults`` holds the hyper-parameters
    the task reaches its goal with (epochs, batch_size, lr, optimizer, schedule).
    """

    name: str
    description: str
    load_data: Callable[..., TaskData]
    build_model: Callable[[], nn.Module]
    loss: Callable
    correct: Callable
    defaults: dict = field(default_factory=dict)


TASKS: dict[str, Task] = {}

BASE_DEFAULTS = {"epochs": 10, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "schedule": "constant"}
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


def register_task(task):
    """Make ``task`` available to :func:`train` and ``deltalab train NAME``."""
    TASKS[task.name] = task
    return task


def get_task(name):
    if name not in TASKS:
        raise ConfigurationError(f"train: unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")
    return TASKS[name]


# ------------------------------------------------------------------ tasks
def classification_correct(output, target):
    return int((np.asarray(output).argmax(axis=1) == np.asarray(target)).sum())


def _digits_data(dtype):
    from .data import load_digits

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


# ----------------------------------------------------------------- config
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

    def check(self):
        if self.epochs < 1:
            raise ConfigurationError(f"train: --epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigurationError(f"train: --batch-size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigurationError(f"train: --lr must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigurationError(f"train: --optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigurationError(f"train: --schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigurationError(f"train: --limit must be at least 1, got {self.limit}")
        try:
            dtypes.resolve(self.dtype)
        except ValueError as exc:
            raise ConfigurationError(f"train: {exc}") from None
        return self


def make_config(task_name, **overrides):
    """The task's defaults with every override that is not None."""
    task = get_task(task_name)
    values = dict(BASE_DEFAULTS, **task.defaults)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(task=task_name, **values).check()


def make_optimizer(name, parameters, lr):
    if name == "adam":
        return optim.Adam(parameters, lr=lr)
    return optim.SGD(parameters, lr=lr, momentum=0.9)


def learning_rate(config, epoch):
    """The rate of epoch ``epoch`` (1-based): constant, or cosine from lr down towards 0."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    return config.lr


# ----------------------------------------------------------------- result
@dataclass
class EpochRecord:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    config: TrainConfig
    history: list
    out_dir: str
    model: nn.Module = None
    seconds: float = 0.0
    files: list = field(default_factory=list)

    @property
    def final(self):
        return self.history[-1]

    def metrics_line(self):
        last = self.final
        return (
            f"{self.config.task}: epoch {last.epoch}/{self.config.epochs}  "
            f"test accuracy {last.test_accuracy:.2%}  test loss {last.test_loss:.4f}  "
            f"train accuracy {last.train_accuracy:.2%}  train loss {last.train_loss:.4f}  "
            f"time {self.seconds:.1f} s  seed {self.config.seed}  dtype {self.config.dtype}"
        )


def evaluate(task, model, x, y, batch_size=512):
    """(mean loss, accuracy) of ``model`` on ``x, y`` without recording a graph."""
    total_loss, correct = 0.0, 0
    with no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            output = model(Tensor(xb))
            total_loss += float(task.loss(output, yb).item()) * len(yb)
            correct += task.correct(output.data, yb)
    return total_loss / len(y), correct / len(y)


# ------------------------------------------------------------------- loop
def default_out_dir(task_name):
    return os.path.join("runs", f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}")


def train(config, out_dir=None, plots=False, resume=None, console=None, progress=True):
    """Run ``config`` (see :func:`make_config`); everything written goes into ``out_dir``."""
    from .data import iterate_batches, num_batches

    task = get_task(config.task)
    out_dir = out_dir or default_out_dir(config.task)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"train: cannot create output directory {out_dir}: {exc.strerror or exc}") from None
    checkpoint_path = os.path.join(out_dir, "checkpoint.npz")
    dtype = dtypes.resolve(config.dtype)
    if plots:
        from . import plots as plotting

        plotting.require_matplotlib()

    data = task.load_data(dtype)
    train_x, train_y = data.train_x, data.train_y
    if config.limit is not None:
        train_x, train_y = train_x[: config.limit], train_y[: config.limit]

    manual_seed(config.seed)
    shuffle_rng = np.random.default_rng(config.seed)
    history, first_epoch = [], 1
    if resume:
        model, optimizer, history, first_epoch = _resume(resume, config, shuffle_rng, dtype)
    else:
        model = task.build_model().to(dtype)
        optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
        _save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=0)

    console = console or _console()
    started = time.perf_counter()
    batches = num_batches(len(train_y), config.batch_size)
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_started = time.perf_counter()
        optimizer.lr = learning_rate(config, epoch)
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        with _EpochProgress(console, epoch, config.epochs, batches, enabled=progress) as bar:
            for index, (xb, yb) in enumerate(
                iterate_batches(train_x, train_y, batch_size=config.batch_size, shuffle=True, rng=shuffle_rng), 1
            ):
                with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported below
                    output = model(Tensor(xb))
                    loss = task.loss(output, yb)
                value = float(loss.item())
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"train: the loss became {value} in epoch {epoch}, batch {index}/{batches}; training stopped. "
                        f"The last good checkpoint ({_good(history, first_epoch)}) is kept at {checkpoint_path}; "
                        f"try a smaller --lr (now {config.lr})"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                seen += len(yb)
                loss_sum += value * len(yb)
                correct += task.correct(output.data, yb)
                bar.update(loss_sum / seen, correct / seen)
        model.eval()
        test_loss, test_accuracy = evaluate(task, model, data.test_x, data.test_y)
        if not math.isfinite(test_loss):
            raise TrainingDiverged(
                f"train: the test loss became {test_loss} after epoch {epoch}; training stopped. The last good "
                f"checkpoint ({_good(history, first_epoch)}) is kept at {checkpoint_path}"
            )
        history.append(EpochRecord(
            epoch, optimizer.lr, loss_sum / seen, correct / seen, test_loss, test_accuracy,
            time.perf_counter() - epoch_started,
        ))
        _save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=epoch)
        if progress:
            console.print(
                f"  epoch {epoch:>3}/{config.epochs}  train loss {history[-1].train_loss:.4f}  "
                f"acc {history[-1].train_accuracy:.2%}  │  test loss {test_loss:.4f}  acc {test_accuracy:.2%}",
                highlight=False,
            )
    if not history:
        raise ConfigurationError(f"train: the checkpoint {resume} already finished all {config.epochs} epochs")
    result = TrainResult(config, history, out_dir, model, time.perf_counter() - started)
    result.files.append(checkpoint_path)
    result.files.append(_write_metrics(result))
    images = {}
    if plots:
        images = plotting.training_plots(result, task, data)
        result.files.extend(images.values())
    from .train_report import write_train_report

    result.files.append(write_train_report(result, data.input_shape, images))
    return result


def _good(history, first_epoch):
    epoch = history[-1].epoch if history else first_epoch - 1
    return f"end of epoch {epoch}" if epoch else "the initial weights, before epoch 1"


def _console():
    from rich.console import Console

    return Console()


class _EpochProgress:
    """A rich progress bar over one epoch's batches showing the running loss and accuracy."""

    def __init__(self, console, epoch, epochs, batches, enabled=True):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[accuracy]}"), TimeElapsedColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        )
        self.task_id = self.progress.add_task("train", total=batches, loss="…", accuracy="…")

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        return False

    def update(self, loss, accuracy):
        if self.enabled:
            self.progress.update(self.task_id, advance=1, loss=f"{loss:.4f}", accuracy=f"{accuracy:.2%}")


# ------------------------------------------------------- checkpoint/resume
def _save(model, optimizer, config, history, shuffle_rng, path, epoch):
    metadata = {
        "kind": "deltalab-train",
        "task": config.task,
        "epoch": epoch,
        "config": asdict(config),
        "history": [asdict(r) for r in history],
        "shuffle_rng": shuffle_rng.bit_generator.state,
    }
    checkpoint.save(model, path, metadata=metadata, extra=checkpoint.optimizer_state(optimizer))


def _resume(path, config, shuffle_rng, dtype):
    saved = checkpoint.read_checkpoint(path)
    meta = saved.metadata
    if meta.get("kind") != "deltalab-train":
        raise CheckpointError(f"{path}: not a training checkpoint (no epoch or optimiser state); cannot resume from it")
    if meta.get("task") != config.task:
        raise CheckpointError(f"{path}: a checkpoint of task {meta.get('task')!r}, not {config.task!r}")
    saved_optimizer = meta.get("config", {}).get("optimizer")
    model = saved.build()
    if model.dtype != dtype:
        model.to(dtype)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    if saved_optimizer == config.optimizer:
        checkpoint.load_optimizer_state(optimizer, saved.extra, path)
        for state in optimizer.state:
            for key, value in state.items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    state[key] = value.astype(dtype)
    try:
        shuffle_rng.bit_generator.state = meta["shuffle_rng"]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: corrupt training checkpoint: no valid shuffle generator state") from None
    history = [EpochRecord(**r) for r in meta.get("history", [])]
    return model, optimizer, history, int(meta.get("epoch", 0)) + 1


def _write_metrics(result):
    path = os.path.join(result.out_dir, "metrics.json")
    payload = {
        "config": asdict(result.config),
        "final": asdict(result.final),
        "history": [asdict(r) for r in result.history],
        "seconds": result.seconds,
    }
    checkpoint.atomic_write(path, lambda f: f.write(json.dumps(payload, indent=2).encode("utf-8")))
    return path

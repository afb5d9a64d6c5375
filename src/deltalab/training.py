"""Training on real data: a registry of tasks and one loop with progress, checkpoints and plots.

Built-in tasks: ``digits-cnn`` (a LeNet-style CNN on scikit-learn's 8×8 digits),
``sequence-completion`` (the exercise sheet: an Elman RNN completes the 25 sequences XY code(X) code(Y)),
``shift-register`` / ``shift-register-seed`` (the exercise sheet's circular shift register by exact
BPTT / by the sheet's own truncated rule) and ``file`` (a problem file, ``deltalab train file
PROBLEM.toml``, trained for many SGD steps with the loss ``deltalab solve`` uses).

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

import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from . import dtypes, limits, losses, nn, optim
from .io import architecture, architecture_rules, checkpoint
from .autograd import no_grad
from .errors import CheckpointError, ConfigurationError, DeltalabError
from .random import generator, manual_seed
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

BASE_DEFAULTS = {
    "epochs": 10, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "momentum": 0.9, "schedule": "constant",
    "dtype": "float32",
}
OPTIMIZERS = ("sgd", "adam")
MAX_EPOCHS = limits.EPOCHS  # --epochs, and the epoch a checkpoint may claim
MAX_SEED = limits.SEED  # --seed: any non-negative int64 seeds NumPy's generator
SCHEDULES = ("constant", "cosine")


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


# ------------------------------------------------------------------ tasks
def classification_correct(output, target):
    """Which class-index targets the output gets right: the argmax over the class axis, the last
    one ((N, C) for images, (N, T, C) for sequences), equals the target."""
    return np.asarray(output).argmax(axis=-1) == np.asarray(target)


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


# ------------------------------------------------------- sequences (the exercise sheet)
def _sequence_data(inputs, targets, dtype):
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


def _time_major(x):
    return x.transpose(1, 0, 2)


def _sequence_completion_data(dtype):
    from .data import sequence_completion

    task = sequence_completion()
    return _sequence_data(task.inputs, task.targets, dtype)


def sequence_completion_network(hidden_size=8):
    """The exercise sheet: 5 one-hot letters → ``hidden_size`` tanh units (Elman) → 3 logits (softmax in the loss)."""
    from .models import ElmanNetwork

    return ElmanNetwork(5, hidden_size, 3, hidden_activation="tanh", output_activation="identity")


def _scored_steps_forward(model, x):
    """Logits (N, 4, 3) at t = 3 … 6 for sample-major letters x (N, 6, 5)."""
    from .data import sequence_completion

    steps = list(sequence_completion().target_steps)
    return _time_major(model(_time_major(x))[steps])


def _sequence_completion_states(model, data, names=("AB1223", "CE3113", "DA2112")):
    from .data import sequence_completion

    task = sequence_completion()
    index = [task.names.index(name) for name in names]
    x = Tensor(_time_major(data.train_x[index]))
    with no_grad():
        hidden = np.asarray(model.run(x).hidden.data)  # (T, n, H)
        predicted = np.asarray(model(x).data)[list(task.target_steps)].argmax(axis=-1) + 1  # (4, n)
    panels = []
    for k, name in enumerate(names):
        guess = "".join(str(d) for d in predicted[:, k])
        labels = [f"t={t + 1}\n{name[t]}" if t < 2 else f"t={t + 1}\n→{guess[t - 2]}" for t in range(6)]
        panels.append((f"{name} (predicted {name[:2]}{guess})", hidden[:, k, :], labels))
    return panels


register_task(Task(
    name="sequence-completion",
    description="The exercise sheet: an Elman RNN (8 tanh hidden units) completes the 25 sequences XY code(X) code(Y), "
                "e.g. AB1223 (the test data are the same 25 sequences)",
    load_data=_sequence_completion_data,
    build_model=sequence_completion_network,
    loss=sequence_loss,
    correct=classification_correct,
    forward=_scored_steps_forward,
    sample_name="sequences",
    held_out=False,
    hidden_states=_sequence_completion_states,
    # full batch; 200 epochs at a constant rate end with all 25 right for seeds 0-19 (first at 46-142)
    defaults={"epochs": 200, "batch_size": 25, "lr": 0.05, "optimizer": "adam", "schedule": "constant"},
))


def _shift_register_data(dtype):
    from .data import shift_register
    from .models.shift_register import shift_register_inputs

    task = shift_register()
    return _sequence_data(shift_register_inputs(task), task.targets, dtype)


def _shift_register_forward(model, x):
    """Logits (N, 2, 3) at T2, T3 for the patterns x (N, 2, 3) (T1's pattern, then zeros)."""
    return _time_major(model(_time_major(x))[0])


def _shift_register_states(model, data):
    x = Tensor(_time_major(data.train_x))
    with no_grad():
        logits = np.asarray(model(x)[0].data)  # (2, 3, 3)
    states = np.exp(logits - logits.max(axis=-1, keepdims=True))
    states /= states.sum(axis=-1, keepdims=True)
    panels = []
    for n in range(data.train_x.shape[0]):
        columns = np.concatenate([data.train_x[n, :1], states[:, n]])  # x(1), x(2), x(3)
        pattern = "".join(str(int(v)) for v in data.train_x[n, 0])
        panels.append((f"pattern {pattern}", columns, ["T1\ninput x(1)", "T2\nx(2)", "T3\nx(3)"]))
    return panels


def _shift_register_metrics(result):
    summed = result.final.test_loss * result.final.test_samples  # the loss is the mean over the patterns
    return {"summed loss E(2)+E(3) over the 3 patterns": f"{summed:.4f}"}


def _shift_register_task(rule):
    from .models.shift_register import shift_register_model

    seed = rule == "seed"
    return Task(
        name="shift-register" + ("-seed" if seed else ""),
        description=(
            "The exercise sheet: circular shift register, 3 softmax units, W (3×3) shared, W0 = 0, online SGD lr 0.5, "
            + ("the sheet's own rule W ← W − ε(ΔW(1) + ΔW(2)) (truncated BPTT, k = 1)" if seed else "exact BPTT")
            + " (the test data are the same 3 patterns)"
        ),
        load_data=_shift_register_data,
        build_model=lambda: shift_register_model(rule),
        loss=sequence_loss,
        correct=classification_correct,
        forward=_shift_register_forward,
        sample_name="patterns",
        held_out=False,
        shuffle=False,  # the patterns in the dataset's order, as the notes train them
        hidden_states=_shift_register_states,
        extra_metrics=_shift_register_metrics,
        state_label="unit", state_title="state (softmax outputs fed back; no hidden units)",
        defaults={"epochs": 200, "batch_size": 1, "lr": 0.5, "optimizer": "sgd", "momentum": 0.0,
                  "schedule": "constant", "dtype": "float64"},
    )


register_task(_shift_register_task("exact"))
register_task(_shift_register_task("seed"))


# --------------------------------------------------------- a problem file
def _prepare_file_task(path):
    """The ``file`` task for one problem file: its model, its data (every sample, one full batch by
    default), its loss exactly as ``deltalab solve`` computes it, and SGD with its learning rate.

    With the default full batch one epoch is one solve step and the reported loss is the
    problem's E (summed over the batch, as the lecture sums it)."""
    from .problem import load_problem
    from .solve import build_model, problem_forward

    problem = load_problem(path)
    if problem.targets is None:
        raise ConfigurationError(f"train file: {path} has no data.targets, so there is no loss to train on")
    recurrent = problem.model_type in ("rnn", "lstm")
    batched = not recurrent and problem.inputs.shape != problem.input_shape
    # one sample per row: a recurrent problem holds one sequence, a layered one a sample or a batch
    inputs = problem.inputs if batched else problem.inputs[None]
    targets = problem.targets if batched else problem.targets[None]

    def load_data(dtype):
        x = np.asarray(inputs, dtype=dtype)
        y = np.asarray(targets, dtype=dtype)
        return TaskData(x, y, x, y, x.shape[1:])

    def batch_loss(model, x, y):
        if recurrent:
            (x,), (y,) = x, y  # batches of one sequence
        fwd = problem_forward(replace(problem, inputs=x, targets=y), model)
        output = fwd.output.data
        if recurrent and problem.target_steps is not None:
            output = output[[step - 1 for step in problem.target_steps]]
        return (output[None] if recurrent else output), fwd.loss

    def correct(output, target):
        # a class per target row: the output's argmax is the target's (one-hot) argmax
        return np.asarray(output).argmax(axis=-1) == np.asarray(target).argmax(axis=-1)

    classifies = problem.loss == "cross_entropy" and (recurrent or problem.layers[-1].type == "dense")

    def states(model, data):
        with no_grad():
            hidden = np.asarray(model.run(Tensor(data.train_x[0])).hidden.data)  # (T, H)
        return [(problem.title, hidden, [f"t={t + 1}" for t in range(hidden.shape[0])])]

    return Task(
        name="file",
        description=f"{problem.title} ({path}): {problem.model_type}, loss {problem.loss}, "
                    f"{len(inputs)} sample{'s' if len(inputs) != 1 else ''} (the test data are the training data)",
        load_data=load_data,
        build_model=lambda: build_model(problem),
        batch_loss=batch_loss,
        correct=correct if classifies else None,
        held_out=False,
        hidden_states=states if recurrent else None,
        defaults={"epochs": 100, "batch_size": len(inputs), "lr": problem.learning_rate, "optimizer": "sgd",
                  "momentum": 0.0, "schedule": "constant", "dtype": "float64"},
    )


register_task(Task(
    name="file",
    description="a problem file (deltalab train file PROBLEM.toml) trained for --epochs SGD steps with its loss",
    prepare=_prepare_file_task,
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


# ----------------------------------------------------------------- result
@dataclass
class EpochRecord:
    """One epoch; accuracies are None for a task without one; ``test_samples_right`` counts the test
    samples whose every target is right (tasks with a ``sample_name``)."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float | None
    test_loss: float
    test_accuracy: float | None
    seconds: float
    test_samples_right: int | None = None
    test_samples: int | None = None


def percent(value):
    """An accuracy as "97.25%", or "n/a" for a task without one."""
    return "n/a" if value is None else f"{value:.2%}"


@dataclass
class TrainResult:
    config: TrainConfig
    history: list
    out_dir: str
    model: nn.Module = None
    seconds: float = 0.0
    files: list = field(default_factory=list)
    task: Task = None
    extra: dict = field(default_factory=dict)  # task-specific metrics, e.g. {"sequences": "25/25"}

    @property
    def final(self):
        return self.history[-1]

    @property
    def first_solved(self):
        """The first epoch after which every test sample was right (tasks with a ``sample_name``)."""
        return next((r.epoch for r in self.history if r.test_samples and r.test_samples_right == r.test_samples), None)

    def task_metrics(self):
        """{name: text} of the task's own metrics: whole samples right, and the task's ``extra_metrics``."""
        metrics = {}
        name = self.task.sample_name if self.task is not None else None
        if name and self.final.test_samples:
            metrics[f"{name} right"] = f"{self.final.test_samples_right}/{self.final.test_samples}"
            metrics[f"first epoch with all {name} right"] = str(self.first_solved or "not reached")
        metrics.update(self.extra)
        return metrics

    def metrics_line(self):
        last = self.final
        name = self.task.sample_name if self.task is not None else None
        extra = ""
        if name and last.test_samples:
            solved = self.first_solved
            extra = f"  {last.test_samples_right}/{last.test_samples} {name}" + (
                f" (all right from epoch {solved})" if solved else " (never all right)")
        extra += "".join(f"  {key} {value}" for key, value in self.extra.items())
        if self.task is not None and not self.task.held_out:
            scores = f"accuracy {percent(last.test_accuracy)}  loss {last.test_loss:.4f} (after the last epoch)"
        else:
            scores = (f"test accuracy {percent(last.test_accuracy)}  test loss {last.test_loss:.4f}  "
                      f"train accuracy {percent(last.train_accuracy)}  train loss {last.train_loss:.4f}")
        return (
            f"{self.config.task}: epoch {last.epoch}/{self.config.epochs}{extra}  {scores}  "
            f"time {self.seconds:.1f} s  seed {self.config.seed}  dtype {self.config.dtype}"
        )


def _output_array(output):
    return np.asarray(output.data if isinstance(output, Tensor) else output)


def evaluate(task, model, x, y, batch_size=512):
    """(mean loss, accuracy, samples with every target right) of ``model`` on ``x, y``, no graph.

    The accuracy is the fraction of targets right (one per image, one per scored step of a
    sequence); it and the sample count are None for a task without ``correct``."""
    total_loss, scored = 0.0, Scores()
    with no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            output, loss = task.run_batch(model, xb, yb)
            total_loss += float(loss.item()) * len(yb)
            scored.add(task, output, yb)
    return total_loss / len(y), scored.accuracy, scored.samples_right if scored.enabled else None


class Scores:
    """Running counts of the targets and the whole samples a task's ``correct`` finds right."""

    def __init__(self):
        self.right = self.targets = self.samples_right = 0
        self.enabled = True

    def add(self, task, output, target):
        if task.correct is None:
            self.enabled = False
            return
        right = np.asarray(task.correct(_output_array(output), target))
        self.right += int(right.sum())
        self.targets += right.size
        self.samples_right += int(right.reshape(len(target), -1).all(axis=1).sum())

    @property
    def accuracy(self):
        return self.right / self.targets if self.enabled and self.targets else None


# ------------------------------------------------------------------- loop
def default_out_dir(task_name):
    return os.path.join("runs", f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}")


def train(config, out_dir=None, plots=False, resume=None, console=None, progress=True):
    """Run ``config`` (see :func:`make_config`); everything written goes into ``out_dir``."""
    from .data import iterate_batches, num_batches

    task = get_task(config.task, config.problem)
    out_dir = out_dir or default_out_dir(config.task)
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
        model, optimizer, history, first_epoch = _resume(resume, config, shuffle_rng, dtype, task)
        if first_epoch > config.epochs:
            raise ConfigurationError(
                f"train: {resume} already finished epoch {first_epoch - 1}, so --epochs {config.epochs} leaves "
                f"nothing to train; give --epochs above {first_epoch - 1} to continue the run")
    else:
        model = task.build_model().to(dtype)
        optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
    try:  # only now: a refused resume or bad data leaves nothing on disk
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"train: cannot create output directory {out_dir}: {exc.strerror or exc}") from None
    kept = resume  # the last good checkpoint on disk: a resumed run writes its first one after an epoch
    if not resume:
        _save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=0)
        kept = checkpoint_path

    console = console or _console()
    started = time.perf_counter()
    batches = num_batches(len(train_y), config.batch_size)
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_started = time.perf_counter()
        optimizer.lr = learning_rate(config, epoch)
        model.train()
        seen, loss_sum, scores = 0, 0.0, Scores()
        with _EpochProgress(console, epoch, config.epochs, batches, enabled=progress) as bar:
            for index, (xb, yb) in enumerate(iterate_batches(
                train_x, train_y, batch_size=config.batch_size, shuffle=task.shuffle, rng=shuffle_rng
            ), 1):
                with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported below
                    output, loss = task.run_batch(model, xb, yb)
                value = float(loss.item())
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"train: the loss became {value} in epoch {epoch}, batch {index}/{batches}; training stopped. "
                        f"The last good checkpoint ({_good(history, first_epoch)}) is kept at {kept}; "
                        f"try a smaller --lr (now {config.lr})"
                    )
                optimizer.zero_grad()
                with np.errstate(over="ignore", invalid="ignore"):
                    loss.backward()
                    optimizer.step()
                broken = non_finite_state(model, optimizer)
                if broken:
                    raise TrainingDiverged(
                        f"train: {broken} became nan or inf in the step of epoch {epoch}, batch {index}/{batches} "
                        f"(the loss was {value:.4g}); training stopped. The last good checkpoint "
                        f"({_good(history, first_epoch)}) is kept at {kept}; try a smaller --lr (now {config.lr})"
                    )
                seen += len(yb)
                loss_sum += value * len(yb)
                scores.add(task, output, yb)
                bar.update(loss_sum / seen, scores.accuracy)
        model.eval()
        with np.errstate(over="ignore", invalid="ignore"):
            test_loss, test_accuracy, samples_right = evaluate(task, model, data.test_x, data.test_y)
        if not math.isfinite(test_loss):
            raise TrainingDiverged(
                f"train: the test loss became {test_loss} after epoch {epoch}; training stopped. The last good "
                f"checkpoint ({_good(history, first_epoch)}) is kept at {kept}"
            )
        history.append(EpochRecord(
            epoch, optimizer.lr, loss_sum / seen, scores.accuracy, test_loss, test_accuracy,
            time.perf_counter() - epoch_started,
            samples_right if task.sample_name else None, len(data.test_y) if task.sample_name else None,
        ))
        _save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=epoch)
        kept = checkpoint_path
        if progress and _worth_printing(epoch, config.epochs, history, task):
            console.print(_epoch_line(history[-1], config.epochs, task), highlight=False, soft_wrap=True)
    result = TrainResult(config, history, out_dir, model, time.perf_counter() - started, task=task)
    if task.extra_metrics is not None:
        result.extra = task.extra_metrics(result)
    result.files.append(checkpoint_path)
    result.files.append(_write_metrics(result))
    images = {}
    if plots:
        images = plotting.training_plots(result, task, data)
        result.files.extend(images.values())
    from .train_report import write_train_report

    result.files.append(write_train_report(result, data.input_shape, images))
    return result


def non_finite_state(model, optimizer):
    """What became nan or inf in a step ("parameter '0.weight'", "the optimiser state exp_avg_sq of
    parameter '0.weight'"), or None: a step can overflow the state while the loss still looks fine."""
    names = {id(p): name for name, p in model.named_parameters()}
    for index, p in enumerate(optimizer.params):
        name = names.get(id(p), f"#{index}")
        if not np.isfinite(p.data).all():
            return f"parameter {name!r}"
        for key, value in optimizer.state[index].items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                return f"the optimiser state {key} of parameter {name!r}"
    return None


def _worth_printing(epoch, epochs, history, task):
    """Every epoch of a short run; about 20 lines of a long one, plus the epoch a task is first solved."""
    if epochs <= 25 or epoch in (1, epochs) or epoch % max(1, epochs // 20) == 0:
        return True
    last = history[-1]
    solved = last.test_samples is not None and last.test_samples_right == last.test_samples
    return solved and not (len(history) > 1 and history[-2].test_samples_right == last.test_samples)


def _epoch_line(record, epochs, task):
    samples = f"  {record.test_samples_right}/{record.test_samples} {task.sample_name}" if task.sample_name else ""
    if not task.held_out:
        return (f"  epoch {record.epoch:>3}/{epochs}  train loss {record.train_loss:.4f}  "
                f"│  after: loss {record.test_loss:.4f}  acc {percent(record.test_accuracy)}{samples}")
    return (f"  epoch {record.epoch:>3}/{epochs}  train loss {record.train_loss:.4f}  "
            f"acc {percent(record.train_accuracy)}  │  test loss {record.test_loss:.4f}  "
            f"acc {percent(record.test_accuracy)}{samples}")


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
            self.progress.update(self.task_id, advance=1, loss=f"{loss:.4f}", accuracy=percent(accuracy))


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


def _resume(path, config, shuffle_rng, dtype, task):
    saved = checkpoint.read_checkpoint(path)
    meta = saved.metadata
    if meta.get("kind") != "deltalab-train":
        raise CheckpointError(f"{path}: not a training checkpoint (no epoch or optimiser state); cannot resume from it")
    if meta.get("task") != config.task:
        raise CheckpointError(f"{path}: a checkpoint of task {_short(meta.get('task'))}, not {config.task!r}")
    epoch, history, saved_optimizer = _training_metadata(meta, path)
    state = generator().bit_generator.state  # building the reference must not move the draws
    try:
        expected = task.build_model()
    finally:
        generator().bit_generator.state = state
    _check_same_architecture(path, saved, expected)
    model = saved.build()
    if model.dtype != dtype:
        model.to(dtype)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
    if saved_optimizer == config.optimizer:
        checkpoint.load_optimizer_state(optimizer, saved.extra, path)
        for state in optimizer.state:
            for key, value in state.items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    state[key] = value.astype(dtype)
    try:
        shuffle_rng.bit_generator.state = meta["shuffle_rng"]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CheckpointError(f"{path}: corrupt training checkpoint: metadata.shuffle_rng is not a valid "
                              "shuffle generator state") from None
    return model, optimizer, history, epoch + 1


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(value, low, high):
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _number(value, low=-math.inf, high=math.inf):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
        and low <= value <= high


def _training_metadata(meta, path):
    """(epoch, [EpochRecord], optimiser name) of a training checkpoint's metadata, every field
    checked for its type and range (the history reaches the report and the metrics line)."""
    def fail(field_name, message):
        raise CheckpointError(f"{path}: corrupt training checkpoint: metadata.{field_name}: {message}")

    epoch = meta.get("epoch")
    if not _whole(epoch, 0, MAX_EPOCHS):
        fail("epoch", f"expected a whole number from 0 to {MAX_EPOCHS:,}, got {_short(epoch)}")
    config = meta.get("config")
    if not isinstance(config, dict):
        fail("config", f"expected a table, got {_short(config)}")
    optimizer = config.get("optimizer")
    if optimizer not in OPTIMIZERS:
        fail("config.optimizer", f"expected one of {', '.join(OPTIMIZERS)}, got {_short(optimizer)}")
    raw = meta.get("history")
    if not isinstance(raw, list) or len(raw) != epoch:
        fail("history", f"expected a list of {epoch} epoch records (one per epoch), got {_short(raw)}")
    fields = {f.name for f in dataclasses.fields(EpochRecord)}
    history = []
    for number, record in enumerate(raw, 1):
        at = f"history[{number - 1}]"
        if not isinstance(record, dict) or set(record) != fields:
            fail(at, f"expected a record with {', '.join(sorted(fields))}, got {_short(record)}")
        checks = {
            "epoch": record["epoch"] == number and _whole(record["epoch"], 1, MAX_EPOCHS),
            "lr": _number(record["lr"], 0),
            "train_loss": _number(record["train_loss"]),
            "test_loss": _number(record["test_loss"]),
            "seconds": _number(record["seconds"], 0),
            "train_accuracy": record["train_accuracy"] is None or _number(record["train_accuracy"], 0, 1),
            "test_accuracy": record["test_accuracy"] is None or _number(record["test_accuracy"], 0, 1),
            "test_samples": record["test_samples"] is None or _whole(record["test_samples"], 0, 1 << 53),
            "test_samples_right": record["test_samples_right"] is None
            or (_whole(record["test_samples_right"], 0, 1 << 53) and record["test_samples"] is not None
                and record["test_samples_right"] <= record["test_samples"]),
        }
        wrong = next((name for name, good in checks.items() if not good), None)
        if wrong:
            fail(f"{at}.{wrong}", f"the value {_short(record[wrong])} is not possible here")
        history.append(EpochRecord(**record))
    return epoch, history, optimizer


def _check_same_architecture(path, saved, expected):
    """Refuse to resume a run whose network is not this task's (e.g. another problem file): the
    whole architecture is compared (layers, activations, pooling, padding, stride), not only the
    parameter shapes, and the first difference is named."""
    try:
        want = architecture.to_config(expected)
    except DeltalabError:
        want = None  # an unregistered task model: its parameter shapes are all we can compare
    if want is not None:
        difference = architecture_rules.differences(saved.architecture, want)
        if difference is not None:
            where, have, wanted = difference
            shapes = _shape_differences(saved.state, expected)
            raise CheckpointError(
                f"{path}: the checkpoint's network does not fit this task's: {where} is {_short(have)} in the "
                f"checkpoint, {_short(wanted)} for the task" + (f" (parameters {shapes})" if shapes else ""))
        return
    model = saved.build()
    shapes = _shape_differences(saved.state, expected)
    if type(model) is not type(expected) or shapes:
        raise CheckpointError(
            f"{path}: the checkpoint's network ({type(model).__name__}) does not fit this task's "
            f"({type(expected).__name__})" + (f": {shapes}" if shapes else "")
        )


def _shape_differences(state, expected):
    """"W1: checkpoint (3, 3) vs task (4, 4), ..." for the first three parameters whose shapes differ."""
    have = {name: tuple(array.shape) for name, array in state.items()}
    want = {name: p.shape for name, p in expected.named_parameters()}
    differ = sorted(n for n in have.keys() | want.keys() if have.get(n) != want.get(n))
    return ", ".join(f"{n}: checkpoint {have.get(n, 'missing')} vs task {want.get(n, 'missing')}" for n in differ[:3])


def _write_metrics(result):
    path = os.path.join(result.out_dir, "metrics.json")
    payload = {
        "config": asdict(result.config),
        "final": asdict(result.final),
        "task_metrics": result.task_metrics(),
        "history": [asdict(r) for r in result.history],
        "seconds": result.seconds,
    }
    checkpoint.atomic_write(path, lambda f: f.write(json.dumps(payload, indent=2).encode("utf-8")))
    return path

"""The one training loop: mini-batches shuffled by a seeded generator, a checkpoint at the end of
every epoch (and before the first, so a good one always exists), ``metrics.json``, the HTML
report and, on request, plots."""
from __future__ import annotations

import math
import os
import time

import numpy as np

from .. import dtypes
from ..errors import ConfigurationError, DeltalabError
from ..random import manual_seed
from . import checkpointing
from .config import learning_rate, make_optimizer
from .metrics import EpochRecord, Scores, TrainResult, evaluate, write_metrics
from .progress import EpochProgress, epoch_lines, rich_console, worth_printing
from .report import write_train_report
from .task import get_task

__all__ = ["TrainingDiverged", "default_out_dir", "non_finite_state", "train"]


class TrainingDiverged(DeltalabError):
    """The loss became NaN or infinite; the message says where and which checkpoint survives."""


def default_out_dir(task_name):
    return os.path.join("runs", f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}")


def train(config, out_dir=None, plots=False, resume=None, console=None, progress=True):
    """Run ``config`` (see :func:`make_config`); everything written goes into ``out_dir``."""
    from ..data import iterate_batches, num_batches

    task = get_task(config.task, config.problem)
    out_dir = out_dir or default_out_dir(config.task)
    checkpoint_path = os.path.join(out_dir, "checkpoint.npz")
    dtype = dtypes.resolve(config.dtype)
    if plots:
        from . import plots as plotting  # matplotlib only when asked for

        plotting.require_matplotlib()

    data = task.load_data(dtype)
    train_x, train_y = data.train_x, data.train_y
    if config.limit is not None:
        train_x, train_y = train_x[: config.limit], train_y[: config.limit]

    manual_seed(config.seed)
    shuffle_rng = np.random.default_rng(config.seed)
    history, first_epoch = [], 1
    if resume:
        model, optimizer, history, first_epoch = checkpointing.resume(resume, config, shuffle_rng, dtype, task)
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
        checkpointing.save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=0)
        kept = checkpoint_path

    console = console or rich_console()
    started = time.perf_counter()
    batches = num_batches(len(train_y), config.batch_size)
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_started = time.perf_counter()
        optimizer.lr = learning_rate(config, epoch)
        model.train()
        seen, loss_sum, scores = 0, 0.0, Scores()
        with EpochProgress(console, epoch, config.epochs, batches, enabled=progress) as bar:
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
        checkpointing.save(model, optimizer, config, history, shuffle_rng, checkpoint_path, epoch=epoch)
        kept = checkpoint_path
        if progress and worth_printing(epoch, config.epochs, history, task):
            for line in epoch_lines(history[-1], config.epochs, task, console.width):
                console.print(line, highlight=False, soft_wrap=True)
    result = TrainResult(config, history, out_dir, model, time.perf_counter() - started, task=task)
    if task.extra_metrics is not None:
        result.extra = task.extra_metrics(result)
    result.files.append(checkpoint_path)
    result.files.append(write_metrics(result))
    images = {}
    if plots:
        images = plotting.training_plots(result, task, data)
        result.files.extend(images.values())
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
        for key, value in optimizer.state.get(p, {}).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                return f"the optimiser state {key} of parameter {name!r}"
    return None


def _good(history, first_epoch):
    epoch = history[-1].epoch if history else first_epoch - 1
    return f"end of epoch {epoch}" if epoch else "the initial weights, before epoch 1"

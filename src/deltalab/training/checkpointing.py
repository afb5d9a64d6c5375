"""A run's checkpoint at the end of every epoch, and resuming from one: every field of a training
checkpoint's metadata is checked, and the network must be the task's."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict

import numpy as np

from ..errors import CheckpointError, DeltalabError
from ..io import architecture, architecture_rules, checkpoint
from ..random import generator
from .config import MAX_EPOCHS, OPTIMIZERS, make_optimizer
from .metrics import EpochRecord

__all__ = ["resume", "save"]


def save(model, optimizer, config, history, shuffle_rng, path, epoch):
    metadata = {
        "kind": "deltalab-train",
        "task": config.task,
        "epoch": epoch,
        "config": asdict(config),
        "history": [asdict(r) for r in history],
        "shuffle_rng": shuffle_rng.bit_generator.state,
    }
    checkpoint.save(model, path, metadata=metadata, extra=checkpoint.optimizer_state(optimizer))


def resume(path, config, shuffle_rng, dtype, task):
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
        for state in optimizer.state.values():
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

"""What a run measured: one :class:`EpochRecord` per epoch, the :class:`TrainResult`, evaluation
without a graph, and ``metrics.json``."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..io import checkpoint
from ..tensor import Tensor
from .config import TrainConfig
from .task import Task

__all__ = ["EpochRecord", "Scores", "TrainResult", "evaluate", "percent", "write_metrics"]


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


def output_array(output):
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
        right = np.asarray(task.correct(output_array(output), target))
        self.right += int(right.sum())
        self.targets += right.size
        self.samples_right += int(right.reshape(len(target), -1).all(axis=1).sum())

    @property
    def accuracy(self):
        return self.right / self.targets if self.enabled and self.targets else None



def write_metrics(result):
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

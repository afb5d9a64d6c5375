"""What a run prints: a rich progress bar per epoch and about twenty epoch lines."""
from __future__ import annotations

from .metrics import percent

__all__ = ["EpochProgress", "rich_console", "epoch_lines", "worth_printing"]


def worth_printing(epoch, epochs, history, task):
    """Every epoch of a short run; about 20 lines of a long one, plus the epoch a task is first solved."""
    if epochs <= 25 or epoch in (1, epochs) or epoch % max(1, epochs // 20) == 0:
        return True
    last = history[-1]
    solved = last.test_samples is not None and last.test_samples_right == last.test_samples
    return solved and not (len(history) > 1 and history[-2].test_samples_right == last.test_samples)


def epoch_lines(record, epochs, task, width=80):
    """One epoch's line, ``epoch 12/200  train … │ test …``; when that is wider than ``width``
    (the terminal's columns), the test half goes on a second line under the training half, so
    nothing is cut or wrapped mid-number."""
    samples = f"  {record.test_samples_right}/{record.test_samples} {task.sample_name}" if task.sample_name else ""
    head = f"  epoch {record.epoch:>3}/{epochs}  "
    if not task.held_out:
        train = f"train loss {record.train_loss:.4f}"
        test = f"after: loss {record.test_loss:.4f}  acc {percent(record.test_accuracy)}{samples}"
    else:
        train = f"train loss {record.train_loss:.4f}  acc {percent(record.train_accuracy)}"
        test = f"test loss {record.test_loss:.4f}  acc {percent(record.test_accuracy)}{samples}"
    line = f"{head}{train}  │  {test}"
    if len(line) <= width:
        return [line]
    return [f"{head}{train}", f"{' ' * len(head)}│ {test}"]


def rich_console():
    from rich.console import Console

    return Console()


class EpochProgress:
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

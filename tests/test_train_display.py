"""What ``deltalab train`` shows: progress lines that fit an 80-column terminal, and plots that
count epochs, kernels, channels and hidden units from 1, as the worked solutions do."""
import os
import pty
import re
import select
import subprocess
import sys
import types

import numpy as np
import pytest

from deltalab.training.metrics import EpochRecord
from deltalab.training.progress import epoch_lines

pytest.importorskip("matplotlib")
from deltalab.training import plots  # noqa: E402

WORST = EpochRecord(epoch=1000, lr=0.1, train_loss=123.4567, train_accuracy=1.0, test_loss=123.4567,
                    test_accuracy=1.0, seconds=1.0, test_samples_right=12345, test_samples=12345)
TASKS = [types.SimpleNamespace(held_out=h, sample_name=s) for h in (True, False) for s in ("", "sequences")]


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"held_out={t.held_out},samples={bool(t.sample_name)}")
def test_an_epoch_line_fits_80_columns_and_keeps_every_number(task):
    lines = epoch_lines(WORST, 1000, task, width=80)
    assert all(len(line) <= 80 for line in lines), lines
    text = " ".join(lines)
    assert "1000/1000" in text and text.count("123.4567") == 2
    assert ("12345/12345 sequences" in text) == bool(task.sample_name)


def test_a_wide_terminal_keeps_the_epoch_on_one_line():
    task = TASKS[0]
    short = EpochRecord(3, 0.1, 0.5, 0.25, 0.5, 0.25, 1.0)
    assert epoch_lines(short, 10, task, width=120) == [
        "  epoch   3/10  train loss 0.5000  acc 25.00%  │  test loss 0.5000  acc 25.00%"]
    assert len(epoch_lines(WORST, 1000, task, width=120)) == 1


def test_the_progress_bar_of_a_long_epoch_fits_80_columns():
    import io

    from rich.console import Console

    from deltalab.training.progress import EpochProgress

    console = Console(width=80, file=io.StringIO(), force_terminal=True, color_system=None)
    bar = EpochProgress(console, 1000, 1000, 100000)
    bar.progress.update(bar.task_id, advance=99999, loss="123.4567", accuracy="100.00%")
    lines = ["".join(s.text for s in line) for line in console.render_lines(bar.progress.get_renderable())]
    assert any("99999/100000" in line and "123.4567" in line for line in lines), lines
    assert max(len(line) for line in lines) <= 80


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>78]")


def test_train_in_an_80_column_pseudo_terminal_writes_no_longer_line(tmp_path):
    """The real command in a pseudo terminal (so the rich progress bar is drawn): every line
    and every redraw of the bar, control sequences removed, is at most 80 characters."""
    main, child = pty.openpty()
    env = dict(os.environ, COLUMNS="80", LINES="24", TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "deltalab.cli", "train", "digits-cnn", "--epochs", "2", "--limit", "160",
         "--batch-size", "8", "--out", "run"],  # a short path: a file name is never broken
        stdin=child, stdout=child, stderr=child, env=env, close_fds=True, cwd=tmp_path)
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert process.wait(timeout=60) == 0
    text = _CONTROL.sub("", b"".join(chunks).decode("utf-8", "replace"))
    pieces = [p for p in re.split(r"[\r\n]", text) if p.strip()]
    assert any("epoch   2/2" in p for p in pieces), pieces
    assert any("━" in p for p in pieces), "the progress bar was not drawn"
    too_long = [p for p in pieces if len(p) > 80]
    assert too_long == []


# ------------------------------------------------------------------------ plots

def _visible_ticks(axis):
    low, high = axis.get_xlim()
    return [t for t in axis.get_xticks() if low <= t <= high]


@pytest.mark.parametrize("epochs", [3, 200])
def test_the_training_curves_count_epochs_from_1(epochs):
    history = [EpochRecord(e, 0.1, 1.0 / e, 0.5, 1.0 / e, 0.5, 1.0) for e in range(1, epochs + 1)]
    figure = plots.curves_figure(history)
    for axis in figure.axes[:2]:
        assert min(_visible_ticks(axis)) >= 1
        assert axis.get_xlim()[0] > 0
        assert list(axis.lines[0].get_xdata()) == list(range(1, epochs + 1))
    plots.require_matplotlib().close(figure)


def test_kernels_feature_maps_and_hidden_units_are_counted_from_1():
    from deltalab.nn import Conv2d

    conv = Conv2d(2, 3, 3)
    figure = plots.kernels_figure(conv)
    titles = [a.get_title() for a in figure.axes if a.get_title()]
    assert titles[:3] == ["kernel 1, channel 1", "kernel 2, channel 1", "kernel 3, channel 1"]
    assert "kernel 3, channel 2" in titles and not any("kernel 0" in t or "channel 0" in t for t in titles)
    maps = plots.feature_maps_figure("0", conv, np.zeros((3, 4, 4)))
    assert [a.get_title() for a in maps.axes if a.get_title().startswith("channel")] == [
        "channel 1", "channel 2", "channel 3"]
    states = plots.hidden_states_figure([("run", np.zeros((3, 2)), ["t=1", "t=2", "t=3"])])
    axis = states.axes[0]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["1", "2"]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["t=1", "t=2", "t=3"]
    for f in (figure, maps, states):
        plots.require_matplotlib().close(f)

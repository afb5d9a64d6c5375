"""``deltalab train``: short digits runs through the CLI, checkpoints, determinism, plots, report."""
import dataclasses
import json
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest

import deltalab as dl
from deltalab import checkpoint, training
from deltalab.cli import main

QUICK = ["train", "digits-cnn", "--epochs", "2", "--limit", "160", "--batch-size", "32", "--quiet"]


def run(capsys, *args):
    code = main([*QUICK, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def final_metrics(directory):
    return json.loads((directory / "metrics.json").read_text())["final"]


def test_a_short_run_writes_its_files_and_a_metrics_line(tmp_path, capsys):
    code, out, err = run(capsys, "--out", str(tmp_path / "run"))
    assert code == 0, err
    run_dir = tmp_path / "run"
    assert {p.name for p in run_dir.iterdir()} == {"checkpoint.npz", "metrics.json", "report.html"}
    final = final_metrics(run_dir)
    assert final["epoch"] == 2
    assert f"digits-cnn: epoch 2/2  test accuracy {final['test_accuracy']:.2%}" in out
    assert final["test_accuracy"] > 0.2  # 2 epochs on 160 images already beat chance (10%)
    with zipfile.ZipFile(run_dir / "checkpoint.npz") as archive:
        header = json.loads(np.lib.format.read_array(archive.open("__deltalab__.npy")).tobytes())
    assert header["metadata"]["epoch"] == 2 and header["metadata"]["task"] == "digits-cnn"
    model = dl.load(run_dir / "checkpoint.npz")
    assert model.dtype == np.float32


def test_the_same_seed_gives_the_same_metrics_and_another_seed_does_not(tmp_path, capsys):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert run(capsys, "--seed", seed, "--out", str(tmp_path / name))[0] == 0
    a, b, c = (final_metrics(tmp_path / n) for n in "abc")
    for metrics in (a, b, c):
        metrics.pop("seconds")
    assert a == b and a != c
    weights_a = dl.load(tmp_path / "a" / "checkpoint.npz").state_dict()
    weights_b = dl.load(tmp_path / "b" / "checkpoint.npz").state_dict()
    assert all(weights_a[k].tobytes() == weights_b[k].tobytes() for k in weights_a)


def test_resume_continues_exactly_where_the_run_stopped(tmp_path, capsys):
    assert run(capsys, "--out", str(tmp_path / "full"))[0] == 0
    assert main([*QUICK[:3], "1", *QUICK[4:], "--out", str(tmp_path / "half")]) == 0
    code, out, err = run(capsys, "--resume", str(tmp_path / "half" / "checkpoint.npz"), "--out", str(tmp_path / "rest"))
    assert code == 0, err
    full, resumed = final_metrics(tmp_path / "full"), final_metrics(tmp_path / "rest")
    full.pop("seconds"), resumed.pop("seconds")
    assert full == resumed


def test_plots_and_report_are_written(tmp_path, capsys):
    code, out, err = run(capsys, "--plots", "--out", str(tmp_path / "run"))
    assert code == 0, err
    run_dir = tmp_path / "run"
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert pngs == ["curves.png", "feature_maps_0.png", "feature_maps_3.png", "kernels.png"]
    for name in pngs:
        data = (run_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
    page = (run_dir / "report.html").read_text()
    parser = StrictHTMLChecker()
    parser.feed(page)
    parser.close()
    assert parser.open_tags == [] and parser.errors == []
    assert parser.images == 4 and all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert "test accuracy" in page and "Conv2d" in page and "<table>" in page


class StrictHTMLChecker(HTMLParser):
    """Checks nesting, counts images and records every resource reference."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.open_tags, self.errors, self.sources, self.images = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.sources.append(attrs[key])
        if tag in ("script", "link", "iframe"):
            self.errors.append(f"<{tag}> element")
        if tag == "img":
            self.images += 1
        if tag not in self.VOID:
            self.open_tags.append(tag)

    def handle_endtag(self, tag):
        if not self.open_tags or self.open_tags[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.open_tags[-3:]}")
        else:
            self.open_tags.pop()


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    task = training.TASKS["digits-cnn"]
    calls = {"n": 0}

    def poisoned(output, target):
        calls["n"] += 1
        loss = task.loss(output, target)
        return loss * float("nan") if calls["n"] == 8 else loss  # calls 1-5: epoch 1, 6: its test, 8: epoch 2 batch 2

    monkeypatch.setitem(training.TASKS, "digits-cnn", dataclasses.replace(task, loss=poisoned))
    code, out, err = run(capsys, "--out", str(tmp_path / "run"))
    assert code == 1
    assert "the loss became nan in epoch 2, batch 2/5" in err
    assert "last good checkpoint (end of epoch 1)" in err and "Traceback" not in err
    saved = checkpoint.read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert saved.metadata["epoch"] == 1
    assert all(np.isfinite(a).all() for a in saved.state.values())


def test_a_diverging_learning_rate_is_stopped(tmp_path, capsys):
    code, out, err = run(capsys, "--lr", "1e8", "--optimizer", "sgd", "--out", str(tmp_path / "run"))
    assert code == 1 and "the loss became" in err and "training stopped" in err
    assert dl.load(tmp_path / "run" / "checkpoint.npz") is not None


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "no-such-task"], "unknown task 'no-such-task'"),
        (["train", "digits-cnn", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "digits-cnn", "--lr", "-1"], "--lr must be a positive number"),
        (["train", "digits-cnn", "--resume", "/nonexistent/checkpoint.npz"], "no such checkpoint file"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, args, words):
    assert main([*args, "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err

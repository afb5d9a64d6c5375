"""``deltalab train``: short digits runs through the CLI, checkpoints, determinism, plots, report."""
import dataclasses
import json
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest

import deltalab as dl
from deltalab import training
from deltalab.io import checkpoint
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


# ------------------------------------------------------------ recurrent tasks (SPEC §6)
CODES = {"A": "12", "B": "23", "C": "31", "D": "21", "E": "13"}  # SPEC §6


def test_sequence_completion_learns_all_25_sequences_with_its_defaults(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "sequence-completion", "--quiet", "--plots", "--out", str(run_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "sequence-completion: epoch 200/200  25/25 sequences (all right from epoch" in out
    # independent of the trainer's counting: the saved network completes every XY by the SPEC's codes
    model = dl.load(run_dir / "checkpoint.npz")
    letters = "ABCDE"
    x = np.zeros((6, 25, 5), dtype=np.float32)
    for n, (a, b) in enumerate((a, b) for a in letters for b in letters):
        x[0, n, letters.index(a)] = x[1, n, letters.index(b)] = 1
    with dl.no_grad():
        digits = model(dl.tensor(x)).numpy()[2:].argmax(axis=-1) + 1  # t = 3 … 6
    completed = ["".join(str(d) for d in digits[:, n]) for n in range(25)]
    assert completed == [CODES[a] + CODES[b] for a in letters for b in letters]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    solved = int(metrics["task_metrics"]["first epoch with all sequences right"])
    assert 40 <= solved <= 130  # SPEC §6: 8 units with Adam lr 0.05 take 60–130 epochs (46–142 over seeds here)
    assert metrics["final"]["test_samples_right"] == 25 and metrics["final"]["test_accuracy"] == 1.0
    picture = (run_dir / "hidden_states.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 5_000
    page = (run_dir / "report.html").read_text()
    checker = StrictHTMLChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.open_tags == [] and checker.images == 2  # curves + hidden states
    assert "Hidden state over time" in page and "25/25" in page


def test_shift_register_exact_bptt_reaches_the_spec_loss(tmp_path, capsys):
    code = main(["train", "shift-register", "--quiet", "--out", str(tmp_path / "exact")])
    out = capsys.readouterr().out
    assert code == 0 and "3/3 patterns (all right from epoch 1)" in out  # SPEC §6: 100% after one epoch
    metrics = json.loads((tmp_path / "exact" / "metrics.json").read_text())
    # SPEC §6: exact BPTT, online SGD lr 0.5 from W0 = 0, summed loss 0.0191 after 200 epochs
    assert float(metrics["task_metrics"]["summed loss E(2)+E(3) over the 3 patterns"]) == pytest.approx(0.0191, abs=5e-5)
    assert 3 * metrics["final"]["test_loss"] == pytest.approx(0.0191, abs=5e-5)
    # the trained W rotates every one-hot pattern by one unit per step (checked in NumPy)
    W = dl.load(tmp_path / "exact" / "checkpoint.npz").cell.W.numpy()
    for p in range(3):
        x2 = np.exp(W[:, p]) / np.exp(W[:, p]).sum()
        x3 = np.exp(W @ x2) / np.exp(W @ x2).sum()
        assert x2.argmax() == (p + 1) % 3 and x3.argmax() == (p + 2) % 3


def test_shift_register_seed_rule_is_a_task_variant_that_lags(tmp_path, capsys):
    assert main(["train", "shift-register-seed", "--quiet", "--epochs", "20", "--out", str(tmp_path / "seed")]) == 0
    assert main(["train", "shift-register", "--quiet", "--epochs", "20", "--out", str(tmp_path / "exact")]) == 0
    seed, exact = (final_metrics(tmp_path / n) for n in ("seed", "exact"))
    assert seed["test_accuracy"] == exact["test_accuracy"] == 1.0
    assert seed["test_loss"] > exact["test_loss"]  # the seed's update is not the gradient


# ------------------------------------------------------------------ a problem file
PROBLEM = """
title = "two samples through a small ReLU network"
[model]
type = "mlp"
input_shape = [2]
loss = "half_squared_error"
[[model.layers]]
type = "dense"
units = 2
activation = "relu"
[[model.layers]]
type = "dense"
units = 1
[parameters]
W1 = [[1.0, 0.5], [-0.5, 1.0]]
b1 = [0.5, 0.5]
W2 = [[0.5, -0.5]]
b2 = [0.25]
[data]
inputs = [[2, -1], [1, 1]]
targets = [[1.0], [-0.5]]
[training]
learning_rate = 0.05
"""


def numpy_error(W1, b1, W2, b2, x, t):
    """E = ½ Σ (y − t)² of the problem's network, written out in NumPy."""
    hidden = np.maximum(x @ W1.T + b1, 0)
    return 0.5 * float(((hidden @ W2.T + b2 - t) ** 2).sum())


def test_train_file_decreases_the_problem_loss_and_its_checkpoint_round_trips(tmp_path, capsys):
    problem = tmp_path / "problem.toml"
    problem.write_text(PROBLEM)
    code = main(["train", "file", str(problem), "--epochs", "40", "--quiet", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("file: epoch 40/40")
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    x, t = np.array([[2.0, -1.0], [1.0, 1.0]]), np.array([[1.0], [-0.5]])
    initial = numpy_error(np.array([[1.0, 0.5], [-0.5, 1.0]]), np.array([0.5, 0.5]), np.array([[0.5, -0.5]]),
                          np.array([0.25]), x, t)
    assert history[0]["train_loss"] == pytest.approx(initial, rel=1e-12)  # E over the whole batch, as solve sums it
    assert history[-1]["test_loss"] < history[0]["train_loss"] / 10
    assert all(b["test_loss"] <= a["test_loss"] for a, b in zip(history, history[1:]))
    model = dl.load(tmp_path / "run" / "checkpoint.npz")
    params = {k: v.numpy() for k, v in model.named_parameters()}
    assert numpy_error(params["W1"], params["b1"], params["W2"], params["b2"], x, t) == pytest.approx(
        history[-1]["test_loss"], rel=1e-10)
    dl.save(model, tmp_path / "again.npz")
    again = dl.load(tmp_path / "again.npz")
    assert all(again.state_dict()[k].tobytes() == v.tobytes() for k, v in model.state_dict().items())


RNN_PROBLEM = """
[model]
type = "rnn"
input_size = 2
hidden_size = 3
output_size = 2
output_activation = "softmax"
loss = "cross_entropy"
[parameters]
init = "random"
seed = 1
[data]
inputs = [[1, 0], [0, 1], [0, 0]]
targets = [[0, 1], [1, 0]]
target_steps = [2, 3]
[training]
learning_rate = 0.2
"""


def test_train_file_with_a_recurrent_problem_plots_its_hidden_state(tmp_path, capsys):
    problem = tmp_path / "rnn.toml"
    problem.write_text(RNN_PROBLEM)
    code = main(["train", "file", str(problem), "--epochs", "60", "--plots", "--quiet", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert history[-1]["test_loss"] < history[0]["train_loss"] and history[-1]["test_accuracy"] == 1.0
    assert (tmp_path / "run" / "hidden_states.png").stat().st_size > 5_000
    assert type(dl.load(tmp_path / "run" / "checkpoint.npz")).__name__ == "ElmanNetwork"


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "file"], "give the problem file: deltalab train file PROBLEM.toml"),
        (["train", "digits-cnn", "extra.toml"], "takes no file"),
        (["train", "file", "/nonexistent/problem.toml"], "no such file"),
    ],
)
def test_file_task_user_errors(tmp_path, capsys, args, words):
    assert main([*args, "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_resume_with_a_problem_file_of_another_shape_is_refused(tmp_path, capsys):
    first, other = tmp_path / "rnn.toml", tmp_path / "wider.toml"
    first.write_text(RNN_PROBLEM)
    other.write_text(RNN_PROBLEM.replace("hidden_size = 3", "hidden_size = 4"))
    assert main(["train", "file", str(first), "--epochs", "2", "--quiet", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    code = main(["train", "file", str(other), "--epochs", "4", "--quiet",
                 "--resume", str(tmp_path / "a" / "checkpoint.npz"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code != 0 and "checkpoint.npz" in err and "does not fit" in err and "(4, 4)" in err
    assert "Traceback" not in err and not (tmp_path / "b").exists()

"""An rnn / lstm problem file holding a batch of sequences: data.inputs (N, T, F), one error E⁽ⁿ⁾
per sequence, E their sum or mean (model.reduction, PyTorch's names).  The numbers are checked
against PyTorch's own nn.RNN / nn.LSTM run on the batch (batch_first), never against deltalab's
output; the worked solution is checked through the command line in every format."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deltalab.cli import main
from deltalab.examples import example_path
from deltalab.problem import load_problem, parse_problem
from deltalab.recorder import solve_problem

torch = pytest.importorskip("torch")

EXAMPLE = "rnn-batch-of-two-sequences"

RNN_BATCH = """title = "two sequences"
[model]
type = "rnn"
input_size = 2
hidden_size = 2
output_size = 1
hidden_activation = "tanh"
loss = "half_squared_error"
reduction = "{reduction}"
[parameters]
W1 = [[0.5, -0.3], [0.2, 0.4]]
H1 = [[0.1, 0.2], [-0.2, 0.3]]
b1 = [0.0, 0.1]
W2 = [[0.6, -0.5]]
b2 = [0.1]
[data]
inputs = {inputs}
targets = {targets}
[training]
learning_rate = 0.5
"""
INPUTS = "[[[1, 0], [0, 1]], [[0, 1], [1, 1]]]"
TARGETS = "[[[1], [0]], [[0], [1]]]"


def rnn_file(tmp_path, reduction="mean", inputs=INPUTS, targets=TARGETS, extra=""):
    path = tmp_path / f"batch-{reduction}.toml"
    path.write_text(RNN_BATCH.format(reduction=reduction, inputs=inputs, targets=targets) + extra)
    return path


def solve_json(path, *options):
    out = Path(path).with_suffix(".json")
    assert main(["solve", str(path), "--format", "json", "-o", str(out), *options]) == 0
    return json.loads(out.read_text())


def torch_rnn(problem):
    """PyTorch's nn.RNN (batch_first) and nn.Linear with the file's weights: H1 is weight_hh, b1 the
    input bias (the hidden-hidden bias 0, the lecture has one bias per layer)."""
    rnn = torch.nn.RNN(problem.input_size, problem.hidden_size, nonlinearity="tanh", batch_first=True,
                       dtype=torch.float64)
    linear = torch.nn.Linear(problem.hidden_size, problem.output_size, dtype=torch.float64)
    p = problem.parameters
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(p["W1"]))
        rnn.weight_hh_l0.copy_(torch.tensor(p["H1"]))
        rnn.bias_ih_l0.copy_(torch.tensor(p["b1"]))
        rnn.bias_hh_l0.zero_()
        linear.weight.copy_(torch.tensor(p["W2"]))
        linear.bias.copy_(torch.tensor(p["b2"]))
    return rnn, linear


def torch_reference(problem, reduction):
    """E, the per-sequence output deltas ∂E⁽ⁿ⁾/∂z[2] and the gradients, all from PyTorch."""
    rnn, linear = torch_rnn(problem)
    x = torch.tensor(problem.inputs)  # (N, T, F): batch_first
    hidden, _ = rnn(x)
    z = linear(hidden)
    z.retain_grad()
    per_sequence = 0.5 * ((z - torch.tensor(problem.targets)) ** 2).sum(dim=(1, 2))  # E⁽ⁿ⁾
    per_sequence.sum().backward(retain_graph=True)
    deltas = z.grad.clone()  # Σₙ E⁽ⁿ⁾ does not mix the sequences: these are ∂E⁽ⁿ⁾/∂z⁽ⁿ⁾
    rnn.zero_grad()
    linear.zero_grad()
    loss = per_sequence.sum() if reduction == "sum" else per_sequence.mean()
    loss.backward()
    gradients = {"W1": rnn.weight_ih_l0.grad, "H1": rnn.weight_hh_l0.grad, "b1": rnn.bias_ih_l0.grad,
                 "W2": linear.weight.grad, "b2": linear.bias.grad}
    return float(loss.detach()), per_sequence.detach().numpy(), deltas.numpy(), {k: v.numpy() for k, v in gradients.items()}


# ------------------------------------------------------------------ values against PyTorch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_batch_of_two_sequences_agrees_with_torch_nn_rnn(tmp_path, reduction):
    path = rnn_file(tmp_path, reduction)
    problem = load_problem(path)
    loss, per_sequence, deltas, gradients = torch_reference(problem, reduction)
    data = solve_json(path, "--check-torch")
    assert data["loss"] == pytest.approx(loss, rel=1e-12)
    assert [data["errors"]["E⁽¹⁾"], data["errors"]["E⁽²⁾"]] == pytest.approx(per_sequence.tolist(), rel=1e-12)
    for n in (1, 2):
        for t in (1, 2):
            mark = "⁽¹⁾" if n == 1 else "⁽²⁾"
            assert np.allclose(data["deltas"][f"z[2]{mark}({t})"], deltas[n - 1, t - 1], rtol=1e-12, atol=1e-15)
    eta = 0.5
    for name, value in gradients.items():
        assert np.allclose(data["gradients"][name], value, rtol=1e-11, atol=1e-14), name
        assert np.allclose(data["parameters_after"][name], problem.parameters[name] - eta * value, rtol=1e-11)
    assert all(check["passed"] for check in data["check"])
    assert [c["method"] for c in data["check"]] == ["central finite differences", "PyTorch float64"]


def test_sum_and_mean_differ_by_the_number_of_sequences(tmp_path):
    summed = solve_json(rnn_file(tmp_path, "sum"))
    averaged = solve_json(rnn_file(tmp_path, "mean"))
    assert summed["loss"] == pytest.approx(2 * averaged["loss"], rel=1e-12)
    for name in summed["gradients"]:
        assert np.allclose(summed["gradients"][name], 2 * np.asarray(averaged["gradients"][name]), rtol=1e-12)
    # each sequence's own deltas are the same whichever way the errors are combined
    assert summed["deltas"].keys() == averaged["deltas"].keys()
    for key, value in summed["deltas"].items():
        assert np.allclose(value, averaged["deltas"][key], rtol=1e-12), key


def test_the_built_in_example_matches_torch_and_mean_is_torch_mse_mean_over_the_batch():
    problem = load_problem(example_path(EXAMPLE))
    loss, _, _, gradients = torch_reference(problem, "mean")
    trace = solve_problem(problem)
    assert trace.steps[0].loss == pytest.approx(loss, rel=1e-12)
    for name, value in gradients.items():
        assert np.allclose(trace.steps[0].gradients[name], value, rtol=1e-11, atol=1e-14)
    # with mse each E⁽ⁿ⁾ averages its own sequence and "mean" averages the sequences: torch's
    # mse_loss(reduction="mean") over the whole batch, as a PyTorch user expects
    mse = parse_problem(example_path(EXAMPLE).read_text().replace('"half_squared_error"', '"mse"'), "mse.toml")
    rnn, linear = torch_rnn(mse)
    z = linear(rnn(torch.tensor(mse.inputs))[0])
    expected = torch.nn.functional.mse_loss(z, torch.tensor(mse.targets), reduction="mean")
    assert solve_problem(mse).steps[0].loss == pytest.approx(float(expected.detach()), rel=1e-12)


LSTM_BATCH = """title = "lstm batch"
[model]
type = "lstm"
input_size = 2
hidden_size = 2
output_size = 3
output_activation = "softmax"
many_to_one = true
loss = "cross_entropy"
reduction = "{reduction}"
[parameters]
init = "random"
seed = 3
[data]
inputs = [[[1, 0], [0, 1], [0.5, 0.5]], [[0, 1], [1, 1], [0, 0]], [[-1, 0.5], [0.2, 0], [1, -1]]]
targets = [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
initial_state = [[0.1, -0.1], [0, 0], [0.2, 0.3]]
initial_cell = [0.05, -0.05]
[training]
learning_rate = 0.1
"""


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_an_lstm_batch_many_to_one_agrees_with_torch_nn_lstm(tmp_path, reduction):
    path = tmp_path / "lstm.toml"
    path.write_text(LSTM_BATCH.format(reduction=reduction))
    problem = load_problem(path)
    trace = solve_problem(problem)
    before = trace.steps[0].parameters_before
    lstm = torch.nn.LSTM(2, 2, batch_first=True, dtype=torch.float64)
    linear = torch.nn.Linear(2, 3, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(before["W1"]))
        lstm.weight_hh_l0.copy_(torch.tensor(before["H1"]))
        lstm.bias_ih_l0.copy_(torch.tensor(before["b1"]))
        lstm.bias_hh_l0.zero_()
        linear.weight.copy_(torch.tensor(before["W2"]))
        linear.bias.copy_(torch.tensor(before["b2"]))
    h0 = torch.tensor(problem.initial_state)[None]  # (1, N, H): a row per sequence
    c0 = torch.tensor(problem.initial_cell).expand(3, 2)[None].contiguous()  # one cell state for all
    out, _ = lstm(torch.tensor(problem.inputs), (h0, c0))
    logits = linear(out[:, -1])
    classes = torch.tensor(problem.targets).argmax(dim=1)
    loss = torch.nn.functional.cross_entropy(logits, classes, reduction=reduction)
    loss.backward()
    expected = {"W1": lstm.weight_ih_l0.grad, "H1": lstm.weight_hh_l0.grad, "b1": lstm.bias_ih_l0.grad,
                "W2": linear.weight.grad, "b2": linear.bias.grad}
    assert trace.steps[0].loss == pytest.approx(float(loss.detach()), rel=1e-12)
    for name, value in expected.items():
        assert np.allclose(trace.steps[0].gradients[name], value.numpy(), rtol=1e-10, atol=1e-14), name


def test_a_batch_of_one_sequence_is_the_single_sequence_file(tmp_path):
    single = rnn_file(tmp_path, "sum", inputs="[[1, 0], [0, 1]]", targets="[[1], [0]]")
    batch = tmp_path / "one.toml"
    batch.write_text(RNN_BATCH.format(reduction="mean", inputs="[[[1, 0], [0, 1]]]", targets="[[[1], [0]]]"))
    a, b = solve_json(single), solve_json(batch)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-14)
    for name in a["gradients"]:
        assert np.allclose(a["gradients"][name], b["gradients"][name], rtol=1e-14)
    assert "z[1](2)" in a["deltas"] and "z[1]⁽¹⁾(2)" in b["deltas"]
    assert all("sequence" not in node for node in a["derivation"])


# ------------------------------------------------------------------ the worked solution
def test_the_json_derivation_works_each_sequence_then_combines_them():
    data = solve_json_example()
    nodes = {node["id"]: node for node in data["derivation"]}
    assert nodes["loss"]["formula"] == "1/2 · (E⁽¹⁾ + E⁽²⁾)"
    assert nodes["errors:E⁽²⁾"]["formula"] == "E⁽²⁾(1) + E⁽²⁾(2)" and nodes["errors:E⁽²⁾"]["sequence"] == 2
    assert nodes["gradients:W1"]["formula"] == "1/2 · (∂E⁽¹⁾/∂W1 + ∂E⁽²⁾/∂W1)"
    assert nodes["contributions:W1⁽¹⁾"]["formula"] == "δ[1]⁽¹⁾(1) x[0]⁽¹⁾(1)ᵀ + δ[1]⁽¹⁾(2) x[0]⁽¹⁾(2)ᵀ"
    assert nodes["deltas:z[1]⁽²⁾(1)"]["inputs"] == ["parameters_before:W2", "deltas:z[2]⁽²⁾(1)",
                                                    "parameters_before:H1", "deltas:z[1]⁽²⁾(2)",
                                                    "forward:x[1]⁽²⁾(1)"]
    assert nodes["gradients:W1"]["latex"].startswith(r"\frac{1}{2}\left(\partial E^{(1)}/\partial W")
    assert nodes["deltas:z[1]⁽²⁾(1)"]["latex"].count("^{[1](2)}(2)") == 1  # layer and sequence in one superscript
    assert not any("⁽" in (node["latex"] or "") for node in data["derivation"])
    # BPTT order inside each sequence: t = 2 before t = 1, sequence 1 before sequence 2
    deltas = [(n["sequence"], n["step"]) for n in data["derivation"] if n["kind"] == "delta"]
    assert deltas == [(1, 2), (1, 2), (1, 1), (1, 1), (2, 2), (2, 2), (2, 1), (2, 1)]
    assert {c["sequence"] for c in data["contributions"]["W1"]} == {1, 2}


def solve_json_example():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "s.json"
        assert main(["solve", "--example", EXAMPLE, "--format", "json", "-o", str(out)]) == 0
        return json.loads(out.read_text())


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "latex", "html"])
def test_every_format_shows_the_sequences_and_the_mean(tmp_path, fmt):
    for source in (["--example", EXAMPLE], [str(rnn_file(tmp_path, "sum"))]):
        out = tmp_path / f"solution.{fmt}"
        assert main(["solve", *source, "--format", fmt, "-o", str(out)]) == 0
        text = out.read_text()
        assert "sequence 2, t = 1" in text
        if fmt == "latex":
            assert "{x^{[0](2)}}(1)" in text and "⁽" not in text  # pdflatex gets no raw superscripts
        else:
            assert "x[0]⁽²⁾(1)" in text or "x<sup>[0]</sup>⁽²⁾(1)" in text
        assert "own error" in text


def test_the_terminal_solution_writes_the_mean_with_its_numbers(tmp_path, capsys):
    assert main(["solve", "--example", EXAMPLE, "--format", "terminal"]) == 0
    text = capsys.readouterr().out
    assert "E = 1/2 · (E⁽¹⁾ + E⁽²⁾) = 1/2 · (" in text
    assert "∂E⁽¹⁾/∂b2 = δ[2]⁽¹⁾(1) + δ[2]⁽¹⁾(2) = [-0.7684] + [-0.2449] = [-1.0133]" in text
    assert "∂E/∂W1 = 1/2 · (∂E⁽¹⁾/∂W1 + ∂E⁽²⁾/∂W1)" in text
    assert "reduction = mean: E = 1/N Σₙ E⁽ⁿ⁾ (N = 2)" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# ------------------------------------------------------------------ hostile files
@pytest.mark.parametrize("change, where, words", [
    (dict(inputs="[[[1, 0], [0, 1]], [[0, 1]]]"), "data.inputs", "different lengths (2, 1 time steps)"),
    (dict(targets="[[[1], [0]], [[0]]]"), "data.targets", "different lengths (2, 1 target rows)"),
    (dict(targets="[[[1], [0]], [[0], [1]], [[1], [1]]]"), "data.targets", "targets of 2 sequences"),
    (dict(targets="[[[1, 0], [0, 1]], [[0, 1], [1, 1]]]"), "data.targets", "expected shape (2, 1) of each sequence"),
    (dict(inputs="[[[1, 0, 0], [0, 1, 0]], [[0, 1, 0], [1, 1, 0]]]"), "data.inputs", "(N, T, 2)"),
    (dict(inputs="[]"), "data.inputs", "empty"),
    (dict(inputs="[[[], []], [[], []]]"), "data.inputs", "(N, T, 2)"),
    (dict(reduction="none"), "model.reduction", "expected one of sum, mean, got 'none'"),
    (dict(reduction="avg"), "model.reduction", "expected one of sum, mean, got 'avg'"),
    (dict(extra="[data.initial]\n"), "data.initial", "unknown key"),
])
def test_hostile_batch_files_get_one_line_naming_the_field(tmp_path, capsys, change, where, words):
    options = dict(reduction="mean", inputs=INPUTS, targets=TARGETS, extra="")
    options.update(change)
    path = tmp_path / "bad.toml"
    path.write_text(RNN_BATCH.format(**{k: options[k] for k in ("reduction", "inputs", "targets")}) + options["extra"])
    assert main(["solve", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{path}: {where}" in err and words in err, err


def test_a_batch_without_reduction_and_bad_initial_states_are_refused(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(RNN_BATCH.format(reduction="sum", inputs=INPUTS, targets=TARGETS).replace('reduction = "sum"\n', ""))
    assert main(["solve", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}: model.reduction: missing; data.inputs holds 2 sequences" in err and '"mean"' in err
    text = RNN_BATCH.format(reduction="sum", inputs=INPUTS, targets=TARGETS)
    path.write_text(text.replace("[training]", "initial_state = [[0, 0], [0, 0], [0, 0]]\n[training]"))
    assert main(["solve", str(path)]) == 2
    assert "data.initial_state: expected shape (2,) (every sequence) or (2, 2)" in capsys.readouterr().err


def test_exact_check_and_generate_refuse_a_batch_naming_the_feature(tmp_path, capsys):
    assert main(["solve", "--example", EXAMPLE, "--exact"]) == 2
    assert "--exact works on one sequence" in capsys.readouterr().err
    answers = tmp_path / "answers.toml"
    answers.write_text("[loss]\nE = 0.49\n")
    assert main(["check", "--example", EXAMPLE, str(answers)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deltalab check does not support a batch of sequences" in err
    template = (Path(__file__).parent.parent / "src/deltalab/examples/templates/rnn-many-to-many-identity.toml").read_text()
    template = template.replace("shape = [2, 2]}", "shape = [2, 2, 2]}").replace(
        "targets = {choices = [-1, 0, 1]}", "targets = {choices = [-1, 0, 1], shape = [2, 2, 1]}").replace(
        'loss = "half_squared_error"', 'loss = "half_squared_error"\nreduction = "sum"')
    template = "\n".join(line for line in template.splitlines() if not line.startswith("ask"))
    (tmp_path / "template.toml").write_text(template)
    assert main(["generate", str(tmp_path / "template.toml"), "--variants", "1", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deltalab generate does not support a batch of sequences" in err
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())


def test_train_file_trains_on_the_batch_with_its_reduction(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "file", str(example_path(EXAMPLE)), "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    final = json.loads((out / "metrics.json").read_text())["final"]
    problem = load_problem(example_path(EXAMPLE))
    loss, _, _, gradients = torch_reference(problem, "mean")
    assert final["train_loss"] == pytest.approx(loss, rel=1e-12)  # one full batch: the solve's E
    after = {name: problem.parameters[name] - problem.learning_rate * g for name, g in gradients.items()}
    later, _, _, _ = torch_reference(replace(problem, parameters=after), "mean")
    assert final["test_loss"] == pytest.approx(later, rel=1e-12)  # after one SGD step on the mean


def test_a_batch_without_targets_is_a_forward_pass_of_each_sequence(tmp_path, capsys):
    text = example_path(EXAMPLE).read_text()
    text = text.replace('reduction = "mean"\n', "").split("targets =")[0]  # no reduction needed: no error
    path = tmp_path / "forward.toml"
    path.write_text(text)
    assert main(["solve", str(path), "--format", "json", "-o", str(tmp_path / "f.json")]) == 0
    data = json.loads((tmp_path / "f.json").read_text())
    problem = load_problem(path)
    rnn, linear = torch_rnn(problem)
    with torch.no_grad():
        y = linear(rnn(torch.tensor(problem.inputs))[0]).numpy()
    assert data["loss"] is None and data["gradients"] == {}
    assert np.allclose([[data["outputs"][f"y{m}({t})"] for t in (1, 2)] for m in ("⁽¹⁾", "⁽²⁾")], y, rtol=1e-12)


def test_summary_of_a_batch_shows_one_sequence_and_counts_every_parameter(capsys):
    assert main(["summary", "--example", EXAMPLE]) == 0
    text = capsys.readouterr().out
    assert "(input 2×2)" in text and "13" in text  # a sequence is T × features; 2·(2+2+1) + (2+1) parameters

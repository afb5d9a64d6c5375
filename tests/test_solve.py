"""`deltalab solve`: the built-in exercises give the SPEC's numbers; bad files give one clear line."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deltalab.errors import SpecError
from deltalab.examples import example_names, example_path
from deltalab.problem import load_problem, parse_problem
from deltalab.recorder import build_model, solve_problem
from deltalab.summary import summary


def solve(name, **kwargs):
    return solve_problem(load_problem(example_path(name)), **kwargs)


def value(values, key):
    return next(v.array for v in values if v.key == key)


# ------------------------------------------------------------------ SPEC §4
def test_many_to_many_identity_every_number():
    step = solve("rnn-many-to-many-identity").steps[0]
    assert step.loss == pytest.approx(0.589768, abs=1e-6)
    assert sum(step.errors.values()) == pytest.approx(step.loss, abs=1e-15)
    np.testing.assert_allclose(value(step.deltas, "z[1](1)"), [-0.0430858] * 3, atol=1e-7)
    np.testing.assert_allclose(value(step.deltas, "z[1](2)"), [-0.0083747] * 3, atol=1e-7)
    after = step.parameters_after
    np.testing.assert_allclose(after["H1"], 0.103870, atol=1e-6)
    np.testing.assert_allclose(after["W1"], np.tile([0.272343, 0.166997, 0.116749, 0.1], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(after["b1"], 0.151461, atol=1e-6)
    np.testing.assert_allclose(after["W2"], [[0.153092] * 3, [0.536041] * 3], atol=1e-6)
    np.testing.assert_allclose(after["b2"], 0.507845, atol=1e-6)
    # the per-step contributions of a shared weight add up to its gradient
    for name, parts in step.contributions.items():
        np.testing.assert_allclose(sum(c.array for c in parts), step.gradients[name], atol=1e-15)


def test_many_to_one_identity():
    after = solve("rnn-many-to-one-identity").steps[0].parameters_after
    np.testing.assert_allclose(after["H1"], 0.103870, atol=1e-6)
    np.testing.assert_allclose(after["W1"], np.tile([0.107903, 0.166997, 0.116749, 0.1], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(after["b1"], 0.110351, atol=1e-6)
    np.testing.assert_allclose(after["W2"], [[-0.198747] * 3, [0.646318] * 3], atol=1e-6)
    np.testing.assert_allclose(after["b2"], [-0.253520, 0.746480], atol=1e-6)


def test_many_to_many_softmax_cross_entropy():
    step = solve("rnn-many-to-many-softmax").steps[0]
    for v in step.deltas:
        if v.key.startswith("z[1]"):
            np.testing.assert_array_equal(v.array, 0.0)
    np.testing.assert_allclose(step.parameters_after["W2"], [[-0.091474] * 3, [0.291474] * 3], atol=1e-6)
    np.testing.assert_allclose(step.parameters_after["b2"], [0.1, 0.1], atol=1e-12)


def test_many_to_one_softmax_cross_entropy():
    step = solve("rnn-many-to-one-softmax").steps[0]
    np.testing.assert_allclose(step.parameters_after["b2"], [-0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(step.parameters_after["W2"], [[-0.322533] * 3, [0.522533] * 3], atol=1e-6)


# ------------------------------------------------------------------ SPEC §3 and §2
def test_relu_exam_network():
    trace = solve("mlp-relu-exam-network")
    step = trace.steps[0]
    np.testing.assert_allclose(step.outputs[0].array, [0.0, -1.5], atol=1e-12)
    assert step.loss == pytest.approx(2.5)
    # W1 = [[w11, w21], [w12, w22]]; h2 is a dead ReLU, so its weights get nothing
    np.testing.assert_allclose(step.gradients["W1"], [[3.0, -1.5], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(step.gradients["b1"], [1.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(step.gradients["W2"], [[-2.0, 0.0], [-4.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(step.gradients["b2"], [-1.0, -2.0], atol=1e-12)
    assert step.parameters_after["W1"][0, 1] == pytest.approx(0.65)  # w21 → 0.65


def test_feature_detectors_conv_and_pool_values():
    step = solve("cnn-feature-detectors").steps[0]
    ring = [[20, 35, 35, 35, 35, 20], [29, 46, 44, 42, 42, 27], [16, 25, 21, 19, 19, 12],
            [66, 120, 116, 154, 114, 62], [74, 216, 174, 252, 172, 112], [70, 210, 170, 250, 170, 110]]
    image = [[10] * 6, [5] * 6, [2, 2, 2, 0, 0, 2], [2, 2, 2, 0, 0, 2], [50, 10, 50, 50, 50, 10], [50, 10, 50, 50, 50, 10]]
    z1 = value(step.forward, "z[1]")
    np.testing.assert_array_equal(z1[0], ring)
    np.testing.assert_array_equal(z1[1], image)
    np.testing.assert_array_equal(value(step.forward, "x[2]"),
                                  [[[46, 44, 42], [120, 154, 114], [216, 252, 172]], [[10, 10, 10], [2, 2, 2], [50, 50, 50]]])


@pytest.mark.parametrize("name, total, output_shape", [
    ("cnn-conv-pool-28x28x3", 608, (8, 13, 13)),
    ("cnn-two-conv-10x10", 1084, (12, 10, 10)),
    ("mlp-dense-10x10-to-10x10x5", 50_500, (500,)),
    ("cnn-conv-10x10-to-10x10x5", 50, (5, 10, 10)),
    ("cnn-same-padding-5x3", 16, (1, 6, 5)),
])
def test_shape_and_parameter_exercises(name, total, output_shape):
    problem = load_problem(example_path(name))
    result = summary(build_model(problem), problem.input_shape, print_table=False)
    assert result.total_parameters == total
    assert result.output_shape == output_shape
    assert solve(name).steps[0].outputs[0].array.shape == output_shape


def test_two_conv_parameters_per_layer():
    problem = load_problem(example_path("cnn-two-conv-10x10"))
    rows = summary(build_model(problem), problem.input_shape, print_table=False).rows
    assert [r.parameters for r in rows] == [208, 876]


# ------------------------------------------------------------------ checks
@pytest.mark.parametrize("name", example_names())
def test_every_example_passes_its_finite_difference_check(name):
    trace = solve(name)
    assert all(check.passed for check in trace.checks)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", [n for n in example_names() if n.startswith(("rnn", "mlp-relu"))])
def test_every_trained_example_agrees_with_torch(name):
    check = solve(name, check_torch=True).checks[-1]
    assert check.method == "PyTorch float64" and check.max_relative_error < 1e-12


LSTM_PROBLEM = """
title = "LSTM, many-to-many, softmax + cross-entropy, two steps"
[model]
type = "lstm"
input_size = 3
hidden_size = 2
output_size = 2
output_activation = "softmax"
loss = "cross_entropy"
[parameters]
init = "random"
seed = 4
[data]
inputs = [[1, 0, 0.5], [0, 2, -1], [0.3, 0.1, 0]]
targets = [[1, 0], [0, 1], [1, 0]]
initial_state = [0.1, -0.2]
initial_cell = [0.5, 0.0]
[training]
learning_rate = 0.5
steps = 2
"""


def test_lstm_problem_gradients_agree_with_torch_and_finite_differences():
    trace = solve_problem(parse_problem(LSTM_PROBLEM), check_torch=True)
    assert len(trace.steps) == 2
    assert trace.checks[0].passed and trace.checks[1].max_relative_error < 1e-12
    # the second step starts where the first one's update ended
    for name, array in trace.steps[0].parameters_after.items():
        np.testing.assert_array_equal(trace.steps[1].parameters_before[name], array)


def test_forward_only_without_targets():
    text = LSTM_PROBLEM.replace("targets = [[1, 0], [0, 1], [1, 0]]", "")
    trace = solve_problem(parse_problem(text))
    assert trace.steps[0].loss is None and trace.steps[0].gradients == {} and trace.checks == []


# ------------------------------------------------------------------ bad files
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "deltalab.cli", *args], capture_output=True, text=True, timeout=120)


def bad_file(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = (example_path("rnn-many-to-many-identity")).read_text()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("hidden_size = 3", "hidden_size = -3"),
     "model.hidden_size: expected a positive integer, got -3"),
    (lambda s: s.replace("hidden_size = 3", "hiden_size = 3"), "model.hiden_size: unknown key; did you mean 'hidden_size'?"),
    (lambda s: s.replace("fill = 0.1", "fill = 0.1\nW1 = [[1, 2], [3, 4]]"), "parameters.W1: expected shape (3, 4), got (2, 2)"),
    (lambda s: s.replace('loss = "half_squared_error"', 'loss = "half_squared_eror"'), "did you mean 'half_squared_error'"),
    (lambda s: s.replace("inputs = [[4, 0, 0, 0], [0, 8, 2, 0]]", "inputs = [[4, 0, 0], [0, 8, 2, 0]]"),
     "data.inputs: expected a rectangular list of numbers"),
    (lambda s: s.replace("[training]", "[trainning]"), "trainning: unknown key; did you mean 'training'?"),
])
def test_bad_problem_file_gives_one_line_and_exit_2(tmp_path, edit, message):
    result = run_cli("solve", str(bad_file(tmp_path, edit(GOOD))))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_toml_syntax_error_names_file_and_line(tmp_path):
    text = GOOD.replace("steps = 1", "steps = 1\nsteps = 2")
    line = text.splitlines().index("steps = 2") + 1
    result = run_cli("solve", str(bad_file(tmp_path, text)))
    assert result.returncode == 2 and f"bad.toml:{line}:" in result.stderr and "Traceback" not in result.stderr


def test_even_kernel_same_padding_is_explained(tmp_path):
    text = example_path("cnn-same-padding-5x3").read_text().replace("kernel_size = [5, 3]", "kernel_size = [4, 3]")
    result = run_cli("solve", str(bad_file(tmp_path, text)))
    assert result.returncode == 2 and "odd kernel" in result.stderr and "Traceback" not in result.stderr


def test_unknown_example_and_missing_file():
    assert "did you mean 'rnn-many-to-many-identity'" in run_cli("solve", "--example", "rnn-many-to-many-identiy").stderr
    result = run_cli("solve", "no/such/file.toml")
    assert result.returncode == 2 and "no such file" in result.stderr


def test_cli_json_contract_and_atomic_output(tmp_path):
    out = tmp_path / "solution.json"
    result = run_cli("solve", "--example", "rnn-many-to-many-identity", "--format", "json", "--output", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    for key in ("title", "loss", "outputs", "forward", "deltas", "gradients", "parameters_after", "check"):
        assert key in data
    assert data["loss"] == pytest.approx(0.589768, abs=1e-6)
    np.testing.assert_allclose(data["parameters_after"]["b1"], 0.151461, atol=1e-6)
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_parse_problem_reports_field_paths():
    with pytest.raises(SpecError, match=r"model.layers\[1\].kernel_size"):
        parse_problem("""
[model]
type = "cnn"
input_shape = [1, 4, 4]
[[model.layers]]
type = "conv2d"
out_channels = 1
kernel_size = 3
[[model.layers]]
type = "max_pool2d"
kernel_size = "big"
[data]
inputs = 1.0
""")


MSE_SOME_STEPS = """
title = "Elman many-to-many, mse on steps 2 and 4 only"
[model]
type = "rnn"
input_size = 2
hidden_size = 3
output_size = 2
hidden_activation = "tanh"
output_activation = "identity"
loss = "mse"
[parameters]
init = "random"
seed = 2
[data]
inputs = [[1, 0], [0, 1], [0.5, -1], [0.2, 0.3]]
targets = [[0.5, -0.5], [1, 0]]
target_steps = [2, 4]
[training]
learning_rate = 0.1
"""


def test_mse_on_some_steps_is_the_mean_over_the_targeted_outputs():
    # like torch.nn.functional.mse_loss(y[[1, 3]], targets): divide by 2 steps x 2 outputs, not 4 x 2
    problem = parse_problem(MSE_SOME_STEPS)
    trace = solve_problem(problem, check_torch=True)
    assert trace.checks[-1].method == "PyTorch float64" and trace.checks[-1].max_relative_error < 1e-12
    p = {n: torch.tensor(a) for n, a in trace.steps[0].parameters_before.items()}
    x = torch.tensor(problem.inputs)
    h, ys = torch.zeros(3, dtype=torch.float64), []
    for t in range(4):
        h = torch.tanh(p["W1"] @ x[t] + p["H1"] @ h + p.get("b1", 0))
        ys.append(p["W2"] @ h + p.get("b2", 0))
    expected = torch.nn.functional.mse_loss(torch.stack(ys)[[1, 3]], torch.tensor(problem.targets))
    assert trace.steps[0].loss == pytest.approx(expected.item(), rel=1e-12)


# ------------------------------------------------------------------ the recorder (issue 14)
def test_errors_carry_their_time_step_as_a_number():
    """Reports group E(t) by the recorded step number, not by parsing the key."""
    step = solve("rnn-many-to-many-identity").steps[0]
    assert step.error_steps == {"E(1)": 1, "E(2)": 2}
    batch = solve("mlp-relu-exam-network").steps[0]
    assert all(batch.error_steps[key] is None for key in batch.errors)  # per sample, no time step


def test_the_update_is_sgd_on_the_recorded_gradients_for_every_kind():
    """θ′ = θ − η ∂E/∂θ (optim.SGD in the one loop) for a layered, a recurrent and an equations problem."""
    for name in ("mlp-relu-exam-network", "rnn-many-to-one-softmax", "eq-alarmwork-net"):
        problem = load_problem(example_path(name))
        step = solve_problem(problem).steps[0]
        for key, before in step.parameters_before.items():
            expected = np.asarray(before) - problem.learning_rate * step.gradients[key]
            np.testing.assert_array_equal(step.parameters_after[key], expected)


@pytest.mark.parametrize("name", ["mlp-dense-10x10-to-10x10x5", "rnn-sequence-completion"])
def test_exact_beyond_its_limits_is_one_line_and_exit_2(name):
    done = run_cli("solve", "--example", name, "--exact", "--format", "json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "--exact" in done.stderr and "solve without --exact" in done.stderr


def test_dl_solve_and_dl_check_are_functions():
    import deltalab as dl
    from deltalab.solution import Solution

    import deltalab.marking  # noqa: F401 - importing the grading package hides neither function

    assert dl.check.__module__ == "deltalab.marking" and dl.solve.__module__ == "deltalab.solution"
    solution = dl.solve("mlp-relu-exam-network")
    assert isinstance(solution, Solution) and solution.passed
    assert solution.trace.steps[0].loss == pytest.approx(solve("mlp-relu-exam-network").steps[0].loss, abs=0)


def test_a_layer_kind_is_one_registered_module():
    """Every layer kind the reader accepts has its module in the registry, and the registry
    alone decides which names a problem file may use."""
    import pkgutil

    import deltalab.problems.layers as registry
    from deltalab.problems.layers import LAYER_TYPES, LAYERS

    assert LAYER_TYPES == ("dense", "conv2d", "max_pool2d", "avg_pool2d", "flatten")
    assert set(LAYER_TYPES) <= {m.name for m in pkgutil.iter_modules(registry.__path__)}  # one module each
    for name, kind in LAYERS.items():
        assert kind.name == name and kind.keys[0] == "type"
    with pytest.raises(SpecError, match="expected one of dense, conv2d, max_pool2d, avg_pool2d, flatten"):
        parse_problem('[model]\ntype = "mlp"\ninput_shape = [2]\n[[model.layers]]\ntype = "gru"\n'
                      '[data]\ninputs = [1, 2]\n', "p.toml")


GRADIENTS_ONLY = """
title = "gradients only"
[model]
type = "mlp"
input_shape = [2]
loss = "half_squared_error"
[[model.layers]]
type = "dense"
units = 1
[parameters]
W1 = [[0.5, -1.0]]
b1 = [0.0]
[data]
inputs = [1.0, 2.0]
targets = [1.0]
"""


def test_a_question_for_the_gradients_needs_no_training_table():
    # by hand: y = 0.5·1 − 1·2 = −1.5, δ = y − t = −2.5, ∂E/∂W1 = δ x = (−2.5, −5), ∂E/∂b1 = −2.5
    trace = solve_problem(parse_problem(GRADIENTS_ONLY, "gradients.toml"), check_torch=True)
    (step,) = trace.steps
    assert trace.learning_rate is None and step.parameters_after == {}
    np.testing.assert_allclose(step.gradients["W1"], [[-2.5, -5.0]], rtol=1e-12)
    np.testing.assert_allclose(step.gradients["b1"], [-2.5], rtol=1e-12)
    assert all(check.passed for check in trace.checks)


def test_an_equations_question_for_the_gradients_needs_no_training_table():
    text = example_path("eq-relu-exam-network").read_text()
    start = text.index("[training]")
    end = text.find("\n[", start + 1)
    without = text[:start] + (text[end + 1:] if end >= 0 else "")
    gradients_only = solve_problem(parse_problem(without, "exam.toml"))  # checked by finite differences
    with_update = solve_problem(parse_problem(text, "exam.toml"))
    (step,), (updated,) = gradients_only.steps, with_update.steps
    assert step.parameters_after == {} and updated.parameters_after
    for name, gradient in updated.gradients.items():
        np.testing.assert_array_equal(step.gradients[name], gradient)
    assert all(check.passed for check in gradients_only.checks)


@pytest.mark.parametrize("table", ["[training]\nsteps = 2\n"])
def test_several_steps_without_a_learning_rate_are_refused(table):
    with pytest.raises(SpecError, match="training.steps"):
        parse_problem(GRADIENTS_ONLY + table, "gradients.toml")


def test_python_dash_m_deltalab_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "deltalab", "examples"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "mlp-relu-exam-network" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "deltalab", "solve", "--example", "nope"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr

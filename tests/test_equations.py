"""Exam networks from equations: the SPEC's numbers, the chain rule made visible, and twins.

Every expected number is typed in from SPEC §3–§7, derived by hand in a comment, or computed
by an independent path (PyTorch on the same equations, deltalab.models.AlarmworkNet, the
``rnn`` problem type); never copied from our own output.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from deltalab.examples import example_names, example_path
from deltalab.problem import load_problem, parse_problem
from deltalab.report import FORMATS, render
from deltalab.recorder import solve_problem

EQUATION_EXAMPLES = [n for n in example_names() if n.startswith("eq-")]


def solve(name, **kwargs):
    return solve_problem(load_problem(example_path(name)), **kwargs)


def value(values, key):
    return next(np.asarray(v.array) for v in values if v.key == key)


@pytest.fixture(scope="module")
def traces():
    return {name: solve(name) for name in EQUATION_EXAMPLES}


def test_every_spec_exercise_has_an_equations_example():
    for name in ("eq-relu-exam-network", "eq-sigmoid-skip-network", "eq-three-branch-network", "eq-elman-relu-cell",
                 "eq-additive-cell", "eq-modified-cell", "eq-lstm-cell", "eq-shift-register", "eq-alarmwork-net",
                 "eq-rnn-many-to-many-identity"):
        assert name in EQUATION_EXAMPLES


# ------------------------------------------------------------------ SPEC §3
def test_relu_exam_network_spec_numbers(traces):
    step = traces["eq-relu-exam-network"].steps[0]
    assert float(value(step.outputs, "o1")) == 0.0 and float(value(step.outputs, "o2")) == -1.5
    assert step.loss == 2.5
    expected = {"w11": 3, "w21": -1.5, "b1": 1.5, "w31": -2, "w32": -4, "b3": -1, "b4": -2}
    for name, grad in step.gradients.items():
        assert float(grad) == pytest.approx(expected.get(name, 0.0), abs=1e-12), name
    assert float(step.parameters_after["w21"]) == pytest.approx(0.65, abs=1e-12)


def test_relu_exam_network_local_derivatives_and_paths(traces):
    step = traces["eq-relu-exam-network"].steps[0]
    local = {(e.output, e.input): float(e.value) for e in step.local_derivatives}
    assert local[("o1", "h3")] == 0.5          # ∂o1/∂h3 = w31
    assert local[("o2", "h3")] == -1.0         # w32
    assert local[("h3", "h1")] == 1.0          # h1 = 1.5 > 0
    assert local[("h4", "h2")] == 0.0          # dead ReLU: h2 = −3
    assert local[("h1", "w21")] == -1.0        # i2
    assert local[("L", "o1")] == -1.0 and local[("L", "o2")] == -2.0   # o − t
    # ∂L/∂w21 = ∂L/∂o1·∂o1/∂h3·∂h3/∂h1·∂h1/∂w21 + ∂L/∂o2·∂o2/∂h3·∂h3/∂h1·∂h1/∂w21 = 0.5 − 2
    paths = step.paths["w21"]
    assert paths.total == 2
    # ranked by |contribution|: the path through o2 (−2) before the one through o1 (0.5)
    assert [p.nodes for p in paths.paths] == [["L", "o2", "h3", "h1", "w21"], ["L", "o1", "h3", "h1", "w21"]]
    assert [float(p.value) for p in paths.paths] == [-2.0, 0.5]
    for p in paths.paths:
        assert float(np.prod([float(f) for f in p.factors])) == float(p.value)
    assert float(paths.value) == -1.5


def test_sigmoid_skip_network_spec_numbers(traces):
    step = traces["eq-sigmoid-skip-network"].steps[0]
    assert float(value(step.outputs, "yhat")) == 0.5 and step.loss == 0.25
    g = {k: float(v) for k, v in step.gradients.items()}
    assert g["w2"] == pytest.approx(-0.125, abs=1e-15)
    assert g["b1"] == pytest.approx(+0.125, abs=1e-15)  # not the seed's −0.0625
    assert g["w1"] == pytest.approx(0.125, abs=1e-15)
    assert g["x"] == pytest.approx(-0.1875, abs=1e-15)
    # x feeds a1 and a2: two paths, 0.0625 through the hidden unit and −0.25 through the skip
    assert sorted(float(p.value) for p in step.paths["x"].paths) == [-0.25, 0.0625]


def test_three_branch_network_shared_node_adds_both_consumers(traces):
    step = traces["eq-three-branch-network"].steps[0]
    problem = load_problem(example_path("eq-three-branch-network")).equations.parameters
    w1, b1, w2, b2, w3, x = (float(problem[n]) for n in ("w1", "b1", "w2", "b2", "w3", "x"))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    e, f, g = sig(w1 * x + b1), w2 * x + b2, sig(w3 * x)
    y1, y2 = e + f + g, g
    d1, d2 = y1 - 1.0, y2 - 0.0
    # ∂L/∂g = d1 + d2 (g feeds y1 and y2), by hand
    assert float(value(step.deltas, "g")) == pytest.approx(d1 + d2, abs=1e-14)
    assert float(step.gradients["w3"]) == pytest.approx((d1 + d2) * g * (1 - g) * x, abs=1e-14)
    dx = d1 * (e * (1 - e) * w1 + w2) + (d1 + d2) * g * (1 - g) * w3
    assert float(step.gradients["x"]) == pytest.approx(dx, abs=1e-14)


# ------------------------------------------------------------------ SPEC §5
def test_elman_relu_cell_spec_forward_and_hand_gradients(traces):
    step = traces["eq-elman-relu-cell"].steps[0]
    assert [float(value(step.forward, f"h({t})")) for t in (1, 2)] == [4.0, 2.0]
    assert [float(value(step.outputs, f"yhat({t})")) for t in (1, 2)] == [2.0, 1.0]  # not the seed's ŷ1 = 1
    y1, y2 = 1.0, 1.0  # the labels chosen in the example
    # L = (2 w_xh w_hy − y1)² + (w_hy (2 w_xh w_hh − w_xh) − y2)², differentiated by hand
    assert step.loss == (2 - y1) ** 2 + (1 - y2) ** 2
    assert float(step.gradients["w_hh"]) == 4 - 4 * y2
    assert float(step.gradients["w_hy"]) == 20 - 8 * y1 - 4 * y2
    assert float(step.gradients["w_xh"]) == 5 - 2 * y1 - y2
    assert step.errors == {"L(1)": 1.0, "L(2)": 0.0}


def test_modified_cell_forward_by_hand(traces):
    step = traces["eq-modified-cell"].steps[0]
    # x = (1, 2, −1), w = 0.5: s = (1, 2.5, 0.25), o = h = (0.5, 1.25, 0.125), ŷ = o + h(t−1)
    assert [float(value(step.outputs, f"yhat({t})")) for t in (1, 2, 3)] == [0.5, 1.75, 1.375]
    assert step.loss == 0.0 + 0.25 ** 2 + 1.375 ** 2


torch = pytest.importorskip("torch")


def _torch_twin(equations_step, torch_loss, names):
    """Compare loss and gradients with a PyTorch computation of the same equations."""
    params = {n: torch.tensor(np.asarray(equations_step.parameters_before[n]), dtype=torch.float64,
                              requires_grad=True) for n in names}
    loss = torch_loss(params)
    loss.backward()
    assert equations_step.loss == pytest.approx(loss.item(), abs=1e-13)
    for n in names:
        np.testing.assert_allclose(equations_step.gradients[n], params[n].grad.numpy(), atol=1e-13, rtol=1e-12)


def test_lstm_cell_against_torch(traces):
    step = traces["eq-lstm-cell"].steps[0]
    xs, y = [1.0, -0.5, 2.0], 0.5

    def loss(p):
        h = c = torch.tensor(0.0, dtype=torch.float64)
        for x in xs:
            i = torch.sigmoid(p["w_xi"] * x + p["w_hi"] * h + p["b_i"])
            f = torch.sigmoid(p["w_xf"] * x + p["w_hf"] * h + p["b_f"])
            o = torch.sigmoid(p["w_xo"] * x + p["w_ho"] * h + p["b_o"])
            g = torch.tanh(p["w_xg"] * x + p["w_hg"] * h + p["b_g"])
            c = f * c + i * g
            h = o * torch.tanh(c)
        return 0.5 * (h - y) ** 2

    _torch_twin(step, loss, list(step.gradients))
    # the seed asks for ∂L/∂C(t−1): the backward pass has it for every step
    assert {f"C({t})" for t in (1, 2, 3)} <= {v.key for v in step.deltas}


def test_additive_cell_against_torch(traces):
    step = traces["eq-additive-cell"].steps[0]
    xs, ys = [0.2, 0.3, 0.4], [0.0, 1.0, 1.0]

    def loss(p):
        h, total = torch.tensor(0.0, dtype=torch.float64), 0
        for x, y in zip(xs, ys):
            h = (h + x) * p["w"]
            total = total + torch.nn.functional.binary_cross_entropy(h, torch.tensor(y, dtype=torch.float64))
        return total

    _torch_twin(step, loss, ["w"])


# ------------------------------------------------------------------ SPEC §6
def test_shift_register_one_step_exact_bptt_against_torch(traces):
    step = traces["eq-shift-register"].steps[0]
    y0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    targets = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def loss(p, truncated=False):
        y, total = y0, 0
        for target in targets:
            z = p["W"] @ y
            total = total - (target * torch.log_softmax(z, 0)).sum()
            y = torch.softmax(z, 0)
            if truncated:
                y = y.detach()
        return total

    _torch_twin(step, loss, ["W"])
    np.testing.assert_allclose(step.parameters_after["W"], step.parameters_before["W"] - 0.5 * step.gradients["W"])
    # the seed's truncated update (no path from E(3) through x(2)) is a different gradient
    W = torch.tensor(step.parameters_before["W"], requires_grad=True)
    loss({"W": W}, truncated=True).backward()
    assert np.abs(W.grad.numpy() - step.gradients["W"]).max() > 1e-3
    # the path through y(1) is listed among the paths of ∂L/∂W
    assert any("y(1)" in p.nodes for p in step.paths["W"].paths)


# ------------------------------------------------------------------ SPEC §4 and §7
def test_lecture_rnn_as_equations_matches_the_rnn_problem_type(traces):
    eq = traces["eq-rnn-many-to-many-identity"].steps[0]
    rnn = solve("rnn-many-to-many-identity").steps[0]
    assert eq.loss == pytest.approx(0.589768, abs=1e-6)
    assert eq.loss == pytest.approx(rnn.loss, abs=1e-14)
    assert set(eq.gradients) == set(rnn.gradients)
    for name in rnn.gradients:
        np.testing.assert_allclose(eq.gradients[name], rnn.gradients[name], atol=1e-14)
        np.testing.assert_allclose(eq.parameters_after[name], rnn.parameters_after[name], atol=1e-14)
    for t in (1, 2):
        np.testing.assert_allclose(value(eq.deltas, f"z1({t})"), value(rnn.deltas, f"z[1]({t})"), atol=1e-15)
        np.testing.assert_allclose(value(eq.deltas, f"z2({t})"), value(rnn.deltas, f"z[2]({t})"), atol=1e-15)
        np.testing.assert_allclose(value(eq.forward, f"x1({t})"), value(rnn.forward, f"x[1]({t})"), atol=1e-15)
    np.testing.assert_allclose(eq.parameters_after["H1"], 0.103870, atol=1e-6)
    np.testing.assert_allclose(value(eq.deltas, "z1(1)"), [-0.0430858] * 3, atol=1e-7)
    # the shared weight's per-step contributions add up to its gradient
    for name, parts in eq.contributions.items():
        np.testing.assert_allclose(sum(c.array for c in parts), eq.gradients[name], atol=1e-15)


def test_alarmwork_net_as_a_recurrence_matches_the_model(traces):
    from deltalab.models import AlarmworkNet
    from deltalab.tensor import Tensor

    step = traces["eq-alarmwork-net"].steps[0]
    problem = load_problem(example_path("eq-alarmwork-net")).equations
    net = AlarmworkNet(2, 2, 1)
    for name, p in net.named_parameters():
        p.data = np.array(problem.parameters[name], dtype=np.float64)
    y = net(Tensor(problem.data["x"]))
    loss = net.loss(y, problem.data["target"])
    loss.backward()
    assert step.loss == pytest.approx(loss.item(), abs=1e-12)
    for t in range(1, 5):
        np.testing.assert_allclose(value(step.outputs, f"y({t})"), y.data[t - 1], atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(step.gradients[name], p.grad.data, atol=1e-12)
    # in2 holds its value on odd steps
    np.testing.assert_array_equal(value(step.forward, "z2(3)"), value(step.forward, "z2(2)"))


# ------------------------------------------------------------------ the chain rule in general
@pytest.mark.parametrize("name", EQUATION_EXAMPLES)
def test_every_example_passes_its_checks_and_paths_sum_to_the_gradient(traces, name):
    trace = traces[name]
    assert [c.method for c in trace.checks] == ["central finite differences", "chain rule: sum over paths vs autodiff"]
    assert all(c.passed for c in trace.checks), [(c.method, c.max_relative_error) for c in trace.checks]
    step = trace.steps[0]
    for parameter, path_sum in step.paths.items():
        np.testing.assert_allclose(path_sum.value, step.gradients[parameter], atol=1e-12)
        if path_sum.total == len(path_sum.paths):  # every path shown: they add up to the gradient
            total = sum((np.asarray(p.value) for p in path_sum.paths), np.zeros_like(step.gradients[parameter]))
            np.testing.assert_allclose(total, step.gradients[parameter], atol=1e-12)
    # each edge's vector-Jacobian product is its Jacobian applied to ∂L/∂output
    deltas = {v.key: v.array for v in step.deltas}
    for edge in step.local_derivatives:
        if edge.value is not None and edge.backprop is not None and edge.output in deltas:
            out_ndim = np.ndim(deltas[edge.output])
            expected = np.tensordot(deltas[edge.output], edge.value, axes=out_ndim)
            np.testing.assert_allclose(edge.backprop, expected, atol=1e-12)


def test_many_paths_are_all_summed_and_a_few_shown():
    text = """
[model]
type = "equations"
loss = "L"
[recurrence]
a = "w*h[t-1]"
b = "v*h[t-1]"
h = "tanh(a + b + x[t])"
L = "h**2"
[initial]
h = 0.5
[parameters]
w = 0.3
v = 0.2
[data]
x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]
[training]
learning_rate = 0.1
"""
    trace = solve_problem(parse_problem(text))
    step = trace.steps[0]
    total = step.paths["w"].total
    assert total > 2000 and len(step.paths["w"].paths) == 6
    # every path is in the sum (formed by dynamic programming, not by listing them)
    assert step.paths["w"].method == f"sum over all {total:,} paths"
    np.testing.assert_allclose(step.paths["w"].value, step.gradients["w"], atol=1e-12)
    out = " ".join(render(trace, "terminal").split())  # the note may wrap at the terminal width
    assert "more paths" in out and f"sum over all {total:,} paths" in out


def test_vector_nodes_show_jacobian_shapes_and_vector_jacobian_products(traces):
    step = traces["eq-rnn-many-to-many-identity"].steps[0]
    edge = next(e for e in step.local_derivatives if (e.output, e.input) == ("z1(2)", "W1"))
    assert edge.shape == (3, 3, 4)
    x2 = np.array([0.0, 8.0, 2.0, 0.0])
    np.testing.assert_allclose(edge.backprop, np.outer(value(step.deltas, "z1(2)"), x2), atol=1e-15)
    text = render(traces["eq-rnn-many-to-many-identity"], "terminal")
    assert "Jacobian 3×3×4" in text and "(∂z1(2)/∂W1)ᵀ · ∂E/∂z1(2)" in text


# ------------------------------------------------------------------ reports
@pytest.mark.parametrize("fmt", FORMATS)
def test_chain_rule_appears_in_every_format(traces, fmt):
    text = render(traces["eq-relu-exam-network"], fmt)
    if fmt == "json":
        data = json.loads(text)
        assert data["model"]["type"] == "equations" and data["loss_symbol"] == "L"
        assert data["paths"]["w21"]["total"] == 2 and data["paths"]["w21"]["value"] == -1.5
        edge = next(e for e in data["local_derivatives"] if e["output"] == "o1" and e["input"] == "h3")
        assert edge["value"] == 0.5 and edge["shape"] == []
        return
    assert "Chain rule" in text and "-1.5000" in text.replace("−", "-") and "0.6500" in text
    if fmt in ("terminal", "markdown"):
        assert "∂L/∂o1 · ∂o1/∂h3 · ∂h3/∂h1 · ∂h1/∂w21" in text
        assert ("∂o1/∂h3 = 0.5000" if fmt == "terminal" else "| `∂o1/∂h3` | `0.5000` |") in text
    if fmt == "latex":
        assert r"\frac{\partial L}{\partial o1}" in text and text.count("$$") % 2 == 0
    if fmt == "html":
        assert "<script" not in text and "∂L/∂w21" in text


def test_latex_of_equation_reports_renders_in_katex(traces):
    import re

    from test_report import KATEX_SCRIPT, _katex

    node, root = _katex()
    if node is None:
        pytest.skip("node and KaTeX not available")
    documents = [render(traces[n], "markdown", maths=True) for n in ("eq-relu-exam-network", "eq-elman-relu-cell",
                                                       "eq-rnn-many-to-many-identity")]
    blocks = [b for doc in documents for b in re.findall(r"\$\$(.*?)\$\$", doc, re.S)]
    result = subprocess.run([node, "-e", KATEX_SCRIPT], input=json.dumps(blocks), capture_output=True, text=True,
                            cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr[:2000]


def test_cli_json_has_the_chain_rule_keys():
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", "eq-sigmoid-skip-network",
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("local_derivatives", "paths", "exact", "gradients", "deltas", "check"):
        assert key in data
    assert data["gradients"]["b1"] == 0.125 and data["exact"] == {}
    assert data["paths"]["x"]["total"] == 2
    assert all(c["passed"] for c in data["check"])

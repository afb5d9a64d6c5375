"""Exact mode (solve --exact): SymPy reproduces the numeric solve and prints expressions.

Expected expressions are typed in from SPEC §5 (∂L/∂w_hh = 4 − 4·y2) and the lecture
(z[2](1) = 0.1 + 0.3·tanh(0.5)); decimals are compared with the numeric solve (an
independent path: float64 engine vs. exact arithmetic).
"""
import json
import subprocess
import sys

import numpy as np
import pytest

sympy = pytest.importorskip("sympy")

from deltalab.examples import example_path  # noqa: E402
from deltalab.problem import load_problem, parse_problem  # noqa: E402
from deltalab.report import render  # noqa: E402
from deltalab.recorder import solve_problem  # noqa: E402

ELMAN_WITH_UNKNOWN_LABELS = """
title = "Elman ReLU cell, labels unknown"
[model]
type = "equations"
loss = "L"
[recurrence]
h = "relu(h[t-1]*w_hh + w_xh*x[t])"
yhat = "relu(h*w_hy)"
L = "(yhat - y[t])**2"
[initial]
h = 0
[parameters]
w_xh = 2.0
w_hh = 1.0
w_hy = 0.5
[data]
x = [2, -1]
y = ["y1", "y2"]
[training]
learning_rate = 0.1
"""


def solve(name, **kwargs):
    return solve_problem(load_problem(example_path(name)), **kwargs)


def exact_entries(step, kind):
    return {e.key: e for e in step.exact if e.kind == kind}


@pytest.mark.parametrize("name", ["eq-relu-exam-network", "eq-sigmoid-skip-network", "eq-elman-relu-cell",
                                  "eq-shift-register", "eq-alarmwork-net", "eq-rnn-many-to-many-identity",
                                  "eq-additive-cell"])
def test_exact_mode_reproduces_the_numeric_solve(name):
    numeric = solve(name).steps[0]
    trace = solve(name, exact=True)
    step = trace.steps[0]
    check = trace.checks[-1]
    assert check.method == "SymPy exact arithmetic" and check.passed and check.max_relative_error < 1e-12
    recorded = {v.key: v.array for v in numeric.forward + numeric.outputs}
    recorded.update(numeric.errors)
    values = exact_entries(step, "value")
    compared = 0
    for key, array in recorded.items():
        if key in values:
            np.testing.assert_allclose(values[key].value, array, rtol=1e-12, atol=1e-14)
            compared += 1
    assert compared >= 3
    gradients = exact_entries(step, "gradient")
    for parameter, gradient in numeric.gradients.items():
        np.testing.assert_allclose(gradients[f"∂{trace.loss_symbol}/∂{parameter}"].value, gradient, rtol=1e-12,
                                   atol=1e-14)


def test_unknown_labels_leave_the_gradient_as_an_expression():
    trace = solve_problem(parse_problem(ELMAN_WITH_UNKNOWN_LABELS), exact=True)
    step = trace.steps[0]
    y1, y2 = sympy.Symbol("y1", real=True), sympy.Symbol("y2", real=True)
    gradients = exact_entries(step, "gradient")
    expected = {"w_hh": 4 - 4 * y2, "w_hy": 20 - 8 * y1 - 4 * y2, "w_xh": 5 - 2 * y1 - y2}  # SPEC §5, by hand
    for name, formula in expected.items():
        entry = gradients[f"∂L/∂{name}"]
        assert entry.value is None  # symbols remain
        assert sympy.simplify(sympy.sympify(entry.sympy, locals={"y1": y1, "y2": y2}) - formula) == 0
    assert gradients["∂L/∂w_hh"].expression == "4 − 4·y2"
    # the forward values have no symbols: h = (4, 2), ŷ = (2, 1)
    values = exact_entries(step, "value")
    assert [values[f"h({t})"].expression for t in (1, 2)] == ["4", "2"]
    assert [float(values[f"yhat({t})"].value) for t in (1, 2)] == [2.0, 1.0]
    assert values["L"].value is None
    text = render(trace, "terminal")
    assert "∂L/∂w_hh = 4 − 4·y2" in text and "Traceback" not in text
    data = json.loads(render(trace, "json"))
    assert data["exact"]["∂L/∂w_hh"]["expression"] == "4 − 4·y2" and data["exact"]["∂L/∂w_hh"]["value"] is None


def test_symbols_need_exact_mode():
    from deltalab.errors import SpecError

    with pytest.raises(SpecError, match="y1, y2 are unknown symbols; only `deltalab solve --exact`"):
        solve_problem(parse_problem(ELMAN_WITH_UNKNOWN_LABELS))


def test_values_are_written_the_way_the_lecture_writes_them():
    step = solve("eq-rnn-many-to-many-identity", exact=True).steps[0]
    values = exact_entries(step, "value")
    half, tenth = sympy.Rational(1, 2), sympy.Rational(1, 10)
    # z[2](1) = 0.1 + 0.3·tanh(0.5) in every unit (SPEC §4, all weights 0.1)
    assert values["z2(1)"].expression == "[0.1 + 0.3·tanh(0.5), 0.1 + 0.3·tanh(0.5)]"
    assert sympy.sympify(values["z2(1)"].sympy)[0] - (tenth + 3 * tenth * sympy.tanh(half)) == 0
    # z[2](2) = 0.1 + 0.3·tanh(1.1 + 0.3·tanh(0.5))
    assert values["z2(2)"].expression.startswith("[0.1 + 0.3·tanh(1.1 + 0.3·tanh(0.5)),")
    # decimal inputs are exact rationals
    assert values["z1(1)"].sympy == "[1/2, 1/2, 1/2]"


def test_local_derivatives_as_expressions():
    trace = solve("eq-relu-exam-network", exact=True)
    step = trace.steps[0]
    local = {(e.output, e.input): e.expression for e in step.local_derivatives}
    assert local[("o1", "h3")] == "w31"
    assert local[("h1", "w21")] == "i2"
    assert local[("h3", "h1")] == "step(h1)"  # ReLU′, 1 here since h1 = 1.5 > 0
    entries = exact_entries(step, "local")
    assert entries["∂o1/∂h3"].expression == "w31 = 0.5" and float(entries["∂o1/∂h3"].value) == 0.5
    assert "∂o1/∂h3 = w31 = 0.5000" in render(trace, "terminal")


@pytest.mark.parametrize("name", ["rnn-many-to-many-identity", "mlp-relu-exam-network", "rnn-many-to-one-softmax"])
def test_exact_mode_for_standard_problem_types(name):
    trace = solve(name, exact=True)
    check = trace.checks[-1]
    assert check.method == "SymPy exact arithmetic" and check.passed and check.max_relative_error < 1e-12
    step = trace.steps[0]
    gradients = exact_entries(step, "gradient")
    for parameter, gradient in step.gradients.items():
        np.testing.assert_allclose(gradients[f"∂E/∂{parameter}"].value, gradient, rtol=1e-12, atol=1e-14)


def test_exact_mode_refuses_what_it_cannot_translate():
    from deltalab.errors import SpecError

    with pytest.raises(SpecError, match="--exact supports equations, mlp and rnn problems, not cnn"):
        solve("cnn-feature-detectors", exact=True)


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_numeric_mode_never_imports_sympy_and_a_missing_sympy_is_one_clear_line():
    result = run("import sys; from deltalab.cli import main; main(['solve', '--example', 'eq-elman-relu-cell', "
                 "'--format', 'json']) ; assert 'sympy' not in sys.modules, 'sympy imported'")
    assert result.returncode == 0, result.stderr
    result = run("import sys; sys.modules['sympy'] = None; from deltalab.cli import main; "
                 "sys.exit(main(['solve', '--example', 'eq-elman-relu-cell', '--exact']))")
    assert result.returncode == 2
    assert "--exact needs SymPy" in result.stderr and "Traceback" not in result.stderr


def test_cli_exact_json():
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", "eq-sigmoid-skip-network",
                             "--exact", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["exact"]["∂L/∂b1"]["expression"] == "0.125" and data["exact"]["∂L/∂b1"]["value"] == 0.125
    assert data["exact"]["yhat"]["sympy"] == "1/2"
    assert data["check"][-1]["method"] == "SymPy exact arithmetic" and data["check"][-1]["passed"]


def test_exact_reports_render_in_katex():
    import re

    from test_report import KATEX_SCRIPT, _katex

    node, root = _katex()
    if node is None:
        pytest.skip("node and KaTeX not available")
    documents = [render(solve_problem(parse_problem(ELMAN_WITH_UNKNOWN_LABELS), exact=True), "markdown", maths=True),
                 render(solve("eq-alarmwork-net", exact=True), "markdown", maths=True),
                 render(solve("eq-rnn-many-to-many-identity", exact=True), "markdown", maths=True)]
    assert r"\operatorname{tanh}(0.5)" in documents[2] and r"4 - 4\cdot y2" in documents[0]
    blocks = [b for doc in documents for b in re.findall(r"\$\$(.*?)\$\$", doc, re.S)]
    result = subprocess.run([node, "-e", KATEX_SCRIPT], input=json.dumps(blocks), capture_output=True, text=True,
                            cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr[:2000]

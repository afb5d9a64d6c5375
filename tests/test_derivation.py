"""The derivation record: every recorded quantity's formula, evaluated on its recorded inputs,
gives its recorded value -- for every built-in example and for variants that reach the
layers, losses and recurrent cells the examples leave out (conv and pooling backward,
batches, mse, binary cross-entropy, LSTM gates and cell state)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deltalab.examples import example_names, example_path
from deltalab.problem import load_problem
from deltalab.recorder import solve_problem

VARIANTS = sorted((Path(__file__).parent / "derivation_problems").glob("*.toml"))
PROBLEMS = [pytest.param(example_path(name), id=name) for name in example_names()] + [
    pytest.param(path, id=path.stem) for path in VARIANTS]


def _close(computed, recorded):
    computed, recorded = np.asarray(computed, dtype=float), np.asarray(recorded, dtype=float)
    scale = max(1.0, float(np.max(np.abs(recorded), initial=0.0)))
    return computed.shape == recorded.shape and np.allclose(computed, recorded, rtol=1e-12, atol=1e-14 * scale)


@pytest.mark.parametrize("path", PROBLEMS)
def test_every_formula_reproduces_its_recorded_value(path):
    problem = load_problem(path)
    trace = solve_problem(problem)
    for step in trace.steps:
        d = step.derivation
        values = d.values()
        wrong = [(node.id, node.formula.text()) for node in d
                 if node.formula is not None and not _close(node.formula.evaluate(values), node.value)]
        assert wrong == []


@pytest.mark.parametrize("path", PROBLEMS)
def test_every_delta_gradient_and_update_has_a_formula(path):
    trace = solve_problem(load_problem(path))
    for step in trace.steps:
        d = step.derivation
        keys = ([("deltas", v.key) for v in step.deltas] + [("gradients", k) for k in step.gradients]
                + [("parameters_after", k) for k in step.parameters_after])
        missing = [(s, k) for s, k in keys if d.by_key(s, k) is None or d.by_key(s, k).formula is None]
        assert missing == []


def _derivation(name):
    return solve_problem(load_problem(example_path(name))).steps[0].derivation


def test_the_elman_bptt_recursion_is_written_in_backward_order():
    d = _derivation("rnn-many-to-many-identity")
    deltas = [n.symbol for n in d if n.kind == "delta"]
    assert deltas == ["δ[2](2)", "δ[1](2)", "δ[2](1)", "δ[1](1)"]
    assert d["deltas:z[1](1)"].formula.text() == "(W2ᵀ δ[2](1) + H1ᵀ δ[1](2)) ⊙ (1 − x[1](1)²)"
    assert d["deltas:z[1](2)"].formula.text() == "W2ᵀ δ[2](2) ⊙ (1 − x[1](2)²)"
    assert d["gradients:H1"].formula.text() == "∂E/∂H1(1) + ∂E/∂H1(2)"
    assert d["contributions:H1:1"].formula.text() == "δ[1](1) x[1](0)ᵀ"
    assert d["parameters_after:H1"].formula.text() == "H1 − η · ∂E/∂H1"


def test_the_layered_backward_recursion_reads_like_the_lecture():
    d = _derivation("mlp-relu-exam-network")
    assert d["deltas:z[2]"].formula.text() == "y − t"
    assert d["deltas:x[1]"].formula.text() == "W2ᵀ δ[2]"
    assert d["deltas:z[1]"].formula.text() == "∂E/∂x[1] ⊙ relu′(z[1])"
    assert d["gradients:W1"].formula.text() == "δ[1] x[0]ᵀ"


def test_softmax_with_cross_entropy_starts_at_y_minus_t():
    d = _derivation("rnn-many-to-one-softmax")
    assert d["deltas:z[2](2)"].formula.text() == "y(2) − t(2)"


def test_replaying_with_a_wrong_delta_carries_it_forward():
    """What ``check`` needs: a student's own δ[2] gives their gradient of W2 by the same formula."""
    d = _derivation("mlp-relu-exam-network")
    wrong = np.array([1.0, -2.0])
    replayed = d.replay({"deltas:z[2]": wrong})
    x1 = d["forward:x[1]"].value
    np.testing.assert_allclose(replayed["gradients:W2"], np.outer(wrong, x1))
    w2 = d["parameters_before:W2"].value
    relu_prime = (d["forward:z[1]"].value > 0).astype(float)
    np.testing.assert_allclose(replayed["deltas:z[1]"], (w2.T @ wrong) * relu_prime)
    np.testing.assert_allclose(replayed["parameters_after:W2"], w2 - 0.1 * np.outer(wrong, x1))
    assert replayed["loss"] == d["loss"].value  # the forward pass does not depend on δ


def test_a_node_computed_from_constants_gets_its_true_delta():
    """o(1) = h(0) + x(1) reads constants only; the engine keeps no gradient for it, but
    ∂L/∂o(1) = ∂L/∂h(1) · w (h(1) = o(1)·w) is not 0."""
    trace = solve_problem(load_problem(example_path("eq-additive-cell")))
    step = trace.steps[0]
    deltas = {v.key: v.array for v in step.deltas}
    w = step.parameters_before["w"]
    np.testing.assert_allclose(deltas["o(1)"], deltas["h(1)"] * w, rtol=1e-12)
    assert deltas["o(1)"] != 0


def test_json_has_the_derivation_section_with_trees():
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", "rnn-many-to-many-identity",
                             "--format", "json"], capture_output=True, text=True, timeout=120)
    data = json.loads(result.stdout)
    nodes = {n["id"]: n for n in data["derivation"]}
    delta = nodes["deltas:z[1](1)"]
    assert delta["symbol"] == "δ[1](1)" and delta["kind"] == "delta" and delta["step"] == 1
    assert delta["section"] == "deltas" and delta["key"] == "z[1](1)"
    np.testing.assert_allclose(delta["value"], data["deltas"]["z[1](1)"])
    assert set(delta["inputs"]) == {"parameters_before:W2", "deltas:z[2](1)", "parameters_before:H1",
                                    "deltas:z[1](2)", "forward:x[1](1)"}
    assert delta["tree"]["op"] == "mul" and "\\delta" in delta["latex"]
    assert nodes["parameters_before:W1"]["formula"] is None
    assert data["steps"][0]["derivation"] == data["derivation"]


def _chains(name):
    from deltalab.report.document import build

    trace = solve_problem(load_problem(example_path(name)))
    blocks = build(trace)
    start = next(i for i, b in enumerate(blocks) if b.kind == "heading" and b.text == "Backward pass")
    end = next(i for i, b in enumerate(blocks) if b.kind == "heading" and b.text == "Update")
    return blocks[start:end]


def test_the_worked_solution_writes_each_delta_as_formula_then_value_in_bptt_order():
    blocks = _chains("rnn-many-to-many-identity")
    headings = [b.text for b in blocks if b.kind == "heading"]
    assert headings[:3] == ["Backward pass", "t = 2", "t = 1"]
    chains = {c.lhs: c for b in blocks if b.kind == "chains" for c in b.items}
    rows = chains["δ[1](1)"].rows
    assert rows[0][0].content == "(W2ᵀ δ[2](1) + H1ᵀ δ[1](2)) ⊙ (1 − x[1](1)²)"
    np.testing.assert_allclose(rows[-1][0].content, [-0.0431] * 3, atol=5e-5)
    # δ[2](2) = y(2) − t(2) = [numbers] − [numbers] = value
    substituted = [t.content for t in chains["δ[2](2)"].rows[1]]
    assert substituted[1] == "−"
    np.testing.assert_allclose(substituted[0] - substituted[2], chains["δ[2](2)"].rows[-1][0].content)


def test_a_layered_weight_gradient_is_a_column_times_a_row():
    blocks = _chains("mlp-relu-exam-network")
    chains = {c.lhs: c for b in blocks if b.kind == "chains" for c in b.items}
    formula, numbers, value = chains["∂E/∂W1"].rows
    assert formula[0].content == "δ[1] x[0]ᵀ"
    column, row = numbers[0].content, numbers[-1].content
    assert column.shape == (2, 1) and row.shape == (1, 2)
    np.testing.assert_allclose(column @ row, value[0].content)

"""deltalab check from the command line: formats, a class of submissions to CSV and feedback
pages, bad input (one line, exit 2), and the false-positive rate of the mistake library."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltalab as dl
from deltalab.marking.grading import quantity_nodes
from deltalab.examples import example_path
from deltalab.problem import load_problem
from deltalab.recorder import solve_problem

PROBLEMS = Path(__file__).parent / "check_problems"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deltalab.cli", "check", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def fmt(a, decimals=4):
    a = np.asarray(a, dtype=float)
    return f"{float(a):.{decimals}f}" if a.ndim == 0 else "[" + ", ".join(fmt(v, decimals) for v in a) + "]"


def true_values(name):
    d = solve_problem(load_problem(example_path(name))).steps[0].derivation
    return {k: n.value for k, n in quantity_nodes(d).items()}


def submission(values, rng, student):
    """A generated submission: every gradient and update, some of them wrong."""
    lines = [f'student = "{student}"', "[gradients]"]
    wrong = rng.random() < 0.5
    for (section, key), v in values.items():
        if section == "gradients":
            if wrong and key == "b2":
                v = v + 0.5
            lines.append(f'"{key}" = {fmt(v)}')
    lines.append("[parameters_after]")
    for (section, key), v in values.items():
        if section == "parameters_after":
            lines.append(f'"{key}" = {fmt(v - 0.5 if wrong and key == "b2" else v)}')  # η = 1: from the wrong b2
    return "\n".join(lines) + "\n", wrong


def test_a_class_of_100_submissions_to_csv_and_feedback_pages(tmp_path):
    values = true_values("rnn-many-to-many-identity")
    rng = np.random.default_rng(3)
    files, wrong = [], {}
    for i in range(100):
        text, is_wrong = submission(values, rng, f"student {i:03d}")
        path = tmp_path / f"s{i:03d}.toml"
        path.write_text(text)
        files.append(path)
        wrong[f"student {i:03d}"] = is_wrong
    out = run("--example", "rnn-many-to-many-identity", *files, "--csv", tmp_path / "grades.csv", "--out",
              tmp_path / "feedback", timeout=300)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert len(rows) == 100
    for row in rows:
        if wrong[row["student"]]:
            # b2 wrong: its own row wrong, b2′ computed from it consistent (follow-through)
            assert (row["wrong"], row["consistent"], row["first_wrong"]) == ("1", "1", "gradients.b2")
            assert row["score"] == str(int(row["max_score"]) - 1)
        else:
            assert (row["wrong"], row["score"]) == ("0", row["max_score"])
    pages = sorted((tmp_path / "feedback").iterdir())
    assert len(pages) == 100 and pages[0].name == "student_000.md"
    assert "Score" in pages[0].read_text()


def test_formats(tmp_path):
    answers = tmp_path / "a.toml"
    answers.write_text('[deltas]\n"z[2]" = [0.5, 1]\n')
    for fmt_name, marker in (("markdown", "| δ[2] (`z[2]`)"), ("html", "<td>δ[2] (z[2])</td>"),
                             ("terminal", "δ[2]")):
        out = run("--example", "mlp-relu-exam-network", answers, "--format", fmt_name)
        assert out.returncode == 0 and marker in out.stdout, (fmt_name, out.stdout[:400])
    data = json.loads(run("--example", "mlp-relu-exam-network", answers, "--format", "json").stdout)
    assert set(data) >= {"problem", "student", "score", "max_score", "quantities"}
    q = data["quantities"][0]
    assert set(q) >= {"section", "key", "step", "answer", "true", "implied", "verdict", "diagnoses"}
    assert (q["section"], q["key"], q["verdict"], q["answer"]) == ("deltas", "z[2]", "wrong", [0.5, 1.0])


def test_tolerance_option(tmp_path):
    answers = tmp_path / "a.toml"
    d = true_values("mlp-relu-exam-network")[("deltas", "z[2]")]
    answers.write_text(f'[deltas]\n"z[2]" = {fmt(d + 0.03)}\n')
    verdict = lambda *extra: json.loads(run("--example", "mlp-relu-exam-network", answers, "--format", "json",
                                            *extra).stdout)["quantities"][0]["verdict"]
    assert verdict() == "wrong" and verdict("--tolerance", "0.05") == "right"


@pytest.mark.parametrize("args, message", [
    (["--example", "mlp-relu-exam-network", "nothere.toml"], "nothere.toml: no such file"),
    (["--example", "mlp-relu-exam-netwrk", "a.toml"], "did you mean 'mlp-relu-exam-network'"),
    (["--example", "mlp-relu-exam-network", "a.toml", "--tolerance", "-1"], "--tolerance"),
    (["--example", "mlp-relu-exam-network"], "no answers file"),
    (["--lecture", "a.toml"], "--lecture: needs --example"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "a.toml").write_text("loss = 1\n")
    args = [str(tmp_path / a) if a.endswith(".toml") else a for a in args]
    out = run(*args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_csv_is_not_half_written_on_a_bad_file(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("loss = 2.5\n")
    bad.write_text('[gradients]\nW9 = 1\n')
    out = run("--example", "mlp-relu-exam-network", good, bad, "--csv", tmp_path / "grades.csv")
    assert out.returncode == 2 and "gradients.W9: unknown key" in out.stderr
    assert not (tmp_path / "grades.csv").exists()


def test_python_result_has_notebook_reprs():
    result = dl.check("mlp-relu-exam-network", {"loss": "5/2"})
    assert result.quantities[0].verdict == "right"
    assert "<table>" in result._repr_html_() and "| E (`loss`)" in result._repr_markdown_()


def test_no_diagnosis_is_claimed_for_random_wrong_values():
    """1,000 random perturbations of true values (4 decimals) over six problems: the library
    names a mistake for fewer than 1 % of them (measured: 1 of 1,020, 0.1 %)."""
    rng = np.random.default_rng(0)
    paths = [PROBLEMS / "mlp-tanh.toml", PROBLEMS / "rnn-tanh.toml", PROBLEMS / "eq-tanh-cell.toml",
             PROBLEMS / "cnn-conv-pool.toml", example_path("rnn-many-to-many-identity"),
             example_path("eq-sigmoid-skip-network")]
    claimed = total = 0
    for path in paths:
        problem = load_problem(path)
        trace = solve_problem(problem)
        nodes = list(quantity_nodes(trace.steps[0].derivation).items())
        for _ in range(170):
            (section, key), node = nodes[rng.integers(len(nodes))]
            value = node.value + rng.normal(size=node.value.shape) * (0.1 + np.abs(node.value))
            text = f"loss = {fmt(value)}\n" if section == "loss" else f'[{section}]\n"{key}" = {fmt(value)}\n'
            q = dl.check(problem, text, trace=trace).quantities[0]
            total += 1
            claimed += bool(q.diagnoses) and q.verdict == "wrong"
    assert total == 1020
    assert claimed / total < 0.01, claimed


def test_the_readme_example():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Checking a hand solution", 1)[1]
    answers = section.split("```toml\n", 1)[1].split("```", 1)[0]
    result = dl.check("rnn-many-to-many-identity", answers)
    assert (result.score, result.max_score, result.first_wrong.symbol) == (5, 6, "δ[1](1)")
    assert result.counts == {"right": 4, "consistent": 1, "wrong": 1, "missing": 0}
    assert result.first_wrong.diagnoses[0].mistake == "path_dropped"


def test_html_feedback_pages(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('student = "Ann"\nloss = 2.5\n')
    b.write_text('student = "Ann"\nloss = 3\n')
    out = run("--example", "mlp-relu-exam-network", a, b, "--out", tmp_path / "pages", "--format", "html")
    assert out.returncode == 0, out.stderr
    pages = sorted(p.name for p in (tmp_path / "pages").iterdir())
    assert pages == ["Ann-2.html", "Ann.html"]
    assert (tmp_path / "pages" / "Ann.html").read_text().startswith("<!DOCTYPE html>")

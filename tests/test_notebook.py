"""What a notebook shows: IPython's display formatter on a Solution and a model summary."""
from __future__ import annotations

import numpy as np
import pytest

import deltalab as dl
from deltalab.solution import Solution, load_example, scoped_css, solve

formatters = pytest.importorskip("IPython.core.formatters", reason="IPython is not installed")


def _shown(obj):
    data, _ = formatters.DisplayFormatter().format(obj)
    return data


def test_a_solution_shows_html_markdown_and_text():
    data = _shown(solve("rnn-many-to-many-identity"))
    html, markdown, text = data["text/html"], data["text/markdown"], data["text/plain"]
    assert html.startswith('<div class="deltalab-solution"><style>') and "Backward pass" in html
    assert "<body" not in html and "<html" not in html  # a fragment, not a page inside the page
    assert "$$" in markdown and "\\delta" in markdown
    assert "Backward pass" in text and "\x1b[" not in text


def test_the_page_style_stays_inside_the_solution():
    css = scoped_css("body { margin: 0 } h1, .eq { color: red } @media print { h2 { break-after: avoid } }",
                     ".deltalab-solution")
    assert ".deltalab-solution { margin: 0 }" in css
    assert ".deltalab-solution h1, .deltalab-solution .eq { color: red }" in css
    assert "@media print {" in css and ".deltalab-solution h2 { break-after: avoid }" in css
    html = solve("mlp-relu-exam-network")._repr_html_()
    style = html[html.index("<style>") + 7 : html.index("</style>")]
    selectors = [rule.split("{")[0].strip() for rule in style.split("}") if "{" in rule]
    assert selectors and all(s.startswith(".deltalab-solution") or s.startswith("@") for s in selectors)


def test_a_solution_from_a_file_a_problem_or_an_example_name(tmp_path):
    path = tmp_path / "p.toml"
    from deltalab.examples import example_path

    path.write_text(example_path("mlp-relu-exam-network").read_text())
    for source in (path, str(path), load_example("mlp-relu-exam-network"), "mlp-relu-exam-network"):
        solution = solve(source)
        assert isinstance(solution, Solution) and solution.passed
        np.testing.assert_allclose(solution.to_dict()["loss"], 2.5)


def test_example_keyword_is_the_built_in_problem_even_beside_a_file_of_that_name(tmp_path, monkeypatch):
    import deltalab as dl

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp-relu-exam-network").write_text("not a problem file")
    np.testing.assert_allclose(dl.solve(example="mlp-relu-exam-network").to_dict()["loss"], 2.5)  # the lecture's E
    for wrong in ((), ("mlp-relu-exam-network",)):
        with pytest.raises(TypeError, match="example=NAME"):
            dl.solve(*wrong, **({"example": "mlp-relu-exam-network"} if wrong else {}))


def test_a_summary_shows_its_table_once_as_html_and_text():
    net = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.ReLU(), dl.nn.Linear(4, 2))
    summary = dl.summary(net, (3,), print_table=False)
    data = _shown(summary)
    assert "Linear" in data["text/html"] and "26" in data["text/html"]
    assert "total" in data["text/plain"] and "ModelSummary(" not in data["text/plain"]

"""A convolution's worked cells and max pooling's winners, as the derivation records them and
the solution shows them: one output cell of each convolution as Σ w·x over its window, one cell
of the weight gradient (input correlated with δ) and of the input delta, and each pooling
window's winner marked -- checked against the engine's recorded values, against PyTorch's
max_pool2d indices and against the lecture's numbers worked by hand."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from deltalab.cli import main
from deltalab.examples import example_names, example_path
from deltalab.problem import load_problem
from deltalab.recorder import solve_problem

CNN_PROBLEMS = [pytest.param(example_path(n), id=n) for n in example_names() if n.startswith("cnn-")] + [
    pytest.param(p, id=p.stem) for p in sorted((Path(__file__).parent / "derivation_problems").glob("cnn-*.toml"))]


def _derivations(path):
    return [step.derivation for step in solve_problem(load_problem(path)).steps]


@pytest.mark.parametrize("path", CNN_PROBLEMS)
def test_every_worked_cell_adds_up_to_the_engines_value(path):
    kinds = set()
    for d in _derivations(path):
        for node in d:
            if node.worked is None:
                continue
            w = node.worked
            total = sum(a * b for a, b in w.products) + (w.bias or 0.0)
            assert total == pytest.approx(float(node.value[w.index]), rel=1e-12, abs=1e-12), node.id
            assert w.value == float(node.value[w.index])
            assert all(b == 0.0 for (_, b), padded in zip(w.products, w.padded) if padded)
            kinds.add(node.kind)
    assert "forward" in kinds  # every convolution shows one output cell


def test_the_two_conv_batch_works_a_gradient_cell_and_an_input_delta_cell():
    d = _derivations(Path(__file__).parent / "derivation_problems" / "cnn-two-conv-batch-tanh-sigmoid.toml")[0]
    worked = {n.id for n in d if n.worked is not None}
    assert {"forward:z[1]", "forward:z[2]", "gradients:W1", "gradients:W2", "deltas:x[1]"} <= worked


@pytest.mark.parametrize("path", CNN_PROBLEMS)
def test_pooling_winners_are_torchs_max_pool_indices_and_get_the_routed_deltas(path):
    torch = pytest.importorskip("torch")
    found = False
    for d in _derivations(path):
        for node in d:
            if node.windows is None:
                continue
            found = True
            windows = node.windows
            if node.kind == "delta":  # the routed delta: only the winners receive one
                assert np.all(node.value[~windows.mask()] == 0), node.id
                continue
            source = d[node.formula.refs()[0]].value
            batch = source if source.ndim == 4 else source[None]
            _, indices = torch.nn.functional.max_pool2d(torch.from_numpy(batch), windows.kernel, windows.stride,
                                                        windows.padding, return_indices=True)
            width = source.shape[-1]
            winners = windows.winners if source.ndim == 4 else windows.winners[None]
            assert np.array_equal(winners[..., 0] * width + winners[..., 1], indices.numpy()), node.id
            picked = np.take_along_axis(batch.reshape(batch.shape[:2] + (-1,)),
                                        (winners[..., 0] * width + winners[..., 1]).reshape(batch.shape[:2] + (-1,)),
                                        axis=-1)
            assert np.array_equal(picked.reshape(node.value.shape if source.ndim == 4 else (1,) + node.value.shape),
                                  node.value if source.ndim == 4 else node.value[None])
    if "pool" in str(path) or "feature" in str(path):
        assert found


# ---- the lecture's feature detectors, by hand: K1 is a ring of ones, the image's top-left 3×3 window
# is 10 10 10 / 5 5 5 / 2 2 2, so z[1](1, 2, 2) = 10 + 10 + 10 + 5 + 5 + 2 + 2 + 2 = 46 (the centre 5 has weight 0)
BY_HAND = [(1, 10), (1, 10), (1, 10), (1, 5), (0, 5), (1, 5), (1, 2), (1, 2), (1, 2)]


def test_the_feature_detectors_cell_is_the_lecture_sum():
    d = _derivations(example_path("cnn-feature-detectors"))[0]
    worked = d["forward:z[1]"].worked
    assert worked.index == (0, 1, 1) and worked.products == BY_HAND and worked.value == 46 and worked.bias is None
    # channel 2 of a 2×2 window over 10 10 / 5 5 is a tie: the first 10 wins, as in PyTorch
    winners = d["forward:x[2]"].windows.winners
    assert winners[1, 0, 0].tolist() == [0, 0] and winners[0, 0, 0].tolist() == [1, 1]


@pytest.fixture(scope="module")
def feature_detectors(tmp_path_factory):
    out = tmp_path_factory.mktemp("fd")
    pages = {}
    for fmt, suffix in (("terminal", "txt"), ("markdown", "md"), ("latex", "tex"), ("html", "html"), ("json", "json")):
        path = out / f"page.{suffix}"
        assert main(["solve", "--example", "cnn-feature-detectors", "--format", fmt, "-o", str(path)]) == 0
        pages[fmt] = path.read_text()
    return pages


def test_every_format_shows_the_worked_cell(feature_detectors):
    text = feature_detectors["terminal"]
    assert "z[1](1, 2, 2) = Σ_{c,i,j} W1(1, c, i, j) · x[0](c, i, j)" in text
    assert "= 1·10 + 1·10 + 1·10 + 1·5 + 0·5 + 1·5 + 1·2 + 1·2 + 1·2\n                = 46\n" in text
    assert "1·10 + 1·10 + 1·10 + 1·5 + 0·5 + 1·5" in feature_detectors["markdown"]
    assert r"= 1\cdot 10 + 1\cdot 10 + 1\cdot 10 + 1\cdot 5" in feature_detectors["latex"]
    assert "1·10" in feature_detectors["html"] and "max_pool2d(z<sup>[1]</sup>)" in feature_detectors["html"]


def test_every_format_marks_the_winners(feature_detectors):
    winners = 18  # 2 channels × 3×3 windows, each window's winner at a different entry here
    text = feature_detectors["terminal"]
    assert re.search(r"⎢ 29\s+46\*\s+44\*\s+42\s+42\*\s+27\s+⎥", text)
    assert text.count("*") - text.count("* in text") == winners
    assert feature_detectors["html"].count('<td class="win">') == winners
    assert '<td class="win">46</td>' in feature_detectors["html"]
    assert feature_detectors["latex"].count(r"\underline{\mathbf{") == winners
    assert r"\underline{\mathbf{46}}" in feature_detectors["latex"]
    assert "46*" in feature_detectors["markdown"]


def test_the_json_derivation_holds_the_window_data(feature_detectors):
    nodes = {n["id"]: n for n in json.loads(feature_detectors["json"])["derivation"]}
    worked = nodes["forward:z[1]"]["worked"]
    assert worked["index"] == [0, 1, 1] and worked["value"] == 46 and worked["products"] == [list(p) for p in BY_HAND]
    windows = nodes["forward:x[2]"]["windows"]
    assert windows["kernel"] == [2, 2] and windows["stride"] == [2, 2]
    assert windows["winners"][0][0][0] == [1, 1] and windows["winners"][1][0][0] == [0, 0]
    assert all("worked" not in n and "windows" not in n for i, n in nodes.items()
               if i not in ("forward:z[1]", "forward:x[2]"))


def test_a_problem_with_targets_shows_the_routing_and_the_gradient_cell(tmp_path):
    problem = Path(__file__).parent / "derivation_problems" / "cnn-relu-pools-softmax-cross-entropy.toml"
    out = tmp_path / "sol.txt"
    assert main(["solve", str(problem), "-o", str(out)]) == 0
    text = out.read_text()
    assert "∂E/∂x[1]: each window's delta goes back to the window's winner" in text
    assert "∂E/∂W1(1, 1, 2, 2) = Σ_{n,y,x} δ[1](n, 1, y, x) · x[0](n, 1, 2y − 1, x + 1)" in text
    assert "products with a factor 0)" in text

"""The picture of the network: ``solve --graph FILE.svg``, the figure of the HTML page and of a
notebook's Solution -- every problem kind, each node with its value and delta, numbers checked
by hand (the lecture's exercises) or by NumPy from the problem file."""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from deltalab.cli import main
from deltalab.examples import example_path
from deltalab.problem import load_problem
from deltalab.recorder import solve_problem

pytest.importorskip("networkx", reason="the picture needs the plots extra (networkx)")
pytest.importorskip("matplotlib", reason="the picture needs the plots extra (matplotlib)")

DERIVATION_PROBLEMS = Path(__file__).parent / "derivation_problems"


def lines_of(svg: str) -> list:
    """Every text line of an SVG picture (matplotlib writes one <text> per line)."""
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    return ["".join(t.itertext()) for t in root.iter() if t.tag.rpartition("}")[2] == "text"]


def inline_svg_of(page: str) -> str:
    found = re.search(r'<figure class="graph">(<svg.*?</svg>)</figure>', page, re.S)
    assert found, "no inline SVG in the page"
    return found.group(1)


def written(value) -> str:
    """A number as the picture writes it: 3 decimals, U+2212 for minus, no −0.000."""
    text = f"{value:.3f}"
    return "0.000" if float(text) == 0 else text.replace("-", "−")


def label_after(lines, symbol):
    """The line after a node's symbol line: its value."""
    return lines[lines.index(symbol) + 1]


@pytest.fixture(scope="module")
def pictures(example_pages):
    """{example: the text lines of the picture in its HTML page} (drawn once per run)."""
    return {name: lines_of(inline_svg_of(page)) for name, (_, page) in example_pages.items()}


def test_every_example_page_holds_its_picture_with_every_recorded_quantity(example_pages, pictures):
    for name, (trace, page) in example_pages.items():
        assert page.count("<svg") == 1 and "<h2>Computation graph</h2>" in page, name
        svg = inline_svg_of(page)
        assert 'style="width:100%;' in svg and "<style" not in svg and "<?xml" not in svg, name
        text = " ".join(pictures[name])
        derivation = trace.steps[0].derivation
        for node in derivation:
            if node.kind in ("input", "parameter", "forward", "error", "loss"):
                assert node.symbol in text, (name, node.symbol)
        assert not re.search(r"(?<![\w\]])-\d", text), name  # minus signs are U+2212, as in the page


def test_the_mlp_exam_network_shows_the_lectures_numbers(pictures):
    lines = pictures["mlp-relu-exam-network"]
    # the lecture's worked example: z[1] = (2, −0.5), x[1] = relu(z[1]) = (2, 0), δ[1] = (1.5, 0),
    # y = z[2] = (0, −1.5), δ[2] = y − t = (−1, −2), E = ½ (1² + 2²) = 2.5
    assert label_after(lines, "z[1]") == "(2.000, −0.500)"
    assert "δ[1] (1.500, 0.000)" in lines and "δ[2] (−1.000, −2.000)" in lines
    assert label_after(lines, "x[1]") == "(2.000, 0.000)"
    assert label_after(lines, "z[2] = y") == "(0.000, −1.500)"
    assert label_after(lines, "E") == "2.500"
    # edges: ∂z[1]/∂x[0] = W1, ∂x[1]/∂z[1] = relu′(z[1]), ∂z[2]/∂b2 = 1
    assert "W1 = [1.000 0.500; −0.500 −1.000]" in lines
    assert "relu′(z[1]) = (1.000, 0.000)" in lines and "1" in lines


def test_the_unrolled_rnn_has_one_hidden_state_per_step(pictures):
    lines = pictures["rnn-many-to-many-identity"]
    # every weight 0.1: h(1) = tanh(0.1·4 + 0.1), h(2) = tanh(0.1·(8 + 2) + 3·0.1·h(1) + 0.1)
    h1 = np.tanh(0.5)
    h2 = np.tanh(1.0 + 0.3 * h1 + 0.1)
    assert label_after(lines, "x[1](0)") == "(0.000, 0.000, 0.000)"
    assert label_after(lines, "x[1](1)") == "({0:.3f}, {0:.3f}, {0:.3f})".format(h1)
    assert label_after(lines, "x[1](2)") == "({0:.3f}, {0:.3f}, {0:.3f})".format(h2)
    for symbol in ("z[1](1)", "z[1](2)", "E(1)", "E(2)", "H1", "W2"):
        assert symbol in lines, symbol
    # the edge between the steps: ∂z[1](2)/∂x[1](1) = H1; through tanh: 1 − x[1](t)²
    assert "H1" in lines and "1 − x[1](1)² = ({0:.3f}, {0:.3f}, {0:.3f})".format(1 - h1 ** 2) in lines


def test_cnn_feature_maps_are_one_node_per_channel_with_their_values(pictures):
    lines = pictures["cnn-feature-detectors"]
    problem = load_problem(example_path("cnn-feature-detectors"))
    image = np.pad(np.asarray(problem.inputs, dtype=float)[0], 1)
    kernels = np.asarray(problem.parameters["W1"], dtype=float)[:, 0]
    for c, kernel in enumerate(kernels):
        feature = np.einsum("ijkl,kl->ij", sliding_window_view(image, (3, 3)), kernel)  # conv, padding 1
        pooled = feature.reshape(3, 2, 3, 2).max(axis=(1, 3))                          # 2×2 max pooling
        assert f"z[1] ch {c + 1}" in lines and label_after(lines, f"z[1] ch {c + 1}") == "6×6"
        start = lines.index(f"x[2] = y ch {c + 1}") + 1
        rows = ["[" + " ".join(f"{v:.3f}" for v in row) + "]" for row in pooled]
        assert lines[start : start + 3] == rows, c
    # every input channel reaches every output channel through its own kernel
    assert "W1[1,1]" in lines and "W1[2,1]" in lines


def test_an_lstm_is_unrolled_with_its_gates_cell_state_and_their_deltas():
    from deltalab.report.graph_svg import render_svg

    trace = solve_problem(load_problem(DERIVATION_PROBLEMS / "lstm-many-to-many.toml"))
    lines = lines_of(render_svg(trace).decode())
    derivation = trace.steps[0].derivation
    for t in (1, 2):
        for symbol in (f"i[1]({t})", f"f[1]({t})", f"g[1]({t})", f"o[1]({t})", f"c[1]({t})", f"x[1]({t})"):
            assert symbol in lines, symbol
        # a gate's delta: its rows of δ[1](t), in PyTorch's gate order i, f, g, o
        delta = derivation[f"deltas:z[1]({t})"].value
        n = delta.size // 4
        for k, gate in enumerate("ifgo"):
            rows = "(" + ", ".join(written(v) for v in delta[k * n : (k + 1) * n]) + ")"
            assert f"δ[1]({t})[{gate}] {rows}" in lines, (t, gate)
    # the cell state carries over: ∂c(2)/∂c(1) = f(2)
    f2 = derivation["forward:f[1](2)"].value
    assert "f[1](2) = (" + ", ".join(f"{v:.3f}" for v in f2) + ")" in lines


def test_graph_cli_writes_the_same_picture_for_every_kind(tmp_path, example_pages):
    for name in ("mlp-relu-exam-network", "cnn-feature-detectors", "rnn-many-to-one-softmax", "eq-sigmoid-skip-network"):
        svg = tmp_path / f"{name}.svg"
        assert main(["solve", "--example", name, "--graph", str(svg), "-o", str(tmp_path / "solution.txt")]) == 0
        data = svg.read_text()
        assert data.startswith("<?xml") and lines_of(data) == lines_of(inline_svg_of(example_pages[name][1])), name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_graph_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "a-directory.svg").mkdir()
    for target in (tmp_path / "missing" / "g.svg", tmp_path / "a-directory.svg"):
        assert main(["solve", "--example", "rnn-many-to-many-identity", "--graph", str(target)]) == 2
        captured = capsys.readouterr()
        assert str(target) in captured.err and len(captured.err.strip().splitlines()) == 1
        assert "Traceback" not in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory.svg"]


@pytest.mark.parametrize("library", ["matplotlib", "networkx"])
def test_without_the_plots_extra_the_page_says_so_and_graph_exits_2(tmp_path, capsys, monkeypatch, library):
    from deltalab import report

    trace = solve_problem(load_problem(example_path("mlp-relu-exam-network")))
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, library, None)  # `import library` raises ImportError
        page = report.render(trace, "html")
        target = tmp_path / "g.svg"
        assert main(["solve", "--example", "mlp-relu-exam-network", "--graph", str(target)]) == 2
    err = capsys.readouterr().err
    assert "<svg" not in page
    notes = [line for line in page.splitlines() if "plots extra" in line]
    assert notes == ["<p>The picture of the computation graph needs the plots extra: "
                     "<code>pip install 'deltalab[plots]'</code></p>"]
    assert len(err.strip().splitlines()) == 1 and "plots extra" in err and "deltalab[plots]" in err
    assert "Traceback" not in err and not target.exists()


def test_a_graph_too_big_to_read_is_named_in_one_line(tmp_path, capsys):
    from deltalab import report
    from deltalab.report.graph_svg import MAX_NODES

    problem = tmp_path / "wide.toml"
    problem.write_text('title = "Many feature maps"\n[model]\ntype = "cnn"\ninput_shape = [1, 3, 3]\n'
                       '[[model.layers]]\ntype = "conv2d"\nout_channels = 160\nkernel_size = 1\n'
                       '[parameters]\ninit = "random"\nseed = 0\n[data]\ninputs = 1.0\n')
    page = report.render(solve_problem(load_problem(problem)), "html")
    assert "<svg" not in page and f"the largest drawn is {MAX_NODES}" in page
    assert main(["solve", str(problem), "--graph", str(tmp_path / "g.svg"), "-o", str(tmp_path / "s.txt")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"the largest drawn is {MAX_NODES}" in err
    assert not (tmp_path / "g.svg").exists() and not (tmp_path / "s.txt").exists()


def test_the_notebook_repr_shows_the_picture_and_pages_are_reproducible(example_pages):
    from deltalab import report
    from deltalab.solution import solve

    html = solve("rnn-many-to-one-identity")._repr_html_()
    assert html.count("<svg") == 1 and "x[1](1)" in html and "<style" not in inline_svg_of(html)
    trace, page = example_pages["rnn-many-to-one-identity"]
    assert report.render(trace, "html") == page  # no date, no random ids: the same bytes again
    assert inline_svg_of(html) == inline_svg_of(page)


def test_exercise_keys_and_json_carry_no_picture(example_pages):
    from deltalab import report

    trace, _ = example_pages["mlp-relu-exam-network"]
    assert "<svg" not in report.render(trace, "html", figure=False)
    assert "svg" not in report.render(trace, "json") and "graph" not in report.render(trace, "json")


def test_a_page_with_its_picture_is_still_self_contained_and_well_nested(example_pages):
    from html.parser import HTMLParser

    class Nesting(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.sources = [], []

        def handle_starttag(self, tag, attrs):
            self.sources += [value for name, value in attrs if name in ("src", "href", "xlink:href")]
            if tag not in ("meta", "br", "link", "img", "hr", "input"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
            self.stack.pop()

    for name in ("mlp-relu-exam-network", "cnn-two-conv-10x10", "rnn-sequence-completion", "eq-alarmwork-net"):
        page = example_pages[name][1]
        parser = Nesting()
        parser.feed(page)
        parser.close()
        assert not parser.stack and not parser.sources, name
        assert "<script" not in page.lower() and "http" not in page.lower() and "url(" not in page, name

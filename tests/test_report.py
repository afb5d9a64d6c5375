"""Reports: every format shows every recorded value, and only formats it.

The trace is built by hand: the lecture's many-to-many RNN (SPEC §4), 2 time steps, 3 hidden
units, every weight 0.1, with made-up but fixed deltas and gradients (reports never recompute).
"""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from deltalab.report import FORMATS, print_terminal, render
from deltalab.report._common import latex
from deltalab.trace import Check, Contribution, StepTrace, Trace, Value

DELTA_1_2 = np.array([-0.0083747, -0.0083747, -0.0083747])  # δ[1](2) of SPEC §4
H1_STEP_1 = np.zeros((3, 3))
H1_STEP_2 = np.full((3, 3), -0.0038698)


def make_step(index, scale=1.0):
    parameters = {"W1": np.full((3, 4), 0.1), "H1": np.full((3, 3), 0.1), "b1": np.full(3, 0.1),
                  "W2": np.full((2, 3), 0.1), "b2": np.full(2, 0.1)}
    forward = [Value("x[0](1)", np.array([4.0, 0, 0, 0]), 0, 1, "input"),
               Value("z[1](1)", np.full(3, 0.5), 1, 1, "preactivation"),
               Value("x[1](1)", np.full(3, 0.46211716), 1, 1, "activation"),
               Value("x[0](2)", np.array([0.0, 8, 2, 0]), 0, 2, "input"),
               Value("z[1](2)", np.full(3, 1.23863515), 1, 2, "preactivation"),
               Value("x[1](2)", np.full(3, 0.84510399), 1, 2, "activation")]
    outputs = [Value("y(1)", np.full(2, 0.23863515), 2, 1, "output"),
               Value("y(2)", np.full(2, 0.35353120), 2, 2, "output")]
    targets = [Value("t(1)", np.array([1.0, 0.0]), None, 1, "target"),
               Value("t(2)", np.array([0.0, 1.0]), None, 2, "target")]
    deltas = [Value("z[1](2)", DELTA_1_2 * scale, 1, 2, "preactivation"),
              Value("z[1](1)", np.full(3, -0.0430858) * scale, 1, 1, "preactivation")]
    contributions = {"H1": [Contribution(1, "δ[1](1) · x[1](0)ᵀ", H1_STEP_1, "δ[1](t) · x[1](t−1)ᵀ"),
                            Contribution(2, "δ[1](2) · x[1](1)ᵀ", H1_STEP_2 * scale, "δ[1](t) · x[1](t−1)ᵀ")]}
    gradients = {"W1": np.full((3, 4), -0.05) * scale, "H1": (H1_STEP_1 + H1_STEP_2) * scale,
                 "b1": np.full(3, -0.0514605) * scale, "W2": np.full((2, 3), 0.2) * scale,
                 "b2": np.array([-0.407845, -0.407845]) * scale}
    after = {name: parameters[name] - 1.0 * gradients[name] for name in parameters}
    return StepTrace(index, parameters, forward, outputs, targets, {"E(1)": 0.31838, "E(2)": 0.27139},
                     0.589768045508808, deltas, gradients, contributions, after, error_steps={"E(1)": 1, "E(2)": 2})


def make_trace(steps=1):
    checks = [Check("central finite differences", 5.29e-9, {"W1": 7.7e-11, "H1": 5.29e-9}, 1e-6),
              Check("PyTorch float64", 2.5e-16, {"W1": 2.5e-16, "H1": 0.0}, 1e-10)]
    return Trace("Many-to-many RNN, identity output, half squared error", "rnn",
                 ["Elman RNN: 4 inputs → 3 hidden (tanh) → 2 outputs (identity)"],
                 ["z[1](t) = W1 x[0](t) + H1 x[1](t−1) + b1", "x[1](t) = tanh(z[1](t))"],
                 "half_squared_error", "E = ½ Σ_t ‖t(t) − y(t)‖²", 1.0,
                 [make_step(i + 1, scale=1.0 + i) for i in range(steps)], checks)


@pytest.fixture(scope="module")
def trace():
    return make_trace()


TEXT_FORMATS = ("terminal", "markdown", "latex", "html")


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_value_appears_with_the_requested_decimals(trace, fmt):
    text = render(trace, fmt)
    if fmt == "html":  # HTML typesets a minus sign as U+2212
        text = text.replace("−", "-")
    assert "-0.0084" in text                      # δ[1](2)
    assert "0.5898" in text                       # E
    assert "-0.0039" in text                      # step 2's contribution to ∂E/∂H1
    assert "0.1039" in text                       # H1 after the update
    assert "0.4621" in text and "1.2386" in text  # forward values
    assert "5.29e-09" in text and "2.50e-16" in text
    assert "-0.00837" not in text
    more = render(trace, fmt, decimals=6).replace("−", "-")
    assert "-0.008375" in more and "0.589768" in more and "-0.0084 " not in more


@pytest.mark.parametrize("fmt", ("terminal", "markdown"))
def test_lecture_notation_in_plain_text(trace, fmt):
    text = render(trace, fmt)
    for symbol in ("δ[1](2)", "δ[1](1)", "z[1](2)", "x[0](1)", "y(2)", "t(1)", "E(2)",
                   "∂E/∂H1", "Σ_t δ[1](t) · x[1](t−1)ᵀ", "δ[1](1) · x[1](0)ᵀ", "δ[1](2) · x[1](1)ᵀ"):
        assert symbol in text, symbol
    for section in ("Problem", "Forward pass", "Backward pass", "Gradients", "Update", "Check"):
        assert section in text
    assert "✓" in text


def test_terminal_sum_of_contributions_reads_as_an_equation(trace):
    text = render(trace, "terminal")
    # ∂E/∂H1 = Σ_t … = step 1 + step 2 = total, the two step matrices side by side (the zero
    # matrix with the decimals of the one beside it)
    rows = [line for line in text.splitlines() if re.search(r"0\.0000  0\.0000  0\.0000 . \+ . -0\.0039", line)]
    assert rows, text


def test_terminal_shows_every_step_and_the_problem_once():
    text = render(make_trace(steps=2), "terminal")
    assert "Step 1: Forward pass" in text and "Step 2: Forward pass" in text
    assert "Step 2: Update" in text
    assert "-0.0167" in text                      # δ[1](2) of step 2 (scale 2)
    assert text.count("Problem ─") == 1


def test_print_terminal_writes_to_the_given_console(trace):
    import io

    from rich.console import Console

    buffer = io.StringIO()
    print_terminal(trace, 3, Console(file=buffer, width=120, color_system=None))
    out = buffer.getvalue()
    assert "δ[1](2) = [-0.008  -0.008  -0.008]" in out


def test_json_is_the_documented_contract_at_full_precision(trace):
    data = json.loads(render(trace, "json"))
    for key in ("title", "model", "loss_function", "learning_rate", "loss", "errors", "outputs", "forward",
                "deltas", "gradients", "contributions", "parameters_before", "parameters_after", "check", "steps"):
        assert key in data, key
    assert data["model"] == {"type": "rnn", "description": trace.description, "equations": trace.equations}
    assert data["loss"] == 0.589768045508808
    assert data["deltas"]["z[1](2)"] == DELTA_1_2.tolist()
    assert data["forward"]["z[1](2)"] == [1.23863515] * 3
    assert data["outputs"]["y(2)"] == [0.3535312] * 2
    assert data["errors"] == {"E(1)": 0.31838, "E(2)": 0.27139}
    h1 = data["contributions"]["H1"]
    assert [c["step"] for c in h1] == [1, 2] and h1[1]["formula"] == "δ[1](2) · x[1](1)ᵀ"
    assert np.array_equal(np.array(h1[1]["value"]), H1_STEP_2)
    step = trace.steps[0]
    for name in step.parameters_after:
        assert np.array_equal(np.array(data["parameters_after"][name]), step.parameters_after[name])
        assert np.array_equal(np.array(data["gradients"][name]), step.gradients[name])
    assert data["check"][0] == {"method": "central finite differences", "max_relative_error": 5.29e-9,
                                "per_parameter": {"W1": 7.7e-11, "H1": 5.29e-9}, "tolerance": 1e-6,
                                "passed": True}
    assert len(data["steps"]) == 1 and data["steps"][0]["deltas"] == data["deltas"]
    assert render(trace, "json", decimals=2) == render(trace, "json")  # never rounded


def test_json_keeps_every_step_and_writes_nan_as_null():
    trace = make_trace(steps=2)
    trace.steps[1].loss = float("nan")
    data = json.loads(render(trace, "json"))
    assert [s["index"] for s in data["steps"]] == [1, 2]
    assert data["steps"][1]["deltas"]["z[1](2)"] == (DELTA_1_2 * 2).tolist()
    assert data["steps"][1]["loss"] is None


def test_markdown_tables_are_well_formed(trace):
    text = render(trace, "markdown")
    lines = text.splitlines()
    in_fence = False
    tables = 0
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or not line.startswith("|"):
            continue
        assert line.endswith("|"), line
        if i == 0 or not lines[i - 1].startswith("|"):  # a header row
            tables += 1
            columns = len(re.split(r"(?<!\\)\|", line)) - 2
            assert re.fullmatch(r"\|( --- \|)+", lines[i + 1]), lines[i + 1]
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert len(re.split(r"(?<!\\)\|", lines[j])) - 2 == columns, lines[j]
                j += 1
    assert tables >= 4 and not in_fence
    assert "| `δ[1](2)` | `[-0.0084  -0.0084  -0.0084]` |" in text
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`]*`", "", prose)
    assert not re.search(r"[^\\]\[\d+\]\(", prose)  # notation outside code would become a link


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "br", "link", "img", "hr", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_a_self_contained_well_nested_page(trace):
    page = render(trace, "html")
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert not parser.stack
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "http" not in page.lower() and "url(" not in page
    assert not [t for t, a in parser.tags if t in ("link", "img", "iframe", "object") or "src" in a]
    text = "".join(parser.text)
    assert "−0.0084" in text and "0.1039" in text and "✓" in text
    assert "δ<sup>[1]</sup>(2)" in page


def test_markdown_maths_uses_the_lecture_macros(trace):
    text = render(trace, "markdown", maths=True)
    assert r"{\delta^{[1]}}(2)" in text and r"{z^{[1]}}(2)" in text and r"{x^{[0]}}(1)" in text
    assert r"\begin{bmatrix}" in text and r"\begin{aligned}" in text
    assert text.count("$$") % 2 == 0
    assert r"\frac{\partial E}{\partial {H^{[1]}}}" in text


def test_notation_conversion_handles_awkward_text():
    assert latex("W1ᵀ δ[1](2)") == r"{W^{[1]}}^{\top} {\delta^{[1]}}(2)"
    assert latex("50% & #{x}") == r"50\% \& \#\{x\}"
    assert latex("c̃_t") == r"\tilde{c}_{t}"


AWKWARD = ["∂E/∂W1 = Σ_t δ[1](t) · x[1](t−1)ᵀ", "W1ᵀ x[1]ᵀ ⊙ (1 − x[1](t)²)", "50% & # { } ~ ^ \\ _",
           "z[1] = W1 ⋆ x[0] + b1", "ŷ = σ(w2 σ(w1 x + b1) + x)", "h_t = ReLU(h_{t−1} w_hh + w_xh x_t)",
           "C_t = f_t ⊙ C_{t−1} + i_t c̃_t", "⌊(H − k + 2p)/s⌋ + 1 ≈ 13 → 8×13×13", "E = −Σ t · log y, y = softmax(z)"]


def _katex():
    node = shutil.which("node")
    if node is None:
        return None, None
    for root in (Path("/tmp/katex"), Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / "node_modules" / "katex").is_dir():
            return node, root
    return None, None


KATEX_SCRIPT = r"""
const katex = require("katex");
const blocks = JSON.parse(require("fs").readFileSync(0, "utf8"));
for (const tex of blocks) {
  try { katex.renderToString(tex, {displayMode: true, throwOnError: true, strict: "error"}); }
  catch (e) { console.error(e.message + "\n" + tex); process.exit(1); }
}
console.log("ok " + blocks.length);
"""


@pytest.mark.skipif(_katex()[0] is None, reason="node and KaTeX (npm install katex) not available")
def test_latex_renders_in_katex(trace):
    node, root = _katex()
    documents = [render(trace, "markdown", maths=True), render(make_trace(steps=2), "markdown", decimals=8, maths=True)]
    blocks = [b for doc in documents for b in re.findall(r"\$\$(.*?)\$\$", doc, re.S)]
    blocks += [latex(text) for text in AWKWARD]
    result = subprocess.run([node, "-e", KATEX_SCRIPT], input=json.dumps(blocks), capture_output=True,
                            text=True, cwd=root, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(blocks)}"


def test_unknown_format_and_bad_decimals_are_refused(trace):
    with pytest.raises(ValueError, match="unknown format"):
        render(trace, "pdf")
    with pytest.raises(ValueError, match="decimals"):
        render(trace, "terminal", decimals=-1)


def test_forward_only_trace_has_no_backward_sections(trace):
    step = make_step(1)
    step.targets, step.errors, step.loss = [], {}, None
    step.deltas, step.gradients, step.contributions, step.parameters_after = [], {}, {}, {}
    bare = Trace("forward only", "rnn", [], [], "half_squared_error", "", None, [step], [])
    for fmt in FORMATS:
        text = render(bare, fmt)
        assert "Backward pass" not in text and ("1.2386" in text or fmt == "json")
    assert json.loads(render(bare, "json"))["loss"] is None


def test_multichannel_arrays_are_shown_by_channel():
    step = make_step(1)
    image = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3) / 4
    step.forward = [Value("z[1]", image, 1, None, "preactivation")]
    step.parameters_before = {"W1": np.ones((2, 1, 3, 3))}
    text = render(Trace("cnn", "cnn", [], [], "half_squared_error", "", 0.1, [step], []), "terminal")
    assert "channel 2" in text and "kernel 2, channel 1" in text and "2.7500" in text


def solve_lecture_rnn():
    from deltalab.examples import example_path
    from deltalab.problem import load_problem
    from deltalab.recorder import solve_problem

    return solve_problem(load_problem(example_path("rnn-many-to-many-identity")))


def test_real_trace_of_the_lecture_rnn_renders_in_every_format():
    trace = solve_lecture_rnn()
    for fmt in FORMATS:
        text = render(trace, fmt)
        assert text.strip()
    terminal = render(trace, "terminal")
    assert "0.5898" in terminal and "-0.0084" in terminal and "0.1039" in terminal  # SPEC §4
    assert "0.2723  0.1670  0.1167  0.1000" in terminal                              # W1 rows after
    data = json.loads(render(trace, "json"))
    assert abs(data["loss"] - 0.589768) < 1e-6
    assert np.allclose(data["parameters_after"]["H1"], 0.103870, atol=1e-6)

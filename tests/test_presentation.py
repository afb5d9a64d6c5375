"""Worked solutions as a student reads them: the largest chain-rule paths first with the rest
summed on screen, maths notation in every format, the terminal's width respected, the problem's
own description shown, and the problem-file conveniences of the CLI.

Numbers are checked against an independent path (the LSTM cell recomputed in plain Python and
differentiated by torch), text against what the lecture writes."""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from deltalab.cli import main
from deltalab.examples import example_path
from deltalab.problem import load_problem
from deltalab.report import render
from deltalab.report.terminal import render as terminal
from deltalab.recorder import solve_problem


@pytest.fixture(scope="module")
def lstm():
    return solve_problem(load_problem(example_path("eq-lstm-cell")))


def lstm_by_hand():
    """The eq-lstm-cell example (x = 1, −0.5, 2; y = 0.5; loss at the last step) in torch:
    (∂L/∂w_xi by autograd, the direct path ∂L(3)/∂h(3)·∂h(3)/∂C(3)·∂C(3)/∂i(3)·∂i(3)/∂w_xi)."""
    p = {"w_xi": 0.5, "w_hi": -0.25, "b_i": 0.1, "w_xf": 0.25, "w_hf": 0.5, "b_f": 1.0,
         "w_xo": -0.5, "w_ho": 0.25, "b_o": 0.0, "w_xg": 1.0, "w_hg": -0.5, "b_g": 0.2}
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    h = c = torch.tensor(0.0, dtype=torch.float64)
    for x in (1.0, -0.5, 2.0):
        i = torch.sigmoid(w["w_xi"] * x + w["w_hi"] * h + w["b_i"])
        f = torch.sigmoid(w["w_xf"] * x + w["w_hf"] * h + w["b_f"])
        o = torch.sigmoid(w["w_xo"] * x + w["w_ho"] * h + w["b_o"])
        g = torch.tanh(w["w_xg"] * x + w["w_hg"] * h + w["b_g"])
        c = f * c + i * g
        h = o * torch.tanh(c)
    loss = 0.5 * (h - 0.5) ** 2
    loss.backward()
    i3, o3, g3, c3, h3 = (float(v.detach()) for v in (i, o, g, c, h))
    direct = (h3 - 0.5) * o3 * (1 - math.tanh(c3) ** 2) * g3 * i3 * (1 - i3) * 2.0
    return float(w["w_xi"].grad), direct


def test_the_largest_path_comes_first_and_the_displayed_terms_add_up(lstm):
    total, direct = lstm_by_hand()
    assert total == pytest.approx(-0.0216, abs=5e-5) and direct == pytest.approx(-0.0148, abs=5e-5)
    paths = lstm.steps[0].paths["w_xi"]
    assert paths.total == 30 and len(paths.paths) == 6
    assert paths.paths[0].nodes == ["L(3)", "h(3)", "C(3)", "i(3)", "w_xi"]
    assert float(paths.paths[0].value) == pytest.approx(direct, rel=1e-12)
    sizes = [abs(float(p.value)) for p in paths.paths]
    assert sizes == sorted(sizes, reverse=True)

    lines = terminal(lstm, width=200).splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("∂L/∂w_xi = ∂L(3)/∂h(3)"))
    chain = []
    for line in lines[start:]:
        if not line.strip():
            break
        chain.append(line)
    values = next(line for line in chain if "more paths" in line and "=" in line and "∂" not in line)
    assert "(24 more paths" in values
    body = re.sub(r"\(24 more paths[^)]*\)", "", values.split("=", 1)[1])
    terms = [float(s.replace(" ", "").replace("−", "-")) for s in re.findall(r"[+−-]?\s*\d+\.\d{4}", body)]
    assert len(terms) == 7 and terms[0] == -0.0148       # the direct path is shown first
    shown = float(chain[-1].split("=")[-1])
    assert shown == round(total, 4)
    # what is on screen adds up exactly to the total on screen (the last term carries the rounding)
    assert round(sum(terms) * 1e4) == round(shown * 1e4)
    assert abs(sum(terms[:-1]) + terms[-1] - total) <= 0.5e-4 * len(terms)


def test_every_format_shows_the_ranked_paths_and_the_rest(lstm):
    for fmt in ("markdown", "latex", "html"):
        text = render(lstm, fmt)
        assert re.search(r"24 (\\text\{)?more paths", text) and "the 6 largest shown" in text, fmt
        assert ("−0.0148" if fmt == "html" else "-0.0148") in text, fmt


def test_double_signs_are_written_as_maths_writes_them():
    for name in ("eq-lstm-cell", "mlp-relu-exam-network", "eq-relu-exam-network", "rnn-many-to-one-identity"):
        trace = solve_problem(load_problem(example_path(name)))
        text = render(trace, "terminal")
        assert not re.search(r"[+−·] -\d", text), name       # no "+ -0.0018", "0.5 · -0.0216"
    text = render(solve_problem(load_problem(example_path("eq-lstm-cell"))), "terminal")
    assert "w_xi − η · ∂L/∂w_xi = 0.5000 − 0.5 · (-0.0216) = 0.5108" in text
    assert "= -0.0050 − 0.0018 − 0.0148" in text            # Σ_t of ∂L/∂w_xi, not "+ -0.0018"


def test_html_minus_signs_subscripts_and_layer_indices():
    skip = render(solve_problem(load_problem(example_path("eq-sigmoid-skip-network"))), "html")
    assert "b<sup>" not in skip and "w<sup>" not in skip     # b1 is written as typed, like w1
    mlp = render(solve_problem(load_problem(example_path("mlp-relu-exam-network"))), "html")
    assert "W<sup>[1]</sup>" in mlp and "b<sup>[1]</sup>" in mlp  # a layer index in the layered models
    assert "half squared error" in mlp and "<sub>squared" not in mlp
    lstm = render(solve_problem(load_problem(example_path("eq-lstm-cell"))), "html")
    assert "w<sub>xi</sub>" in lstm and "(h − y)²" in lstm and "^2" not in lstm
    assert "Σ<sub>t</sub> ∂L/∂i(t)" in lstm and "Σ_t" not in lstm
    cells = re.findall(r"<td>([^<]*)</td>", mlp) + re.findall(r'<span class="num">([^<]*)</span>', mlp)
    assert cells and not [c for c in cells if re.match(r"-\d", c)]
    assert any(c.startswith("−") for c in cells)


def test_equation_operators_are_written_as_maths():
    trace = solve_problem(load_problem(example_path("eq-alarmwork-net")))
    for fmt in ("terminal", "markdown", "html"):
        text = render(trace, fmt)
        equations = text[text.index("Equations"):text.index("Loss function")]
        assert "@" not in equations and "%" not in equations and "==" not in equations, fmt
        assert "t mod 2 = 0" in equations, fmt
    latex = render(trace, "latex")
    assert "@" not in latex[latex.index(r"\begin{align*}"):]


def test_whole_numbers_keep_the_decimals_of_the_values_beside_them():
    text = render(solve_problem(load_problem(example_path("mlp-relu-exam-network"))), "terminal")
    assert "δ[2] = y − t = [0.0000  -1.5000]  −  [1.0000  0.5000] = [-1.0000  -2.0000]" in text \
        or re.search(r"δ\[2\] = y − t = \[0\.0000  -1\.5000\] +− +\[1\.0000  0\.5000\] = \[-1\.0000  -2\.0000\]", text)
    assert "x[1] = [2.0000  0.0000]" in text                 # beside z[1] = [2.0000  -0.5000]


def test_vectors_are_rows_in_every_format():
    trace = solve_problem(load_problem(example_path("mlp-relu-exam-network")))
    assert "b1 = [0.5000  -0.5000]" in render(trace, "terminal")
    assert r"\begin{bmatrix}0.5000 & -0.5000\end{bmatrix}" in render(trace, "latex")
    assert r"\begin{bmatrix}0.5000 & -0.5000\end{bmatrix}" in render(trace, "markdown", maths=True)
    assert "<tr><td>0.5000</td><td>−0.5000</td></tr></table>" in render(trace, "html")


def _solve_cli(args, columns):
    env = dict(os.environ, COLUMNS=str(columns))
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", *args], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


NUMBER = re.compile(r"-?\d+\.\d+(?:e[+-]\d+)?")


@pytest.mark.parametrize("columns", [80, 120])
def test_piped_terminal_output_fits_the_width_and_never_splits_a_number(columns):
    text = _solve_cli(["--example", "eq-alarmwork-net"], columns)
    long = [line for line in text.splitlines() if len(line) > columns]
    assert not long, long[:3]
    wide = _solve_cli(["--example", "eq-alarmwork-net"], 1000)
    # the same numbers: wrapping moved them (matrices stacked instead of side by side), never cut one
    assert sorted(NUMBER.findall(text)) == sorted(NUMBER.findall(wide))
    assert max(len(line) for line in wide.splitlines()) > 120  # the width is honoured, not fixed


def test_the_problem_description_is_shown_in_every_format(tmp_path):
    description = load_problem(example_path("eq-lstm-cell")).description
    words = "gates by sigmoid, candidate by tanh"
    assert words in description
    for fmt in ("terminal", "markdown", "latex", "html"):
        out = tmp_path / f"out.{fmt}"
        assert main(["solve", "--example", "eq-lstm-cell", "--format", fmt, "-o", str(out)]) == 0
        assert words in " ".join(out.read_text().split()), fmt


def test_examples_prints_and_copies_a_problem_file(tmp_path, capsys):
    original = example_path("eq-lstm-cell").read_text()
    assert main(["examples", "eq-lstm-cell"]) == 0
    assert capsys.readouterr().out == original
    assert main(["examples", "eq-lstm-cell", "--copy", str(tmp_path)]) == 0
    copied = tmp_path / "eq-lstm-cell.toml"
    assert copied.read_text() == original
    assert main(["solve", str(copied), "-o", str(tmp_path / "sol.txt")]) == 0
    capsys.readouterr()
    # a second copy would overwrite the student's edits: refused, one line, exit 2
    assert main(["examples", "eq-lstm-cell", "--copy", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and len(err.strip().splitlines()) == 1
    assert main(["examples", "no-such-example"]) == 2
    assert "no built-in example 'no-such-example'" in capsys.readouterr().err


def test_summary_of_a_built_in_example(capsys):
    assert main(["summary", "--example", "mlp-relu-exam-network"]) == 0
    out = capsys.readouterr().out
    # W1 (2×2) + b1 (2) + W2 (2×2) + b2 (2) = 12 parameters
    assert "dense" in out and re.search(r"total\s*│\s*│\s*│\s*12", out)
    assert main(["summary", "--example", "eq-lstm-cell"]) == 0
    assert "w_xi" in capsys.readouterr().out


def test_train_summary_lines_are_split_between_fields():
    from deltalab.commands.train import fitted

    line = ("digits-cnn: epoch 2/2  test accuracy 35.00 %  test loss 1.9876  train accuracy 40.00 %  "
            "train loss 1.8765  time 3.2 s  seed 0  dtype float32")
    lines = fitted(line, 80)
    assert all(len(part) <= 80 for part in lines) and len(lines) == 2
    assert " ".join(" ".join(lines).split()) == " ".join(line.split())


def test_a_last_step_loss_says_which_step_it_is(lstm):
    text = " ".join(render(lstm, "terminal").split())
    assert "L = L(3) = 0.0456" in text
    assert "Only the last step's loss counts: L = L(3), so ∂L/∂L(1) = ∂L/∂L(2) = 0." in text
    summed = render(solve_problem(load_problem(example_path("eq-alarmwork-net"))), "terminal")
    assert "E = E(1) + E(2) + E(3) + E(4) = 1.0550" in summed and "Only the last step" not in summed


def test_exact_mode_writes_a_plain_number_once():
    from deltalab.problem import load_problem as load

    trace = solve_problem(load(example_path("eq-sigmoid-skip-network")), exact=True)
    text = render(trace, "terminal")
    exact = text[text.index("Exact values"):text.index("Backward pass")]
    # ∂a2/∂h = w2 = −2 (w2 = −2 in the file); σ′(0) = 1/4
    assert "∂a2/∂h = w2 = −2\n" in exact and "= −2 = -2.0000" not in exact
    assert "∂h/∂a1 = (1 − sigmoid(a1))·sigmoid(a1) = 0.25\n" in exact
    assert "unknown symbols)" not in exact


def test_a_jacobian_with_three_axes_says_how_it_is_written():
    text = " ".join(render(solve_problem(load_problem(example_path("eq-alarmwork-net"))), "terminal").split())
    assert "∂z1(1)/∂w_in1 = Jacobian 2×2×2, written 2×4" in text
    assert "a row per output entry and a column per input entry" in text


def test_every_built_in_example_fits_80_columns():
    from deltalab.examples import example_names

    for name in example_names():
        text = terminal(solve_problem(load_problem(example_path(name))), width=80)
        assert max(len(line) for line in text.splitlines()) <= 80, name


def test_a_wide_matrix_is_written_in_blocks_of_columns_with_every_entry():
    trace = solve_problem(load_problem(example_path("cnn-conv-10x10-to-10x10x5")))
    narrow, wide = terminal(trace, width=80), terminal(trace, width=2000)
    assert "z[1] = channel 1: columns 1–7" in narrow and "columns 8–10" in narrow
    assert "columns" not in wide
    assert sorted(NUMBER.findall(narrow)) == sorted(NUMBER.findall(wide))


TARGET_T = """title = "A target named t, as the lecture writes it"
[model]
type = "equations"
loss = "L"
[equations]
y = "w * x"
L = "0.5 * (t - y)**2"
[parameters]
w = 0.5
[data]
x = 2.0
t = 3.0
[training]
learning_rate = 0.1
"""


def test_t_is_a_name_where_there_is_no_step_index(tmp_path, capsys):
    path = tmp_path / "target.toml"
    path.write_text(TARGET_T)
    out = tmp_path / "sol.json"
    assert main(["solve", str(path), "--format", "json", "-o", str(out)]) == 0
    import json

    data = json.loads(out.read_text())
    # y = 0.5·2 = 1, L = ½(3 − 1)² = 2, ∂L/∂w = −(t − y)·x = −4
    assert data["loss"] == 2.0 and data["gradients"]["w"] == -4.0
    recurrent = TARGET_T.replace("[equations]", '[recurrence]\nh = "w * h[t-1] + x"\n[initial]\nh = 0.0\n[equations]')
    path.write_text(recurrent)
    assert main(["solve", str(path)]) == 2
    assert "the name 't' is reserved for the step index t" in capsys.readouterr().err


def test_a_cnn_without_targets_names_every_symbol_and_no_loss():
    text = render(solve_problem(load_problem(example_path("cnn-feature-detectors"))), "terminal")
    equations = text[text.index("Equations"):text.index("Parameters before")]
    # layer 1 has no activation: x[1] = z[1] before max_pool2d reads it
    assert equations.index("z[1] = W1 ⋆ x[0]") < equations.index("x[1] = z[1]") < equations.index("max_pool2d(x[1])")
    assert "E = ½" not in equations and "Loss function" not in text
    assert "No targets: forward pass only." in text


def test_training_report_lists_only_the_settings_a_run_used():
    from deltalab.training.report import settings
    from deltalab.training import TrainConfig

    adam = dict(settings(TrainConfig("digits-cnn", 2, 32, 0.01, "adam", "constant")))
    assert "momentum" not in adam and "limit" not in adam and "problem" not in adam
    assert adam["optimizer"] == "adam" and adam["epochs"] == 2
    sgd = dict(settings(TrainConfig("digits-cnn", 2, 32, 0.01, "sgd", "constant", momentum=0.5, limit=160)))
    assert sgd["momentum"] == 0.5 and sgd["limit"] == 160


def test_graph_svg_draws_every_node_with_its_value_and_delta(tmp_path, capsys):
    pytest.importorskip("networkx")
    pytest.importorskip("matplotlib")
    import xml.etree.ElementTree as ElementTree

    svg = tmp_path / "lstm.svg"
    assert main(["solve", "--example", "eq-lstm-cell", "--graph", str(svg), "-o", str(tmp_path / "sol.txt")]) == 0
    root = ElementTree.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for node in ("h(3)", "C(1)", "w_xi", "L(3)"):
        assert node in text, node
    total, _ = lstm_by_hand()
    assert f"δ {total:.3f}".replace("-", "−") in text     # the gradient of w_xi, −0.022
    # a picture that cannot be written: one line naming the path, exit 2, nothing written
    missing = tmp_path / "no-such-directory" / "m.svg"
    assert main(["solve", "--example", "mlp-relu-exam-network", "--graph", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and len(err.strip().splitlines()) == 1 and not missing.parent.exists()

"""``deltalab generate``: for every shipped template, variants whose constraints hold by the
test's own computation (exact fractions or torch, never the generator's predicates), whose
files solve to their key, whose answers files check gives full marks, whose Moodle quiz
matches the key; planted mistakes that check names alone; keys of several training steps
(torch); determinism, bounded draws and template errors.

Generated folders are shared per module (fixtures); where the count of variants does not
matter (pdflatex) two are made."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from deltalab.exercises import generate, template_names
from deltalab.problem import load_problem
from deltalab.report.json_report import step_dict
from deltalab.recorder import solve_problem

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# variants per template: 50 in all
COUNTS = {"relu-exam-network": 8, "sigmoid-skip-network": 6, "rnn-many-to-many-identity": 6,
          "rnn-many-to-one-softmax": 6, "elman-relu-cell": 8, "lstm-cell": 4, "feature-detectors": 6,
          "conv-pool-dense": 6}
SEED = 7


def test_every_shipped_template_is_tested():
    assert sorted(COUNTS) == template_names()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each shipped template generated once, written to its own folder."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (generate(name, variants=COUNTS[name], seed=SEED, out=out, moodle=True, stress=True), out)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def made_for_latex(tmp_path_factory):
    """Two variants of a template, LaTeX only: compiling is what is tested, not the count."""
    cache = {}

    def get(name, mistake=None):
        if (name, mistake) not in cache:
            out = tmp_path_factory.mktemp(f"{name}-latex")
            cache[name, mistake] = generate(name, variants=2, seed=SEED, out=out, formats=("latex",),
                                            plant_mistake=mistake), out
        return cache[name, mistake]

    return get


def _toml(path):
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


def _variants(out):
    return sorted(out.glob("variant-*.toml"))


def _answers(out, variant):
    return _toml(out / "answers" / variant.name)


def _decimals_ok(value, d):
    v = np.asarray(value, dtype=np.float64).reshape(-1) * 10 ** d
    return bool(np.all(np.abs(v - np.round(v)) < 1e-6))


def _fractions(value):
    return [Fraction(str(v)) for v in np.asarray(value, dtype=np.float64).reshape(-1)]


# ------------------------------------------------------------------ each template, its own maths
def test_relu_exam_network_by_exact_fractions(made):
    result, out = made("relu-exam-network")
    for path in _variants(out):
        p = _toml(path)
        fr = np.vectorize(lambda v: Fraction(str(v)), otypes=[object])
        W1, b1, W2, b2 = (fr(np.array(p["parameters"][k], dtype=float)) for k in ("W1", "b1", "W2", "b2"))
        x, t = fr(np.array(p["data"]["inputs"], dtype=float)), fr(np.array(p["data"]["targets"], dtype=float))
        lr = Fraction(str(p["training"]["learning_rate"]))
        z1 = W1.dot(x) + b1
        x1 = np.array([max(v, 0) for v in z1], dtype=object)
        y = W2.dot(x1) + b2
        d2 = y - t
        loss = sum(v * v for v in d2) / 2
        d1 = W2.T.dot(d2) * np.array([1 if v > 0 else 0 for v in z1], dtype=object)
        gW1, gW2 = np.outer(d1, x), np.outer(d2, x1)
        b1_after = b1 - lr * d1
        every = [loss, *z1, *x1, *y, *d2, *d1, *gW1.ravel(), *gW2.ravel(), *(W1 - lr * gW1).ravel(),
                 *(W2 - lr * gW2).ravel(), *b1_after, *(b2 - lr * d2)]
        assert all((v * 1000).denominator == 1 for v in every), path.name  # decimals = 3
        assert all(v > 0 for v in z1)  # no dead ReLU
        assert all(v != 0 for v in [*gW1.ravel(), *gW2.ravel(), *d1])  # asked gradients (W1, W2, b1) ≠ 0
        key = _answers(out, path)
        assert Fraction(str(key["loss"])) == loss
        assert _fractions(key["deltas"]["z[1]"]) == list(d1) and _fractions(key["deltas"]["z[2]"]) == list(d2)
        assert _fractions(key["gradients"]["W1"]) == list(gW1.ravel())
        assert _fractions(key["gradients"]["W2"]) == list(gW2.ravel())
        assert _fractions(key["parameters_after"]["b1"]) == list(b1_after)


def test_elman_relu_cell_by_exact_fractions(made):
    result, out = made("elman-relu-cell")
    for path in _variants(out):
        p = _toml(path)
        w = {k: Fraction(str(v)) for k, v in p["parameters"].items()}
        xs = [Fraction(str(v)) for v in p["data"]["x"]]
        ys = [Fraction(str(v)) for v in p["data"]["y"]]
        lr = Fraction(str(p["training"]["learning_rate"]))
        h, pre, out_pre, yhat = [Fraction(0)], [], [], []
        for x in xs:
            pre.append(h[-1] * w["w_hh"] + w["w_xh"] * x)
            h.append(max(pre[-1], 0))
            out_pre.append(h[-1] * w["w_hy"])
            yhat.append(max(out_pre[-1], 0))
        loss = sum((a - b) ** 2 for a, b in zip(yhat, ys))
        dyhat = [2 * (a - b) for a, b in zip(yhat, ys)]
        dout = [d * (1 if o > 0 else 0) for d, o in zip(dyhat, out_pre)]
        dh2 = dout[1] * w["w_hy"]
        dpre2 = dh2 * (1 if pre[1] > 0 else 0)
        dh1 = dout[0] * w["w_hy"] + dpre2 * w["w_hh"]
        dpre1 = dh1 * (1 if pre[0] > 0 else 0)
        g = {"w_hy": dout[0] * h[1] + dout[1] * h[2], "w_hh": dpre1 * h[0] + dpre2 * h[1],
             "w_xh": dpre1 * xs[0] + dpre2 * xs[1]}
        every = [*pre, *h, *out_pre, *yhat, loss, *dyhat, dh2, dh1, *g.values(), *(w[k] - lr * g[k] for k in g)]
        assert all((v * 100).denominator == 1 for v in every), path.name  # decimals = 2
        assert all(v > 0 for v in pre + out_pre)  # no dead ReLU
        assert all(v != 0 for v in g.values())
        key = _answers(out, path)
        assert Fraction(str(key["loss"])) == loss
        assert Fraction(str(key["deltas"]["h(2)"])) == dh2 and Fraction(str(key["deltas"]["h(1)"])) == dh1
        assert {k: Fraction(str(v)) for k, v in key["gradients"].items()} == g
        assert Fraction(str(key["forward"]["h(1)"])) == h[1]


def _t(value):
    return torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64, requires_grad=True)


def _close(answer, value, rel=1e-9):
    np.testing.assert_allclose(np.asarray(answer, dtype=float), np.asarray(value, dtype=float), rtol=rel, atol=1e-12)


@pytest.mark.parametrize("name", ["rnn-many-to-many-identity", "rnn-many-to-one-softmax"])
def test_elman_rnn_templates_by_torch(made, name):
    result, out = made(name)
    for path in _variants(out):
        p = _toml(path)
        par = {k: _t(v) for k, v in p["parameters"].items()}
        xs = torch.tensor(p["data"]["inputs"], dtype=torch.float64)
        target = torch.tensor(p["data"]["targets"], dtype=torch.float64)
        h = torch.tensor(p["data"]["initial_state"], dtype=torch.float64)
        hidden, pre, outputs = [], [], []
        for x in xs:
            z = par["W1"] @ x + par["H1"] @ h + par["b1"]
            z.retain_grad()
            pre.append(z)
            h = torch.tanh(z)
            hidden.append(h)
            outputs.append(par["W2"] @ h + par["b2"])
        if name.endswith("softmax"):
            y = torch.softmax(outputs[-1], dim=0)
            loss = -(target * torch.log_softmax(outputs[-1], dim=0)).sum()
            top = torch.sort(y.detach()).values
            assert float(top[-1] - top[-2]) > 1e-9  # no tie in the argmax
        else:
            loss = 0.5 * sum(((o - t) ** 2).sum() for o, t in zip(outputs, target))
        loss.backward()
        assert max(float(v.detach().abs().max()) for v in hidden) <= 0.9  # no saturation
        for k in ("W1", "H1", "W2"):  # the asked gradients
            assert bool((par[k].grad != 0).all()), (path.name, k)
        key = _answers(out, path)
        _close(key["loss"], loss.item())
        for k in ("W1", "H1", "W2"):
            _close(key["gradients"][k], par[k].grad.numpy())
        _close(key["deltas"]["z[1](1)"], pre[0].grad.numpy())
        _close(key["deltas"]["z[1](2)"], pre[1].grad.numpy())


def test_sigmoid_skip_network_by_torch(made):
    result, out = made("sigmoid-skip-network")
    for path in _variants(out):
        p = _toml(path)
        w = {k: _t(v) for k, v in p["parameters"].items()}
        y = p["data"]["y"]
        h = torch.sigmoid(w["w1"] * w["x"] + w["b1"])
        yhat = torch.sigmoid(w["w2"] * h + w["x"])
        loss = (yhat - y) ** 2
        loss.backward()
        assert all(0.1 <= s.item() <= 0.9 for s in (h, yhat))
        assert all(float(v.grad) != 0 for v in w.values())
        key = _answers(out, path)
        _close(key["loss"], loss.item())
        _close(key["forward"]["h"], h.item())
        _close(key["outputs"]["yhat"], yhat.item())
        for k in ("w1", "b1", "w2", "x"):
            _close(key["gradients"][k], w[k].grad.item())


def test_lstm_cell_by_torch(made):
    result, out = made("lstm-cell")
    for path in _variants(out):
        p = _toml(path)
        w = {k: _t(v) for k, v in p["parameters"].items()}
        h, c, gates, cells = torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64), [], []
        for x in p["data"]["x"]:
            i = torch.sigmoid(w["w_xi"] * x + w["w_hi"] * h + w["b_i"])
            f = torch.sigmoid(w["w_xf"] * x + w["w_hf"] * h + w["b_f"])
            o = torch.sigmoid(w["w_xo"] * x + w["w_ho"] * h + w["b_o"])
            g = torch.tanh(w["w_xg"] * x + w["w_hg"] * h + w["b_g"])
            c = f * c + i * g
            c.retain_grad()
            cells.append(c)
            h = o * torch.tanh(c)
            gates += [i, f, o]
            assert abs(g.item()) <= 0.9 and abs(torch.tanh(c).item()) <= 0.9
        loss = 0.5 * (h - p["data"]["y"]) ** 2
        loss.backward()
        assert all(0.1 <= s.item() <= 0.9 for s in gates)
        assert float(w["w_xg"].grad) != 0 and float(w["b_f"].grad) != 0
        key = _answers(out, path)
        _close(key["loss"], loss.item())
        _close(key["forward"]["C(1)"], cells[0].item())
        _close(key["deltas"]["C(1)"], cells[0].grad.item())
        _close(key["gradients"]["w_xg"], w["w_xg"].grad.item())
        _close(key["gradients"]["b_f"], w["b_f"].grad.item())


def _windows_unique(x, k, s):
    x = np.asarray(x)
    for c in range(x.shape[0]):
        for i in range(0, x.shape[1] - k + 1, s):
            for j in range(0, x.shape[2] - k + 1, s):
                window = np.sort(x[c, i:i + k, j:j + k].ravel())
                if window[-1] - window[-2] < 1e-9:
                    return False
    return True


def test_feature_detectors_by_torch(made):
    result, out = made("feature-detectors")
    for path in _variants(out):
        p = _toml(path)
        image = torch.tensor([p["data"]["inputs"]], dtype=torch.float64)
        kernels = torch.tensor(p["parameters"]["W1"], dtype=torch.float64)
        z = torch.nn.functional.conv2d(image, kernels, padding=1)[0]
        assert _windows_unique(z.numpy(), 2, 2)
        y = torch.nn.functional.max_pool2d(z, 2)
        assert _decimals_ok(z.numpy(), 0) and _decimals_ok(y.numpy(), 0)  # decimals = 0
        key = _answers(out, path)
        np.testing.assert_array_equal(np.asarray(key["forward"]["z[1]"]), z.numpy())
        np.testing.assert_array_equal(np.asarray(key["outputs"]["y"]), y.numpy())


def test_conv_pool_dense_by_torch(made):
    result, out = made("conv-pool-dense")
    for path in _variants(out):
        p = _toml(path)
        W1, W4, b4 = (_t(p["parameters"][k]) for k in ("W1", "W4", "b4"))
        image = torch.tensor([p["data"]["inputs"]], dtype=torch.float64)
        z1 = torch.nn.functional.conv2d(image, W1)
        z1.retain_grad()
        x1 = torch.relu(z1)
        x2 = torch.nn.functional.max_pool2d(x1, 2, stride=1)
        y = torch.nn.functional.linear(x2.flatten(1), W4, b4)
        loss = 0.5 * ((y - torch.tensor(p["data"]["targets"], dtype=torch.float64)) ** 2).sum()
        loss.backward()
        assert bool((z1 > 0).all())
        assert _windows_unique(x1[0].detach().numpy(), 2, 1)
        assert bool((W1.grad != 0).all()) and bool((W4.grad != 0).all())
        lr = p["training"]["learning_rate"]
        for value in (z1, x2, y, loss, z1.grad, W1.grad, W4.grad, W1 - lr * W1.grad, W4 - lr * W4.grad, b4 - lr * b4.grad):
            assert _decimals_ok(value.detach().numpy(), 2)
        key = _answers(out, path)
        _close(key["loss"], loss.item())
        _close(key["gradients"]["W1"], W1.grad.numpy())
        _close(key["gradients"]["W4"], W4.grad.numpy())
        _close(key["deltas"]["z[1]"], z1.grad[0].numpy())


# ------------------------------------------------------------------ files agree with each other
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_solving_each_variant_file_reproduces_its_key(made, name):
    result, out = made(name)
    assert len(_variants(out)) == COUNTS[name]
    for path in _variants(out):
        data = step_dict(solve_problem(load_problem(path)).steps[0])
        key = _answers(out, path)
        for section, table in key.items():
            if section == "loss":
                _close(table, data["loss"], rel=1e-9)
                continue
            for k, value in table.items():
                _close(value, data[section][k], rel=1e-9)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_the_moodle_quiz_has_one_cloze_question_per_variant_with_the_keys_numbers(made, name):
    result, out = made(name)
    root = ET.parse(out / "quiz.xml").getroot()
    assert root.tag == "quiz"
    questions = [q for q in root.findall("question") if q.get("type") == "cloze"]
    assert len(questions) == COUNTS[name]
    raw = (out / "quiz.xml").read_text(encoding="utf-8")
    assert raw.count('<questiontext format="html">\n      <text><![CDATA[') == COUNTS[name]  # HTML kept verbatim
    settings = _toml(Path(__file__).parents[1] / f"src/deltalab/examples/templates/{name}.toml")["generate"]
    # half a unit of the last decimal of an exact key, else one unit of the 4th shown decimal
    wanted = 0.5 * 10.0 ** -settings["decimals"] if "decimals" in settings else 1e-4
    assert [q.get("type") for q in root.findall("question")].count("category") == 1
    for question, path in zip(questions, _variants(out)):
        text = question.find("questiontext/text").text
        blanks = re.findall(r"\{1:NUMERICAL:=([^:}]+):([^}]+)\}", text)
        key = _answers(out, path)
        variant = result.variants[int(path.stem[-2:]) - 1]
        expected = []  # in the order the question asks, values from the answers file
        for q in variant.quantities:
            value = key["loss"] if q.section == "loss" else key[q.section][q.key]
            expected += np.asarray(value, dtype=float).reshape(-1).tolist()
        assert len(blanks) == len(expected)
        tolerance = float(blanks[0][1])
        assert {float(t) for _, t in blanks} == {tolerance} == {wanted}
        np.testing.assert_allclose([float(v) for v, _ in blanks], expected, atol=tolerance)
        assert question.find("name/text").text.endswith(f"variant {int(path.stem[-2:])}")


def test_sheets_ask_without_answers_and_keys_carry_the_worked_solution(made):
    result, out = made("relu-exam-network")
    sheet, key = (out / "sheet.md").read_text(), (out / "key.md").read_text()
    assert sheet.count("## Variant ") == COUNTS["relu-exam-network"]
    assert "Answers" not in sheet and "Backward pass" not in sheet
    assert key.count("### Answers") == COUNTS["relu-exam-network"] and "Backward pass" in key
    html_sheet = (out / "sheet.html").read_text()
    assert html_sheet.startswith("<!DOCTYPE html>") and html_sheet.count("<h2 id=\"variant-") == COUNTS["relu-exam-network"]
    assert "Worked solution" in (out / "key.html").read_text()


def test_stress_report_counts_tries_and_ranges(made):
    result, out = made("conv-pool-dense")
    import json

    stress = json.loads((out / "stress.json").read_text())
    assert stress["variants"] == COUNTS["conv-pool-dense"] == len(stress["tries_per_variant"])
    assert stress["draws"] == sum(stress["tries_per_variant"]) == stress["variants"] + sum(stress["rejected"].values())
    assert set(stress["constraints"]) == {"decimals", "no_dead_relu", "no_ties", "nonzero_gradients", "distinct"}
    assert stress["plant_mistake"] is None
    loss = [_answers(out, p)["loss"] for p in _variants(out)]
    assert stress["ranges"]["loss"] == {"min": min(loss), "max": max(loss)}


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("name, mistake", [("relu-exam-network", None), ("lstm-cell", None),
                                           ("rnn-many-to-one-softmax", None), ("conv-pool-dense", None),
                                           ("rnn-many-to-many-identity", "sum_over_time_missing")])
def test_the_latex_sheet_and_key_compile_with_pdflatex(made_for_latex, name, mistake):
    result, out = made_for_latex(name, mistake)
    assert (out / "key.tex").read_text().count(r"\subsection*{Variant") == 2
    for document in ("sheet.tex", "key.tex"):
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document], cwd=out,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert (out / document.replace(".tex", ".pdf")).stat().st_size > 1000


# ------------------------------------------------------------------ determinism, limits, errors
def test_the_same_template_and_seed_give_byte_identical_files(tmp_path):
    first = generate("relu-exam-network", variants=3, seed=11, out=tmp_path / "a", moodle=True, stress=True)
    second = generate("relu-exam-network", variants=3, seed=11, out=tmp_path / "b", moodle=True, stress=True)
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    differing = [n for n in names if (tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes()]
    assert differing == []
    assert first.files["variant-01.toml"] == second.files["variant-01.toml"]
    other = generate("relu-exam-network", variants=3, seed=12)
    assert other.files["variant-01.toml"] != first.files["variant-01.toml"]


def _givens(data):
    """A problem file's numbers (parameters and data) as floats, however they were spelt."""
    def canonical(value):
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    return repr(canonical({"parameters": data.get("parameters", {}), "data": data.get("data", {})}))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_distinct_variants_differ_from_each_other_and_from_the_original(made, name):
    result, out = made(name)
    numbers = [_givens(_toml(p)) for p in _variants(out)]
    assert len(set(numbers)) == len(numbers) == COUNTS[name]
    template = _toml(Path(__file__).parents[1] / f"src/deltalab/examples/templates/{name}.toml")
    assert template["generate"]["distinct"] is True
    original = template["generate"].get("original")
    if original is not None:
        assert _givens(_toml(Path(__file__).parents[1] / f"src/deltalab/examples/{original}.toml")) not in numbers


IMPOSSIBLE = """
[model]
type = "mlp"
input_shape = [2]
[[model.layers]]
type = "dense"
units = 2
activation = "relu"
[parameters]
W1 = {choices = [-1, -0.5]}
b1 = [0, 0]
[data]
inputs = {ints = [1, 2]}
targets = [0, 0]
[training]
learning_rate = 0.1
[generate]
no_dead_relu = true
max_tries = 30
"""


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "deltalab.cli", *args], capture_output=True, text=True, timeout=120)


def _main(capsys, *args):
    """The command line in this process (the refusals' wording and exit code, without a
    process start each): (exit code, stdout, stderr)."""
    from deltalab.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def test_constraints_that_cannot_be_met_stop_with_one_line_naming_the_constraint(tmp_path):
    template = tmp_path / "dead.toml"
    template.write_text(IMPOSSIBLE)
    run = _cli("generate", str(template), "--variants", "2", "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_dead_relu rejected 30" in lines[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("change, message", [
    ("max_tries = 30", "generate.max_trys: unknown key; did you mean 'max_tries'?"),
    ("no_dead_relu = true", "generate.no_dead_relu: expected true or false, got 'yes'"),
    ("[generate]", "generate: missing table [generate]"),
])
def test_template_mistakes_name_the_field(tmp_path, capsys, change, message):
    replacement = {"max_tries = 30": "max_trys = 30", "no_dead_relu = true": 'no_dead_relu = "yes"',
                   "[generate]": ""}[change]
    text = IMPOSSIBLE.replace(change, replacement)
    if change == "[generate]":
        text = text.replace("no_dead_relu = true\nmax_tries = 30\n", "")
    template = tmp_path / "bad.toml"
    template.write_text(text)
    run = _main(capsys, "generate", str(template), "--variants", "1", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_a_bad_draw_names_its_field(tmp_path, capsys):
    template = tmp_path / "bad.toml"
    template.write_text(IMPOSSIBLE.replace("inputs = {ints = [1, 2]}", "inputs = [{range = [0, 1]}, 1]"))
    run = _main(capsys, "generate", str(template), "--variants", "1", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and "data.inputs[0].step: a range needs a positive step" in run.stderr


def test_the_cli_writes_every_file_and_solve_reads_a_variant(tmp_path, capsys):
    run = _cli("generate", "--example", "sigmoid-skip-network", "--variants", "2", "--seed", "3", "--out",
               str(tmp_path), "--moodle", "--stress", "--format", "markdown")
    assert run.returncode == 0, run.stderr
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["answers/variant-01.toml", "answers/variant-02.toml", "key.md", "quiz.xml", "sheet.md",
                     "stress.json", "variant-01.toml", "variant-02.toml"]
    assert "2 variants from" in run.stdout and "rejected" in run.stdout
    here = generate("sigmoid-skip-network", variants=2, seed=3, moodle=True, stress=True, formats=("markdown",))
    assert sorted(here.files) == names  # and byte for byte what another process (other hash seed) wrote
    assert all((tmp_path / name).read_text(encoding="utf-8") == text for name, text in here.files.items())
    import json

    solved = json.loads(_main(capsys, "solve", str(tmp_path / "variant-02.toml"), "--format", "json").stdout)
    key = _toml(tmp_path / "answers" / "variant-02.toml")
    _close(key["loss"], solved["loss"])
    _close(key["gradients"]["w2"], solved["gradients"]["w2"])


def test_python_api_is_dl_generate():
    import deltalab as dl

    result = dl.generate("elman-relu-cell", variants=1, seed=5)
    assert "variant-01.toml" in result.files and "answers/variant-01.toml" in result.files
    assert result.files["sheet.md"].startswith("# Elman ReLU cell")


def test_exact_fractions_are_written_as_fractions():
    from deltalab.exercises import parse_template

    text = (Path(__file__).parents[1] / "src/deltalab/examples/templates/elman-relu-cell.toml").read_text()
    text = text.replace("decimals = 2", "exact = true\nmax_denominator = 16").replace("learning_rate = 0.1",
                                                                                      "learning_rate = 0.125").replace(
        '"gradients.w_xh"]', '"gradients.w_xh", "parameters_after.w_xh"]')
    result = generate(parse_template(text, "fractions.toml"), variants=2, seed=1)
    key = tomllib.loads(result.files["answers/variant-01.toml"])
    values = [v for table in key.values() if isinstance(table, dict) for v in table.values()] + [key["loss"]]
    assert all(isinstance(v, (int, str)) for v in values)
    assert any(isinstance(v, str) and "/" in v for v in values)
    for v in values:  # each a fraction with denominator ≤ 16
        assert Fraction(v).denominator <= 16


def test_a_draw_of_the_wrong_shape_names_the_template_and_the_parameter(tmp_path, capsys):
    template = tmp_path / "shape.toml"
    template.write_text(IMPOSSIBLE.replace("W1 = {choices = [-1, -0.5]}", "W1 = {choices = [1], shape = [3, 3]}"))
    run = _main(capsys, "generate", str(template), "--variants", "1", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert f"{template}: parameters.W1: expected shape (2, 2), got (3, 3)" in run.stderr


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_deltalab_check_gives_each_answers_file_full_marks(made, name):
    from deltalab.marking import check

    result, out = made(name)
    for path, variant in zip(_variants(out), result.variants):
        graded = check(path, out / "answers" / path.name)
        assert [q.verdict for q in graded.quantities] == ["right"] * len(variant.quantities), path.name
        assert graded.score == graded.max_score == len(variant.quantities)


def test_deltalab_check_from_the_command_line_gives_the_key_full_marks(made):
    import json

    result, out = made("rnn-many-to-one-softmax")
    path = _variants(out)[0]
    run = _cli("check", str(path), str(out / "answers" / path.name), "--format", "json")
    assert run.returncode == 0, run.stderr
    graded = json.loads(run.stdout)
    assert graded["score"] == graded["max_score"] == len(result.variants[0].quantities)


# ------------------------------------------------------------------ planted mistakes
# The mistakes each template must be able to host, by its structure (the library may find
# more): a ReLU net whose units are all active has relu′ = 1, so omitting it changes nothing;
# learning rate 1 (the RNN templates) makes θ − g the right update; the feature detectors'
# ring and centre kernels are symmetric (a flipped kernel is the same) and nothing is trained.
MUST_HOST = {
    "relu-exam-network": {"factor_dropped", "transposed", "update_sign", "learning_rate_missing", "loss_scale",
                          "stale_weights"},
    "sigmoid-skip-network": {"path_dropped", "factor_dropped", "derivative_omitted", "derivative_at_wrong_point",
                             "update_sign", "learning_rate_missing", "loss_scale"},
    "rnn-many-to-many-identity": {"path_dropped", "derivative_omitted", "derivative_at_wrong_point", "transposed",
                                  "update_sign", "loss_scale", "time_index_shifted", "sum_over_time_missing",
                                  "stale_weights"},
    "rnn-many-to-one-softmax": {"path_dropped", "derivative_omitted", "transposed", "update_sign", "cross_entropy_sign",
                                "time_index_shifted", "sum_over_time_missing", "stale_weights"},
    "elman-relu-cell": {"path_dropped", "factor_dropped", "update_sign", "learning_rate_missing", "loss_scale",
                        "time_index_shifted", "sum_over_time_missing"},
    "lstm-cell": {"path_dropped", "factor_dropped", "update_sign", "learning_rate_missing", "time_index_shifted",
                  "sum_over_time_missing"},
    "feature-detectors": set(),
    "conv-pool-dense": {"factor_dropped", "update_sign", "learning_rate_missing", "loss_scale", "conv_flip",
                        "pool_routing", "stale_weights"},
}
NEVER_HOST = {"relu-exam-network": {"derivative_omitted", "conv_flip", "pool_routing", "time_index_shifted",
                                    "softmax_diagonal"},
              "rnn-many-to-many-identity": {"learning_rate_missing", "conv_flip", "cross_entropy_sign"}}


def test_every_shipped_template_is_listed_for_planting():
    assert sorted(MUST_HOST) == template_names()


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_check_names_exactly_the_planted_mistake_for_every_mistake_a_template_hosts(made, name, tmp_path):
    from deltalab.marking import check
    from deltalab.marking.mistakes import IDS, load_mistakes
    from deltalab.exercises.planting import plant

    result, out = made(name)
    hosted = {}
    for mistake in load_mistakes().values():
        for variant in result.variants[:3]:
            planted = plant(variant, mistake)
            if planted is not None:
                hosted[mistake.id] = (variant, planted)
                break
    assert MUST_HOST[name] <= set(hosted), MUST_HOST[name] - set(hosted)
    assert not NEVER_HOST.get(name, set()) & set(hosted)
    for id, (variant, planted) in hosted.items():
        answers = tmp_path / f"{id}-{variant.name}.toml"
        answers.write_text(planted.text, encoding="utf-8")
        graded = check(out / f"{variant.name}.toml", answers)
        assert graded.mistake_ids == [id], (id, graded.mistake_ids)
        wrong = [q for q in graded.quantities if q.verdict == "wrong"]
        assert [q.where for q in wrong] == [planted.where]
        assert all(q.verdict in ("right", "consistent") for q in graded.quantities if q.verdict != "wrong")
        # the wrong value is visibly wrong: off the true value (solved afresh) in the 4 decimals the key shows
        true = graded.quantities[graded.quantities.index(wrong[0])].true
        assert np.max(np.abs(np.asarray(wrong[0].answer) - true)) >= 1e-4
        before = graded.quantities[:graded.quantities.index(wrong[0])]
        assert all(q.verdict == "right" for q in before)  # nothing before the mistake is touched
    assert set(hosted) <= set(IDS)
    # and every variant of the 50 hosts one of them (taken in turn), named alone by check
    must = sorted(MUST_HOST[name])
    for number, variant in enumerate(result.variants):
        if not must:
            break
        turn = must[number % len(must):] + must[:number % len(must)]
        planted = next(p for p in (plant(variant, load_mistakes()[id]) for id in turn) if p is not None)
        graded = check(variant.problem, planted.text, trace=variant.trace)  # the variant solved once above
        assert graded.mistake_ids == [planted.id], variant.name


def test_a_planted_sign_flip_is_the_uphill_update_by_exact_fractions(made):
    from deltalab.marking.mistakes import load_mistakes
    from deltalab.exercises.planting import plant

    result, out = made("relu-exam-network")
    variant = result.variants[0]
    planted = plant(variant, load_mistakes()["update_sign"])
    assert planted.where.startswith("parameters_after.")
    name = planted.where.split(".")[1]
    p = _toml(out / f"{variant.name}.toml")
    fr = np.vectorize(lambda v: Fraction(str(v)), otypes=[object])
    W1, b1, W2, b2 = (fr(np.array(p["parameters"][k], dtype=float)) for k in ("W1", "b1", "W2", "b2"))
    x, t = fr(np.array(p["data"]["inputs"], dtype=float)), fr(np.array(p["data"]["targets"], dtype=float))
    lr = Fraction(str(p["training"]["learning_rate"]))
    z1 = W1.dot(x) + b1
    x1 = np.array([max(v, 0) for v in z1], dtype=object)
    d2 = W2.dot(x1) + b2 - t
    d1 = W2.T.dot(d2) * np.array([1 if v > 0 else 0 for v in z1], dtype=object)
    uphill = {"W1": W1 + lr * np.outer(d1, x), "b1": b1 + lr * d1, "W2": W2 + lr * np.outer(d2, x1),
              "b2": b2 + lr * d2}[name]
    written = tomllib.loads(planted.text)["parameters_after"][name]
    assert _fractions(written) == list(np.asarray(uphill).ravel())


def test_the_cli_plants_a_mistake_that_check_names(tmp_path, capsys):
    import json

    out = tmp_path / "find-the-error"
    run = _main(capsys, "generate", "--example", "elman-relu-cell", "--variants", "2", "--seed", "4", "--out", str(out),
                "--plant-mistake", "sum_over_time_missing", "--format", "markdown", "--stress")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (out / "planted").iterdir()) == ["variant-01.toml", "variant-02.toml"]
    sheet, key = (out / "sheet.md").read_text(), (out / "key.md").read_text()
    assert sheet.count("it contains one mistake: find it") == 2 and "The mistake" not in sheet
    assert key.count("### The mistake") == 2 and key.count("Mistake sum_over_time_missing") == 2
    assert json.loads((out / "stress.json").read_text())["plant_mistake"] == "sum_over_time_missing"
    for variant in ("variant-01", "variant-02"):
        graded = json.loads(_cli("check", str(out / f"{variant}.toml"), str(out / "planted" / f"{variant}.toml"),
                                 "--format", "json").stdout) if variant == "variant-01" else json.loads(
            _main(capsys, "check", str(out / f"{variant}.toml"), str(out / "planted" / f"{variant}.toml"),
                  "--format", "json").stdout)
        named = [d["mistake"] for q in graded["quantities"] for d in q["diagnoses"]]
        assert named == ["sum_over_time_missing"]
        assert [q["verdict"] for q in graded["quantities"]].count("wrong") == 1
    # the keys' right answers are the unplanted ones
    plain = generate("elman-relu-cell", variants=2, seed=4)
    assert (out / "answers" / "variant-01.toml").read_text() == plain.files["answers/variant-01.toml"]


@pytest.mark.parametrize("args, message", [
    (["--example", "relu-exam-network", "--plant-mistake", "factr_dropped"],
     "--plant-mistake: unknown mistake 'factr_dropped'; did you mean 'factor_dropped'? (the mistakes: path_dropped,"),
    (["--example", "relu-exam-network", "--plant-mistake", "conv_flip"],
     "--plant-mistake: the mistake conv_flip (the kernel flipped) does not apply to "),
    (["--example", "feature-detectors", "--plant-mistake", "update_sign"],
     "feature-detectors.toml; no mistake of the library applies to it"),
])
def test_a_mistake_that_cannot_be_planted_is_one_line_naming_it(tmp_path, capsys, args, message):
    run = _main(capsys, "generate", *args, "--variants", "2", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert message in run.stderr
    assert not (tmp_path / "out").exists()
    if "conv_flip" in args:  # the ones that do apply are listed
        assert "mistakes that do: " in run.stderr and "update_sign" in run.stderr and "factor_dropped" in run.stderr


# ------------------------------------------------------------------ several training steps
TWO_STEPS = """
title = "Two SGD steps of a 2-2-1 ReLU network"
[model]
type = "mlp"
input_shape = [2]
loss = "half_squared_error"
[[model.layers]]
type = "dense"
units = 2
activation = "relu"
[[model.layers]]
type = "dense"
units = 1
activation = "identity"
[parameters]
W1 = {choices = [0.5, 1]}
b1 = [0.5, 0.5]
W2 = {choices = [-0.5, 0.5]}
b2 = {choices = [0, 0.5]}
[data]
inputs = {ints = [1, 2]}
targets = {choices = [-1, 0, 1]}
[training]
learning_rate = 0.25
steps = 2
[generate]
decimals = 5
no_dead_relu = true
nonzero_gradients = true
distinct = true
ask = ["loss", "gradients.W1", "steps.2.parameters_after.W2", "steps.2.deltas.z[1]"]
"""


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    from deltalab.exercises import parse_template

    out = tmp_path_factory.mktemp("two-steps")
    return generate(parse_template(TWO_STEPS, str(out / "two-steps.toml")), variants=3, seed=2, out=out,
                    moodle=True), out


def test_several_training_steps_are_asked_and_keyed_per_step_by_torch(two_steps):
    result, out = two_steps
    for path in _variants(out):
        p = _toml(path)
        w = {k: _t(v) for k, v in p["parameters"].items()}
        x = torch.tensor(p["data"]["inputs"], dtype=torch.float64)
        t = torch.tensor(p["data"]["targets"], dtype=torch.float64)
        lr = p["training"]["learning_rate"]
        seen = []
        for step in (1, 2):
            z1 = w["W1"] @ x + w["b1"]
            z1.retain_grad()
            loss = 0.5 * ((w["W2"] @ torch.relu(z1) + w["b2"] - t) ** 2).sum()
            loss.backward()
            assert bool((z1 > 0).all())
            seen.append({"loss": loss.item(), "W1": w["W1"].grad.numpy().copy(), "z1": z1.grad.numpy().copy()})
            with torch.no_grad():
                w = {k: (v - lr * v.grad).requires_grad_() for k, v in w.items()}
            seen[-1]["W2 after"] = w["W2"].detach().numpy()
        key = _answers(out, path)
        assert set(key) == {"loss", "gradients", "steps"} and set(key["steps"]) == {"2"}
        _close(key["loss"], seen[0]["loss"])
        _close(key["gradients"]["W1"], seen[0]["W1"])
        step2 = key["steps"]["2"]
        _close(step2["loss"], seen[1]["loss"])
        _close(step2["gradients"]["W1"], seen[1]["W1"])
        _close(step2["deltas"]["z[1]"], seen[1]["z1"])
        _close(step2["parameters_after"]["W2"], seen[1]["W2 after"])
        for value in (step2["loss"], step2["gradients"]["W1"], step2["parameters_after"]["W2"]):
            assert _decimals_ok(value, 5)
    sheet = (out / "sheet.md").read_text()
    assert "4. ∂E/∂W1 in training step 2" in sheet and "the loss E in training step 2" in sheet
    assert "training step 3" not in sheet


def test_check_grades_a_key_of_several_steps_and_carries_a_slip_into_the_next_step(two_steps, tmp_path):
    from deltalab.marking import check
    from deltalab.marking.mistakes import load_mistakes
    from deltalab.exercises.planting import plant

    result, out = two_steps
    path = _variants(out)[0]
    graded = check(path, out / "answers" / path.name)
    assert graded.score == graded.max_score == 6 and {q.step for q in graded.quantities} == {1, 2}
    for variant in result.variants:  # a sign slip in step 1 is carried into step 2 (consistent there)
        planted = plant(variant, load_mistakes()["update_sign"])
        if planted is not None and planted.step == 1:
            break
    assert planted is not None and planted.step == 1
    answers = tmp_path / "slip.toml"
    answers.write_text(planted.text)
    graded = check(out / f"{variant.name}.toml", answers)
    assert graded.mistake_ids == ["update_sign"]
    assert {q.verdict for q in graded.quantities if q.step == 2} == {"consistent"}


def test_the_moodle_quiz_asks_every_step(two_steps):
    result, out = two_steps
    root = ET.parse(out / "quiz.xml").getroot()
    questions = [q for q in root.findall("question") if q.get("type") == "cloze"]
    assert len(questions) == 3
    text = questions[0].find("questiontext/text").text
    blanks = re.findall(r"\{1:NUMERICAL:=([^:}]+):([^}]+)\}", text)
    assert len(blanks) == 1 + 4 + 1 + 4 + 2 + 2  # loss, W1, step 2: loss, W1, W2′, δ[1]
    assert "in training step 2" in text


def test_an_ask_for_a_step_the_problem_does_not_have_names_it():
    from deltalab.errors import SpecError
    from deltalab.exercises import parse_template

    with pytest.raises(SpecError, match=r"generate\.ask: steps\.3\.loss: the problem has 2 training steps"):
        generate(parse_template(TWO_STEPS.replace('"loss", ', '"steps.3.loss", '), "t.toml"), variants=1)
    with pytest.raises(SpecError, match=r"expected steps\.N\.SECTION\.KEY"):
        parse_template(TWO_STEPS.replace('"loss", ', '"steps.x.loss", '), "t.toml")


def test_the_latex_matrix_allowance_is_the_widest_matrix():
    from deltalab.exercises.documents import widest_matrix

    row = " & ".join(["1"] * 12)
    assert widest_matrix(r"$\begin{bmatrix}1 & 2 \\ 3 & 4\end{bmatrix}$") == 10  # amsmath's default at least
    assert widest_matrix(r"\begin{bmatrix}" + row + r"\\ 1\end{bmatrix}") == 12
    assert widest_matrix(r"\begin{pmatrix}\begin{bmatrix}1\end{bmatrix} & " + row + r"\end{pmatrix}") == 13


def test_a_planted_key_of_exact_fractions_writes_the_right_value_as_a_fraction():
    from deltalab.marking import check
    from deltalab.exercises import parse_template

    text = (Path(__file__).parents[1] / "src/deltalab/examples/templates/elman-relu-cell.toml").read_text()
    text = text.replace("decimals = 2", "exact = true\nmax_denominator = 16").replace("learning_rate = 0.1",
                                                                                      "learning_rate = 0.125")
    result = generate(parse_template(text, "fractions.toml"), variants=1, seed=1, plant_mistake="update_sign")
    planted = result.variants[0].planted
    right = re.search(r"The right value of \S+: (\S+)\.\n", result.files["key.md"]).group(1)
    true = result.variants[0].trace.steps[0].derivation[planted.node.id].value
    assert Fraction(right.replace("−", "-")) == Fraction(float(true)).limit_denominator(16) == Fraction(float(true))
    assert check(result.variants[0].problem, planted.text).mistake_ids == ["update_sign"]

"""deltalab check: verdicts, follow-through and the mistake library.  Every mistaken answer
is built here in plain NumPy from the problem's givens (not by the engine's rules), then
written to an answers file with six decimals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import deltalab as dl

PROBLEMS = Path(__file__).parent / "check_problems"


def toml_value(v, decimals):
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return f"{float(a):.{decimals}f}"
    return "[" + ", ".join(toml_value(x, decimals) for x in a) + "]"


def answers_text(sections, decimals=6, student=None):
    """{"loss": v, "deltas": {key: v}, "steps.2.gradients": {…}} as an answers file."""
    lines = [f'student = "{student}"'] if student else []
    if "loss" in sections:
        lines.append(f"loss = {toml_value(sections['loss'], decimals)}")
    for section, table in sections.items():
        if section == "loss":
            continue
        lines.append(f"[{section}]")
        lines += [f'"{k}" = {toml_value(v, decimals)}' for k, v in table.items()]
    return "\n".join(lines) + "\n"


def grade(problem, sections, **options):
    path = PROBLEMS / f"{problem}.toml" if (PROBLEMS / f"{problem}.toml").exists() else problem
    return dl.check(path, answers_text(sections), **options)


def only(result):
    assert len(result.quantities) == 1
    return result.quantities[0]


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# ---------------------------------------------------------------- the reference computations
def mlp_tanh():
    W1 = np.array([[0.3, -0.7, 0.5], [0.9, 0.2, -0.4]]); b1 = np.array([0.1, -0.3])
    W2 = np.array([[0.6, -1.1], [0.8, 0.45]]); b2 = np.array([-0.2, 0.35])
    x = np.array([0.8, -1.2, 0.5]); t = np.array([0.25, -0.6]); lr = 0.5
    z1 = W1 @ x + b1; x1 = np.tanh(z1); y = W2 @ x1 + b2
    d2 = y - t
    dx1 = W2.T @ d2
    d1 = dx1 * (1 - x1 ** 2)
    gW1, gW2 = np.outer(d1, x), np.outer(d2, x1)
    return dict(W1=W1, b1=b1, W2=W2, b2=b2, x=x, t=t, lr=lr, z1=z1, x1=x1, y=y, d2=d2, dx1=dx1, d1=d1, gW1=gW1,
                gW2=gW2, W2new=W2 - lr * gW2, W1new=W1 - lr * gW1)


def rnn_tanh():
    W1 = np.array([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]])
    H1 = np.array([[0.1, -0.4, 0.3], [0.5, 0.2, -0.1], [-0.3, 0.6, 0.25]])
    b1 = np.array([0.05, -0.1, 0.15])
    W2 = np.array([[0.7, -0.5, 0.4], [-0.2, 0.9, 0.3]]); b2 = np.array([0.1, -0.05])
    xs = np.array([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.4]]); ts = np.array([[0.5, -0.2], [-0.3, 0.6], [0.2, 0.1]])
    lr, T = 0.5, 3
    h = {0: np.zeros(3)}; z = {}; y = {}
    for s in range(1, T + 1):
        z[s] = W1 @ xs[s - 1] + H1 @ h[s - 1] + b1; h[s] = np.tanh(z[s]); y[s] = W2 @ h[s] + b2
    d2 = {s: y[s] - ts[s - 1] for s in y}
    d1 = {}
    for s in range(T, 0, -1):
        up = W2.T @ d2[s] + (H1.T @ d1[s + 1] if s < T else 0)
        d1[s] = up * (1 - h[s] ** 2)
    gW1 = sum(np.outer(d1[s], xs[s - 1]) for s in d1); gH1 = sum(np.outer(d1[s], h[s - 1]) for s in d1)
    gW2 = sum(np.outer(d2[s], h[s]) for s in d2)
    return dict(W1=W1, H1=H1, W2=W2, b2=b2, xs=xs, ts=ts, lr=lr, h=h, z=z, y=y, d1=d1, d2=d2, gW1=gW1, gH1=gH1,
                gW2=gW2, W2new=W2 - lr * gW2, H1new=H1 - lr * gH1)


def eq_tanh():
    w, u, v = 0.7, -0.4, 1.3
    xs, ys = [1.0, -2.0, 0.5], [0.3, -0.2, 0.6]
    h = {0: 0.0}; a = {}; yhat = {}
    for s in (1, 2, 3):
        a[s] = w * h[s - 1] + u * xs[s - 1]; h[s] = np.tanh(a[s]); yhat[s] = v * h[s]
    dy = {s: yhat[s] - ys[s - 1] for s in yhat}
    dh, da = {}, {}
    for s in (3, 2, 1):
        dh[s] = v * dy[s] + (w * da[s + 1] if s < 3 else 0.0)
        da[s] = dh[s] * (1 - h[s] ** 2)
    gv = sum(h[s] * dy[s] for s in dy)
    gw = sum(h[s - 1] * da[s] for s in da)
    return dict(w=w, u=u, v=v, xs=xs, h=h, a=a, yhat=yhat, dy=dy, dh=dh, da=da, gv=gv, gw=gw, lr=0.1)


def eq_softmax():
    W = np.array([[0.2, -0.1, 0.4], [0.5, 0.1, -0.3], [0.0, 0.3, 0.1]])
    x = np.array([1.0, -0.5, 2.0]); t = np.array([0.0, 1.0, 0.0])
    z = W @ x; y = np.exp(z) / np.exp(z).sum()
    return dict(W=W, x=x, t=t, z=z, y=y, dz=y - t, gW=np.outer(y - t, x), lr=0.5)


def mlp_softmax_ce():
    W1 = np.array([[0.3, -0.7, 0.5], [0.9, 0.2, -0.4], [-0.6, 0.15, 0.75]]); b1 = np.array([0.1, -0.3, 0.2])
    W2 = np.array([[0.6, -1.1, 0.3], [0.8, 0.45, -0.9], [-0.25, 0.7, 0.55]]); b2 = np.array([-0.2, 0.35, 0.05])
    x = np.array([0.8, -1.2, 0.5]); t = np.array([0.0, 1.0, 0.0])
    x1 = sigmoid(W1 @ x + b1); z2 = W2 @ x1 + b2; y = np.exp(z2) / np.exp(z2).sum()
    return dict(x1=x1, y=y, t=t, d2=y - t, z1=W1 @ x + b1, W2=W2)


def rnn_softmax(hidden="sigmoid"):
    W1 = np.array([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]])
    H1 = np.array([[0.1, -0.4, 0.3], [0.5, 0.2, -0.1], [-0.3, 0.6, 0.25]])
    b1 = np.array([0.05, -0.1, 0.15])
    W2 = np.array([[0.7, -0.5, 0.4], [-0.2, 0.9, 0.3], [0.35, 0.15, -0.8]]); b2 = np.array([0.1, -0.05, 0.2])
    xs = np.array([[1.0, -0.5], [0.3, 0.8]]); ts = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    f = sigmoid if hidden == "sigmoid" else np.tanh
    h = {0: np.zeros(3)}; y = {}
    for s in (1, 2):
        h[s] = f(W1 @ xs[s - 1] + H1 @ h[s - 1] + b1)
        z2 = W2 @ h[s] + b2; y[s] = np.exp(z2) / np.exp(z2).sum()
    return dict(h=h, y=y, ts=ts)


def correlate(x, w, padding):
    xp = np.pad(x, padding)
    k = w.shape[0]
    out = np.zeros((xp.shape[0] - k + 1, xp.shape[1] - k + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(xp[i:i + k, j:j + k] * w)
    return out


def cnn():
    W1 = np.array([[0.2, -0.5, 0.1], [0.7, 0.3, -0.4], [-0.2, 0.6, 0.25]]); b1 = -0.1
    W4 = np.array([[0.3, -0.6, 0.9, 0.2], [-0.4, 0.5, 0.1, 0.7]]); b4 = np.array([0.05, -0.1])
    x = np.array([[1.0, -2.0, 0.5, 0.0], [0.3, 1.5, -1.0, 2.0], [-0.5, 0.8, 1.2, -0.3], [2.0, -1.0, 0.4, 0.9]])
    t = np.array([0.5, -0.5])
    z1 = correlate(x, W1, 1) + b1; x1 = np.maximum(z1, 0)
    pooled = x1.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4).max(axis=-1)
    y = W4 @ pooled.reshape(-1) + b4
    d4 = y - t
    dpool = (W4.T @ d4).reshape(2, 2)
    return dict(W1=W1, b1=b1, x=x, z1=z1, x1=x1, pooled=pooled, dpool=dpool, W4=W4, d4=d4)


def cnn_route(x1, dpool, rule):
    out = np.zeros_like(x1)
    for i in range(2):
        for j in range(2):
            win = x1[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            if rule == "first":
                mask = np.zeros(4); mask[np.argmax(win)] = 1; mask = mask.reshape(2, 2)
            elif rule == "ties":
                mask = (win == win.max()).astype(float)
            else:
                mask = np.ones((2, 2))
            out[2 * i:2 * i + 2, 2 * j:2 * j + 2] = mask * dpool[i, j]
    return out


# ---------------------------------------------------------------- verdicts
def test_right_answers_are_right_with_the_written_decimals():
    r = mlp_tanh()
    result = dl.check(PROBLEMS / "mlp-tanh.toml", answers_text(
        {"deltas": {"z[2]": r["d2"], "z[1]": r["d1"]}, "gradients": {"W1": r["gW1"]}}, decimals=3))
    assert [q.verdict for q in result.quantities] == ["right"] * 3
    assert result.score == result.max_score == 3


def test_truncated_last_digit_passes_and_one_off_in_the_last_digit_fails():
    r = mlp_tanh()
    v = float(r["d2"][0])
    truncated = np.trunc(v * 1e4) / 1e4
    text = f'[deltas]\n"z[2]" = [{truncated:.4f}, {r["d2"][1]:.4f}]\n'
    assert only(dl.check(PROBLEMS / "mlp-tanh.toml", text)).verdict == "right"
    text = f'[deltas]\n"z[2]" = [{round(v, 4) + 2e-4:.4f}, {r["d2"][1]:.4f}]\n'
    assert only(dl.check(PROBLEMS / "mlp-tanh.toml", text)).verdict == "wrong"


def test_a_trailing_zero_counts_as_a_written_decimal():
    # 0.1670 has four decimals (tomllib alone would see the float 0.167 and three)
    text = "[gradients]\nb2 = [0.1670, 0.1]\n"
    result = dl.check(PROBLEMS / "mlp-tanh.toml", text)
    np.testing.assert_allclose(result.quantities[0].tolerance, [1e-4, 1e-1])


def test_fractions_are_exact():
    from deltalab.marking.answers import exact_number

    assert exact_number("1/8") == 0.125 and exact_number("(1 - 0.5)**2") == 0.25
    with pytest.raises(dl.SpecError, match="cannot read"):
        exact_number("__import__('os')")


def test_follow_through_one_early_slip_costs_once():
    """A wrong δ[2] and everything after it computed from it: one wrong, the rest consistent."""
    r = mlp_tanh()
    d2 = r["d2"] + np.array([0.3, -0.2])
    dx1 = r["W2"].T @ d2
    d1 = dx1 * (1 - r["x1"] ** 2)
    gW1, gW2 = np.outer(d1, r["x"]), np.outer(d2, r["x1"])
    answers = {"loss": 0.5 * np.sum((r["y"] - r["t"]) ** 2),
               "deltas": {"z[2]": d2, "x[1]": dx1, "z[1]": d1},
               "gradients": {"W1": gW1, "b1": d1, "W2": gW2, "b2": d2},
               "parameters_after": {"W1": r["W1"] - r["lr"] * gW1, "W2": r["W2"] - r["lr"] * gW2}}
    result = grade("mlp-tanh", answers)
    verdicts = {q.where: q.verdict for q in result.quantities}
    assert verdicts.pop("loss") == "right"
    assert verdicts.pop("deltas.z[2]") == "wrong"
    assert set(verdicts.values()) == {"consistent"}
    assert result.score == result.max_score - 1
    assert result.first_wrong.where == "deltas.z[2]"
    strict = grade("mlp-tanh", answers, follow_through=False)
    assert strict.score == 1


def test_follow_through_carries_into_the_next_training_step():
    r = mlp_tanh()
    W2_after = r["W2"] - r["lr"] * r["gW2"] + 0.1  # a wrong update, then step 2 from it
    # step 2's forward pass from the student's own W2′
    W1_after = r["W1"] - r["lr"] * r["gW1"]
    b1_after = np.array([0.1, -0.3]) - r["lr"] * r["d1"]
    b2_after = np.array([-0.2, 0.35]) - r["lr"] * r["d2"]
    x1 = np.tanh(W1_after @ r["x"] + b1_after)
    y2 = W2_after @ x1 + b2_after
    text = answers_text({"parameters_after": {"W2": W2_after}}) + (
        "[steps.2.outputs]\ny = " + toml_value(y2, 6) + "\n")
    result = dl.check(PROBLEMS / "mlp-tanh.toml", text)
    assert [(q.where, q.verdict) for q in result.quantities] == [
        ("parameters_after.W2", "wrong"), ("steps.2.outputs.y", "consistent")]


def test_missing_quantities_come_from_the_problems_check_table(tmp_path):
    problem = tmp_path / "p.toml"
    problem.write_text((PROBLEMS / "mlp-tanh.toml").read_text() + "\n[check]\nloss = 2\n[check.gradients]\nW1 = 3\n")
    r = mlp_tanh()
    result = dl.check(problem, answers_text({"gradients": {"W1": r["gW1"]}}))
    assert [(q.where, q.verdict, q.weight) for q in result.quantities] == [
        ("loss", "missing", 2.0), ("gradients.W1", "right", 3.0)]
    assert (result.score, result.max_score) == (3, 5)


@pytest.mark.parametrize("text, message", [
    ('[deltas]\n"z[3]" = [1, 2]\n', "deltas.z[3]: unknown key; did you mean 'z[2]'?"),
    ('[delta]\n"z[2]" = [1, 2]\n', "delta: unknown key; did you mean 'deltas'?"),
    ('[deltas]\n"z[2]" = [1, 2, 3]\n', "deltas.z[2]: expected shape 2, got 3"),
    ('[steps.3.deltas]\n"z[2]" = [1, 2]\n', "steps.3: the problem has 2 training steps"),
    ('[deltas]\n"z[2]" = [1, "x"]\n', "cannot read 'x' as a number"),
    ('[deltas\n', "TOML syntax error"),
])
def test_bad_answers_name_the_field(tmp_path, text, message):
    path = tmp_path / "a.toml"
    path.write_text(text)
    with pytest.raises(dl.SpecError) as info:
        dl.check(PROBLEMS / "mlp-tanh.toml", path)
    assert message in str(info.value) and str(path) in str(info.value)


# ---------------------------------------------------------------- the mistake library
def _cases():
    m, r, e, s = mlp_tanh(), rnn_tanh(), eq_tanh(), eq_softmax()
    W2, H1, h, d1, d2 = r["W2"], r["H1"], r["h"], r["d1"], r["d2"]
    f3 = 1 - h[3] ** 2
    c, ce = cnn(), mlp_softmax_ce()
    yield "path_dropped", "rnn-tanh", "deltas", "z[1](1)", (W2.T @ d2[1]) * (1 - h[1] ** 2)
    yield "path_dropped", "eq-tanh-cell", "deltas", "h(1)", e["v"] * e["dy"][1]
    yield "path_dropped", "eq-sigmoid-skip-network", "gradients", "x", _sigmoid_skip_path_dropped()
    yield "factor_dropped", "mlp-tanh", "deltas", "x[1]", m["d2"]
    yield "factor_dropped", "rnn-tanh", "deltas", "z[1](1)", (W2.T @ d2[1] + d1[2]) * (1 - h[1] ** 2)
    yield "factor_dropped", "eq-tanh-cell", "deltas", "a(3)", e["dy"][3] * (1 - e["h"][3] ** 2)
    yield "derivative_omitted", "mlp-tanh", "deltas", "z[1]", m["dx1"]
    yield "derivative_omitted", "rnn-tanh", "deltas", "z[1](3)", W2.T @ d2[3]
    yield "derivative_omitted", "eq-tanh-cell", "deltas", "a(3)", e["v"] * e["dy"][3]
    yield "derivative_at_wrong_point", "mlp-tanh", "deltas", "z[1]", m["dx1"] * (1 - m["z1"] ** 2)
    yield "derivative_at_wrong_point", "rnn-tanh", "deltas", "z[1](3)", (W2.T @ d2[3]) * (1 - r["z"][3] ** 2)
    yield "derivative_at_wrong_point", "eq-tanh-cell", "deltas", "a(3)", e["v"] * e["dy"][3] * (1 - e["a"][3] ** 2)
    yield "transposed", "mlp-tanh", "deltas", "x[1]", m["W2"] @ m["d2"]
    yield "transposed", "rnn-tanh", "deltas", "z[1](1)", (W2.T @ d2[1] + H1 @ d1[2]) * (1 - h[1] ** 2)
    yield "transposed", "eq-softmax-cell", "gradients", "W", np.outer(s["x"], s["dz"])
    yield "update_sign", "mlp-tanh", "parameters_after", "W1", m["W1"] + m["lr"] * m["gW1"]
    yield "update_sign", "rnn-tanh", "parameters_after", "H1", H1 + r["lr"] * r["gH1"]
    yield "update_sign", "eq-tanh-cell", "parameters_after", "w", e["w"] + e["lr"] * e["gw"]
    yield "learning_rate_missing", "mlp-tanh", "parameters_after", "W1", m["W1"] - m["gW1"]
    yield "learning_rate_missing", "rnn-tanh", "parameters_after", "H1", H1 - r["gH1"]
    yield "learning_rate_missing", "eq-tanh-cell", "parameters_after", "w", e["w"] - e["gw"]
    yield "loss_scale", "mlp-tanh", "deltas", "z[2]", 2 * m["d2"]
    yield "loss_scale", "rnn-tanh", "deltas", "z[2](2)", 2 * d2[2]
    yield "loss_scale", "eq-tanh-cell", "deltas", "yhat(3)", 2 * e["dy"][3]
    yield "cross_entropy_sign", "mlp-sigmoid-softmax", "deltas", "z[2]", ce["t"] - ce["y"]
    rs = rnn_softmax()
    yield "cross_entropy_sign", "rnn-softmax", "deltas", "z[2](2)", rs["ts"][1] - rs["y"][2]
    yield "cross_entropy_sign", "eq-softmax-cell", "deltas", "z", s["t"] - s["y"]
    yield "time_index_shifted", "rnn-tanh", "deltas", "z[1](2)", (W2.T @ d2[3] + H1.T @ d1[3]) * (1 - h[2] ** 2)
    yield "time_index_shifted", "eq-tanh-cell", "deltas", "h(1)", e["v"] * e["dy"][1] + e["w"] * e["da"][3]
    yield "sum_over_time_missing", "rnn-tanh", "gradients", "W1", np.outer(d1[3], r["xs"][2])
    yield "sum_over_time_missing", "eq-tanh-cell", "gradients", "v", e["h"][3] * e["dy"][3]
    yield "stale_weights", "mlp-tanh", "deltas", "x[1]", m["W2new"].T @ m["d2"]
    yield "stale_weights", "rnn-tanh", "deltas", "z[1](3)", (r["W2new"].T @ d2[3]) * f3
    yield "rounded_early", "mlp-tanh", "gradients", "W2", np.outer(np.round(m["d2"], 2), np.round(m["x1"], 2))
    yield "rounded_early", "rnn-tanh", "deltas", "z[1](3)", (W2.T @ np.round(d2[3], 1)) * (1 - np.round(h[3], 1) ** 2)
    yield "rounded_early", "eq-tanh-cell", "deltas", "a(3)", round(e["dh"][3], 2) * round(1 - e["h"][3] ** 2, 2)
    sm = np.exp(np.array([[0.3, -0.7, 0.5], [0.9, 0.2, -0.4], [-0.6, 0.15, 0.75]]) @ [0.8, -1.2, 0.5]
                + [0.1, -0.3, 0.2])
    sm /= sm.sum()
    yield "softmax_diagonal", "mlp-softmax-squared", "deltas", "z[1]", sm * (1 - sm) * (sm - [0.0, 1.0, 0.0])
    rq = rnn_softmax("tanh")
    yield ("softmax_diagonal", "rnn-softmax-squared", "deltas", "z[2](2)",
           rq["y"][2] * (1 - rq["y"][2]) * (rq["y"][2] - rq["ts"][1]))
    yield "conv_flip", "cnn-conv-pool", "forward", "z[1]", (correlate(c["x"], c["W1"][::-1, ::-1], 1) + c["b1"])[None]
    delta1 = cnn_route(c["x1"], c["dpool"], "first") * (c["z1"] > 0)
    yield "padding_ignored", "cnn-conv-pool", "gradients", "W1", _inner_weight_grad(c["x"], delta1)
    yield "pool_routing", "cnn-conv-pool", "deltas", "x[1]", cnn_route(c["x1"], c["dpool"], "all")[None]


def _inner_weight_grad(x, delta):
    """∂E/∂W[i, j] = Σ over the δ positions whose 3×3 window lies inside the unpadded 4×4 x."""
    g = np.zeros((3, 3))
    for yy in (1, 2):
        for xx in (1, 2):
            g += delta[yy, xx] * x[yy - 1:yy + 2, xx - 1:xx + 2]
    return g[None, None]


def _sigmoid_skip_path_dropped():
    """∂L/∂x without the skip path: only through a1 (∂a1/∂x = w1)."""
    x, w1, b1, w2 = 1.0, 0.5, -0.5, -2.0
    h = sigmoid(w1 * x + b1); yhat = sigmoid(w2 * h + x)
    da2 = 2 * (yhat - 1.0) * yhat * (1 - yhat)
    return da2 * w2 * h * (1 - h) * w1


CASES = [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in _cases()]


@pytest.mark.parametrize("mistake, problem, section, key, value", CASES)
def test_each_mistake_is_named(mistake, problem, section, key, value):
    result = grade(problem, {section: {key: value}})
    q = only(result)
    assert q.verdict == "wrong"
    assert mistake in [d.mistake for d in q.diagnoses], [(d.mistake, d.explanation) for d in q.diagnoses]


def test_pool_routing_case_has_a_tie():
    c = cnn()
    assert not np.allclose(cnn_route(c["x1"], c["dpool"], "all"), cnn_route(c["x1"], c["dpool"], "first"))


def test_the_explanation_speaks_the_lectures_notation():
    r = rnn_tanh()
    value = (r["W2"].T @ r["d2"][1]) * (1 - r["h"][1] ** 2)
    q = only(grade("rnn-tanh", {"deltas": {"z[1](1)": value}}))
    d = next(d for d in q.diagnoses if d.mistake == "path_dropped")
    assert "δ[1](1) = (W2ᵀ δ[2](1) + H1ᵀ δ[1](2)) ⊙ (1 − x[1](1)²) without the term H1ᵀ δ[1](2)" in d.explanation


def test_every_mistake_id_is_registered_with_a_docstring_and_an_example():
    from deltalab.marking.mistakes import IDS, load_mistakes

    mistakes = load_mistakes()
    assert list(mistakes) == list(IDS)
    for m in mistakes.values():
        assert m.doc and m.example and m.summary
        assert m.variants.__module__.endswith(m.id)


@pytest.mark.parametrize("text, message", [
    ('loss = "9**64**64"\n', "small integer powers"),
    ('loss = "' + "(" * 150 + "1" + ")" * 150 + '"\n', "at most 200 characters"),
    ("loss = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ('loss = "1/0"\n', "divides by zero"),
    ("loss = nan\n", "non-finite"),
])
def test_hostile_answers_are_refused_quickly(text, message):
    with pytest.raises(dl.SpecError, match=message):
        dl.check(PROBLEMS / "mlp-tanh.toml", text)


def test_a_number_for_an_expression_in_unknowns_is_wrong(tmp_path):
    problem = tmp_path / "p.toml"
    problem.write_text('title = "t"\n[model]\ntype = "equations"\nloss = "L"\n[equations]\nL = "(w*x - y)**2"\n'
                       '[parameters]\nw = 0.5\n[data]\nx = 2.0\ny = "y1"\n[training]\nlearning_rate = 0.1\n')
    assert [q.verdict for q in dl.check(problem, "loss = 1\n").quantities] == ["wrong"]
    assert [q.verdict for q in dl.check(problem, 'loss = "(1 - y1)^2"\n').quantities] == ["right"]


def test_a_gradient_written_transposed_is_judged_and_named():
    """x[0] δ[1]ᵀ (3×2) for δ[1] x[0]ᵀ (2×3): not refused as a wrong shape, but diagnosed."""
    m = mlp_tanh()
    q = only(grade("mlp-tanh", {"gradients": {"W1": np.outer(m["x"], m["d1"])}}))
    assert q.verdict == "wrong" and "transposed" in [d.mistake for d in q.diagnoses]


from test_equations_exact import ELMAN_WITH_UNKNOWN_LABELS as ELMAN_UNKNOWN_LABELS  # noqa: E402


def test_expressions_in_unknown_labels_are_compared_exactly(tmp_path):
    """By hand: h = (4, 2), ŷ = (2, 1); ∂L/∂w_hh = 2(ŷ₂ − y₂)·w_hy·h₁ = 4 − 4y₂ (the first
    step's path is 0 at h₀ = 0), ∂L/∂w_hy = 2(2 − y₁)·4 + 2(1 − y₂)·2 = 20 − 8y₁ − 4y₂."""
    problem = tmp_path / "elman.toml"
    problem.write_text(ELMAN_UNKNOWN_LABELS)
    text = ('loss = "(2 - y1)^2 + (1 - y2)**2"\n[outputs]\n"yhat(1)" = 1\n'
            '[gradients]\nw_hh = "4*(1 - y2)"\nw_hy = "20 - 8*y1"\n')
    verdicts = {q.where: q.verdict for q in dl.check(problem, text).quantities}
    assert verdicts == {"loss": "right", "outputs.yhat(1)": "wrong", "gradients.w_hh": "right",
                        "gradients.w_hy": "wrong"}
    with pytest.raises(dl.SpecError, match="'z' is not an unknown of this problem"):
        dl.check(problem, '[gradients]\nw_hh = "4 - 4*z"\n')
    with pytest.raises(dl.SpecError, match="cannot read"):
        dl.check(problem, '[gradients]\nw_hh = "__import__(1)"\n')


def test_a_mistake_is_named_on_the_students_own_inputs():
    """δ[2] wrong, then δ[1] from it with f′ left out: δ[2] wrong, δ[1] wrong and named
    derivative_omitted (evaluated on the student's δ[2], not the true one)."""
    m = mlp_tanh()
    d2 = m["d2"] + np.array([0.4, -0.3])
    q = {q.key: q for q in grade("mlp-tanh", {"deltas": {"z[2]": d2, "z[1]": m["W2"].T @ d2}}).quantities}
    assert q["z[2]"].verdict == "wrong" and q["z[1]"].verdict == "wrong"
    assert "derivative_omitted" in [d.mistake for d in q["z[1]"].diagnoses]

"""Silent wrong answers found by running outside test suites beside PyTorch, each pinned
against torch: stale conv work buffers, the float32 LSTM with one hidden unit, −inf in the
class-index losses, NaN behind a ReLU, and the finite-difference check's false alarm."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.examples import example_path
from deltalab.gradcheck import compare_with_differences
from deltalab.ops.recurrent import sigmoid_

torch = pytest.importorskip("torch")
TF = torch.nn.functional
SRC = Path(dl.__file__).parent


def _conv_both(x, w, stride=1, padding=0, bias=None):
    ours_x = dl.tensor(x, requires_grad=True)
    ours_w = dl.tensor(w, requires_grad=True)
    ours_b = None if bias is None else dl.tensor(bias, requires_grad=True)
    out = F.conv2d(ours_x, ours_w, ours_b, stride=stride, padding=padding)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    (out * dl.tensor(upstream)).sum().backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    t_out = TF.conv2d(tx, tw, tb, stride=stride, padding=padding)
    (t_out * torch.tensor(upstream)).sum().backward()
    pairs = [(out.numpy(), t_out.detach().numpy()), (ours_x.grad.numpy(), tx.grad.numpy()),
             (ours_w.grad.numpy(), tw.grad.numpy())]
    if bias is not None:
        pairs.append((ours_b.grad.numpy(), tb.grad.numpy()))
    return pairs


def test_conv2d_input_gradient_after_a_call_with_another_kernel_width():
    rng = np.random.default_rng(0)
    x = rng.random((1, 1, 11, 28))
    for kw in (1, 2):  # the same gradient-buffer shape, a different written region
        for ours, theirs in _conv_both(x, rng.random((6, 1, 1, kw))):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_conv2d_forward_after_a_call_whose_padded_buffer_has_the_same_size():
    rng = np.random.default_rng(0)
    calls = [((1, 1, 10, 28), (6, 1, 1, 3), 0), ((1, 1, 8, 27), (6, 1, 3, 2), 1)]
    for x_shape, w_shape, padding in calls:
        for ours, theirs in _conv_both(rng.random(x_shape), rng.random(w_shape), padding=padding):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_conv2d_call_history_of_mixed_geometries_matches_torch():
    """Many calls in one process, every geometry family twice, in an order that revisits
    buffer shapes with other kernels, paddings and strides."""
    rng = np.random.default_rng(7)
    configs = []
    for _ in range(40):
        n, c, o = rng.integers(1, 4), rng.integers(1, 4), rng.integers(1, 5)
        kh, kw = rng.integers(1, 4, size=2)
        ph, pw = rng.integers(0, 3, size=2)
        sh, sw = rng.integers(1, 3, size=2)
        h, w = kh + rng.integers(0, 9), kw + rng.integers(0, 25)
        configs.append(((n, c, h, w), (o, c, kh, kw), (sh, sw), (ph, pw), bool(rng.integers(2))))
    for x_shape, w_shape, stride, padding, with_bias in configs + configs[::-1]:
        bias = rng.random(w_shape[0]) if with_bias else None
        for ours, theirs in _conv_both(rng.random(x_shape), rng.random(w_shape), stride, padding, bias):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ LSTM, one hidden unit
@pytest.mark.parametrize("batch", [2, 3, 5])
def test_float32_lstm_with_one_hidden_unit_matches_torch(batch):
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((4, batch, 3)).astype(np.float32)
    theirs = torch.nn.LSTM(3, 1)
    ours = dl.nn.LSTM(3, 1)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()}) \
        if set(ours.state_dict()) == set(theirs.state_dict()) else _copy_lstm(ours, theirs)
    ours.float()
    out, (h, c) = ours(dl.tensor(x))
    t_out, (t_h, t_c) = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), t_c.detach().numpy(), rtol=1e-5, atol=1e-6)


def _copy_lstm(ours, theirs):
    """The lecture's single-bias LSTM: its bias is torch's bias_ih + bias_hh."""
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    values = {"weight_ih": sd["weight_ih_l0"], "weight_hh": sd["weight_hh_l0"],
              "bias": sd["bias_ih_l0"] + sd["bias_hh_l0"]}
    for name, p in ours.named_parameters():
        key = next(k for k in values if name.startswith(k) or name.endswith(k) or k in name)
        p.data = values[key].astype(p.data.dtype).reshape(p.data.shape)


def test_float32_lstm_cell_with_one_hidden_unit_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2)).astype(np.float32)
    theirs = torch.nn.LSTMCell(2, 1)
    ours = dl.nn.LSTMCell(2, 1)
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    for name, p in ours.named_parameters():
        if name == "bias":
            p.data = sd["bias_ih"] + sd["bias_hh"]
        else:
            p.data = sd[name].reshape(p.data.shape)
    ours.float()
    h, c = ours(dl.tensor(x))
    t_h, t_c = theirs(torch.tensor(x))
    np.testing.assert_allclose(h.numpy(), t_h.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), t_c.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols, first", [(2, 4, 3), (5, 8, 7), (3, 9, 8), (4, 16, 12)])
def test_sigmoid_kernel_is_right_on_strided_gate_columns(dtype, rows, cols, first):
    """The LSTM's gate columns are strided views; NumPy 2.4.6's AVX-512 np.negative into such an
    ``out`` writes wrong rows (e.g. float32 (2, 4)[:, 3:]), so the kernel must not use it."""
    a = np.arange(rows * cols, dtype=dtype).reshape(rows, cols) / cols - 1.0
    expected = 1.0 / (1.0 + np.exp(-a[:, first:].astype(np.float64)))
    gates = a.copy()
    sigmoid_(gates[:, first:], gates[:, first:])
    np.testing.assert_allclose(gates[:, first:], expected, rtol=2e-7 if dtype == np.float32 else 1e-15)
    np.testing.assert_array_equal(gates[:, :first], a[:, :first])


def test_no_kernel_writes_np_negative_into_an_out_array():
    offenders = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"np\.negative\([^)]*out\s*=", line)]
    assert offenders == [], "np.negative(..., out=strided view) is wrong on some NumPy builds: " + ", ".join(offenders)


# ------------------------------------------------------------------ −inf in the class-index losses
def test_nll_loss_of_the_log_of_a_one_hot_distribution_is_zero():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with np.errstate(divide="ignore"):
        log_p = dl.tensor(np.log(p), requires_grad=True)
    loss = F.nll_loss(log_p, np.array([0, 1]))
    loss.backward()
    t_log_p = torch.log(torch.tensor(p)).requires_grad_()
    t_loss = TF.nll_loss(t_log_p, torch.tensor([0, 1]))
    t_loss.backward()
    assert loss.item() == t_loss.item() == 0.0
    np.testing.assert_array_equal(log_p.grad.numpy(), t_log_p.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_masked_logits_is_finite_like_torch(reduction):
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 3.0, -np.inf], [-np.inf, 0.5, 0.25]])
    target = np.array([0, 1, 2])
    ours = dl.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, target, reduction=reduction)
    loss.sum().backward()
    theirs = torch.tensor(logits, requires_grad=True)
    t_loss = TF.cross_entropy(theirs, torch.tensor(target), reduction=reduction)
    t_loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), t_loss.detach().numpy(), rtol=1e-12)
    assert np.isfinite(ours.grad.numpy()).all()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_weights_and_ignore_index_match_torch(reduction):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 4, 2))
    target = np.array([[0, 3], [1, -100], [2, 2], [-100, -100], [3, 0], [1, 1]])
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    ours = dl.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(ours, target, weight=weight, reduction=reduction)
    loss.sum().backward()
    theirs = torch.tensor(logits, requires_grad=True)
    t_loss = TF.cross_entropy(theirs, torch.tensor(target), weight=torch.tensor(weight), reduction=reduction)
    t_loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), t_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_a_class_index_out_of_range_is_an_index_error_like_torch():
    with pytest.raises(IndexError):
        TF.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(IndexError, match="0..2"):
        F.cross_entropy(dl.tensor(np.zeros((2, 3))), np.array([0, 3]))


# ------------------------------------------------------------------ NaN propagates
NAN_INPUT = np.array([[np.nan, -1.0, 0.0, 2.0], [1.0, np.nan, -3.0, 0.5]])
ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softmax": (lambda a: F.softmax(a, 1), lambda a: torch.softmax(a, 1)),
    "log_softmax": (lambda a: F.log_softmax(a, 1), lambda a: torch.log_softmax(a, 1)),
    "exp": (dl.ops.exp, torch.exp),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_nan_propagates_through_every_activation(name):
    ours, theirs = ACTIVATIONS[name]
    np.testing.assert_allclose(ours(dl.tensor(NAN_INPUT)).numpy(), theirs(torch.tensor(NAN_INPUT)).numpy(),
                               rtol=1e-15, atol=0)  # assert_allclose treats NaN as equal to NaN


def test_relu_of_nan_is_nan_and_its_gradient_is_zero_like_torch():
    x = dl.tensor(NAN_INPUT, requires_grad=True)
    F.relu(x).sum().backward()
    tx = torch.tensor(NAN_INPUT, requires_grad=True)
    TF.relu(tx).sum().backward()
    assert np.isnan(F.relu(dl.tensor(NAN_INPUT)).numpy()[0, 0])
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_nan_propagates_through_pooling_and_losses():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    for ours, theirs in [(F.max_pool2d, TF.max_pool2d), (F.avg_pool2d, TF.avg_pool2d)]:
        np.testing.assert_array_equal(ours(dl.tensor(x), 2).numpy(), theirs(torch.tensor(x), 2).numpy())
    target = np.zeros_like(NAN_INPUT)
    assert np.isnan(F.mse_loss(dl.tensor(NAN_INPUT), target).item())
    assert np.isnan(F.cross_entropy(dl.tensor(NAN_INPUT), np.array([0, 1])).item())
    assert np.isnan(F.cross_entropy(dl.tensor(NAN_INPUT), np.array([3, 0])).item())
    assert np.isnan(TF.cross_entropy(torch.tensor(NAN_INPUT), torch.tensor([3, 0])).item())


def test_binary_cross_entropy_refuses_nan_and_out_of_range_like_torch():
    for p in ([np.nan, 0.5], [1.5, 0.5]):
        with pytest.raises(RuntimeError):
            TF.binary_cross_entropy(torch.tensor(p), torch.tensor([1.0, 0.0]))
        with pytest.raises(RuntimeError, match="between 0 and 1"):
            F.binary_cross_entropy(dl.tensor(p), dl.tensor([1.0, 0.0]))


def test_a_nan_conv_weight_makes_the_relu_network_output_nan():
    net = dl.nn.Sequential(dl.nn.Conv2d(1, 2, 3), dl.nn.ReLU(), dl.nn.Flatten(), dl.nn.Linear(2 * 4, 1))
    net[0].weight.data[0, 0, 0, 0] = np.nan
    assert np.isnan(net(dl.tensor(np.ones((1, 1, 4, 4)))).numpy()).all()


# ------------------------------------------------------------------ the finite-difference false alarm
def _solve_json(path, *extra):
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", str(path), "--format", "json", *extra],
                            capture_output=True, text=True, timeout=120)
    return result.returncode, json.loads(result.stdout) if result.stdout else None, result.stderr


def test_a_true_zero_gradient_computed_as_rounding_noise_passes():
    x = np.array([0.3, -0.2])

    def loss():  # d/dx1 is exactly 0; central differences give rounding noise around 0
        return float(np.cosh(x[0]) * 1e3 + 0.0 * x[1] + np.sin(1.0) * 1e3)

    comparison = compare_with_differences(loss, x, [(1,)], [0.0])
    assert comparison.max_excess <= 0 and comparison.one_sided == []


def test_a_wrong_gradient_still_fails():
    x = np.array([0.3])
    comparison = compare_with_differences(lambda: float(x[0] ** 2), x, [(0,)], [0.6 * (1 + 1e-4)])
    assert comparison.max_excess > 0


def test_saturated_rnn_passes_its_check_and_agrees_with_torch(tmp_path):
    path = tmp_path / "saturated.toml"
    path.write_text(example_path("rnn-many-to-many-identity").read_text().replace("fill = 0.1", "fill = -1.0"))
    code, data, stderr = _solve_json(path, "--check-torch")
    assert code == 0, stderr
    assert all(c["passed"] for c in data["check"])
    fd = data["check"][0]
    assert fd["atol"] == 1e-8 and fd["tolerance"] == 1e-6 and fd["entries"] == 32


def test_an_input_exactly_at_a_relu_kink_is_a_stated_one_sided_case(tmp_path):
    path = tmp_path / "kink.toml"
    text = example_path("mlp-relu-exam-network").read_text()
    path.write_text(text.replace("b1 = [0.5, -0.5]", "b1 = [0.5, 0.0]"))  # z[1] = (2, 0): ReLU at 0
    code, data, stderr = _solve_json(path, "--check-torch")
    assert code == 0, stderr
    fd = data["check"][0]
    assert fd["passed"] and "b1[1]" in fd["one_sided"]
    assert data["gradients"]["b1"][1] == 0.0  # relu'(0) = 0, as torch
    markdown = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", str(path), "--format", "markdown"],
                              capture_output=True, text=True, timeout=120).stdout.replace("\\", "")
    assert "exactly at a kink" in markdown and "b1[1]" in markdown


def test_a_loss_of_1e8_does_not_fail_its_check_on_rounding_noise(tmp_path):
    """Central differences round to ~2e-16·|E|/ε: the absolute tolerance scales with the loss."""
    path = tmp_path / "large.toml"
    text = example_path("rnn-many-to-many-identity").read_text()
    path.write_text(text.replace("targets = [[1, 0], [0, 1]]", "targets = [[10000, 0], [0, 10000]]"))
    code, data, stderr = _solve_json(path, "--check-torch")
    assert data["loss"] > 9e7
    assert code == 0, stderr
    assert all(c["passed"] for c in data["check"])


# --------------------------------------------------------- softmax without a dim
@pytest.mark.parametrize("shape", [(), (4,), (2, 4), (2, 3, 4), (2, 3, 4, 2)])
@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_modules_without_a_dim_take_torchs_legacy_dim_and_warn(name, shape):
    # torch.nn.Softmax() has dim=None: 0 for 0-, 1- and 3-D inputs, else 1, with a deprecation
    # warning; deltalab's default was -1, a different axis for 3-D and 4-D inputs
    x = np.random.default_rng(0).standard_normal(shape)
    g = np.random.default_rng(1).standard_normal(shape)
    ours, theirs = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with pytest.warns(UserWarning, match="Implicit dimension choice") as ours_warnings:
        y = getattr(dl.nn, name)()(ours)
    with pytest.warns(UserWarning, match="Implicit dimension choice") as torch_warnings:
        expected = getattr(torch.nn, name)()(theirs)
    assert str(ours_warnings[0].message) == str(torch_warnings[0].message)
    np.testing.assert_allclose(y.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    y.backward(g)
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert repr(getattr(dl.nn, name)()) == repr(getattr(torch.nn, name)())  # Softmax(dim=None)


@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_functional_softmax_without_a_dim_takes_torchs_legacy_dim_but_the_tensor_method_needs_one(function):
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {function}"):
        y = getattr(F, function)(dl.tensor(x))
    with pytest.warns(UserWarning):
        expected = getattr(torch.nn.functional, function)(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match="dim"):
        getattr(dl.tensor(x), function)()
    with pytest.raises(TypeError, match="dim"):
        getattr(torch.tensor(x), function)()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_underflows_to_zero_where_torch_does(dtype):
    """torch's sigmoid is 1 / (1 + e^-x): exactly 0 once e^-x overflows (float32 below -88.7),
    where e^x / (1 + e^x) gave subnormals; binary_cross_entropy's target gradient then is inf
    in both (the fuzzer found a float32 identity RNN whose outputs reached -100)."""
    torch = pytest.importorskip("torch")
    x = np.array([-700.0, -120.0, -104.0, -100.0, -89.0, -88.5, -80.0, -20.0, -1.0, 0.0, 3.0, 40.0, 800.0], dtype)
    ours = dl.tensor(x).sigmoid().data
    theirs = torch.sigmoid(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    np.testing.assert_allclose(ours, theirs, rtol=4 * np.finfo(dtype).eps, atol=0)

    p = dl.tensor(x).sigmoid()
    target = dl.tensor(np.full(x.shape, 0.25, dtype), requires_grad=True)
    F.binary_cross_entropy(p, target).backward()
    p_t = torch.sigmoid(torch.from_numpy(x))
    target_t = torch.full(x.shape, 0.25, dtype=p_t.dtype, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(p_t, target_t).backward()
    np.testing.assert_array_equal(np.isinf(target.grad.data), np.isinf(target_t.grad.numpy()))

"""SPEC §5: the exam's recurrent cells unrolled by nn.Recurrent, and Recurrent's own contract.

Values are typed in from the SPEC or derived by hand in the comments; gradients are checked
against central differences and, where the cell can be written in torch, against torch.
"""
import time

import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab import ShapeError
from deltalab.models import AdditiveCell, ElmanReLUCell, GateLSTMCell, ModifiedCell
from deltalab.nn import Module, Parameter, Recurrent
from deltalab.nn.module import swapped_tensors

# these tests compare at float64 precision (the default dtype is float32, as torch's)
pytestmark = pytest.mark.usefixtures("float64_default")


def unroll_with(cell, names):
    """fn(*weights, x, h0) -> outputs, with the cell's named weights replaced by the given tensors
    (so gradcheck can perturb them)."""

    def fn(*args):
        *weights, x, h0 = args
        with swapped_tensors(cell, dict(zip(names, weights))):
            return Recurrent(cell)(x, h0)[0]

    return fn


# --------------------------------------------------------------------------- Elman ReLU cell
def test_elman_relu_cell_forward_matches_spec():
    # SPEC §5: x = (2, −1), w_xh = 2, w_hh = 1, w_hy = 0.5, h0 = 0 -> h = (4, 2), ŷ = (2, 1)
    cell = ElmanReLUCell(w_xh=2.0, w_hh=1.0, w_hy=0.5)
    recurrent = Recurrent(cell, retain_grad=True)
    y, h_last = recurrent(dl.tensor([2.0, -1.0]))
    np.testing.assert_array_equal(y.numpy(), [2.0, 1.0])  # the seed's ŷ_1 = 1 is wrong
    np.testing.assert_array_equal([state.item() for _, state in recurrent.steps], [4.0, 2.0])
    assert h_last.item() == 2.0


def test_elman_relu_cell_gradients_by_hand():
    # L = Σ(ŷ_t − y_t)² with labels y = (1, 0) on the SPEC's example (all ReLUs active):
    # ∂L/∂ŷ = 2(ŷ − y) = (2, 2);  ∂L/∂h_2 = 2·0.5 = 1;  ∂L/∂h_1 = 2·0.5 + 1·w_hh = 2
    # ∂L/∂w_hy = Σ ∂L/∂ŷ_t h_t = 2·4 + 2·2 = 12;  ∂L/∂w_xh = Σ ∂L/∂h_t x_t = 2·2 + 1·(−1) = 3
    # ∂L/∂w_hh = Σ ∂L/∂h_t h_{t−1} = 2·0 + 1·4 = 4
    cell = ElmanReLUCell(w_xh=2.0, w_hh=1.0, w_hy=0.5)
    y, _ = Recurrent(cell)(dl.tensor([2.0, -1.0]))
    F.squared_error(y, dl.tensor([1.0, 0.0])).backward()
    assert (cell.w_hy.grad.item(), cell.w_xh.grad.item(), cell.w_hh.grad.item()) == (12.0, 3.0, 4.0)


@pytest.mark.parametrize("cell_type, names, weights, x", [
    (ElmanReLUCell, ("w_xh", "w_hh", "w_hy"), (2.0, 1.0, 0.5), [2.0, -1.0, 0.5, 1.5]),
    (ElmanReLUCell, ("w_xh", "w_hh", "w_hy"), (0.7, 0.9, -1.3), [[1.0, 0.4], [0.3, 0.8], [0.6, 0.2]]),
    (AdditiveCell, ("w",), (0.5,), [1.0, 0.5, -0.3, 0.8]),
    (ModifiedCell, ("w",), (-0.8,), [[0.4, -1.2], [0.9, 0.3], [0.5, 0.5]]),
])
def test_scalar_cell_gradients_equal_finite_differences(cell_type, names, weights, x):
    cell = cell_type(**dict(zip(names, weights)))
    tensors = [dl.tensor(w, requires_grad=True) for w in weights]
    x = dl.tensor(x, requires_grad=True)
    h0 = dl.tensor(np.full(x.shape[1:], 0.3), requires_grad=True)
    result = dl.gradcheck(unroll_with(cell, names), *tensors, x, h0, tolerance=1e-8)
    assert result.passed, result.errors


def test_additive_cell_forward_matches_exam():
    # exam 24 June 2021: x = (1, 0.5), w = 0.5, h0 = 0 -> h_1 = (0+1)·0.5 = 0.5, h_2 = (0.5+0.5)·0.5 = 0.5
    y, _ = Recurrent(AdditiveCell(w=0.5))(dl.tensor([1.0, 0.5]))
    np.testing.assert_array_equal(y.numpy(), [0.5, 0.5])


def test_additive_cell_bce_loss_and_per_step_state_deltas_by_hand():
    # E = Σ ŷ_t with ŷ_t = h_t = (h_{t−1} + x_t) w, w = 0.5, T = 3:
    # ∂E/∂h_3 = 1, ∂E/∂h_2 = 1 + w·1 = 1.5, ∂E/∂h_1 = 1 + w·1.5 = 1.75
    recurrent = Recurrent(AdditiveCell(w=0.5), retain_grad=True)
    y, _ = recurrent(dl.tensor([1.0, 0.5, 0.25]))
    y.sum().backward()
    np.testing.assert_allclose([state.grad.item() for _, state in recurrent.steps], [1.75, 1.5, 1.0])
    # and the exam's BCE loss differentiates through it: dL/dŷ = −y/ŷ + (1−y)/(1−ŷ)
    cell = AdditiveCell(w=0.5)
    y, _ = Recurrent(cell)(dl.tensor([1.0, 0.5]))
    F.binary_cross_entropy(y, dl.tensor([1.0, 0.0]), reduction="sum").backward()
    # ŷ = (0.5, 0.5): dL/dŷ = (−2, 2); dh_1/dw = o_1 = 1, dh_2/dw = o_2 + w dh_1/dw = 1 + 0.5 = 1.5
    # dL/dw = −2·1 + 2·1.5 = 1
    assert cell.w.grad.item() == pytest.approx(1.0, abs=1e-12)


def test_modified_cell_forward_and_gradient_by_hand():
    # x = (1, 2), w = 0.5, h0 = 0: s_1 = 1, o_1 = 0.5, ŷ_1 = 0.5, h_1 = 0.5;
    # s_2 = 2.5, o_2 = 1.25, ŷ_2 = 1.25 + 0.5 = 1.75
    cell = ModifiedCell(w=0.5)
    y, h = Recurrent(cell)(dl.tensor([1.0, 2.0]))
    np.testing.assert_allclose(y.numpy(), [0.5, 1.75])
    assert h.item() == 1.25
    # L = Σ ŷ_t: dŷ_1/dw = s_1 = 1; dŷ_2/dw = s_2 + (w + 1)·dh_1/dw = 2.5 + 1.5·1 = 4 -> dL/dw = 5
    y.sum().backward()
    assert cell.w.grad.item() == 5.0


def test_scalar_cells_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.uniform(0.2, 1.0, size=(5, 3))  # positive: every ReLU is active, as in the exam
    labels = rng.uniform(0, 1, size=(5, 3))
    for cell, torch_step in (
        (ElmanReLUCell(0.8, 0.6, 1.1), lambda w, x_t, h: (torch.relu(torch.relu(h * w[1] + w[0] * x_t) * w[2]),
                                                          torch.relu(h * w[1] + w[0] * x_t))),
        (ModifiedCell(-0.7), lambda w, x_t, h: (w[0] * (h + x_t) + h, w[0] * (h + x_t))),
        (AdditiveCell(0.9), lambda w, x_t, h: ((h + x_t) * w[0], (h + x_t) * w[0])),
    ):
        names = list(cell._parameters)
        y, _ = Recurrent(cell)(dl.tensor(x))
        F.squared_error(y, dl.tensor(labels)).backward()
        w = [torch.tensor(p.item(), dtype=torch.float64, requires_grad=True) for p in cell.parameters()]
        h, outputs = torch.zeros(3, dtype=torch.float64), []
        for x_t in torch.tensor(x):
            y_t, h = torch_step(w, x_t, h)
            outputs.append(y_t)
        ((torch.stack(outputs) - torch.tensor(labels)) ** 2).sum().backward()
        for name, ours, theirs in zip(names, cell.parameters(), w):
            assert ours.grad.item() == pytest.approx(theirs.grad.item(), rel=1e-12), (type(cell).__name__, name)


# --------------------------------------------------------------------------------- LSTM cell
def test_gate_lstm_cell_matches_torch_lstm_cell():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for steps, batch, n_in, hidden in ((1, 1, 1, 1), (4, 3, 2, 5), (12, 2, 4, 3)):
        dl.manual_seed(steps)
        cell = GateLSTMCell(n_in, hidden)
        x = rng.standard_normal((steps, batch, n_in))
        h0, c0 = rng.standard_normal((2, batch, hidden))
        weights = rng.standard_normal((steps, batch, hidden))
        xs, h0s, c0s = (dl.tensor(a, requires_grad=True) for a in (x, h0, c0))
        y, (h_n, c_n) = Recurrent(cell)(xs, (h0s, c0s))
        ((y * dl.tensor(weights)).sum() + (h_n * c_n).sum()).backward()

        twin = torch.nn.LSTMCell(n_in, hidden, dtype=torch.float64)
        with torch.no_grad():
            twin.weight_ih.copy_(torch.tensor(cell.weight_ih.numpy()))
            twin.weight_hh.copy_(torch.tensor(cell.weight_hh.numpy()))
            twin.bias_ih.copy_(torch.tensor(cell.bias.numpy()))
            twin.bias_hh.zero_()
        tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
        h, c, outputs = th, tc, []
        for t in range(steps):
            h, c = twin(tx[t], (h, c))
            outputs.append(h)
        ((torch.stack(outputs) * torch.tensor(weights)).sum() + (h * c).sum()).backward()

        def close(ours, theirs):
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)

        close(y.numpy(), torch.stack(outputs))
        close(c_n.numpy(), c)
        close(cell.weight_ih.grad.numpy(), twin.weight_ih.grad)
        close(cell.weight_hh.grad.numpy(), twin.weight_hh.grad)
        close(cell.bias.grad.numpy(), twin.bias_ih.grad)
        for ours, theirs in ((xs, tx), (h0s, th), (c0s, tc)):
            close(ours.grad.numpy(), theirs.grad)


def test_gate_lstm_cell_gradients_equal_finite_differences():
    dl.manual_seed(5)
    cell = GateLSTMCell(2, 3)
    names = ("weight_ih", "weight_hh", "bias")
    weights = [dl.tensor(getattr(cell, n).numpy().copy(), requires_grad=True) for n in names]
    x = dl.tensor(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)

    def fn(w_ih, w_hh, b, x):
        with swapped_tensors(cell, {"weight_ih": w_ih, "weight_hh": w_hh, "bias": b}):
            return Recurrent(cell)(x)[0]

    result = dl.gradcheck(fn, *weights, x)
    assert result.passed, result.errors


def test_gate_lstm_cell_memory_gradient_is_forget_gate_times_next():
    # the exam's answer: ∂L/∂C_{t−1} = ∂L/∂C_t · f_t, with f_t = σ(W_if x + W_hf h + b_f)
    dl.manual_seed(11)
    cell = GateLSTMCell(2, 3)
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal(2), rng.standard_normal(3), rng.standard_normal(3)
    c_prev = dl.tensor(c, requires_grad=True)
    _, (h_t, c_t) = cell(dl.tensor(x), (dl.tensor(h), c_prev))
    c_t.retain_grad()
    (h_t * dl.tensor(rng.standard_normal(3))).sum().backward()
    rows = slice(3, 6)
    forget = 1 / (1 + np.exp(-(cell.weight_ih.numpy()[rows] @ x + cell.weight_hh.numpy()[rows] @ h
                               + cell.bias.numpy()[rows])))
    np.testing.assert_allclose(c_prev.grad.numpy(), c_t.grad.numpy() * forget, rtol=1e-13)


# ------------------------------------------------------------------------- Recurrent contract
class Leaky(Module):
    """h_t = w h_{t−1} + x_t, output h_t (a scalar cell simple enough to differentiate by hand)."""

    def __init__(self, w=0.5):
        super().__init__()
        self.w = Parameter(w)

    def forward(self, x_t, h):
        h = self.w * h + x_t
        return h, h

    def initial_state(self, x_t):
        return dl.zeros(x_t.shape)


@pytest.mark.parametrize("truncate, expected", [(None, 6.75), (3, 6.75), (10, 6.75), (2, 5.75), (1, 5.25)])
def test_truncated_bptt_by_hand(truncate, expected):
    # x = (1, 2, 3), w = 0.5, h0 = 1: h = (1.5, 2.75, 4.375), E = Σ h_t.
    # Full BPTT: dh_t/dw = h_{t−1} + w·dh_{t−1}/dw -> 1, 2, 3.75, sum 6.75.
    # truncate=1 cuts every step: Σ h_{t−1} = 1 + 1.5 + 2.75 = 5.25.
    # truncate=2 cuts before step 3: 1 + 2 + 2.75 = 5.75.  k >= T is full BPTT.
    cell = Leaky(0.5)
    y, _ = Recurrent(cell, truncate=truncate)(dl.tensor([1.0, 2.0, 3.0]), dl.tensor(1.0))
    np.testing.assert_allclose(y.numpy(), [1.5, 2.75, 4.375])
    y.sum().backward()
    assert cell.w.grad.item() == pytest.approx(expected, abs=1e-12)


def test_truncate_at_least_sequence_length_equals_full_bptt_for_lstm():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 2, 3))
    grads = []
    for truncate in (None, 7, 50):
        dl.manual_seed(9)
        cell = GateLSTMCell(3, 4)
        y, _ = Recurrent(cell, truncate=truncate)(dl.tensor(x))
        (y * y).sum().backward()
        grads.append([p.grad.numpy().copy() for p in cell.parameters()])
    dl.manual_seed(9)
    cell = GateLSTMCell(3, 4)
    y, _ = Recurrent(cell, truncate=3)(dl.tensor(x))
    (y * y).sum().backward()
    truncated = [p.grad.numpy() for p in cell.parameters()]
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(truncated[1], grads[0][1])  # a real cut changes weight_hh's gradient


def test_long_sequence_backpropagates_without_recursion_error():
    # T = 2000 steps of h_t = tanh(w h_{t−1} + x_t), checked against a hand-written BPTT loop
    steps, w_value = 2000, 0.9
    x = np.sin(np.arange(steps) * 0.01)[:, None] * np.array([1.0, 0.5])

    class TanhCell(Leaky):
        def forward(self, x_t, h):
            h = F.tanh(self.w * h + x_t)
            return h, h

    cell = TanhCell(w_value)
    start = time.perf_counter()
    y, _ = Recurrent(cell)(dl.tensor(x))
    y.sum().backward()
    elapsed = time.perf_counter() - start
    h, hs = np.zeros(2), []
    for x_t in x:
        h = np.tanh(w_value * h + x_t)
        hs.append(h)
    grad_w, delta = 0.0, np.zeros(2)
    for t in range(steps - 1, -1, -1):
        delta = (1 + delta) * (1 - hs[t] ** 2)  # ∂E/∂a_t: the step's own output plus the future
        grad_w += float(delta @ (hs[t - 1] if t else np.zeros(2)))
        delta = delta * w_value
    assert cell.w.grad.item() == pytest.approx(grad_w, rel=1e-10)
    assert elapsed < 10


# ----------------------------------------------------------------------------------- bad input
def test_empty_sequence_is_refused_naming_the_layer():
    with pytest.raises(ShapeError, match=r"Recurrent\(GateLSTMCell\).*\(0, 2, 3\)"):
        Recurrent(GateLSTMCell(3, 4))(dl.tensor(np.zeros((0, 2, 3))))
    with pytest.raises(ShapeError, match=r"Recurrent\(ElmanReLUCell\).*\(0,\)"):
        Recurrent(ElmanReLUCell(1.0, 1.0, 1.0))(dl.tensor(np.zeros(0)))


def test_wrong_state_shape_is_refused_naming_the_layer_and_shapes():
    cell = GateLSTMCell(3, 4)
    x = dl.tensor(np.zeros((5, 2, 3)))
    with pytest.raises(ShapeError, match=r"Recurrent\(GateLSTMCell\).*\(\(2, 5\), \(2, 4\)\).*\(\(2, 4\), \(2, 4\)\)"):
        Recurrent(cell)(x, (dl.zeros(2, 5), dl.zeros(2, 4)))
    with pytest.raises(ShapeError, match=r"Recurrent\(Leaky\).*\(3,\).*\(2,\)"):
        Recurrent(Leaky())(dl.tensor(np.zeros((4, 2))), dl.zeros(3))


def test_wrong_feature_size_is_refused_by_the_lstm_cell():
    with pytest.raises(ShapeError, match=r"GateLSTMCell.*3 input features.*\(2, 5\)"):
        Recurrent(GateLSTMCell(3, 4))(dl.tensor(np.zeros((6, 2, 5))))

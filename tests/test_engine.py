"""The engine's contract: grad modes, detach, retained deltas, names, accumulation, broadcasting,
deep graphs, extreme logits, float32 everywhere it is asked for, and module state."""
import math

import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F

# these tests compare at float64 precision (the default dtype is float32, as torch's)
pytestmark = pytest.mark.usefixtures("float64_default")


# ------------------------------------------------------------------ grad modes
def test_no_grad_records_no_graph_and_restores_the_mode():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    with dl.no_grad():
        assert not dl.is_grad_enabled()
        y = x * 3 + 1
    assert dl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [4.0, 7.0])
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_no_grad_as_decorator_and_after_an_exception():
    @dl.no_grad()
    def infer(t):
        return t * 2

    x = dl.tensor(1.0, requires_grad=True)
    assert infer(x).grad_fn is None
    with pytest.raises(ZeroDivisionError):
        with dl.no_grad():
            raise ZeroDivisionError
    assert dl.is_grad_enabled()
    assert (x * 2).grad_fn is not None


def test_detach_cuts_the_graph():
    x = dl.tensor([2.0, -3.0], requires_grad=True)
    constant = x.detach()
    assert not constant.requires_grad and constant.grad_fn is None
    (constant * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -3.0])  # d(c·x)/dx = c, not 2x


# -------------------------------------------------------- retained deltas, names
def test_retain_grad_keeps_the_delta_of_an_intermediate_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))
    target = np.array([1, 0, 1])

    W1, W2 = dl.tensor(w1, requires_grad=True), dl.tensor(w2, requires_grad=True)
    z1 = F.linear(dl.tensor(x), W1).named("z1").retain_grad()
    a1 = F.tanh(z1).retain_grad()
    z2 = F.linear(a1, W2).retain_grad()
    loss = F.cross_entropy(z2, target).retain_grad()
    loss.backward()

    T1, T2 = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
    t_z1 = torch.tensor(x) @ T1.T
    t_z1.retain_grad()
    t_a1 = torch.tanh(t_z1)
    t_a1.retain_grad()
    t_z2 = t_a1 @ T2.T
    t_z2.retain_grad()
    torch.nn.functional.cross_entropy(t_z2, torch.tensor(target)).backward()

    for ours, theirs in [(z1, t_z1), (a1, t_a1), (z2, t_z2), (W1, T1), (W2, T2)]:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert loss.grad.item() == 1.0
    assert z1.name == "z1"


def test_intermediate_without_retain_grad_keeps_no_gradient():
    x = dl.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.sum().backward()
    assert h.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_named_tensors():
    w = dl.tensor([[0.5]], requires_grad=True, name="W1")
    z = (w @ dl.tensor([[2.0]])).named("z1")
    assert (w.name, z.name) == ("W1", "z1")
    assert "z1" in repr(z)
    assert z.detach().name == "z1"
    assert dl.tensor(1.0).name is None


# -------------------------------------------------------------- accumulation
def test_gradients_accumulate_and_module_zero_grad_clears_them():
    layer = dl.nn.Linear(3, 2)
    x = dl.tensor([[1.0, 2.0, 3.0]])
    layer(x).sum().backward()
    once = layer.weight.grad.numpy().copy()
    np.testing.assert_array_equal(once, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])  # d Σz / dW = x per output row
    layer(x).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), 2 * once)
    np.testing.assert_array_equal(layer.bias.grad.numpy(), [2.0, 2.0])
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None
    layer(x).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), once)


def test_optimizer_zero_grad_to_none_and_to_zeros():
    layer = dl.nn.Linear(2, 1)
    optimizer = dl.optim.SGD(layer.parameters(), lr=0.1)
    layer(dl.tensor([[1.0, -1.0]])).sum().backward()
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(layer.weight.grad.numpy(), [[0.0, 0.0]])
    layer(dl.tensor([[3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), [[3.0, 4.0]])  # only the second batch
    optimizer.zero_grad()
    assert all(p.grad is None for p in layer.parameters())
    before = layer.weight.numpy().copy()
    optimizer.step()  # no gradients: nothing moves
    np.testing.assert_array_equal(layer.weight.numpy(), before)


def test_one_sgd_step_is_theta_minus_eta_gradient():
    w = dl.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()  # gradient 2w
    dl.optim.SGD([w], lr=0.25).step()
    np.testing.assert_array_equal(w.numpy(), [0.5, -1.0])


# ---------------------------------------------------------------- broadcasting
def test_broadcast_gradients_are_summed_back_to_each_operand():
    column = dl.tensor([[1.0], [2.0], [3.0]], requires_grad=True)  # (3, 1)
    row = dl.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)  # (4,)
    scale = dl.tensor(2.0, requires_grad=True)  # ()
    (column * row * scale).sum().backward()
    np.testing.assert_array_equal(column.grad.numpy(), [[200.0], [200.0], [200.0]])  # 2·Σrow
    np.testing.assert_array_equal(row.grad.numpy(), [12.0] * 4)  # 2·Σcolumn
    assert scale.grad.item() == 6.0 * 100.0
    assert column.grad.shape == (3, 1) and row.grad.shape == (4,) and scale.grad.shape == ()


def test_bias_broadcast_over_batch_and_space():
    x = dl.tensor(np.ones((2, 3, 4, 5)))
    b = dl.tensor(np.zeros((1, 3, 1, 1)), requires_grad=True)
    (x + b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), np.full((1, 3, 1, 1), 2 * 4 * 5.0))


# ------------------------------------------------------------------ deep graph
def test_100000_node_graph_backpropagates_exactly():
    # h_t = w·h_{t−1} + 1 with w = 1: h_T = h_0 + T and dh_T/dw = Σ_t h_{t−1} = T·h_0 + T(T − 1)/2
    steps, h0 = 50_000, 0.5
    w = dl.tensor(1.0, requires_grad=True)
    h = dl.tensor(h0, requires_grad=True)
    start = h
    for _ in range(steps):
        h = h * w + 1.0  # two nodes per step
    assert h.item() == h0 + steps
    h.backward()
    assert w.grad.item() == steps * h0 + steps * (steps - 1) / 2
    assert start.grad.item() == 1.0


# ------------------------------------------------------------- extreme logits
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_stay_finite(scale):
    logits = dl.tensor([[scale, -scale, 0.0], [0.0, 0.0, scale]], requires_grad=True)
    probabilities = F.softmax(logits, 1)
    log_probabilities = F.log_softmax(logits, 1)
    loss = F.cross_entropy(logits, np.array([1, 0]))
    for value in (probabilities, log_probabilities, loss):
        assert np.all(np.isfinite(value.numpy()))
    log2 = math.log(2)
    expected_log = {
        1e4: np.array([[0.0, -2e4, -1e4], [-1e4, -1e4, 0.0]]),
        -1e4: np.array([[-2e4, 0.0, -1e4], [-log2, -log2, -1e4 - log2]]),
    }[scale]
    np.testing.assert_allclose(log_probabilities.numpy(), expected_log, rtol=1e-12)
    loss.backward()
    assert np.all(np.isfinite(logits.grad.numpy()))
    # δ = (softmax − one-hot)/N, exactly computable here
    expected_grad = (np.exp(expected_log) - np.eye(3)[[1, 0]]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, atol=1e-15)


def test_softmax_gradient_of_huge_logits_is_finite():
    logits = dl.tensor([1e4, -1e4, 3.0], requires_grad=True)
    (F.softmax(logits) * dl.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert np.all(np.isfinite(logits.grad.numpy()))


# ---------------------------------------------------------------------- float32
def test_float32_tensor_stays_float32_through_ops_with_python_scalars():
    x = dl.tensor([[0.5, -1.0], [2.0, 0.25]], dtype="float32", requires_grad=True)
    assert x.dtype == np.float32
    steps = [
        x * 2.5, 2.5 * x, x + 1, 1 - x, x / 3, 3 / (x + 5), x**2, 2.0**x, -x, x @ x, x.T,
        F.relu(x), F.tanh(x), F.sigmoid(x), x.exp(), (x * x + 1).log(), F.softmax(x), F.log_softmax(x),
        x.sum(), x.mean(0), x.max(1).values, x[0], dl.where(x.numpy() > 0, x, 0.0), dl.stack([x, x]),
        x.reshape(4), F.pad(x, (1, 1, 1, 1)),
    ]
    for i, y in enumerate(steps):
        assert y.dtype == np.float32, f"step {i} promoted to {y.dtype}"
    total = sum(y.sum() for y in steps)
    assert total.dtype == np.float32
    total.backward()
    assert x.grad.dtype == np.float32


def test_a_float64_scalar_tensor_does_not_promote_a_float32_tensor():
    # PyTorch's rule: a 0-d tensor does not decide the dtype of an op with a dimensioned tensor
    x = dl.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    scale = dl.tensor(0.5, requires_grad=True)
    assert scale.dtype == np.float64
    for y in (x * scale, scale * x, x + scale, scale - x, x / scale, x**scale, dl.where([True, False], x, scale)):
        assert y.dtype == np.float32
    (x * scale).sum().backward()
    assert x.grad.dtype == np.float32 and scale.grad.dtype == np.float64
    assert scale.grad.item() == 3.0
    assert (dl.tensor([1.0]) * dl.tensor(np.float32(2.0))).dtype == np.float64  # and the other way round


def test_net_float_keeps_every_layer_float32():
    dl.manual_seed(0)
    net = dl.nn.Sequential(
        dl.nn.Conv2d(2, 3, 3, padding="same"), dl.nn.ReLU(), dl.nn.MaxPool2d(2, padding=1),
        dl.nn.Conv2d(3, 2, 2, stride=2), dl.nn.Tanh(), dl.nn.AvgPool2d(2, stride=1, padding=1),
        dl.nn.Flatten(), dl.nn.Linear(2 * 3 * 3, 4), dl.nn.Sigmoid(), dl.nn.Linear(4, 3), dl.nn.Softmax(1),
    ).float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    x = dl.tensor(np.random.default_rng(0).standard_normal((2, 2, 8, 8)), dtype="float32")
    for i, layer in enumerate(net):
        x = layer(x)
        assert x.dtype == np.float32, f"layer {i} ({type(layer).__name__}) returned {x.dtype}"
    for loss in (
        F.cross_entropy(x, np.array([0, 2])),
        F.half_squared_error(x, np.zeros((2, 3))),
        F.mse_loss(x, np.zeros((2, 3), dtype=np.float32)),
        F.binary_cross_entropy(x, np.full((2, 3), 0.5, dtype=np.float32)),
    ):
        assert loss.dtype == np.float32
    optimizer = dl.optim.Adam(net.parameters(), lr=0.01)
    F.cross_entropy(net(dl.tensor(np.ones((2, 2, 8, 8)), dtype="float32")), np.array([0, 1])).backward()
    assert all(p.grad.dtype == np.float32 for p in net.parameters())
    optimizer.step()
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters())


def test_float32_sgd_with_momentum_keeps_float32():
    layer = dl.nn.Linear(3, 2).float()
    optimizer = dl.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    for _ in range(2):
        optimizer.zero_grad()
        F.mse_loss(layer(dl.tensor([[1.0, 2.0, 3.0]], dtype="float32")), np.zeros((1, 2), dtype=np.float32)).backward()
        optimizer.step()
    assert all(p.dtype == np.float32 for p in layer.parameters())


@pytest.fixture
def default_float32():
    previous = dl.get_default_dtype()
    dl.set_default_dtype("float32")
    try:
        yield
    finally:
        dl.set_default_dtype(previous)


def test_global_default_dtype(default_float32):
    assert dl.get_default_dtype() == np.float32
    assert dl.tensor([1.0, 2.0]).dtype == np.float32
    assert dl.tensor(3.0).dtype == np.float32
    assert dl.zeros(2, 3).dtype == np.float32 and dl.ones((2,)).dtype == np.float32
    assert dl.tensor([1, 2], requires_grad=True).dtype == np.float32
    layer = dl.nn.Linear(3, 2)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert dl.nn.Conv2d(1, 2, 3).weight.dtype == np.float32
    assert layer(dl.tensor([[0.1, 0.2, 0.3]])).dtype == np.float32
    assert dl.tensor([1, 2]).dtype.kind == "i"  # integers (class indices) stay integers


def test_default_dtype_is_restored_to_float64():
    assert dl.get_default_dtype() == np.float64
    assert dl.tensor([1.0]).dtype == np.float64


def test_unsupported_dtype_is_refused():
    with pytest.raises(ValueError, match="float16"):
        dl.tensor([1.0], dtype="float16")


# --------------------------------------------------------------------- state
def small_net():
    return dl.nn.Sequential(dl.nn.Conv2d(1, 2, 3), dl.nn.ReLU(), dl.nn.Flatten(), dl.nn.Linear(2 * 2 * 2, 3))


def test_named_parameters_use_pytorch_keys():
    net = small_net()
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    nested = dl.nn.Sequential(dl.nn.Linear(2, 2), dl.nn.Sequential(dl.nn.Tanh(), dl.nn.Linear(2, 1, bias=False)))
    assert list(nested.state_dict()) == ["0.weight", "0.bias", "1.1.weight"]
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes == {"0.weight": (2, 1, 3, 3), "0.bias": (2,), "3.weight": (3, 8), "3.bias": (3,)}


def test_state_dict_round_trip():
    dl.manual_seed(1)
    source, copy = small_net(), small_net()
    x = dl.tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)))
    assert not np.allclose(source(x).numpy(), copy(x).numpy())
    state = source.state_dict()
    copy.load_state_dict(state)
    np.testing.assert_array_equal(source(x).numpy(), copy(x).numpy())
    state["0.weight"][...] = 0.0  # the state is a copy, not a view of the parameters
    assert np.any(source[0].weight.numpy() != 0)


@pytest.mark.parametrize(
    "change, error, words",
    [
        (lambda s: s.pop("3.bias"), dl.DeltalabError, ["missing", "3.bias"]),
        (lambda s: s.update({"4.weight": np.zeros(3)}), dl.DeltalabError, ["unexpected", "4.weight"]),
        (lambda s: s.update({"3.weight": np.zeros((3, 9))}), dl.ShapeError, ["3.weight", "(3, 8)", "(3, 9)"]),
    ],
    ids=["missing", "unexpected", "mis-shaped"],
)
def test_load_state_dict_refuses_a_state_for_another_architecture(change, error, words):
    net = small_net()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    state = {k: np.full_like(v, 7.0) for k, v in net.state_dict().items()}
    change(state)
    with pytest.raises(error) as info:
        net.load_state_dict(state)
    for word in words:
        assert word in str(info.value)
    for name, value in net.state_dict().items():  # a refused state changes nothing
        np.testing.assert_array_equal(value, before[name])

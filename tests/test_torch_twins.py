"""Every op and module against its PyTorch float64 twin, with copied weights and shapes drawn by
hypothesis.  Outputs and every gradient must agree to 1e-10 (relative)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import deltalab as dl  # noqa: E402
import deltalab.functional as F  # noqa: E402
import deltalab.ops as ops  # noqa: E402

# these tests compare at float64 precision (the default dtype is float32, as torch's)
pytestmark = pytest.mark.usefixtures("float64_default")

TF = torch.nn.functional
seeds = st.integers(0, 2**31 - 1)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def twin(dl_fn, torch_fn, *arrays, seed=0, differentiable=None):
    """Run both on copies of ``arrays``; compare outputs, then gradients of a random projection.

    ``differentiable`` (one bool per array) marks which inputs need a gradient (default all)."""
    differentiable = differentiable or [True] * len(arrays)
    ours = [dl.tensor(a, requires_grad=g) for a, g in zip(arrays, differentiable)]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=g) for a, g in zip(arrays, differentiable)]
    out, expected = dl_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(expected.shape)
    assert out.dtype == np.float64
    close(out.numpy(), expected.detach().numpy())
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    (out * dl.tensor(projection)).sum().backward()
    (expected * torch.tensor(projection)).sum().backward()
    for mine, reference, needed in zip(ours, theirs, differentiable):
        if not needed:
            continue
        reference_grad = reference.grad.numpy() if reference.grad is not None else np.zeros(reference.shape)
        assert mine.grad is not None
        assert mine.grad.shape == mine.shape
        close(mine.grad.numpy(), reference_grad)
    return out


def random(rng, shape, low=None, high=None):
    if low is None:
        return rng.standard_normal(shape)
    return rng.uniform(low, high, size=shape)


@st.composite
def shapes(draw, min_dims=1, max_dims=4, max_side=4):
    return tuple(draw(st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims)))


@st.composite
def broadcast_pair(draw):
    """A shape and a second shape broadcastable against it (fewer axes and/or axes of size 1)."""
    a = draw(shapes())
    keep = draw(st.integers(0, len(a)))
    b = tuple(1 if draw(st.booleans()) else n for n in a[len(a) - keep:])
    return (a, b) if draw(st.booleans()) else (b, a)


# ------------------------------------------------------------------ arithmetic
@pytest.mark.parametrize(
    "op, reference",
    [(ops.add, torch.add), (ops.sub, torch.sub), (ops.mul, torch.mul), (ops.div, torch.div)],
    ids=["add", "sub", "mul", "div"],
)
@given(pair=broadcast_pair(), seed=seeds)
def test_binary_ops_with_broadcasting(op, reference, pair, seed):
    rng = np.random.default_rng(seed)
    a = random(rng, pair[0])
    b = random(rng, pair[1], 0.5, 2.0) * rng.choice([-1, 1], size=pair[1])  # away from 0 for div
    twin(op, reference, a, b, seed=seed)


@given(pair=broadcast_pair(), seed=seeds)
def test_operators_and_python_scalars(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = random(rng, pair[0]), random(rng, pair[1], 0.5, 2.0)
    twin(lambda x, y: (2.5 - x) * y / 3 + 1 / y - x, lambda x, y: (2.5 - x) * y / 3 + 1 / y - x, a, b, seed=seed)


@given(shape=shapes(), seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5, 1.0]))
def test_pow_with_scalar_exponent(shape, seed, exponent):
    a = random(np.random.default_rng(seed), shape, 0.3, 2.0)
    twin(lambda x: x**exponent, lambda x: x**exponent, a, seed=seed)
    twin(lambda x: ops.pow(x, exponent), lambda x: torch.pow(x, exponent), a, seed=seed)


def test_pow_at_zero_base_matches_torch():
    base = np.array([0.0, 0.0, 1.5, 0.0])
    for exponent in (0.0, 1.0, 2.0, 3):
        twin(lambda x: x**exponent, lambda x: x**exponent, base)
    twin(ops.pow, torch.pow, base, np.array([0.0, 2.0, -1.0, 1.0]))


@given(pair=broadcast_pair(), seed=seeds)
def test_pow_with_tensor_exponent(pair, seed):
    rng = np.random.default_rng(seed)
    base, exponent = random(rng, pair[0], 0.3, 2.0), random(rng, pair[1])
    twin(ops.pow, torch.pow, base, exponent, seed=seed)


@given(shape=shapes(), seed=seeds)
def test_scalar_base_to_a_tensor_power_and_neg(shape, seed):
    a = random(np.random.default_rng(seed), shape)
    twin(lambda x: 2.0**x, lambda x: 2.0**x, a, seed=seed)
    twin(lambda x: -x, lambda x: -x, a, seed=seed)
    twin(ops.neg, torch.neg, a, seed=seed)


# ------------------------------------------------------------------- matmul
@given(
    batch=st.sampled_from([(), (2,), (3, 2)]),
    broadcast=st.booleans(),
    n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), seed=seeds,
)
def test_matmul_batched_and_broadcast(batch, broadcast, n, k, m, seed):
    rng = np.random.default_rng(seed)
    a_batch = batch[:-1] + (1,) if (broadcast and batch) else batch
    a, b = random(rng, a_batch + (n, k)), random(rng, batch + (k, m))
    twin(ops.matmul, torch.matmul, a, b, seed=seed)
    twin(lambda x, y: x @ y, lambda x, y: x @ y, a, b, seed=seed)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (2, 3, 4)), ((2, 4, 3), (3,)), ((1, 3), (3, 1))],
)
def test_matmul_with_vectors(shape_a, shape_b):
    rng = np.random.default_rng(7)
    twin(ops.matmul, torch.matmul, random(rng, shape_a), random(rng, shape_b))


# --------------------------------------------------------------- reductions
@st.composite
def shape_and_axis(draw):
    shape = draw(shapes(min_dims=1, max_dims=4))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape), max_size=len(shape)))
    axis = draw(st.sampled_from([None, tuple(axes), axes[0] if axes else None]))
    return shape, axis


def _torch_dims(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else axis


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_sum_and_mean_over_axes(case, keepdims, seed):
    shape, axis = case
    a = random(np.random.default_rng(seed), shape)
    dims = _torch_dims(axis, len(shape))
    if dims == ():  # an empty axis tuple reduces nothing in numpy, everything in torch: skip it
        return
    twin(lambda x: x.sum(axis, keepdims), lambda x: x.sum(dim=dims, keepdim=keepdims), a, seed=seed)
    twin(lambda x: x.mean(axis, keepdims), lambda x: x.mean(dim=dims, keepdim=keepdims), a, seed=seed)


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_max_over_axes(case, keepdims, seed):
    shape, axis = case
    a = random(np.random.default_rng(seed), shape)  # continuous values: no ties
    dims = _torch_dims(axis, len(shape))
    if dims == ():
        return
    twin(lambda x: getattr(x.max(axis, keepdims), "values", x.max(axis, keepdims)), lambda x: torch.amax(x, dim=dims, keepdim=keepdims), a, seed=seed)


def test_max_over_one_axis_sends_the_gradient_to_the_first_of_tied_maxima():
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 0.0, -1.0]])
    twin(lambda x: x.max(1).values, lambda x: torch.max(x, dim=1).values, a)
    twin(lambda x: x.max(0, keepdims=True).values, lambda x: torch.max(x, dim=0, keepdim=True).values, a.T.copy())


# --------------------------------------------------------------- shape ops
@given(shape=shapes(min_dims=1, max_dims=4), seed=seeds, data=st.data())
def test_reshape_and_transpose(shape, seed, data):
    a = random(np.random.default_rng(seed), shape)
    target = data.draw(st.permutations(list(shape) + [1]))
    twin(lambda x: x.reshape(tuple(target)), lambda x: x.reshape(tuple(target)), a, seed=seed)
    twin(lambda x: x.reshape(-1), lambda x: x.reshape(-1), a, seed=seed)
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    twin(lambda x: x.transpose(axes), lambda x: x.permute(axes), a, seed=seed)
    twin(lambda x: x.T, lambda x: x.permute(tuple(reversed(range(len(shape))))), a, seed=seed)


@st.composite
def index_case(draw):
    shape = draw(shapes(min_dims=2, max_dims=3, max_side=5))
    kind = draw(st.sampled_from(["slice", "int", "fancy", "mixed", "mask"]))
    if kind == "slice":
        index = tuple(
            slice(draw(st.integers(0, n - 1)), draw(st.integers(1, n + 1)), draw(st.integers(1, 3))) for n in shape
        )
    elif kind == "int":
        index = (draw(st.integers(-shape[0], shape[0] - 1)),)
    elif kind == "fancy":  # repeated indices must add their gradients
        index = (np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6))),)
    elif kind == "mixed":
        rows = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4)))
        index = (rows, slice(None, None, 2))
    else:
        index = (np.array(draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0]))),)
    return shape, index


def _torch_index(index):
    return tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)


@given(case=index_case(), seed=seeds)
def test_indexing(case, seed):
    shape, index = case
    a = random(np.random.default_rng(seed), shape)
    if any(isinstance(i, slice) and i.start is not None and i.start >= i.stop for i in index):
        return  # empty slices: nothing to compare
    twin(lambda x: x[index], lambda x: x[_torch_index(index)], a, seed=seed)


def test_fancy_index_with_repeats_adds_gradients():
    a = np.arange(12.0).reshape(4, 3)
    twin(lambda x: x[np.array([0, 2, 0, 0, 3])], lambda x: x[torch.tensor([0, 2, 0, 0, 3])], a)
    twin(lambda x: x[np.array([1, 1]), np.array([2, 2])], lambda x: x[torch.tensor([1, 1]), torch.tensor([2, 2])], a)


@given(shape=shapes(min_dims=1, max_dims=3), count=st.integers(1, 3), seed=seeds, data=st.data())
def test_concatenate_and_stack(shape, count, seed, data):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(count):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        parts.append(random(rng, tuple(s)))
    twin(lambda *xs: dl.concatenate(list(xs), axis=axis), lambda *xs: torch.cat(xs, dim=axis), *parts, seed=seed)
    same = [random(rng, shape) for _ in range(count)]
    stack_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    twin(lambda *xs: dl.stack(list(xs), axis=stack_axis), lambda *xs: torch.stack(xs, dim=stack_axis), *same, seed=seed)


@given(shape=shapes(min_dims=1, max_dims=4), seed=seeds, data=st.data(), value=st.sampled_from([0.0, -1.5]))
def test_pad_per_axis(shape, seed, data, value):
    a = random(np.random.default_rng(seed), shape)
    widths = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    torch_widths = tuple(w for pair in reversed(widths) for w in pair)  # torch: last axis first
    twin(lambda x: ops.pad(x, widths, value), lambda x: TF.pad(x, torch_widths, value=value), a, seed=seed)


# ---------------------------------------------------- elementwise functions
@pytest.mark.parametrize(
    "ours, theirs, low, high",
    [
        (ops.exp, torch.exp, -3, 3),
        (ops.log, torch.log, 0.1, 5),
        (ops.tanh, torch.tanh, -4, 4),
        (ops.sigmoid, torch.sigmoid, -8, 8),
        (ops.relu, torch.relu, -2, 2),
    ],
    ids=["exp", "log", "tanh", "sigmoid", "relu"],
)
@given(shape=shapes(), seed=seeds)
def test_elementwise_functions(ours, theirs, low, high, shape, seed):
    twin(ours, theirs, random(np.random.default_rng(seed), shape, low, high), seed=seed)


def test_relu_at_exactly_zero_has_zero_gradient_like_torch():
    twin(ops.relu, torch.relu, np.array([-1.0, 0.0, 0.0, 2.0]))


@given(shape=shapes(min_dims=1, max_dims=3), seed=seeds, data=st.data())
def test_softmax_and_log_softmax(shape, seed, data):
    a = random(np.random.default_rng(seed), shape) * 3
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    twin(lambda x: ops.softmax(x, axis), lambda x: torch.softmax(x, dim=axis), a, seed=seed)
    twin(lambda x: ops.log_softmax(x, axis), lambda x: torch.log_softmax(x, dim=axis), a, seed=seed)


@given(pair=broadcast_pair(), seed=seeds)
def test_where(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = random(rng, pair[0]), random(rng, pair[1])
    condition = rng.random(np.broadcast_shapes(pair[0], pair[1])) > 0.5
    twin(
        lambda x, y: dl.where(condition, x, y),
        lambda x, y: torch.where(torch.tensor(condition), x, y),
        a, b, seed=seed,
    )


# ------------------------------------------------------------ fused kernels
@st.composite
def conv_case(draw):
    n = draw(st.integers(2, 3))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    bias = draw(st.booleans())
    return dict(x=(n, c_in, h, w), weight=(c_out, c_in, kh, kw), stride=(sh, sw), padding=(ph, pw), bias=bias)


@given(case=conv_case(), seed=seeds)
def test_conv2d(case, seed):
    rng = np.random.default_rng(seed)
    arrays = [random(rng, case["x"]), random(rng, case["weight"])]
    if case["bias"]:
        arrays.append(random(rng, case["weight"][:1]))
    stride, padding = case["stride"], case["padding"]
    twin(
        lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride=stride, padding=padding),
        lambda x, w, *b: TF.conv2d(x, w, b[0] if b else None, stride=stride, padding=padding),
        *arrays, seed=seed,
    )


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 8))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 8))
    shape = (draw(st.integers(2, 3)), draw(st.integers(1, 3)), h, w)
    return shape, (kh, kw), stride, padding


@given(case=pool_case(), seed=seeds)
def test_max_pool2d(case, seed):
    shape, kernel, stride, padding = case
    a = random(np.random.default_rng(seed), shape)
    twin(
        lambda x: F.max_pool2d(x, kernel, stride, padding),
        lambda x: TF.max_pool2d(x, kernel, stride, padding),
        a, seed=seed,
    )


@given(case=pool_case(), seed=seeds)
def test_avg_pool2d_counts_padding_like_torch(case, seed):
    shape, kernel, stride, padding = case
    a = random(np.random.default_rng(seed), shape)
    twin(
        lambda x: F.avg_pool2d(x, kernel, stride, padding),
        lambda x: TF.avg_pool2d(x, kernel, stride, padding),
        a, seed=seed,
    )


@given(seed=seeds, kernel=st.sampled_from([2, 3, (2, 3)]), stride=st.sampled_from([1, 2, None]))
def test_max_pool2d_with_ties_sends_the_gradient_to_the_first_maximum(seed, kernel, stride):
    rng = np.random.default_rng(seed)
    relu_out = np.maximum(rng.integers(-3, 3, size=(2, 2, 6, 7)), 0).astype(float)  # many zeros and equal ints
    twin(lambda x: F.max_pool2d(x, kernel, stride), lambda x: TF.max_pool2d(x, kernel, stride), relu_out, seed=seed)


def test_max_pool2d_all_equal_window():
    flat = np.ones((2, 1, 4, 4))
    twin(lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), flat)
    twin(lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: TF.max_pool2d(x, 3, 1, 1), flat)  # flat border with padding


@given(lead=st.sampled_from([(), (3,), (2, 3)]), n_in=st.integers(1, 5), n_out=st.integers(1, 5),
       bias=st.booleans(), seed=seeds)
def test_linear(lead, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    arrays = [random(rng, lead + (n_in,)), random(rng, (n_out, n_in))] + ([random(rng, (n_out,))] if bias else [])
    twin(
        lambda x, w, *b: F.linear(x, w, b[0] if b else None),
        lambda x, w, *b: TF.linear(x, w, b[0] if b else None),
        *arrays, seed=seed,
    )


# ------------------------------------------------------------------ modules
def copy_weights(ours, theirs):
    """Load torch's initial weights into our module (the torch twin keeps its own)."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def module_twin(ours, theirs, x, seed=0):
    copy_weights(ours, theirs)
    theirs = theirs.double()
    xt = torch.tensor(x, requires_grad=True)
    xd = dl.tensor(x, requires_grad=True)
    out, expected = ours(xd), theirs(xt)
    close(out.numpy(), expected.detach().numpy())
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    (out * projection).sum().backward()
    (expected * torch.tensor(projection)).sum().backward()
    close(xd.grad.numpy(), xt.grad.numpy())
    reference = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert names == list(reference)
    for name, p in ours.named_parameters():
        close(p.grad.numpy(), reference[name].grad.numpy())


@given(case=conv_case(), seed=seeds)
def test_conv2d_module(case, seed):
    torch.manual_seed(seed)
    _, c_in, _, _ = case["x"]
    c_out, _, kh, kw = case["weight"]
    kwargs = dict(stride=case["stride"], padding=case["padding"], bias=case["bias"])
    module_twin(
        dl.nn.Conv2d(c_in, c_out, (kh, kw), **kwargs), torch.nn.Conv2d(c_in, c_out, (kh, kw), **kwargs),
        random(np.random.default_rng(seed), case["x"]), seed,
    )


@given(kernel=st.sampled_from([1, 3, 5, (3, 5), (5, 1)]), h=st.integers(1, 7), w=st.integers(1, 7), seed=seeds)
def test_conv2d_module_with_same_padding(kernel, h, w, seed):
    torch.manual_seed(seed)
    x = random(np.random.default_rng(seed), (2, 2, h, w))
    ours = dl.nn.Conv2d(2, 3, kernel, padding="same")
    module_twin(ours, torch.nn.Conv2d(2, 3, kernel, padding="same"), x, seed)
    assert ours(dl.tensor(x)).shape == (2, 3, h, w)


@given(n_in=st.integers(1, 5), n_out=st.integers(1, 5), bias=st.booleans(), seed=seeds)
def test_linear_module(n_in, n_out, bias, seed):
    torch.manual_seed(seed)
    x = random(np.random.default_rng(seed), (3, n_in))
    module_twin(dl.nn.Linear(n_in, n_out, bias=bias), torch.nn.Linear(n_in, n_out, bias=bias), x, seed)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: dl.nn.ReLU(), lambda: torch.nn.ReLU()),
        (lambda: dl.nn.Tanh(), lambda: torch.nn.Tanh()),
        (lambda: dl.nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
        (lambda: dl.nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
        (lambda: dl.nn.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
        (lambda: dl.nn.Identity(), lambda: torch.nn.Identity()),
        (lambda: dl.nn.Flatten(), lambda: torch.nn.Flatten()),
        (lambda: dl.nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
        (lambda: dl.nn.MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, stride=2, padding=1)),
        (lambda: dl.nn.AvgPool2d((2, 3), stride=(1, 2), padding=(1, 1)),
         lambda: torch.nn.AvgPool2d((2, 3), stride=(1, 2), padding=(1, 1))),
    ],
    ids=["ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Identity", "Flatten", "MaxPool2d", "MaxPool2d-pad",
         "AvgPool2d"],
)
def test_parameter_free_modules(ours, theirs):
    x = random(np.random.default_rng(3), (2, 3, 5, 6))
    module_twin(ours(), theirs(), x)


def test_sequential_cnn():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding="same"), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 5, (3, 2), stride=(2, 1), padding=(1, 0)), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2, stride=1, padding=1), torch.nn.Flatten(), torch.nn.Linear(5 * 3 * 3, 6),
        torch.nn.Sigmoid(), torch.nn.Linear(6, 3), torch.nn.LogSoftmax(dim=1),
    )
    ours = dl.nn.Sequential(
        dl.nn.Conv2d(3, 4, 3, padding="same"), dl.nn.ReLU(), dl.nn.MaxPool2d(2),
        dl.nn.Conv2d(4, 5, (3, 2), stride=(2, 1), padding=(1, 0)), dl.nn.Tanh(),
        dl.nn.AvgPool2d(2, stride=1, padding=1), dl.nn.Flatten(), dl.nn.Linear(5 * 3 * 3, 6),
        dl.nn.Sigmoid(), dl.nn.Linear(6, 3), dl.nn.LogSoftmax(dim=1),
    )
    module_twin(ours, theirs, random(np.random.default_rng(5), (2, 3, 8, 7)))


# ------------------------------------------------------------------- losses
@given(shape=shapes(min_dims=1, max_dims=3), seed=seeds)
def test_squared_error_losses(shape, seed):
    rng = np.random.default_rng(seed)
    y, t = random(rng, shape), random(rng, shape)
    diff = dict(differentiable=[True, True], seed=seed)
    twin(lambda a, b: F.half_squared_error(a, b), lambda a, b: 0.5 * TF.mse_loss(a, b, reduction="sum"), y, t, **diff)
    twin(lambda a, b: F.squared_error(a, b), lambda a, b: TF.mse_loss(a, b, reduction="sum"), y, t, **diff)
    for reduction in ("mean", "sum", "none"):
        twin(lambda a, b: F.mse_loss(a, b, reduction=reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction), y, t, **diff)
    twin(lambda a, b: F.mse_loss(a, b), lambda a, b: TF.mse_loss(a, b), y, t, **diff)


@st.composite
def classification_case(draw):
    n, c = draw(st.integers(2, 4)), draw(st.integers(2, 5))
    extra = draw(st.sampled_from([(), (3,), (2, 2)]))
    return (n, c) + extra


@given(shape=classification_case(), reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_cross_entropy_with_class_indices(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    logits = random(rng, shape) * 2
    target = rng.integers(0, shape[1], size=shape[:1] + shape[2:])
    twin(
        lambda z: F.cross_entropy(z, target, reduction=reduction),
        lambda z: TF.cross_entropy(z, torch.tensor(target), reduction=reduction),
        logits, seed=seed,
    )


@given(shape=classification_case(), reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_cross_entropy_with_probability_targets(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    logits = random(rng, shape) * 2
    probabilities = rng.dirichlet(np.ones(shape[1]), size=shape[:1] + shape[2:])
    probabilities = np.moveaxis(probabilities, -1, 1).copy()
    twin(
        lambda z, t: F.cross_entropy(z, t, reduction=reduction),
        lambda z, t: TF.cross_entropy(z, t, reduction=reduction),
        logits, probabilities, seed=seed, differentiable=[True, True],
    )


def test_cross_entropy_unbatched_and_module():
    logits = np.array([0.3, -1.2, 2.0])
    twin(lambda z: F.cross_entropy(z, np.array(2)), lambda z: TF.cross_entropy(z, torch.tensor(2)), logits)
    batch = random(np.random.default_rng(0), (4, 3))
    target = np.array([0, 2, 1, 2])
    twin(lambda z: dl.nn.CrossEntropyLoss()(z, target), lambda z: torch.nn.CrossEntropyLoss()(z, torch.tensor(target)),
         batch)
    twin(lambda z: F.nll_loss(F.log_softmax(z, 1), target), lambda z: TF.nll_loss(TF.log_softmax(z, 1), torch.tensor(target)),
         batch)


@given(shape=shapes(min_dims=1, max_dims=3), reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_binary_cross_entropy(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    p, t = random(rng, shape, 0.02, 0.98), random(rng, shape, 0.0, 1.0)
    twin(
        lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction),
        p, t, seed=seed, differentiable=[True, False],
    )
    twin(lambda a: dl.nn.BCELoss()(a, t), lambda a: torch.nn.BCELoss()(a, torch.tensor(t)), p, seed=seed)


def test_binary_cross_entropy_clamps_log_at_minus_100_like_torch():
    p, t = np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0])
    ours = F.binary_cross_entropy(dl.tensor(p), dl.tensor(t), reduction="none")
    close(ours.numpy(), TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none").numpy())
    wrong = F.binary_cross_entropy(dl.tensor([0.0]), dl.tensor([1.0]), reduction="sum")
    assert wrong.item() == 100.0


# --------------------------------------------------------------- optimisers
def train_twins(make_ours, make_theirs, steps=5, seed=0):
    torch.manual_seed(seed)
    theirs_net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    ours_net = dl.nn.Sequential(dl.nn.Linear(4, 5), dl.nn.Tanh(), dl.nn.Linear(5, 3))
    copy_weights(ours_net, theirs_net)
    ours_opt, theirs_opt = make_ours(ours_net.parameters()), make_theirs(theirs_net.parameters())
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x, target = rng.standard_normal((6, 4)), rng.integers(0, 3, size=6)
        ours_opt.zero_grad()
        F.cross_entropy(ours_net(dl.tensor(x)), target).backward()
        ours_opt.step()
        theirs_opt.zero_grad()
        TF.cross_entropy(theirs_net(torch.tensor(x)), torch.tensor(target)).backward()
        theirs_opt.step()
    reference = dict(theirs_net.named_parameters())
    for name, p in ours_net.named_parameters():
        close(p.numpy(), reference[name].detach().numpy())


@pytest.mark.parametrize(
    "options",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.8, dampening=0.3),
        dict(lr=0.1, momentum=0.9, nesterov=True),
        dict(lr=0.1, weight_decay=0.01),
        dict(lr=0.1, momentum=0.9, weight_decay=0.05, nesterov=True),
    ],
    ids=["plain", "momentum", "dampening", "nesterov", "weight-decay", "all"],
)
def test_sgd_over_several_steps(options):
    train_twins(lambda p: dl.optim.SGD(p, **options), lambda p: torch.optim.SGD(p, **options))


@pytest.mark.parametrize(
    "options",
    [dict(lr=0.01), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)],
    ids=["default", "betas", "weight-decay"],
)
def test_adam_over_several_steps(options):
    train_twins(lambda p: dl.optim.Adam(p, **options), lambda p: torch.optim.Adam(p, **options), steps=8)

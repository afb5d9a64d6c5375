"""torch.nn spelling means torch.nn behaviour: every layer, function and option twinned with
torch (weights copied from torch): values, gradients and dtypes, and the error types."""
import warnings

import numpy as np
import pytest

import deltalab as dl
import deltalab.nn.functional as F
from deltalab import nn
from deltalab.ops.dropout import dropout_with_mask

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


@pytest.fixture(autouse=True, scope="module")
def torch_on_one_thread():
    """Tiny twins on a shared machine: torch's thread pool costs more than it saves."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}
DTYPES = ["float64", "float32"]


def close(ours, theirs, dtype):
    ours = ours.numpy() if hasattr(ours, "numpy") and not isinstance(ours, np.ndarray) else ours
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert np.asarray(ours).dtype == np.asarray(theirs).dtype, (np.asarray(ours).dtype, np.asarray(theirs).dtype)
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def copy_from_torch(ours, theirs):
    """Every parameter and buffer of the torch module into ours, by torch's names."""
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)  # torch's names, in torch's order
    floating = [v.dtype for v in state.values() if v.dtype.kind == "f"]
    if floating:
        ours.to(floating[0])
    ours.load_state_dict(state)


def flatten_outputs(out):
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten_outputs(item)]
    return [out]


def twin(ours, theirs, arrays, dtype, seed=0, call=None):
    """Run both modules on the same inputs, backprop the same random weights through every
    output, and compare the outputs and the gradients of every input and parameter."""
    rng = np.random.default_rng(seed)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    mine = [dl.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    call = call or (lambda module, inputs: module(*inputs))
    out_ours, out_theirs = flatten_outputs(call(ours, mine)), flatten_outputs(call(theirs, theirs_in))
    assert len(out_ours) == len(out_theirs)
    total_ours, total_theirs = 0, 0
    for a, b in zip(out_ours, out_theirs):
        close(a, b, dtype)
        weights = rng.standard_normal(b.shape).astype(dtype)
        total_ours = total_ours + (a * dl.tensor(weights)).sum()
        total_theirs = total_theirs + (b * torch.tensor(weights)).sum()
    total_ours.backward()
    total_theirs.backward()
    for a, b in zip(mine, theirs_in):
        if b.requires_grad:
            close(a.grad, b.grad, dtype)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if reference[name].grad is None:
            assert p.grad is None or not np.any(p.grad.numpy()), name
        else:
            close(p.grad, reference[name].grad, dtype)
    return out_ours, out_theirs


# ------------------------------------------------------------------ recurrent layers
RECURRENT = [
    ("RNN", dict()),
    ("RNN", dict(num_layers=2, nonlinearity="relu")),
    ("RNN", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=3, bidirectional=True)),
    ("LSTM", dict(num_layers=2, bias=False, batch_first=True)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(bias=False, batch_first=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, options", RECURRENT, ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}"
                                                          for k, o in RECURRENT])
def test_recurrent_layers_match_torch(kind, options, dtype):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(3, 4, **options).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, kind)(3, 4, **options)
    copy_from_torch(ours, theirs)
    rng = np.random.default_rng(1)
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    x = rng.standard_normal((2, 5, 3) if options.get("batch_first") else (5, 2, 3))
    h0 = rng.standard_normal((layers, 2, 4))
    if kind == "LSTM":
        c0 = rng.standard_normal((layers, 2, 4))
        twin(ours, theirs, [x, h0, c0], dtype, call=lambda m, a: m(a[0], (a[1], a[2])))
    else:
        twin(ours, theirs, [x, h0], dtype)
    twin(ours, theirs, [x], dtype)  # no initial state: zeros


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_sequences_match_torch(kind):
    torch.manual_seed(2)
    theirs = getattr(torch.nn, kind)(3, 4, 2, bidirectional=True).double()
    ours = getattr(nn, kind)(3, 4, 2, bidirectional=True)
    copy_from_torch(ours, theirs)
    twin(ours, theirs, [np.random.default_rng(0).standard_normal((6, 3))], "float64")


def test_positional_arguments_are_torchs():
    lstm = nn.LSTM(10, 20, 2)
    assert lstm.num_layers == 2 and lstm.bias is True
    assert [n for n, _ in lstm.named_parameters()] == [n for n, _ in torch.nn.LSTM(10, 20, 2).named_parameters()]
    rnn = nn.RNN(3, 4, 2, "relu", False, True, 0.0, True)
    assert (rnn.num_layers, rnn.nonlinearity, rnn.bias, rnn.batch_first, rnn.bidirectional) == (2, "relu", False,
                                                                                                 True, True)
    gru = nn.GRU(3, 4, 3, False)
    assert [n for n, _ in gru.named_parameters()] == [n for n, _ in torch.nn.GRU(3, 4, 3, False).named_parameters()]


def test_parameter_shapes_and_all_weights_are_torchs():
    ours, theirs = nn.LSTM(3, 5, 2, bidirectional=True), torch.nn.LSTM(3, 5, 2, bidirectional=True)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert [[tuple(p.shape) for p in layer] for layer in ours.all_weights] == [
        [tuple(p.shape) for p in layer] for layer in theirs.all_weights]
    for p in ours.parameters():  # U(−1/√H, 1/√H) as torch
        assert np.abs(p.numpy()).max() <= 1 / np.sqrt(5)


def test_inter_layer_dropout_is_active_in_training_only():
    torch.manual_seed(3)
    theirs = torch.nn.GRU(3, 4, 3, dropout=0.5).double().eval()
    ours = nn.GRU(3, 4, 3, dropout=0.5)
    copy_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    ours.eval()
    twin(ours, theirs, [x], "float64")
    ours.train()
    dl.manual_seed(0)
    trained, _ = ours(dl.tensor(x))
    assert not np.allclose(trained.numpy(), theirs(torch.tensor(x))[0].detach().numpy())


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


@pytest.mark.parametrize("make, error", [
    (lambda m: m.RNN(3, 4, 0), ValueError),
    (lambda m: m.RNN(3, 0), ValueError),
    (lambda m: m.LSTM(3, 4, 2.5), TypeError),
    (lambda m: m.GRU(3, 4, 2, dropout=1.5), ValueError),
    (lambda m: m.RNN(3, 4, nonlinearity="gelu"), ValueError),
])
def test_bad_recurrent_configurations_raise_torchs_error_type(make, error):
    with pytest.raises(error):
        make(torch.nn)
    with pytest.raises(error):
        make(nn)


@pytest.mark.parametrize("make, x, state", [
    (lambda m: m.LSTM(3, 4), (5, 2, 2), None),
    (lambda m: m.GRU(3, 4, 2), (5, 2, 3), (1, 2, 4)),
    (lambda m: m.RNN(3, 4, bidirectional=True), (5, 2, 3), (1, 2, 4)),
])
def test_wrong_input_or_state_shape_raises_runtime_error_as_torch(make, x, state):
    for module, tensor in ((torch.nn, torch.zeros), (nn, dl.zeros)):
        with pytest.raises(RuntimeError):
            layer = make(module)
            layer(tensor(*x), None if state is None else tensor(*state))
    with pytest.raises(ValueError):  # 4-D input
        nn.RNN(3, 4)(dl.zeros(1, 5, 2, 3))
    with pytest.raises(ValueError):
        torch.nn.RNN(3, 4)(torch.zeros(1, 5, 2, 3))


def test_lstm_proj_size_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)


def test_single_bias_is_the_lecture_form_and_equals_torch_with_the_sum():
    torch.manual_seed(4)
    theirs = torch.nn.RNN(3, 4, 2).double()
    ours = nn.RNN(3, 4, 2, single_bias=True)
    assert [n for n, _ in ours.named_parameters()] == ["weight_ih_l0", "weight_hh_l0", "bias_l0", "weight_ih_l1",
                                                       "weight_hh_l1", "bias_l1"]
    for layer in range(2):
        for name in ("weight_ih", "weight_hh"):
            getattr(ours, f"{name}_l{layer}").data = getattr(theirs, f"{name}_l{layer}").detach().numpy().copy()
        getattr(ours, f"bias_l{layer}").data = (getattr(theirs, f"bias_ih_l{layer}")
                                                + getattr(theirs, f"bias_hh_l{layer}")).detach().numpy()
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    out, _ = ours(dl.tensor(x))
    out.sum().backward()
    expected, _ = theirs(torch.tensor(x))
    expected.sum().backward()
    close(out, expected, "float64")
    close(ours.bias_l1.grad, theirs.bias_hh_l1.grad, "float64")  # d/d(sum) = d/d(either)
    with pytest.raises(dl.ConfigurationError, match="GRU"):
        nn.GRU(3, 4, single_bias=True)


@pytest.mark.parametrize("make_optimizer", [
    lambda m, p: m.optim.SGD(p, lr=0.3, momentum=0.9),
    lambda m, p: m.optim.Adam(p, lr=0.05),
], ids=["sgd", "adam"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_two_biases_train_like_torch(kind, make_optimizer):
    """torch moves bias_ih and bias_hh separately (their sum by 2·lr·g per SGD step); so do we."""
    torch.manual_seed(5)
    theirs = getattr(torch.nn, kind)(3, 4, 2).double()
    ours = getattr(nn, kind)(3, 4, 2)
    copy_from_torch(ours, theirs)
    ours_opt, theirs_opt = make_optimizer(dl, ours.parameters()), make_optimizer(torch, theirs.parameters())
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, target = rng.standard_normal((6, 3, 3)), rng.standard_normal((6, 3, 4))
        for model, opt, lib, function in ((ours, ours_opt, dl.tensor, F), (theirs, theirs_opt, torch.tensor, TF)):
            opt.zero_grad()
            function.mse_loss(model(lib(x))[0], lib(target)).backward()
            (nn if lib is dl.tensor else torch.nn).utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], "float64")


# ------------------------------------------------------------------ cells
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, options", [("RNNCell", {}), ("RNNCell", dict(nonlinearity="relu", bias=False)),
                                           ("LSTMCell", {}), ("GRUCell", {}), ("GRUCell", dict(bias=False))])
def test_cells_match_torch(kind, options, dtype):
    torch.manual_seed(6)
    theirs = getattr(torch.nn, kind)(3, 4, **options).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, kind)(3, 4, **options)
    copy_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    if kind == "LSTMCell":
        twin(ours, theirs, [x, h, c], dtype, call=lambda m, a: m(a[0], (a[1], a[2])))
        twin(ours, theirs, [x[0], h[0], c[0]], dtype, call=lambda m, a: m(a[0], (a[1], a[2])))  # unbatched
    else:
        twin(ours, theirs, [x, h], dtype)
        twin(ours, theirs, [x[0]], dtype)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_assigning_a_cell_bias_takes_effect(kind):
    torch.manual_seed(7)
    theirs = getattr(torch.nn, kind)(3, 4).double()
    ours = getattr(nn, kind)(3, 4)
    copy_from_torch(ours, theirs)
    rows = theirs.bias_ih.shape[0]
    new_ih, new_hh = np.linspace(-1, 1, rows), np.linspace(2, -2, rows)
    ours.bias_ih, ours.bias_hh = nn.Parameter(new_ih.copy()), nn.Parameter(new_hh.copy())
    theirs.bias_ih, theirs.bias_hh = torch.nn.Parameter(torch.tensor(new_ih)), torch.nn.Parameter(torch.tensor(new_hh))
    twin(ours, theirs, [np.random.default_rng(1).standard_normal((2, 3))], "float64")


def test_gru_gradients_equal_finite_differences():
    dl.manual_seed(8)
    layer = nn.GRU(2, 3, 2, bidirectional=True)
    names = [n for n, _ in layer.named_parameters()]
    x = dl.tensor(np.random.default_rng(0).standard_normal((4, 2, 2)), requires_grad=True)
    h0 = dl.tensor(np.random.default_rng(1).standard_normal((4, 2, 3)), requires_grad=True)
    weights = [dl.tensor(getattr(layer, n).numpy().copy(), requires_grad=True) for n in names]

    def run(x, h0, *ws):
        for name, w in zip(names, ws):
            object.__setattr__(layer, name, w)  # the same function of plain tensors
        out, h_n = layer(x, h0)
        return dl.cat([out.reshape(-1), h_n.reshape(-1)])

    result = dl.gradcheck(run, x, h0, *weights)
    assert result.passed, result.errors


def test_gru_cell_formula_is_torchs():
    """n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn)), h' = (1 − z) ∘ n + z ∘ h, gates r, z, n."""
    dl.manual_seed(9)
    cell = nn.GRUCell(2, 3)
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal(2), rng.standard_normal(3)
    w_ih, w_hh, b_ih, b_hh = (getattr(cell, n).numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    r, z = 1 / (1 + np.exp(-(gi[:3] + gh[:3]))), 1 / (1 + np.exp(-(gi[3:6] + gh[3:6])))
    n = np.tanh(gi[6:] + r * gh[6:])
    np.testing.assert_allclose(cell(dl.tensor(x), dl.tensor(h)).numpy(), (1 - z) * n + z * h, rtol=1e-14)


# ------------------------------------------------------------------ dropout
def test_dropout_scales_kept_values_and_is_identity_in_eval():
    layer = nn.Dropout(0.25)
    x = dl.ones(2000)
    dl.manual_seed(0)
    y = layer(x).numpy()
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-7)
    assert abs((y == 0).mean() - 0.25) < 0.04
    assert layer.eval()(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_with_a_fixed_mask_matches_torch_and_finite_differences(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(dtype)
    keep = rng.random((3, 4)) > 0.3
    ours = dropout_with_mask(dl.tensor(x, requires_grad=True), keep, 0.3)
    tx = torch.tensor(x, requires_grad=True)
    theirs = tx * torch.tensor(keep).to(tx.dtype) / (1 - 0.3)  # torch's formula with this mask
    close(ours, theirs, dtype)
    g = rng.standard_normal((3, 4)).astype(dtype)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    result = dl.gradcheck(lambda a: dropout_with_mask(a, keep, 0.3), dl.tensor(x, requires_grad=True))
    assert result.passed, result.errors


def test_dropout_probability_out_of_range_raises_value_error_as_torch():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            torch.nn.Dropout(p)
        with pytest.raises(ValueError):
            nn.Dropout(p)
        with pytest.raises(ValueError):
            F.dropout(dl.ones(3), p)


# ------------------------------------------------------------------ batch norm
BATCH_NORMS = [
    ("BatchNorm1d", dict(), (6, 3)),
    ("BatchNorm1d", dict(momentum=None, eps=1e-3), (4, 3, 5)),
    ("BatchNorm2d", dict(), (4, 3, 5, 5)),
    ("BatchNorm2d", dict(affine=False, momentum=0.3), (2, 3, 4, 4)),
    ("BatchNorm2d", dict(track_running_stats=False), (2, 3, 4, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, options, shape", BATCH_NORMS)
def test_batch_norm_trains_and_evaluates_like_torch(kind, options, shape, dtype):
    torch.manual_seed(10)
    theirs = getattr(torch.nn, kind)(3, **options).to(TORCH_DTYPE[dtype])
    ours = getattr(nn, kind)(3, **options).to(dtype)
    if options.get("affine", True):
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
    copy_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    for step in range(3):  # running statistics move as torch's (unbiased variance)
        twin(ours, theirs, [rng.standard_normal(shape) * 2 + 1], dtype, seed=step)
        for name, buffer in theirs.named_buffers():
            got = getattr(ours, name).numpy()
            if name == "num_batches_tracked":
                assert got.dtype == np.int64 and got == buffer.item()
            else:
                close(got, buffer, dtype)
        for model in (ours, theirs):
            model.zero_grad()
    ours.eval()
    theirs.eval()
    twin(ours, theirs, [rng.standard_normal(shape)], dtype)


def test_batch_norm_updates_its_buffers_in_place_as_torch():
    x = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    for lib in (dl, torch):
        norm = lib.nn.BatchNorm1d(3)
        mean, var, count = norm.running_mean, norm.running_var, norm.num_batches_tracked
        alias = mean.numpy()
        norm(lib.tensor(x))
        assert norm.running_mean is mean and norm.running_var is var and norm.num_batches_tracked is count
        np.testing.assert_allclose(alias, 0.1 * x.mean(0), rtol=1e-5)  # the array taken before sees it
        assert int(count) == 1
        norm.reset_parameters()
        assert norm.running_mean is mean and mean.tolist() == [0.0] * 3 and var.tolist() == [1.0] * 3
        assert int(count) == 0


def test_batch_norm_gradients_equal_finite_differences():
    rng = np.random.default_rng(5)  # not gradcheck's seed 0: its projection weights would equal x
    x = dl.tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    weight, bias = dl.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True), dl.tensor(rng.standard_normal(3),
                                                                                      requires_grad=True)
    running_mean, running_var = dl.tensor(rng.standard_normal(3)), dl.tensor(rng.uniform(0.5, 2, 3))
    for training in (True, False):
        result = dl.gradcheck(lambda a, w, b: F.batch_norm(a, running_mean, running_var, w, b, training=False)
                              if not training else F.batch_norm(a, None, None, w, b, training=True), x, weight, bias)
        assert result.passed, (training, result.errors)


def test_batch_norm_errors_are_torchs():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(dl.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(dl.zeros(1, 3))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(RuntimeError):
        nn.BatchNorm1d(3)(dl.zeros(4, 2))
    with pytest.raises(RuntimeError):
        torch.nn.BatchNorm1d(3)(torch.zeros(4, 2))


def test_buffers_are_in_state_dict_in_torchs_order_and_load_back():
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2),
                         nn.BatchNorm1d(2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 2), torch.nn.BatchNorm1d(2)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs(torch.randn(4, 1, 4, 4, dtype=torch.float64))  # moves the running statistics
    copy_from_torch(ours, theirs)
    np.testing.assert_array_equal(ours[1].running_var.numpy(), theirs[1].running_var.detach().numpy())
    assert ours.state_dict()["1.num_batches_tracked"].dtype == np.int64
    ours.float()
    assert ours[1].running_mean.dtype == np.float32 and ours[1].num_batches_tracked.dtype == np.int64


# ------------------------------------------------------------------ embedding
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx, dtype):
    torch.manual_seed(11)
    theirs = torch.nn.Embedding(6, 3, padding_idx=padding_idx).to(TORCH_DTYPE[dtype])
    ours = nn.Embedding(6, 3, padding_idx=padding_idx)
    copy_from_torch(ours, theirs)
    indices = np.array([[0, 2, 5, 2], [1, 1, 5, 3]], dtype=np.int64)
    twin(ours, theirs, [indices], dtype)
    if padding_idx is not None:
        fresh = nn.Embedding(6, 3, padding_idx=padding_idx)
        np.testing.assert_array_equal(fresh.weight.numpy()[padding_idx], 0)
        assert not np.any(ours.weight.grad.numpy()[padding_idx])


def test_embedding_gradients_equal_finite_differences():
    weight = dl.tensor(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    indices = dl.tensor(np.array([[0, 4], [4, 1], [3, 3]]))  # row 2 unused: no gradient
    result = dl.gradcheck(lambda w: F.embedding(indices, w), weight)
    assert result.passed, result.errors


def test_embedding_errors_are_torchs():
    for module, tensor, make in ((nn, lambda a: dl.tensor(np.array(a)), nn.Embedding),
                                 (torch.nn, torch.tensor, torch.nn.Embedding)):
        with pytest.raises(IndexError):
            make(4, 2)(tensor([1, 4]))
        with pytest.raises(RuntimeError):
            make(4, 2)(tensor([1.0, 2.0]))
        with pytest.raises(AssertionError):
            make(4, 2, padding_idx=4)
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(4, 2, max_norm=1.0)


def test_embedding_from_pretrained_is_frozen_by_default():
    table = np.arange(6.0).reshape(3, 2)
    layer = nn.Embedding.from_pretrained(dl.tensor(table))
    assert not layer.weight.requires_grad
    np.testing.assert_array_equal(layer(dl.tensor(np.array([2, 0]))).numpy(), table[[2, 0]])


# ------------------------------------------------------------------ containers and Module
class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 3) for _ in range(2)])
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 1), "b": torch.nn.Sequential(torch.nn.Linear(3, 2))})
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("scratch", torch.zeros(1), persistent=False)


class OurNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])
        self.heads = nn.ModuleDict({"a": nn.Linear(3, 1), "b": nn.Sequential(nn.Linear(3, 2))})
        self.register_buffer("scale", dl.ones(3))
        self.register_buffer("scratch", dl.zeros(1), persistent=False)

    def forward(self, x):
        for block in self.blocks:
            x = dl.tanh(block(x) * self.scale) if hasattr(dl, "tanh") else F.tanh(block(x) * self.scale)
        return self.heads["a"](x), self.heads["b"](x)


def test_module_traversal_names_match_torch():
    ours, theirs = OurNet(), TorchNet()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.modules()][1:] == [type(m).__name__ for m in theirs.modules()][1:]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # the non-persistent buffer is left out
    visited = []
    ours.apply(lambda m: visited.append(type(m).__name__))
    expected = []
    theirs.apply(lambda m: expected.append(type(m).__name__))
    assert visited[:-1] == expected[:-1] and visited[-1] == "OurNet"  # children first, then the module
    shared = nn.Linear(2, 2)
    twice = nn.Sequential(shared, shared)
    assert len(list(twice.modules())) == 2 and len(list(twice.named_modules(remove_duplicate=False))) == 3


def test_module_list_and_dict_behave_like_torchs():
    layers = nn.ModuleList([nn.Linear(1, 1), nn.ReLU()])
    layers.append(nn.Tanh())
    layers.insert(1, nn.Sigmoid())
    layers += [nn.Identity()]
    assert [type(m).__name__ for m in layers] == ["Linear", "Sigmoid", "ReLU", "Tanh", "Identity"]
    del layers[1]
    assert list(layers._modules) == ["0", "1", "2", "3"] and isinstance(layers[1], nn.ReLU)
    assert isinstance(layers[-1], nn.Identity) and isinstance(layers[1:3], nn.ModuleList)
    with pytest.raises(IndexError):
        layers[10]
    heads = nn.ModuleDict([("x", nn.Linear(2, 1))])
    heads["y"] = nn.Linear(2, 3)
    assert list(heads) == ["x", "y"] and "y" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()] == ["x.weight", "x.bias", "y.weight", "y.bias"]
    heads.pop("x")
    assert list(heads.keys()) == ["y"]


def test_sequential_edits_renumber_as_torch():
    def edits(lib):
        s = lib.nn.Sequential(lib.nn.Linear(1, 1), lib.nn.ReLU(), lib.nn.Tanh())
        s.insert(-1, lib.nn.Sigmoid())
        s.insert(0, lib.nn.Identity())
        s.extend([lib.nn.ReLU()])
        popped = s.pop(1)
        del s[0]
        s[1] = lib.nn.Tanh()
        return [type(m).__name__ for m in s], [n for n, _ in s.named_children()], type(popped).__name__, hasattr(s, "5")

    assert edits(dl) == edits(torch)
    for lib in (dl, torch):
        with pytest.raises(IndexError):
            lib.nn.Sequential(lib.nn.ReLU()).insert(3, lib.nn.ReLU())


def test_named_parameters_and_state_dict_options_are_torchs():
    def names(lib):
        shared = lib.nn.Linear(2, 2)
        model = lib.nn.Sequential(shared, lib.nn.ReLU(), shared)
        state = model.state_dict(prefix="net.", keep_vars=True)
        return ([n for n, _ in model.named_parameters(remove_duplicate=False)],
                [n for n, _ in model.named_parameters()], list(state),
                state["net.0.weight"] is shared.weight, isinstance(state["net.0.weight"], lib.nn.Parameter))

    assert names(dl) == names(torch)


def test_register_buffer_and_parameter_errors_are_torchs():
    for module in (nn.Module(), torch.nn.Module()):
        with pytest.raises(KeyError):
            module.register_buffer("a.b", None)
        with pytest.raises(TypeError):
            module.register_buffer("x", 3)
        with pytest.raises(TypeError):
            module.register_parameter("w", np.ones(2) if isinstance(module, nn.Module) else torch.ones(2))



def torch_message_in_deltalab_names(message):
    return (message.replace("torch.nn.modules.linear.", "deltalab.nn.layers.").replace("torch.", "deltalab.")
            .replace("torch Tensor", "deltalab Tensor"))


@pytest.mark.parametrize("name, value", [
    ("weight", lambda lib: lib.ones(2, 3)), ("weight", lambda lib: lib.ones(2, 3, dtype=lib.float64)),
    ("weight", lambda lib: lib.ones(2, dtype=lib.int64)), ("bias", lambda lib: 3),
    ("weight", lambda lib: lib.nn.Linear(1, 1)),
], ids=["float", "double", "long", "int", "module"])
def test_assigning_a_non_parameter_to_a_parameter_name_is_torchs_type_error(name, value):
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with pytest.raises(TypeError) as expected:
        setattr(theirs, name, value(torch))
    with pytest.raises(TypeError) as raised:
        setattr(ours, name, value(dl))
    assert str(raised.value) == torch_message_in_deltalab_names(str(expected.value))
    assert isinstance(getattr(ours, name), nn.Parameter) and name in dict(ours.named_parameters())


@pytest.mark.parametrize("register", [lambda lib, m: m.register_parameter("w", lib.ones(2)),
                                      lambda lib, m: m.register_buffer("b", 3)], ids=["parameter", "buffer"])
def test_register_type_errors_say_what_torch_says(register):
    with pytest.raises(TypeError) as expected:
        register(torch, torch.nn.Module())
    with pytest.raises(TypeError) as raised:
        register(dl, nn.Module())
    assert str(raised.value) == torch_message_in_deltalab_names(str(expected.value))


def test_assignments_register_as_torchs():
    for lib in (dl, torch):
        layer = lib.nn.Linear(3, 2)
        layer.bias = None  # the name stays registered as a parameter, holding None
        assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
        with pytest.raises(TypeError, match="as parameter 'bias'"):
            layer.bias = lib.zeros(2)
        layer.bias = lib.nn.Parameter(lib.zeros(2))
        layer.register_buffer("running", lib.zeros(2))
        layer.running = lib.ones(2)  # a tensor replaces a buffer
        assert [n for n, _ in layer.named_buffers()] == ["running"] and layer.running.tolist() == [1.0, 1.0]
        with pytest.raises(TypeError, match="as buffer 'running'"):
            layer.running = 3
        layer.running = lib.nn.Parameter(lib.zeros(2))  # a Parameter moves the name to the parameters
        assert [n for n, _ in layer.named_parameters()] == ["weight", "bias", "running"]
        assert not list(layer.named_buffers())
        outer = lib.nn.Sequential(layer)
        with pytest.raises(TypeError, match="as child module '0'"):
            setattr(outer, "0", lib.ones(1))
        setattr(outer, "0", None)
        assert len(list(outer.children())) == 0

        class Early(lib.nn.Module):
            def __init__(self):
                self.plain = 3  # plain attributes before Module.__init__ are fine, as torch
                with pytest.raises(AttributeError, match="cannot assign parameters before Module.__init__"):
                    self.w = lib.nn.Parameter(lib.zeros(1))
                super().__init__()

        assert Early().plain == 3


def test_functional_call_computes_with_other_tensors_and_leaves_the_module_as_torch():
    from torch.func import functional_call as torch_functional_call

    from deltalab.func import functional_call

    ours, theirs = small_twins()
    x = np.random.default_rng(2).standard_normal((3, 4))
    w = np.random.default_rng(3).standard_normal((5, 4))
    mine_w, their_w = dl.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    before = ours[0].weight
    mine = functional_call(ours, {"0.weight": mine_w}, dl.tensor(x))
    expected = torch_functional_call(theirs, {"0.weight": their_w}, torch.tensor(x))
    close(mine, expected, "float64")
    mine.sum().backward()
    expected.sum().backward()
    close(mine_w.grad, their_w.grad, "float64")
    assert ours[0].weight is before and ours[0].weight.grad is None and theirs[0].weight.grad is None
    close(ours(dl.tensor(x)), theirs(torch.tensor(x)), "float64")  # the module's own weights are back
    # tied weights are swapped together; strict names what is missing, as torch
    square = np.random.default_rng(4).standard_normal((4, 4))
    for lib, call in ((dl, functional_call), (torch, torch_functional_call)):
        first = lib.nn.Linear(4, 4).to(lib.float64)
        two = lib.nn.Sequential(first, first)
        out = call(two, {"0.weight": lib.tensor(square)}, lib.tensor(x))
        bias = first.bias.detach().numpy()
        close(out.detach(), (x @ square.T + bias) @ square.T + bias, "float64")
        with pytest.raises(RuntimeError, match="Missing key"):
            call(two, {"0.weight": lib.tensor(square)}, lib.tensor(x), strict=True)


def test_state_dict_errors_are_runtime_errors_as_torch():
    with pytest.raises(RuntimeError, match="missing"):
        nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2))})
    with pytest.raises(RuntimeError, match="shape"):
        nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2)})


def test_functional_is_importable_under_torchs_path():
    import deltalab.nn.functional as functional
    from deltalab.nn import functional as same

    assert functional is same is dl.functional


# ------------------------------------------------------------------ functional
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, ours, theirs", [
    ("elu", lambda x: F.elu(x), lambda x: TF.elu(x)),
    ("elu-alpha", lambda x: F.elu(x, alpha=0.3), lambda x: TF.elu(x, alpha=0.3)),
    ("leaky_relu", lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    ("leaky_relu-slope", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("softplus", lambda x: F.softplus(x), lambda x: TF.softplus(x)),
    ("softplus-beta-threshold", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    ("gelu", lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
])
def test_activations_match_torch(name, ours, theirs, dtype):
    x = np.concatenate([np.random.default_rng(0).standard_normal(20) * 4, [0.0, 1.5, -1.5, 25.0, -30.0]])
    x = x.astype(dtype)
    a, b = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    close(ours(a), theirs(b), dtype)
    ours(a).sum().backward()
    theirs(b).sum().backward()
    close(a.grad, b.grad, dtype)  # including at 0 and in softplus' linear region
    smooth = x[(np.abs(x) > 1e-3) & (x != 1.5)]  # away from the kinks (softplus' threshold at βx = 3)
    result = dl.gradcheck(ours, dl.tensor(smooth, requires_grad=True))
    assert result.passed, result.errors


def test_gelu_bad_approximate_raises_runtime_error_as_torch():
    with pytest.raises(RuntimeError):
        TF.gelu(torch.ones(2), approximate="exact")
    with pytest.raises(RuntimeError):
        F.gelu(dl.ones(2), approximate="exact")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad, value", [((1, 2), None), ((1, 0, 2, 1), 0.5), ((0, 1, 1, 1, 2, 0), -1.0),
                                         ((-1, 2, 1, -1), None), ((2, 2, 0, 0), 3.0)])
def test_pad_uses_torchs_order(pad, value, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    a, b = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kwargs = {} if value is None else {"value": value}
    close(F.pad(a, pad, **kwargs), TF.pad(b, pad, **kwargs), dtype)
    g = np.random.default_rng(1).standard_normal(TF.pad(b, pad).shape).astype(dtype)
    F.pad(a, pad, **kwargs).backward(g)
    TF.pad(b, pad, **kwargs).backward(torch.tensor(g))
    close(a.grad, b.grad, dtype)


def test_pad_errors_are_torchs():
    for pad, error in (((1, 2, 3), RuntimeError), ((1,) * 8, RuntimeError)):
        with pytest.raises(error):
            TF.pad(torch.zeros(2, 2), pad)
        with pytest.raises(error):
            F.pad(dl.zeros(2, 2), pad)
    with pytest.raises(NotImplementedError, match="reflect"):
        F.pad(dl.zeros(1, 2, 2), (1, 1), mode="reflect")


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 1]], dtype=np.int64)
    for classes in (-1, 5):
        ours, theirs = F.one_hot(dl.tensor(labels), classes), TF.one_hot(torch.tensor(labels), classes)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for bad in (np.array([0, 5]), np.array([-1, 0]), np.array([0.0, 1.0])):
        with pytest.raises(RuntimeError):
            TF.one_hot(torch.tensor(bad), 5)
        with pytest.raises(RuntimeError):
            F.one_hot(dl.tensor(bad), 5)


# ------------------------------------------------------------------ conv2d dilation and groups
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [dict(dilation=2), dict(groups=2), dict(groups=4, padding=1),
                                     dict(dilation=(2, 3), groups=2, stride=(2, 1), padding=(2, 1)),
                                     dict(dilation=2, padding="same")])
def test_conv2d_dilation_and_groups_match_torch(options, dtype):
    torch.manual_seed(12)
    theirs = torch.nn.Conv2d(4, 8, 3, **options).to(TORCH_DTYPE[dtype])
    ours = nn.Conv2d(4, 8, 3, **options)
    copy_from_torch(ours, theirs)
    twin(ours, theirs, [np.random.default_rng(0).standard_normal((2, 4, 9, 8))], dtype)


def test_grouped_conv_gradients_equal_finite_differences():
    rng = np.random.default_rng(0)
    x = dl.tensor(rng.standard_normal((2, 4, 6, 5)), requires_grad=True)
    w = dl.tensor(rng.standard_normal((6, 2, 2, 3)), requires_grad=True)
    b = dl.tensor(rng.standard_normal(6), requires_grad=True)
    result = dl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(1, 2), padding=1, dilation=(2, 1), groups=2),
                          x, w, b)
    assert result.passed, result.errors


def test_conv2d_group_errors_are_torchs():
    for module in (nn, torch.nn):
        with pytest.raises(ValueError):
            module.Conv2d(3, 4, 3, groups=2)
        with pytest.raises(ValueError):
            module.Conv2d(4, 3, 3, groups=2)


# ------------------------------------------------------------------ gradient clipping
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (100.0, 2.0), (0.3, 1), (0.2, float("inf")),
                                                 (0.7, 3.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type, dtype):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(dtype) for s in ((3, 4), (4,), (2, 2, 2))]
    ours = [dl.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=TORCH_DTYPE[dtype], requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = dl.tensor(g.copy()), torch.tensor(g.copy())
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    close(total, expected, dtype)
    for p, q in zip(ours, theirs):
        close(p.grad, q.grad, dtype)


def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(0).standard_normal((5, 5))
    p, q = dl.tensor(np.zeros((5, 5)), requires_grad=True), torch.zeros((5, 5), dtype=torch.float64,
                                                                         requires_grad=True)
    p.grad, q.grad = dl.tensor(g.copy()), torch.tensor(g.copy())
    assert nn.utils.clip_grad_value_(p, 0.4) is None
    torch.nn.utils.clip_grad_value_(q, 0.4)
    close(p.grad, q.grad, "float64")


# ------------------------------------------------------------------ optimisers
OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, maximize=True)),
    ("AdamW", dict(lr=0.02)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.02)),
]


def small_twins(dtype="float64"):
    torch.manual_seed(13)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(TORCH_DTYPE[dtype])
    ours = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    copy_from_torch(ours, theirs)
    return ours, theirs


def train(model, optimizer, lib, steps, seed=0, scheduler=None):
    rng = np.random.default_rng(seed)
    function = F if lib is dl else TF
    for _ in range(steps):
        x, target = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
        optimizer.zero_grad()
        function.cross_entropy(model(lib.tensor(x.astype(model[0].weight.numpy().dtype if lib is dl else
                                                          np.dtype(str(model[0].weight.dtype)[6:])))),
                               lib.tensor(target)).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, options", OPTIMIZERS)
def test_optimizers_match_torch(kind, options, dtype):
    ours, theirs = small_twins(dtype)
    ours_opt, theirs_opt = getattr(dl.optim, kind)(ours.parameters(), **options), getattr(torch.optim, kind)(
        theirs.parameters(), **options)
    train(ours, ours_opt, dl, 8)
    train(theirs, theirs_opt, torch, 8)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], dtype)


@pytest.mark.parametrize("kind, options", OPTIMIZERS)
def test_optimizer_state_dict_is_torchs_and_loads_torchs(kind, options):
    ours, theirs = small_twins()
    ours_opt = getattr(dl.optim, kind)(ours.parameters(), **options)
    theirs_opt = getattr(torch.optim, kind)(theirs.parameters(), **options)
    train(ours, ours_opt, dl, 3)
    train(theirs, theirs_opt, torch, 3)
    mine, expected = ours_opt.state_dict(), theirs_opt.state_dict()
    assert mine["param_groups"] == expected["param_groups"]
    assert sorted(mine["state"]) == sorted(expected["state"])
    for index, entries in expected["state"].items():
        assert sorted(mine["state"][index]) == sorted(entries)
        for name, value in entries.items():
            close(mine["state"][index][name], value, "float64" if name != "step" else "float32")
    # a fresh optimiser loaded from torch's state continues exactly as torch does
    again = getattr(dl.optim, kind)(ours.parameters(), **options)
    again.load_state_dict(expected)
    train(ours, again, dl, 3, seed=1)
    train(theirs, theirs_opt, torch, 3, seed=1)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], "float64")



# every option, alone and together: the same gradients fed to both for 20 steps isolate the update rule
UPDATE_RULES = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict()), ("Adam", dict(lr=0.01, amsgrad=True)), ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.6))), ("Adam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict()), ("AdamW", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01, weight_decay=0.3, betas=(0.4, 0.7))),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("RMSprop", dict()), ("RMSprop", dict(lr=0.01, centered=True)), ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, options", UPDATE_RULES)
def test_update_rules_follow_torchs_over_twenty_steps(kind, options, dtype):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4), (4,))]
    ours = [nn.Parameter(dl.tensor(a.copy())) for a in start]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in start]
    ours_opt, theirs_opt = getattr(dl.optim, kind)(ours, **options), getattr(torch.optim, kind)(theirs, **options)
    for _ in range(20):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad, q.grad = dl.tensor(g.copy()), torch.tensor(g.copy())
        ours_opt.step()
        theirs_opt.step()
        for p, q in zip(ours, theirs):
            close(p, q, dtype)


@pytest.mark.parametrize("kind, options", [("SGD", dict(lr=0.1, momentum=0.9)), ("AdamW", dict(lr=0.1)),
                                           ("RMSprop", dict(centered=True))])
def test_a_step_changes_the_parameters_in_place_as_torch(kind, options):
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.ones(3))
        view, alias = p[1:], p.data
        optimizer = getattr(lib.optim, kind)([p], **options)
        p.grad = lib.ones(3)
        y = (p * p).sum()  # saves p for its backward
        optimizer.step()
        after = p.detach().numpy().copy()
        assert (after < 1).all()
        np.testing.assert_array_equal(view.detach().numpy(), after[1:])  # a view sees the update
        np.testing.assert_array_equal(np.asarray(alias), after)  # and so does p.data taken before
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # the version moved
            y.backward()


def test_zero_grad_sets_none_by_default_or_zeros_in_place_as_torch():
    for lib in (dl, torch):
        model = lib.nn.Linear(2, 1)
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
        model(lib.ones(1, 2)).sum().backward()
        grad = model.weight.grad
        optimizer.zero_grad(set_to_none=False)
        assert model.weight.grad is grad and grad.tolist() == [[0.0, 0.0]]
        model(lib.ones(1, 2)).sum().backward()
        model.zero_grad(set_to_none=False)
        assert model.weight.grad is grad and grad.tolist() == [[0.0, 0.0]]
        optimizer.zero_grad()
        assert model.weight.grad is None
        model(lib.ones(1, 2)).sum().backward()
        model.zero_grad()
        assert model.weight.grad is None


@pytest.mark.parametrize("kind, options", OPTIMIZERS)
def test_optimizer_state_dict_round_trip_continues_the_same_way(kind, options):
    ours, theirs = small_twins()
    optimizer = getattr(dl.optim, kind)(ours.parameters(), **options)
    theirs_opt = getattr(torch.optim, kind)(theirs.parameters(), **options)
    train(ours, optimizer, dl, 3)
    train(theirs, theirs_opt, torch, 3)
    saved = optimizer.state_dict()
    again = getattr(dl.optim, kind)(ours.parameters(), **options)
    again.load_state_dict(saved)
    train(ours, again, dl, 3, seed=1)  # the restored optimiser goes on as torch's own
    train(theirs, theirs_opt, torch, 3, seed=1)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], "float64")
    assert again.state_dict()["param_groups"] == theirs_opt.state_dict()["param_groups"]


def test_clipping_changes_the_gradients_in_place_as_torch():
    for lib in (dl, torch):
        p = lib.nn.Parameter(lib.ones(3))
        p.grad = lib.tensor([3.0, -4.0, 0.0])
        grad = p.grad
        lib.nn.utils.clip_grad_norm_([p], 1.0)
        assert p.grad is grad
        np.testing.assert_allclose(np.asarray(grad.tolist()), [0.6, -0.8, 0.0], rtol=1e-5)
        lib.nn.utils.clip_grad_value_([p], 0.7)
        assert p.grad is grad
        np.testing.assert_allclose(np.asarray(grad.tolist()), [0.6, -0.7, 0.0], rtol=1e-5)


def test_load_state_dict_copies_into_the_same_tensors_as_torch():
    for lib in (dl, torch):
        layer = lib.nn.Linear(2, 2)
        weight = layer.weight
        optimizer = lib.optim.SGD(layer.parameters(), lr=0.1)
        y = (weight * weight).sum()
        layer.load_state_dict({"weight": np.full((2, 2), 0.5, np.float32) if lib is dl else lib.full((2, 2), 0.5),
                               "bias": np.zeros(2, np.float32) if lib is dl else lib.zeros(2)})
        assert layer.weight is weight and optimizer.param_groups[0]["params"][0] is weight
        assert weight.tolist() == [[0.5, 0.5], [0.5, 0.5]]
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # the version moved
            y.backward()


def test_parameter_groups_have_their_own_options_as_torch():
    ours, theirs = small_twins()
    ours_opt = dl.optim.SGD([{"params": ours[0].parameters(), "lr": 0.5}, {"params": ours[2].parameters()}],
                            lr=0.05, momentum=0.9)
    theirs_opt = torch.optim.SGD([{"params": theirs[0].parameters(), "lr": 0.5}, {"params": theirs[2].parameters()}],
                                 lr=0.05, momentum=0.9)
    train(ours, ours_opt, dl, 4)
    train(theirs, theirs_opt, torch, 4)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], "float64")
    assert ours_opt.state_dict()["param_groups"] == theirs_opt.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="more than one parameter group"):
        dl.optim.SGD([{"params": ours[0].parameters()}, {"params": [ours[0].weight]}], lr=0.1)


@pytest.mark.parametrize("make", [
    lambda m, p: m.optim.Adam(p, betas=(1.0, 0.9)),
    lambda m, p: m.optim.Adam(p, eps=-1),
    lambda m, p: m.optim.RMSprop(p, momentum=-0.1),
    lambda m, p: m.optim.SGD(p, lr=0.1, weight_decay=-1),
    lambda m, p: m.optim.SGD([], lr=0.1),
])
def test_bad_optimizer_options_raise_value_error_as_torch(make):
    with pytest.raises(ValueError):
        make(torch, [torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError):
        make(dl, [dl.zeros(1, requires_grad=True)])


# ------------------------------------------------------------------ learning-rate schedulers
@pytest.mark.parametrize("make", [
    lambda m, o: m.optim.lr_scheduler.StepLR(o, step_size=3),
    lambda m, o: m.optim.lr_scheduler.StepLR(o, 2, gamma=0.5),
    lambda m, o: m.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7),
    lambda m, o: m.optim.lr_scheduler.CosineAnnealingLR(o, 5, eta_min=0.01),
], ids=["step", "step-gamma", "cosine", "cosine-eta-min"])
def test_schedulers_match_torch(make):
    ours, theirs = small_twins()
    ours_opt = dl.optim.SGD([{"params": ours[0].parameters()}, {"params": ours[2].parameters(), "lr": 0.3}], lr=0.1)
    theirs_opt = torch.optim.SGD([{"params": theirs[0].parameters()}, {"params": theirs[2].parameters(), "lr": 0.3}],
                                 lr=0.1)
    ours_schedule, theirs_schedule = make(dl, ours_opt), make(torch, theirs_opt)
    seen = []
    for _ in range(16):
        seen.append((ours_schedule.get_last_lr(), theirs_schedule.get_last_lr()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(ours, ours_opt, dl, 1)
            train(theirs, theirs_opt, torch, 1)
        ours_schedule.step()
        theirs_schedule.step()
    for mine, expected in seen:
        np.testing.assert_allclose(mine, expected, rtol=1e-12)
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p, reference[name], "float64")


# ------------------------------------------------------------------ outside the scope: named, loudly
@pytest.mark.parametrize("get, name", [
    (lambda: dl.nn.Transformer, "torch.nn.Transformer"),
    (lambda: dl.nn.functional.interpolate, "torch.nn.functional.interpolate"),
    (lambda: dl.optim.LBFGS, "torch.optim.LBFGS"),
    (lambda: dl.optim.lr_scheduler.OneCycleLR, "torch.optim.lr_scheduler.OneCycleLR"),
    (lambda: dl.nn.utils.rnn, "torch.nn.utils.rnn"),
])
def test_missing_torch_names_raise_not_implemented_naming_the_feature(get, name):
    with pytest.raises(NotImplementedError, match=f"deltalab has no {name}$"):
        get()
    assert not hasattr(dl.nn, "Transformer")  # still an AttributeError for hasattr


def test_module_lookups_and_missing_module_methods():
    net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.BatchNorm1d(3)))
    assert net.get_submodule("1.0") is net[1][0]
    assert net.get_parameter("0.bias") is net[0].bias
    assert net.get_buffer("1.0.running_mean") is net[1][0].running_mean
    with pytest.raises(NotImplementedError, match="torch.nn.Module.register_forward_hook"):
        net.register_forward_hook(print)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        net.nope
    with pytest.raises(RuntimeError, match="CPU"):
        net.cuda()
    nn.LSTM(2, 3).flatten_parameters()  # a no-op on the CPU, as in torch


def test_summary_runs_batch_norm_and_dropout_models_in_eval_mode_and_restores_training():
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 2))
    before = net[1].running_mean.numpy().copy()
    table = dl.summary(net, input_shape=(4,), print_table=False)
    assert [row.layer for row in table.rows] == ["Linear", "BatchNorm1d", "Dropout", "Linear"]
    assert net.training and net[1].training
    np.testing.assert_array_equal(net[1].running_mean.numpy(), before)
    assert net[1].num_batches_tracked.item() == 0


# ------------------------------------------------------------------ interop and architectures of the new layers
@pytest.mark.parametrize("make", [
    lambda: nn.GRU(3, 4, 2, bidirectional=True, batch_first=True),
    lambda: nn.LSTM(3, 4, 3, dropout=0.25, single_bias=True),
    lambda: nn.RNN(3, 4, nonlinearity="relu", bias=False, bptt_truncate=2),
    lambda: nn.GRUCell(3, 4, bias=False),
    lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=None, affine=False),
    lambda: nn.Embedding(7, 3, padding_idx=0),
    lambda: nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2, groups=4), nn.ELU(0.5), nn.LeakyReLU(0.1), nn.Softplus(2.0),
                          nn.GELU("tanh"), nn.Dropout(0.3)),
    lambda: nn.ModuleList([nn.Linear(2, 2), nn.ModuleDict({"a": nn.Tanh(), "b": nn.Linear(2, 1)})]),
])
def test_new_layers_rebuild_from_their_config(make):
    from deltalab.io.architecture import from_config, to_config

    module = make()
    again = from_config(to_config(module))
    assert repr(again) == repr(module)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in module.state_dict().items()}


def test_embedding_and_dropout_convert_both_ways():
    from deltalab.io.interop import from_torch, to_torch

    torch.manual_seed(14)
    theirs = torch.nn.Sequential(torch.nn.Embedding(5, 3, padding_idx=1), torch.nn.Dropout(0.2)).double().eval()
    ours = from_torch(theirs).eval()
    indices = np.array([[0, 1, 4]])
    close(ours(dl.tensor(indices)), theirs(torch.tensor(indices)), "float64")
    back = to_torch(ours).eval()
    close(back(torch.tensor(indices)).detach().numpy(), theirs(torch.tensor(indices)), "float64")
    assert back[0].padding_idx == 1 and back[1].p == 0.2


def test_load_state_dict_returns_torchs_incompatible_keys():
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    state = {"weight": np.ones((2, 2)), "bias": np.zeros(2)}
    assert repr(ours.load_state_dict(state)) == repr(theirs.load_state_dict({k: torch.tensor(v) for k, v in
                                                                            state.items()}))
    result = ours.load_state_dict({"weight": np.ones((2, 2)), "extra": np.ones(1)}, strict=False)
    expected = theirs.load_state_dict({"weight": torch.ones(2, 2), "extra": torch.ones(1)}, strict=False)
    assert (result.missing_keys, result.unexpected_keys) == (expected.missing_keys, expected.unexpected_keys)


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Conv2d(2, 4, 3, dilation=2, groups=2), nn.BatchNorm2d(4), nn.GELU(), nn.Flatten()),
    lambda: nn.GRU(3, 4, 2, bidirectional=True),
    lambda: nn.LSTM(3, 4, single_bias=True),
    lambda: nn.ModuleList([nn.Embedding(6, 2, padding_idx=0), nn.ModuleDict({"out": nn.Linear(2, 3)})]),
])
def test_new_layers_save_and_load_as_checkpoints(make, tmp_path):
    model = make()
    dl.save(model, tmp_path / "model.npz")
    again = dl.load(tmp_path / "model.npz")
    assert repr(again) == repr(model)
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name

"""PyTorch interop: every supported module converted both ways computes what the original does."""
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deltalab as dl  # noqa: E402
from deltalab.io.interop import InteropError, from_torch, to_torch  # noqa: E402

nn = dl.nn
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}

# (deltalab module factory, torch module factory, input shape)
CASES = {
    "Linear": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (4, 5)),
    "Linear-no-bias": (lambda: nn.Linear(5, 3, bias=False), lambda: torch.nn.Linear(5, 3, bias=False), (4, 5)),
    "Conv2d": (
        lambda: nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)),
        lambda: torch.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), (2, 2, 7, 6),
    ),
    "Conv2d-dilated-grouped": (lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=(2, 1), groups=2),
                               lambda: torch.nn.Conv2d(4, 6, 3, padding=2, dilation=(2, 1), groups=2), (2, 4, 7, 6)),
    "Conv2d-no-bias": (lambda: nn.Conv2d(1, 2, 3, bias=False), lambda: torch.nn.Conv2d(1, 2, 3, bias=False), (2, 1, 5, 5)),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2, padding=1), lambda: torch.nn.AvgPool2d(2, padding=1), (2, 2, 5, 5)),
    "Flatten": (lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 2, 2)),
    "ReLU": (lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (3, 4)),
    "Tanh": (lambda: nn.Tanh(), lambda: torch.nn.Tanh(), (3, 4)),
    "Sigmoid": (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (3, 4)),
    "Identity": (lambda: nn.Identity(), lambda: torch.nn.Identity(), (3, 4)),
    "Softmax": (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), (3, 4)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=0), lambda: torch.nn.LogSoftmax(dim=0), (3, 4)),
    "Sequential-nested": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Sequential(OrderedDict(conv=nn.Conv2d(4, 6, 3, padding=1), act=nn.Tanh())), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(24, 10), nn.LogSoftmax(dim=1),
        ),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Sequential(OrderedDict(conv=torch.nn.Conv2d(4, 6, 3, padding=1), act=torch.nn.Tanh())),
            torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(24, 10), torch.nn.LogSoftmax(dim=1),
        ),
        (3, 1, 8, 8),
    ),
    "RNN": (lambda: nn.RNN(3, 4), lambda: torch.nn.RNN(3, 4), (6, 2, 3)),
    "RNN-relu-batch-first": (
        lambda: nn.RNN(3, 4, nonlinearity="relu", batch_first=True),
        lambda: torch.nn.RNN(3, 4, nonlinearity="relu", batch_first=True), (2, 6, 3),
    ),
    "LSTM": (lambda: nn.LSTM(3, 5), lambda: torch.nn.LSTM(3, 5), (6, 2, 3)),
    "LSTM-no-bias-batch-first": (
        lambda: nn.LSTM(3, 4, bias=False, batch_first=True),
        lambda: torch.nn.LSTM(3, 4, bias=False, batch_first=True), (2, 5, 3),
    ),
    "RNNCell": (lambda: nn.RNNCell(3, 4), lambda: torch.nn.RNNCell(3, 4), (5, 3)),
    "RNNCell-relu-no-bias": (
        lambda: nn.RNNCell(3, 4, bias=False, nonlinearity="relu"),
        lambda: torch.nn.RNNCell(3, 4, bias=False, nonlinearity="relu"), (5, 3),
    ),
    "LSTMCell": (lambda: nn.LSTMCell(3, 4), lambda: torch.nn.LSTMCell(3, 4), (5, 3)),
    "RNN-2-layers-bidirectional": (lambda: nn.RNN(3, 4, 2, bidirectional=True),
                                   lambda: torch.nn.RNN(3, 4, 2, bidirectional=True), (6, 2, 3)),
    "RNN-single-bias": (lambda: nn.RNN(3, 4, single_bias=True), lambda: torch.nn.RNN(3, 4), (6, 2, 3)),
    "LSTM-3-layers-batch-first": (lambda: nn.LSTM(3, 4, 3, batch_first=True),
                                  lambda: torch.nn.LSTM(3, 4, 3, batch_first=True), (2, 6, 3)),
    "GRU": (lambda: nn.GRU(3, 4), lambda: torch.nn.GRU(3, 4), (6, 2, 3)),
    "GRU-2-layers-bidirectional-no-bias": (lambda: nn.GRU(3, 4, 2, bias=False, bidirectional=True),
                                           lambda: torch.nn.GRU(3, 4, 2, bias=False, bidirectional=True), (5, 2, 3)),
    "GRUCell": (lambda: nn.GRUCell(3, 4), lambda: torch.nn.GRUCell(3, 4), (5, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), (5, 3, 4)),
    "BatchNorm2d-no-affine": (lambda: nn.BatchNorm2d(2, affine=False), lambda: torch.nn.BatchNorm2d(2, affine=False),
                              (3, 2, 4, 4)),
    "ELU": (lambda: nn.ELU(0.5), lambda: torch.nn.ELU(0.5), (3, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (3, 4)),
    "Softplus": (lambda: nn.Softplus(2.0, 1.0), lambda: torch.nn.Softplus(2.0, 1.0), (3, 4)),
    "GELU-tanh": (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), (3, 4)),
}


def first(output):
    """The sequence output of a recurrent layer ((output, state) tuples), else the output itself."""
    return output[0] if isinstance(output, tuple) else output


def outputs(ours, theirs, shape, dtype, seed=0):
    x = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    mine = first(ours(dl.tensor(x))).numpy()
    with torch.no_grad():
        reference = first(theirs(torch.from_numpy(x))).numpy()
    return mine, reference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_to_torch_computes_the_same_function(name, dtype):
    make_ours, _, shape = CASES[name]
    dl.manual_seed(3)
    ours = make_ours().to(dtype)
    for p in ours.parameters():  # biases away from zero so a dropped bias would show
        p.data = p.data + np.asarray(0.1, dtype=dtype)
    theirs = to_torch(ours)
    for p in theirs.parameters():
        assert p.dtype == TORCH_DTYPE[dtype]
    mine, reference = outputs(ours, theirs, shape, dtype)
    assert reference.dtype == np.dtype(dtype)
    np.testing.assert_allclose(mine, reference, rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_from_torch_computes_the_same_function(name, dtype):
    _, make_theirs, shape = CASES[name]
    torch.manual_seed(4)
    theirs = make_theirs().to(TORCH_DTYPE[dtype])
    ours = from_torch(theirs)
    assert type(ours).__name__ == type(theirs).__name__
    for p in ours.parameters():
        assert p.dtype == np.dtype(dtype)
    mine, reference = outputs(ours, theirs, shape, dtype)
    assert mine.dtype == np.dtype(dtype)
    np.testing.assert_allclose(mine, reference, rtol=0, atol=TOLERANCE[dtype])


def test_weights_are_copied_exactly_and_not_shared():
    torch.manual_seed(0)
    theirs = torch.nn.Linear(4, 2).double()
    ours = from_torch(theirs)
    assert ours.weight.data.tobytes() == theirs.weight.detach().numpy().tobytes()
    with torch.no_grad():
        theirs.weight.add_(1.0)
    assert not np.allclose(ours.weight.data, theirs.weight.detach().numpy())


def test_recurrent_biases_copy_by_name_and_the_single_bias_splits():
    torch.manual_seed(1)
    theirs = torch.nn.RNN(2, 3).double()
    ours = from_torch(theirs)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        np.testing.assert_array_equal(getattr(ours, name).data, getattr(theirs, name).detach().numpy())
    single = nn.RNN(2, 3, single_bias=True, dtype="float64")
    back = to_torch(single)
    np.testing.assert_array_equal(back.bias_hh_l0.detach().numpy(), np.zeros(3))
    np.testing.assert_array_equal(back.bias_ih_l0.detach().numpy(), single.bias_l0.data)


def test_unsupported_modules_and_options_are_named():
    with pytest.raises(InteropError, match="padding_mode='reflect'"):
        from_torch(torch.nn.Conv2d(1, 1, 3, padding_mode="reflect"))
    with pytest.raises(InteropError, match="count_include_pad=False"):
        from_torch(torch.nn.AvgPool2d(2, count_include_pad=False))
    with pytest.raises(InteropError, match="torch.nn.modules.normalization.LayerNorm"):
        from_torch(torch.nn.Sequential(torch.nn.LayerNorm(3)))
    with pytest.raises(InteropError, match="proj_size"):
        from_torch(torch.nn.LSTM(2, 2, proj_size=1))
    with pytest.raises(InteropError, match="MSELoss"):
        to_torch(nn.Sequential(nn.MSELoss()))


def test_importing_deltalab_does_not_import_torch():
    code = "import deltalab, deltalab.io.interop, deltalab.training, sys; assert 'torch' not in sys.modules, 'torch imported'"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


# ------------------------------------------------ the lecture's ElmanNetwork and LSTMNetwork
NETWORKS = {
    "elman-tanh-softmax": (dl.models.ElmanNetwork, dict(hidden_activation="tanh", output_activation="softmax")),
    "elman-relu-many-to-one": (dl.models.ElmanNetwork, dict(hidden_activation="relu", many_to_one=True)),
    "elman-no-bias-sigmoid": (dl.models.ElmanNetwork, dict(output_activation="sigmoid", bias=False)),
    "lstm-identity": (dl.models.LSTMNetwork, dict()),
    "lstm-many-to-one-tanh": (dl.models.LSTMNetwork, dict(output_activation="tanh", many_to_one=True)),
}


def torch_twin(ours, dtype):
    """The same network written directly in torch from the lecture's equations (not via to_torch):
    h(t) from an nn.RNN/nn.LSTM with W1, H1, b1 (b1 in bias_ih, bias_hh = 0), y = f2(W2 h + b2)."""
    lstm = isinstance(ours, dl.models.LSTMNetwork)
    bias = ours.b1 is not None
    extra = {} if lstm else {"nonlinearity": ours.hidden_activation}
    recurrent = (torch.nn.LSTM if lstm else torch.nn.RNN)(ours.input_size, ours.hidden_size, bias=bias, **extra)
    linear = torch.nn.Linear(ours.hidden_size, ours.output_size, bias=bias)
    recurrent, linear = recurrent.to(TORCH_DTYPE[dtype]), linear.to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        recurrent.weight_ih_l0.copy_(torch.from_numpy(ours.W1.numpy()))
        recurrent.weight_hh_l0.copy_(torch.from_numpy(ours.H1.numpy()))
        linear.weight.copy_(torch.from_numpy(ours.W2.numpy()))
        if bias:
            recurrent.bias_ih_l0.copy_(torch.from_numpy(ours.b1.numpy()))
            recurrent.bias_hh_l0.zero_()
            linear.bias.copy_(torch.from_numpy(ours.b2.numpy()))
    activation = {"identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=-1), "sigmoid": torch.sigmoid,
                  "tanh": torch.tanh}[ours.output_activation]

    def forward(x):
        hidden, _ = recurrent(x)
        return activation(linear(hidden[-1] if ours.many_to_one else hidden))

    return forward


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_networks_round_trip_through_torch_and_agree_with_a_hand_built_twin(name, dtype):
    cls, kwargs = NETWORKS[name]
    dl.manual_seed(7)
    ours = cls(3, 4, 2, dtype=dtype, **kwargs)
    theirs = to_torch(ours)
    assert type(theirs).__name__ == "TorchElmanNetwork" and isinstance(theirs, torch.nn.Module)
    assert all(p.dtype == TORCH_DTYPE[dtype] for p in theirs.parameters())
    back = from_torch(theirs)
    assert type(back) is cls and repr(back) == repr(ours)
    for (n, p), (m, q) in zip(ours.named_parameters(), back.named_parameters()):
        assert n == m and q.dtype == np.dtype(dtype) and q.data.tobytes() == p.data.tobytes()
    twin = torch_twin(ours, dtype)
    for shape in ((6, 2, 3), (6, 3)):  # batched and unbatched sequences
        x = np.random.default_rng(1).normal(size=shape).astype(dtype)
        with torch.no_grad():
            reference = twin(torch.from_numpy(x)).numpy()
            converted = theirs(torch.from_numpy(x)).numpy()
        for output in (ours(dl.tensor(x)).numpy(), back(dl.tensor(x)).numpy(), converted):
            assert output.shape == reference.shape
            np.testing.assert_allclose(output, reference, rtol=0, atol=TOLERANCE[dtype])


def test_a_network_built_in_torch_comes_across():
    from deltalab.io.interop import torch_network_class

    torch.manual_seed(5)
    wrapper = torch_network_class()(torch.nn.RNN(2, 3).double(), torch.nn.Linear(3, 2).double(), "softmax", True)
    ours = from_torch(wrapper)
    expected_bias = (wrapper.recurrent.bias_ih_l0 + wrapper.recurrent.bias_hh_l0).detach().numpy()
    np.testing.assert_allclose(ours.b1.numpy(), expected_bias, rtol=0, atol=1e-15)
    x = np.random.default_rng(2).normal(size=(4, 5, 2))
    with torch.no_grad():
        reference = wrapper(torch.from_numpy(x)).numpy()
    assert reference.shape == (5, 2)
    np.testing.assert_allclose(ours(dl.tensor(x)).numpy(), reference, rtol=0, atol=1e-12)


def test_networks_torch_cannot_express_are_refused_by_name():
    with pytest.raises(InteropError, match="no hidden activation 'sigmoid'"):
        to_torch(dl.models.ElmanNetwork(2, 3, 1, hidden_activation="sigmoid"))
    with pytest.raises(InteropError, match="nonlinearity 'identity'"):
        to_torch(nn.RNNCell(2, 3, nonlinearity="identity"))


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_a_softmax_without_dim_crosses_over_and_survives_a_checkpoint(kind, tmp_path):
    """nn.Softmax() keeps torch's implicit dim (1 for a 2-D input) through from_torch, to_torch
    and dl.save/dl.load (its checkpoint config holds dim = None)."""
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4).double(), getattr(torch.nn, kind)())
    model = from_torch(torch_model)
    x = np.random.default_rng(4).standard_normal((5, 3))
    expected = torch_model(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(model(dl.tensor(x)).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(to_torch(model)(torch.tensor(x)).detach().numpy(), expected, rtol=1e-12)
    dl.save(model, tmp_path / "model.npz")
    np.testing.assert_allclose(dl.load(tmp_path / "model.npz")(dl.tensor(x)).numpy(), expected, rtol=1e-12)


def test_to_torch_and_from_torch_are_top_level_names():
    assert dl.to_torch is to_torch and dl.from_torch is from_torch

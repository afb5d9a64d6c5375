"""Recurrent layers: the lecture's BPTT exercises (SPEC §4), PyTorch twins, fused vs unrolled."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deltalab as dl
import deltalab.functional as F
from deltalab.models import ElmanNetwork
from deltalab.ops.recurrent import sequence_record

# these tests compare at float64 precision (the default dtype is float32, as torch's)
pytestmark = pytest.mark.usefixtures("float64_default")

# ---------------------------------------------------------------- SPEC §4 exercises
# Common setup: x = [(4,0,0,0), (0,8,2,0)], 3 hidden tanh units, every weight and bias 0.1,
# h(0) = 0, learning rate 1, one SGD step on the sequence.
INPUTS = [[4.0, 0, 0, 0], [0, 8.0, 2.0, 0]]


def lecture_network(output_activation, many_to_one):
    net = ElmanNetwork(4, 3, 2, hidden_activation="tanh", output_activation=output_activation, many_to_one=many_to_one)
    for p in net.parameters():
        p.data[...] = 0.1
    return net


def one_sgd_step(net, loss_fn, target):
    run = net.run(dl.tensor(INPUTS))
    if loss_fn == "half_squared_error":
        loss = F.half_squared_error(run.output, dl.tensor(target))
    else:  # the lecture's cross-entropy −Σ t·log y on the softmax output
        loss = -(dl.tensor(target) * run.output.log()).sum()
    loss.backward()
    dl.optim.SGD(net.parameters(), lr=1.0).step()
    return loss.item(), sequence_record(run.hidden)


def rows(value, n):
    return np.tile(np.asarray(value, dtype=float), (n, 1))


def test_many_to_many_identity_half_squared_error():
    net = lecture_network("identity", many_to_one=False)
    error, record = one_sgd_step(net, "half_squared_error", [[1.0, 0], [0, 1.0]])
    assert error == pytest.approx(0.589768, abs=1e-6)
    np.testing.assert_allclose(record["delta"][0, 0], [-0.0430858] * 3, atol=1e-7)  # δ[1](1)
    np.testing.assert_allclose(record["delta"][1, 0], [-0.0083747] * 3, atol=1e-7)  # δ[1](2)
    np.testing.assert_allclose(net.H1.numpy(), np.full((3, 3), 0.103870), atol=1e-6)
    np.testing.assert_allclose(net.W1.numpy(), rows([0.272343, 0.166997, 0.116749, 0.1], 3), atol=1e-6)
    np.testing.assert_allclose(net.b1.numpy(), [0.151461] * 3, atol=1e-6)
    np.testing.assert_allclose(net.W2.numpy(), [[0.153092] * 3, [0.536041] * 3], atol=1e-6)
    np.testing.assert_allclose(net.b2.numpy(), [0.507845] * 2, atol=1e-6)


def test_many_to_one_identity_half_squared_error():
    net = lecture_network("identity", many_to_one=True)
    one_sgd_step(net, "half_squared_error", [0.0, 1.0])
    np.testing.assert_allclose(net.H1.numpy(), np.full((3, 3), 0.103870), atol=1e-6)
    np.testing.assert_allclose(net.W1.numpy(), rows([0.107903, 0.166997, 0.116749, 0.1], 3), atol=1e-6)
    np.testing.assert_allclose(net.b1.numpy(), [0.110351] * 3, atol=1e-6)
    np.testing.assert_allclose(net.W2.numpy(), [[-0.198747] * 3, [0.646318] * 3], atol=1e-6)
    np.testing.assert_allclose(net.b2.numpy(), [-0.253520, 0.746480], atol=1e-6)


def test_many_to_many_softmax_cross_entropy_ties_give_zero_hidden_deltas():
    net = lecture_network("softmax", many_to_one=False)
    _, record = one_sgd_step(net, "cross_entropy", [[1.0, 0], [0, 1.0]])
    np.testing.assert_array_equal(record["delta"], 0.0)
    np.testing.assert_allclose(net.W2.numpy(), [[-0.091474] * 3, [0.291474] * 3], atol=1e-6)
    np.testing.assert_allclose(net.b2.numpy(), [0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(net.W1.numpy(), 0.1, atol=1e-12)


def test_many_to_one_softmax_cross_entropy():
    net = lecture_network("softmax", many_to_one=True)
    _, record = one_sgd_step(net, "cross_entropy", [0.0, 1.0])
    np.testing.assert_allclose(record["delta"], 0.0, atol=1e-15)
    np.testing.assert_allclose(net.b2.numpy(), [-0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(net.W2.numpy(), [[-0.322533] * 3, [0.522533] * 3], atol=1e-6)


def test_per_step_contributions_sum_to_the_shared_weight_gradients():
    net = lecture_network("identity", many_to_one=False)
    run = net.run(dl.tensor(INPUTS))
    F.half_squared_error(run.output, dl.tensor([[1.0, 0], [0, 1.0]])).backward()
    record = sequence_record(run.hidden)
    assert record["delta"].shape == (2, 1, 3)  # (T, batch, hidden)
    np.testing.assert_allclose(record["dW_ih"].sum(axis=0), net.W1.grad.numpy(), atol=1e-15)
    np.testing.assert_allclose(record["dW_hh"].sum(axis=0), net.H1.grad.numpy(), atol=1e-15)
    np.testing.assert_allclose(record["db"].sum(axis=0), net.b1.grad.numpy(), atol=1e-15)
    # step 1 starts from h(0) = 0, so H gets no contribution there
    np.testing.assert_array_equal(record["dW_hh"][0], 0.0)


# ---------------------------------------------------------------- PyTorch twins
torch = pytest.importorskip("torch")


def copy_weights(ours, theirs, suffix="_l0"):
    """torch's parameters by name into ours: both have weight_ih, weight_hh, bias_ih, bias_hh."""
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours, name + suffix).data = getattr(theirs, name + suffix).detach().numpy().copy()


def assert_close(ours, theirs):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


sizes = st.tuples(st.integers(1, 50), st.integers(1, 4), st.integers(1, 6), st.integers(1, 7))


@given(sizes=sizes, batch_first=st.booleans(), nonlinearity=st.sampled_from(["tanh", "relu"]), seed=st.integers(0, 99))
def test_rnn_matches_torch(sizes, batch_first, nonlinearity, seed):
    steps, batch, features, hidden = sizes
    rng = np.random.default_rng(seed)
    ours = dl.nn.RNN(features, hidden, nonlinearity=nonlinearity, batch_first=batch_first)
    theirs = torch.nn.RNN(features, hidden, nonlinearity=nonlinearity, batch_first=batch_first).double()
    copy_weights(ours, theirs)
    x = rng.standard_normal((batch, steps, features) if batch_first else (steps, batch, features))
    h0 = rng.standard_normal((1, batch, hidden))
    g_out, g_h = rng.standard_normal(x.shape[:-1] + (hidden,)), rng.standard_normal(h0.shape)
    X, H0 = dl.tensor(x, requires_grad=True), dl.tensor(h0, requires_grad=True)
    out, h_n = ours(X, H0)
    ((out * g_out).sum() + (h_n * g_h).sum()).backward()
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    tout, th_n = theirs(tx, th0)
    ((tout * torch.tensor(g_out)).sum() + (th_n * torch.tensor(g_h)).sum()).backward()
    assert_close(out, tout)
    assert_close(h_n, th_n)
    for a, b in [(X.grad, tx.grad), (H0.grad, th0.grad), (ours.weight_ih_l0.grad, theirs.weight_ih_l0.grad),
                 (ours.weight_hh_l0.grad, theirs.weight_hh_l0.grad), (ours.bias_ih_l0.grad, theirs.bias_ih_l0.grad),
                 (ours.bias_hh_l0.grad, theirs.bias_hh_l0.grad)]:
        assert_close(a, b)


@given(sizes=sizes, batch_first=st.booleans(), seed=st.integers(0, 99))
def test_lstm_matches_torch(sizes, batch_first, seed):
    steps, batch, features, hidden = sizes
    rng = np.random.default_rng(seed)
    ours = dl.nn.LSTM(features, hidden, batch_first=batch_first)
    theirs = torch.nn.LSTM(features, hidden, batch_first=batch_first).double()
    copy_weights(ours, theirs)
    x = rng.standard_normal((batch, steps, features) if batch_first else (steps, batch, features))
    h0, c0 = rng.standard_normal((2, 1, batch, hidden))
    g_out, g_h, g_c = (rng.standard_normal(s) for s in (x.shape[:-1] + (hidden,), h0.shape, c0.shape))
    X, H0, C0 = (dl.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (h_n, c_n) = ours(X, (H0, C0))
    ((out * g_out).sum() + (h_n * g_h).sum() + (c_n * g_c).sum()).backward()
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    tout, (th_n, tc_n) = theirs(tx, (th0, tc0))
    ((tout * torch.tensor(g_out)).sum() + (th_n * torch.tensor(g_h)).sum() + (tc_n * torch.tensor(g_c)).sum()).backward()
    for a, b in [(out, tout), (h_n, th_n), (c_n, tc_n), (X.grad, tx.grad), (H0.grad, th0.grad), (C0.grad, tc0.grad),
                 (ours.weight_ih_l0.grad, theirs.weight_ih_l0.grad), (ours.weight_hh_l0.grad, theirs.weight_hh_l0.grad),
                 (ours.bias_ih_l0.grad, theirs.bias_ih_l0.grad), (ours.bias_hh_l0.grad, theirs.bias_hh_l0.grad)]:
        assert_close(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_cells_match_torch(kind, rng):
    ours = dl.nn.RNNCell(3, 4) if kind == "rnn" else dl.nn.LSTMCell(3, 4)
    theirs = (torch.nn.RNNCell(3, 4) if kind == "rnn" else torch.nn.LSTMCell(3, 4)).double()
    copy_weights(ours, theirs, suffix="")
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    if kind == "rnn":
        X, Hs = dl.tensor(x, requires_grad=True), dl.tensor(h, requires_grad=True)
        ours(X, Hs).sum().backward()
        tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
        theirs(tx, th).sum().backward()
    else:
        X, Hs, C = (dl.tensor(a, requires_grad=True) for a in (x, h, c))
        h1, c1 = ours(X, (Hs, C))
        (h1.sum() + 2 * c1.sum()).backward()
        tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
        th1, tc1 = theirs(tx, (th, tc))
        (th1.sum() + 2 * tc1.sum()).backward()
    assert_close(X.grad, tx.grad)
    assert_close(Hs.grad, th.grad)
    assert_close(ours.weight_hh.grad, theirs.weight_hh.grad)
    assert_close(ours.bias_ih.grad, theirs.bias_ih.grad)
    assert_close(ours.bias_hh.grad, theirs.bias_hh.grad)


# ---------------------------------------------------------------- fused vs unrolled primitives
def leaves(rng, *shapes):
    return [dl.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid", "identity"])
def test_fused_elman_equals_unrolled_primitives(nonlinearity, rng):
    from deltalab.ops.recurrent import elman_sequence, elman_unrolled

    shapes = [(6, 2, 3), (2, 4), (4, 3), (4, 4), (4,)]
    fused_in, plain_in = leaves(rng, *shapes), None
    plain_in = [dl.tensor(t.numpy().copy(), requires_grad=True) for t in fused_in]
    g = rng.standard_normal((6, 2, 4))
    (elman_sequence(*fused_in, nonlinearity=nonlinearity) * g).sum().backward()
    (elman_unrolled(*plain_in, nonlinearity=nonlinearity) * g).sum().backward()
    for a, b in zip(fused_in, plain_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_fused_lstm_equals_unrolled_primitives(rng):
    from deltalab.ops.recurrent import lstm_sequence, lstm_unrolled

    shapes = [(5, 2, 3), (2, 4), (2, 4), (16, 3), (16, 4), (16,)]
    fused_in = leaves(rng, *shapes)
    plain_in = [dl.tensor(t.numpy().copy(), requires_grad=True) for t in fused_in]
    g = rng.standard_normal((5, 2, 4))
    (lstm_sequence(*fused_in)[0] * g).sum().backward()
    (lstm_unrolled(*plain_in)[0] * g).sum().backward()
    for a, b in zip(fused_in, plain_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradcheck_elman_and_lstm_sequences(rng):
    from deltalab.ops.recurrent import elman_sequence, lstm_sequence

    assert dl.gradcheck(lambda *a: elman_sequence(*a), *leaves(rng, (4, 2, 3), (2, 3), (3, 3), (3, 3), (3,)))
    assert dl.gradcheck(lambda *a: lstm_sequence(*a)[0] + lstm_sequence(*a)[1],
                        *leaves(rng, (4, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,)))


# ---------------------------------------------------------------- truncated BPTT
@pytest.mark.parametrize("layer", [dl.nn.RNN, dl.nn.LSTM])
def test_truncation_at_least_T_equals_full_bptt(layer, rng):
    x = rng.standard_normal((7, 2, 3))
    grads = []
    for k in (None, 7, 50):
        dl.manual_seed(3)
        net = layer(3, 4, bptt_truncate=k)
        net(dl.tensor(x))[0].sum().backward()
        grads.append([p.grad.numpy() for p in net.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


def test_truncated_bptt_equals_chunks_with_detached_state(rng):
    x = rng.standard_normal((7, 2, 3))
    dl.manual_seed(5)
    net = dl.nn.RNN(3, 4, bptt_truncate=3, single_bias=True)
    out, _ = net(dl.tensor(x))
    out.sum().backward()
    # the same by hand: three chunks (3, 3, 1 steps), the state detached between them
    W, H, b = (dl.tensor(p.numpy(), requires_grad=True) for p in (net.weight_ih_l0, net.weight_hh_l0, net.bias_l0))
    h = dl.zeros(2, 4)
    total = 0
    from deltalab.ops.recurrent import elman_unrolled

    for start in (0, 3, 6):
        seq = elman_unrolled(dl.tensor(x[start:start + 3]), h.detach(), W, H, b)
        total = total + seq.sum()
        h = seq[-1]
    total.backward()
    np.testing.assert_allclose(net.weight_hh_l0.grad.numpy(), H.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(net.weight_ih_l0.grad.numpy(), W.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(net.bias_l0.grad.numpy(), b.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out.numpy()[-1], h.numpy(), rtol=1e-12)  # values carried across chunks


def test_long_sequence_trains_without_recursion_error(rng):
    net = ElmanNetwork(2, 8, 1)
    opt = dl.optim.SGD(net.parameters(), lr=1e-3)
    x, t = dl.tensor(rng.standard_normal((2000, 1, 2))), dl.tensor(rng.standard_normal((2000, 1, 1)))
    for _ in range(2):
        opt.zero_grad()
        loss = F.half_squared_error(net(x), t)
        loss.backward()
        opt.step()
    assert np.isfinite(loss.item())


# ---------------------------------------------------------------- bad input
def test_wrong_feature_size_names_layer_and_shape():
    with pytest.raises(dl.ShapeError, match=r"RNN\(3, 4.*5 input features.*\(2, 1, 5\)|RNN\(3, 4.*expected 3 input features.*\(2, 1, 5\)"):
        dl.nn.RNN(3, 4)(dl.zeros(2, 1, 5))


def test_wrong_hidden_state_shape_is_refused():
    with pytest.raises(dl.ShapeError, match=r"LSTM.*\(1, 2, 4\) for h_0, got \(1, 2, 5\)"):
        dl.nn.LSTM(3, 4)(dl.zeros(6, 2, 3), (dl.zeros(1, 2, 5), dl.zeros(1, 2, 4)))


def test_empty_sequence_is_refused():
    with pytest.raises(dl.ShapeError, match=r"ElmanNetwork.*empty"):
        ElmanNetwork(3, 4, 2)(dl.zeros(0, 1, 3))


def test_large_float32_lstm_without_numba_uses_the_numpy_path(monkeypatch):
    """numba is optional: when it cannot be imported the fused ops fall back to NumPy."""
    import sys

    from deltalab import fast
    from deltalab.fast import kernels as fast_kernels
    from deltalab.fast import recurrent as fast_recurrent

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.delitem(sys.modules, "deltalab.fast.recurrent_kernels", raising=False)
    monkeypatch.delattr(fast, "recurrent_kernels", raising=False)
    fast_kernels.load.cache_clear()  # look for the kernels again, as a fresh process would
    try:
        assert fast_recurrent.step_kernels(np.float32, 1 << 20) is None
        rng = np.random.default_rng(3)
        x = rng.standard_normal((20, 8, 5))
        lstm = dl.nn.LSTM(5, 512)  # 20·8·512 values: above the compiled kernels' threshold
        out64, _ = lstm(dl.tensor(x))
        out32, _ = lstm.float()(dl.tensor(x.astype(np.float32)))
        assert out32.data.dtype == np.float32 and fast_recurrent.load_kernels() is None
    finally:
        monkeypatch.undo()
        fast_kernels.load.cache_clear()
    np.testing.assert_allclose(out32.data, out64.data, rtol=0, atol=2e-5)

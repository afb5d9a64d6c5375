"""The compiled (numba) recurrent step kernels against the NumPy path they replace.

Given the same inputs, both paths must give the same outputs, gradients and recorded deltas:
float32 to ~1e-5 (the kernels' own sigmoid/tanh differ from NumPy's by a few ulp), and the
backward alone, run on the same forward values, bit for bit.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import deltalab as dl  # noqa: E402
from deltalab.fast import recurrent as fast_recurrent  # noqa: E402
from deltalab.fast import recurrent_kernels as kernels  # noqa: E402
from deltalab.ops import recurrent  # noqa: E402

import recurrent_cases  # noqa: E402  (tests/recurrent_cases.py)

SATURATING = (0.0, 30.0, -30.0, 100.0, -100.0)  # pre-activations pinned by zero weights + this bias


def ulp_distance(a, b):
    """|a − b| in float32 units in the last place (both finite)."""
    ia, ib = (np.asarray(v, np.float32).view(np.int32).astype(np.int64) for v in (a, b))
    ia, ib = (np.where(i < 0, -(i & 0x7FFFFFFF), i) for i in (ia, ib))
    return np.abs(ia - ib)


@pytest.fixture
def kernels_for_any_size(monkeypatch):
    """Compiled kernels for every float32 sequence, however small; the per-step matrix
    products as one product each, as in the NumPy path (not chosen by timing)."""
    monkeypatch.delenv("DELTALAB_NUMBA", raising=False)
    with dl.tuning(kernel_min_work=1, split_step_products=False):
        yield


def use_kernels(on):
    os.environ["DELTALAB_NUMBA"] = "1" if on else "0"


@pytest.fixture(autouse=True)
def restore_environment():
    saved = os.environ.get("DELTALAB_NUMBA")
    yield
    if saved is None:
        os.environ.pop("DELTALAB_NUMBA", None)
    else:
        os.environ["DELTALAB_NUMBA"] = saved


# ---------------------------------------------------------------- sigmoid and tanh themselves
def test_sigmoid_and_tanh_match_numpy_to_a_few_ulp():
    grid = [np.linspace(-100, 100, 200_001), np.linspace(-1, 1, 100_001), np.logspace(-30, 2, 50_001)]
    x = np.concatenate(grid + [-grid[-1], [0.0, -0.0, 30, -30, 87.3, -87.3, 88.8, -88.8, 1e6, -1e6, np.inf, -np.inf]])
    x = x.astype(np.float32)
    sig, tanh = np.empty_like(x), np.empty_like(x)
    kernels.sigmoid_tanh_arrays(x, sig, tanh)
    assert np.isfinite(sig).all() and np.isfinite(tanh).all()
    with np.errstate(over="ignore"):
        sig_numpy = np.reciprocal(1 + np.exp(-x))  # recurrent.sigmoid_
    normal = sig_numpy >= np.finfo(np.float32).tiny  # below, NumPy's are subnormal and ours 0
    assert ulp_distance(sig, sig_numpy)[normal].max() <= 4
    assert np.abs(sig - sig_numpy)[~normal].max() < 1.2e-38
    assert ulp_distance(tanh, np.tanh(x)).max() <= 2
    # exact where it matters: the midpoint, saturation, and tanh x ≈ x near 0 (relatively)
    assert (sig[x == 0] == 0.5).all() and (tanh[x == 0] == 0).all()
    assert sig[x == np.inf][0] == 1.0 and sig[x == -np.inf][0] == 0.0 and sig[x == -100][0] == 0.0
    assert tanh[x == 30][0] == 1.0 and tanh[x == -100][0] == -1.0
    assert tanh[x == np.inf][0] == 1.0 and tanh[x == -np.inf][0] == -1.0
    tiny = (np.abs(x) > 0) & (np.abs(x) < 1e-4)
    np.testing.assert_array_equal(tanh[tiny], x[tiny])
    true_sigmoid = 1 / (1 + np.exp(-x[np.abs(x) < 80].astype(np.float64)))
    assert ulp_distance(sig[np.abs(x) < 80], true_sigmoid).max() <= 2
    assert ulp_distance(tanh, np.tanh(x.astype(np.float64))).max() <= 1


def test_nan_stays_nan():
    """A diverging run must show NaN, as NumPy's would, not saturated gate values."""
    x = np.array([np.nan, -np.nan, 1.0] + [np.nan] * 29, dtype=np.float32)
    sig, tanh = np.empty_like(x), np.empty_like(x)
    kernels.sigmoid_tanh_arrays(x, sig, tanh)
    np.testing.assert_array_equal(np.isnan(sig), np.isnan(x))
    np.testing.assert_array_equal(np.isnan(tanh), np.isnan(x))


# ---------------------------------------------------------------- whole sequences, both paths
def parameters(kind, steps, batch, features, hidden, seed, dtype=np.float32):
    """Inputs and contractive weights (so the paths' ulp differences do not grow with t);
    the first units' pre-activations are pinned to 0, ±30, ±100 in every gate."""
    rng = np.random.default_rng(seed)
    gates = 4 if kind == "lstm" else 1
    w_ih = rng.standard_normal((gates * hidden, features)) / np.sqrt(features)
    w_hh = rng.standard_normal((gates * hidden, hidden)) / (2 * np.sqrt(hidden))
    bias = rng.standard_normal(gates * hidden)
    for g in range(gates):
        rows = g * hidden + np.arange(len(SATURATING))
        w_ih[rows], w_hh[rows], bias[rows] = 0, 0, SATURATING
    values = {
        "x": rng.standard_normal((steps, batch, features)) * 2,
        "h0": rng.standard_normal((batch, hidden)),
        "c0": rng.standard_normal((batch, hidden)),
        "weight_ih": w_ih, "weight_hh": w_hh, "bias": bias,
        "grad_h": rng.standard_normal((steps, batch, hidden)),
        "grad_c": rng.standard_normal((steps, batch, hidden)),
    }
    return {k: v.astype(dtype) for k, v in values.items()}


def run_lstm(p, forward_kernels, backward_kernels, upstream=("h", "c")):
    use_kernels(forward_kernels)
    return recurrent_cases.run_lstm(p, upstream, before_backward=lambda: use_kernels(backward_kernels))


def run_elman(p, forward_kernels, backward_kernels, nonlinearity="tanh"):
    use_kernels(forward_kernels)
    names = ("x", "h0", "weight_ih", "weight_hh", "bias")
    leaves = {k: dl.tensor(p[k], requires_grad=True) for k in names if p.get(k) is not None}
    hs = recurrent.elman_sequence(*(leaves.get(k) for k in names), nonlinearity=nonlinearity)
    use_kernels(backward_kernels)
    (hs * dl.tensor(p["grad_h"])).sum().backward()
    out = {"h": hs.data, "z": hs.grad_fn.saved[2], "deltas": hs.grad_fn.deltas}
    out.update({"grad_" + k: t.grad.data for k, t in leaves.items()})
    return out


def assert_close(got, expected, rtol):
    assert got.keys() == expected.keys()
    for key in expected:
        ref = expected[key]
        np.testing.assert_allclose(got[key], ref, rtol=rtol, atol=rtol * np.abs(ref).max(), err_msg=key)


def assert_same(got, expected):
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# hidden sizes that are not multiples of the 16-lane vectors exercise the loops' remainders
@pytest.mark.parametrize("steps, batch, features, hidden", [(7, 3, 5, 13), (4, 2, 3, 40), (1, 1, 2, 6)])
@pytest.mark.parametrize("upstream", [("h", "c"), ("h",), ("c",)])
def test_lstm_kernels_match_numpy(kernels_for_any_size, steps, batch, features, hidden, upstream):
    p = parameters("lstm", steps, batch, features, hidden, seed=hidden + steps)
    fast = run_lstm(p, True, True, upstream)
    assert fast_recurrent.step_kernels(np.float32, 1) is kernels
    assert_close(fast, run_lstm(p, False, False, upstream), rtol=1e-5)
    # the same forward values through the NumPy backward: bit for bit, with ∂E/∂x as the NumPy
    # path computes it (one product after the loop, not one per step)
    with dl.tuning(lstm_input_gradient_per_step=False):
        one_product = run_lstm(p, True, True, upstream)
    assert_same(one_product, run_lstm(p, True, False, upstream))
    assert_same(one_product, {k: v for k, v in fast.items() if k != "grad_x"})
    gates = fast["gates"].reshape(steps, batch, 4, hidden)[..., : len(SATURATING)]
    assert np.isfinite(gates).all() and gates.min() >= -1 and gates.max() <= 1


@pytest.mark.parametrize("steps, batch, features, hidden", [(7, 3, 5, 13), (4, 2, 3, 40), (1, 1, 2, 6)])
def test_elman_kernels_match_numpy(kernels_for_any_size, steps, batch, features, hidden):
    p = parameters("elman", steps, batch, features, hidden, seed=hidden)
    fast = run_elman(p, True, True)
    assert_close(fast, run_elman(p, False, False), rtol=1e-5)
    assert_same(fast, run_elman(p, True, False))


def test_kernels_without_bias(kernels_for_any_size):
    p = parameters("lstm", 5, 3, 4, 21, seed=3)
    p["bias"] = None
    fast = run_lstm(p, True, True)
    assert_close(fast, run_lstm(p, False, False), rtol=1e-5)
    assert_same(fast, run_lstm(p, True, False))
    p = parameters("elman", 5, 3, 4, 21, seed=3)
    p["bias"] = None
    fast = run_elman(p, True, True)
    assert_close(fast, run_elman(p, False, False), rtol=1e-5)
    assert_same(fast, run_elman(p, True, False))


def test_step_products_in_column_blocks(kernels_for_any_size):
    with dl.tuning(split_step_products=True):
        p = parameters("lstm", 6, 4, 3, 18, seed=4)  # 4·18 and 18 columns: blocks of unequal width
        assert_close(run_lstm(p, True, True), run_lstm(p, False, False), rtol=1e-5)
        rng = np.random.default_rng(5)
        right, left = rng.standard_normal((7, 10)), rng.standard_normal((3, 7))
        product = fast_recurrent.StepProduct(right, np.empty((3, 10)), 4)
    assert [piece.shape[1] for piece, _ in product.pieces] == [2, 3, 2, 3]
    np.testing.assert_allclose(product(left), left @ right, rtol=1e-12)


@pytest.mark.parametrize(
    "kernels, threads_, shape, split",
    [
        ("SkylakeX", 1, (32, 128, 512), True),  # 2.1M multiply-adds, 4 blocks of 0.52M
        ("SkylakeX", 1, (32, 512, 128), True),
        ("Cooperlake", 1, (32, 128, 512), True),
        ("Haswell", 1, (32, 128, 512), False),  # no small-matrix kernels
        ("SkylakeX", 2, (32, 128, 512), False),  # they are used at one thread only
        ("SkylakeX", 1, (32, 64, 256), False),  # already small as a whole
        ("SkylakeX", 1, (64, 256, 1024), False),  # blocks still too large
        (None, 1, (32, 128, 512), False),  # not OpenBLAS, or threadpoolctl missing
    ],
)
def test_step_products_split_by_a_fixed_rule(kernels, threads_, shape, split):
    rows, inner, width = shape
    with dl.tuning(split_step_products=None, blas_kernels=kernels or "", threads=threads_):  # "": unknown
        product = fast_recurrent.StepProduct(np.ones((inner, width), np.float32), np.ones((rows, width), np.float32),
                                             4)
    assert product.split is split
    left = np.random.default_rng(1).standard_normal((rows, inner)).astype(np.float32)
    np.testing.assert_allclose(product(left), left @ product.right, rtol=1e-5, atol=1e-4)


def test_elman_other_nonlinearities_keep_numpy(kernels_for_any_size):
    p = parameters("elman", 5, 2, 3, 8, seed=1)
    for nonlinearity in ("relu", "sigmoid", "identity"):
        assert_same(run_elman(p, True, True, nonlinearity), run_elman(p, False, False, nonlinearity))


def test_float64_and_switch_off_keep_numpy(kernels_for_any_size):
    assert fast_recurrent.step_kernels(np.float64, 10**9) is None
    assert fast_recurrent.step_kernels(np.float32, 10**9) is kernels
    os.environ["DELTALAB_NUMBA"] = "0"
    assert fast_recurrent.step_kernels(np.float32, 10**9) is None
    p = parameters("lstm", 3, 2, 3, 5, seed=2, dtype=np.float64)
    assert_same(run_lstm(p, True, True), run_lstm(p, False, False))


def test_small_float32_problems_do_not_import_numba():
    code = (
        "import sys, numpy as np, deltalab as dl\n"
        "net = dl.nn.LSTM(4, 3).float()\n"
        "out, _ = net(dl.tensor(np.ones((2, 1, 4), np.float32)))\n"
        "out.sum().backward()\n"
        "assert 'numba' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DELTALAB_NUMBA"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("parallel", [False, True])
def test_the_fast_path_matches_the_unrolled_reference(kernels_for_any_size, parallel):
    """The compiled kernels (serial, or in parallel batch-row ranges) against
    ``lstm_unrolled`` / ``elman_unrolled``, the recurrences spelled out with primitive ops and
    differentiated by autograd, all in float32: outputs and every gradient to 1e-5."""
    from deltalab.fast import threads

    for kind in ("lstm", "elman"):
        p = parameters(kind, 9, 6, 5, 13, seed=21)
        names = ("x", "h0", "c0", "weight_ih", "weight_hh", "bias") if kind == "lstm" else \
            ("x", "h0", "weight_ih", "weight_hh", "bias")
        results = []
        for path in ("fast", "reference"):
            leaves = [dl.tensor(p[k], requires_grad=True) for k in names]
            with dl.tuning(parallel=parallel):
                threads.set_num_threads(2) if parallel else None
                if path == "fast":
                    run = recurrent.lstm_sequence if kind == "lstm" else recurrent.elman_sequence
                else:
                    run = recurrent.lstm_unrolled if kind == "lstm" else recurrent.elman_unrolled
                out = run(*leaves)
                hs = out[0] if kind == "lstm" else out
                (hs * dl.tensor(p["grad_h"])).sum().backward()
            results.append([hs.data] + [t.grad.data for t in leaves])
        for fast, reference in zip(*results):
            assert fast.dtype == reference.dtype == np.float32
            np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_fused_forward_matches_the_projection_then_steps(kernels_for_any_size, batch):
    """lstm_forward_fused (the projection inside each step's product) against lstm_forward
    (the whole-sequence projection first, then the step products): the same recurrence."""
    p = parameters("lstm", 6, batch, 5, 13, seed=batch)
    steps, hidden = 6, 13
    results = []
    for fused in (True, False):
        h = np.empty((steps + 1, batch, hidden), np.float32)
        c = np.empty_like(h)
        tanh_c = np.empty((steps, batch, hidden), np.float32)
        h[0], c[0] = p["h0"], p["c0"]
        recurrent_t = np.ascontiguousarray(p["weight_hh"].T)
        if fused:
            gates = fast_recurrent.lstm_forward_fused(kernels, p["x"], p["weight_ih"], recurrent_t, h, c, tanh_c,
                                                      p["bias"])
        else:
            gates = (p["x"].reshape(steps * batch, -1) @ p["weight_ih"].T).reshape(steps, batch, 4 * hidden)
            fast_recurrent.lstm_forward(kernels, gates, h, c, tanh_c, recurrent_t, p["bias"], None)
        results.append((gates, h, c, tanh_c))
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps, batch, features, hidden", [(1, 3, 5, 13), (6, 7, 4, 9), (5, 2, 3, 16), (3, 1, 2, 6)])
@pytest.mark.parametrize("split", [False, True])
def test_input_gradient_per_step_matches_one_product_and_torch(kernels_for_any_size, steps, batch, features,
                                                              hidden, split):
    """The serial compiled LSTM backward computes ∂E/∂x(t) = δ(t)·W_ih after each step's carry
    product (Tuning.lstm_input_gradient_per_step): close to the one product after the loop and to
    torch, every other result the same bits; x without a gradient skips it."""
    torch = pytest.importorskip("torch")
    p = parameters("lstm", steps, batch, features, hidden, seed=steps * 10 + batch)
    use_kernels(True)
    with dl.tuning(parallel=False, split_step_products=split, small_matrix_max=100 if split else 1_000_000):
        per_step = recurrent_cases.run_lstm(p, ("h",))
        with dl.tuning(lstm_input_gradient_per_step=False):
            one_product = recurrent_cases.run_lstm(p, ("h",))
        assert_close({"grad_x": per_step.pop("grad_x")}, {"grad_x": one_product.pop("grad_x")}, rtol=1e-6)
        assert_same(per_step, one_product)
        # no gradient for x: no per-step product, the rest unchanged
        leaves = {k: dl.tensor(p[k], requires_grad=k != "x") for k in ("x", "h0", "c0", "weight_ih", "weight_hh", "bias")}
        hs, _ = recurrent.lstm_sequence(*leaves.values())
        (hs * dl.tensor(p["grad_h"])).sum().backward()
        assert leaves["x"].grad is None
        np.testing.assert_array_equal(leaves["weight_hh"].grad.data, one_product["grad_weight_hh"])
    # against torch (float64 reference), per-step path
    xs = torch.tensor(p["x"].astype(np.float64), requires_grad=True)
    lstm = torch.nn.LSTM(features, hidden, bias=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(p["weight_ih"].astype(np.float64)))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p["weight_hh"].astype(np.float64)))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p["bias"].astype(np.float64)))
        lstm.bias_hh_l0.zero_()
    h0 = torch.from_numpy(p["h0"].astype(np.float64))[None]
    c0 = torch.from_numpy(p["c0"].astype(np.float64))[None]
    out, _ = lstm(xs, (h0, c0))
    (out * torch.from_numpy(p["grad_h"].astype(np.float64))).sum().backward()
    with dl.tuning(parallel=False):
        use_kernels(True)
        got = recurrent_cases.run_lstm(p, ("h",))["grad_x"]
    expected = xs.grad.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

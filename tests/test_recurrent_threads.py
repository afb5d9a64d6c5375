"""The fused LSTM / Elman sequences' parallel step loops (deltalab.fast) give the serial results.

The parallel path is forced on (``dl.tuning(parallel=True)`` and two threads) whatever the
machine and compared with the serial path (``parallel=False``) on the same inputs: outputs,
every gradient, the returned carries ∂E/∂h(0), ∂E/∂c(0), and the recorded deltas and cell
deltas.  Each batch row does the same elementwise arithmetic, but OpenBLAS does not always give
a product's rows the same bits when it is computed in row blocks (with the AVX2 "Haswell"
kernels the tests run with, a (16, 13)·(13, 52) product in two halves differs in the last bit;
with the AVX-512 ones it does not), so parallel and serial agree to float32 rounding (1e-5),
and two parallel runs bit for bit.
"""
import numpy as np
import pytest

pytest.importorskip("numba")

import deltalab as dl  # noqa: E402
from deltalab.fast import recurrent as fast_recurrent  # noqa: E402
from deltalab.fast import threads  # noqa: E402
from deltalab.ops import recurrent  # noqa: E402

import recurrent_cases  # noqa: E402  (tests/recurrent_cases.py)


@pytest.fixture
def two_threads(monkeypatch, parallel_sections):
    """Two threads (set_num_threads, restored by dl.tuning on exit), compiled kernels for any
    size, and a record of the parallel sections run."""
    monkeypatch.delenv("DELTALAB_NUMBA", raising=False)
    with dl.tuning(kernel_min_work=1, split_step_products=False):
        threads.set_num_threads(2)
        yield parallel_sections


def parameters(kind, steps, batch, features, hidden, dtype=np.float32, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    gates = 4 if kind == "lstm" else 1
    values = {
        "x": rng.standard_normal((steps, batch, features)),
        "h0": rng.standard_normal((batch, hidden)),
        "c0": rng.standard_normal((batch, hidden)),
        "weight_ih": rng.standard_normal((gates * hidden, features)) / np.sqrt(features),
        "weight_hh": rng.standard_normal((gates * hidden, hidden)) / np.sqrt(hidden),
        "bias": rng.standard_normal(gates * hidden) if bias else None,
        "grad_h": rng.standard_normal((steps, batch, hidden)),
        "grad_c": rng.standard_normal((steps, batch, hidden)),
    }
    return {k: None if v is None else v.astype(dtype) for k, v in values.items()}


def run_lstm(p, parallel, upstream=("h", "c")):
    with dl.tuning(parallel=parallel):
        return recurrent_cases.run_lstm(p, upstream)


def run_elman(p, parallel):
    with dl.tuning(parallel=parallel):
        return _run_elman(p)


def _run_elman(p):
    names = ("x", "h0", "weight_ih", "weight_hh", "bias")
    leaves = {k: dl.tensor(p[k], requires_grad=True) for k in names if p[k] is not None}
    hs = recurrent.elman_sequence(*(leaves.get(k) for k in names))
    (hs * dl.tensor(p["grad_h"])).sum().backward()
    out = {"h": hs.data, "z": hs.grad_fn.saved[2], "deltas": hs.grad_fn.deltas}
    out.update({"grad_" + k: t.grad.data for k, t in leaves.items()})
    return out


def assert_close(got, expected, rtol=1e-5):
    assert got.keys() == expected.keys()
    for key in expected:
        ref = expected[key]
        assert got[key].dtype == ref.dtype, key
        np.testing.assert_allclose(got[key], ref, rtol=rtol, atol=rtol * np.abs(ref).max(), err_msg=key)


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("batch", [2, 5, 7, 16])
@pytest.mark.parametrize("upstream", [("h", "c"), ("h",), ("c",)])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_parallel_matches_serial(two_threads, batch, upstream, bias):
    p = parameters("lstm", 9, batch, 5, 13, bias=bias, seed=batch)  # 13: not a vector multiple
    serial = run_lstm(p, False, upstream)
    assert two_threads == []
    parallel = run_lstm(p, True, upstream)
    assert two_threads and all(n == 2 for n in two_threads)  # step loops and whole-sequence products
    assert_close(parallel, serial)
    assert_same(run_lstm(p, True, upstream), parallel)  # deterministic run to run


@pytest.mark.parametrize("batch", [2, 5, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_elman_parallel_matches_serial(two_threads, batch, bias):
    p = parameters("elman", 8, batch, 4, 11, bias=bias, seed=batch)
    serial = run_elman(p, False)
    parallel = run_elman(p, True)
    assert two_threads
    assert_close(parallel, serial)
    assert_same(run_elman(p, True), parallel)


def test_batch_one_stays_serial(two_threads):
    p = parameters("lstm", 6, 1, 3, 7, seed=1)
    serial = run_lstm(p, False)
    assert_same(run_lstm(p, True), serial)
    p = parameters("elman", 6, 1, 3, 7, seed=1)
    assert_same(run_elman(p, True), run_elman(p, False))
    assert two_threads == []


def test_float64_stays_serial(two_threads):
    """The NumPy path (float64, or no numba) is not parallel: ~10 ufunc calls per step, each
    a GIL handoff between the threads."""
    p = parameters("lstm", 6, 4, 3, 7, dtype=np.float64, seed=2)
    serial = run_lstm(p, False)
    assert_same(run_lstm(p, True), serial)
    assert two_threads == []


def test_one_thread_stays_serial(two_threads):
    threads.set_num_threads(1)
    p = parameters("lstm", 6, 4, 3, 7, seed=3)
    run_lstm(p, True)
    assert fast_recurrent.row_ranges("lstm", 32, 128, 100) is None
    assert two_threads == []


def test_inside_a_parallel_section_runs_serially(two_threads):
    """A sequence run from inside another parallel section (run_parallel returns None) falls
    back to the serial loops and gives the same results."""
    p = parameters("lstm", 7, 5, 3, 9, seed=4)
    serial = run_lstm(p, False)
    nested = threads.run_parallel([lambda: run_lstm(p, True), lambda: None])[0]
    # not only close: the same serial code; ∂E/∂x as one product (the pipelined backward's, here
    # run serially) where the serial backward computes it step by step
    assert_close({"grad_x": nested.pop("grad_x")}, {"grad_x": serial.pop("grad_x")})
    assert_same(nested, serial)


def test_row_ranges_and_size_rule(two_threads):
    row_ranges = fast_recurrent.row_ranges
    with dl.tuning(parallel=True):
        assert row_ranges("lstm", 7, 13, 9) == [(0, 3), (3, 7)]
        assert row_ranges("lstm", 1, 13, 9) is None
    assert row_ranges("lstm", 32, 128, 100) == [(0, 16), (16, 32)]  # the benchmark
    assert row_ranges("lstm", 8, 256, 1000) == [(0, 4), (4, 8)]
    from deltalab.fast import recurrent_kernels

    if recurrent_kernels.sgemm_function() is not None:  # the compiled loops
        assert fast_recurrent.step_kernels(np.float32, 10**9) is not None
        assert row_ranges("lstm", 8, 128, 100) == [(0, 4), (4, 8)]
        assert row_ranges("lstm", 32, 128, 16) is None  # too few steps
        assert row_ranges("lstm", 32, 32, 100) is None
        assert row_ranges("lstm", 3, 256, 100) is None  # 1-row ranges: Python loops
        assert row_ranges("elman", 32, 128, 100) == [(0, 16), (16, 32)]  # compiled loops: as the LSTM
        assert row_ranges("elman", 32, 32, 100) is None
    with dl.tuning(loop_kernels=False):
        assert row_ranges("elman", 64, 256, 100) is None  # with Python loops Elman never paid
        assert row_ranges("lstm", 8, 128, 100) is None  # a small-matrix product already
        assert row_ranges("lstm", 32, 128, 40) is None  # too few steps
        assert row_ranges("lstm", 32, 128, 100) == [(0, 16), (16, 32)]
    with dl.tuning(parallel=False):
        assert row_ranges("lstm", 32, 128, 100) is None


@pytest.mark.parametrize("rows, inner, width, blocks", [
    (16, 128, 512, 2),  # the benchmark's forward step product per range: 2 blocks of 0.52M
    (16, 512, 128, 2),  # its backward one
    (4, 128, 512, 1),  # already a small-matrix product
    (16, 256, 1024, 5),  # more blocks than the serial product's 4
    (16, 1024, 256, 5),
])
def test_step_product_for_rows_uses_the_fewest_small_blocks(rows, inner, width, blocks):
    rng = np.random.default_rng(0)
    right = rng.standard_normal((inner, width)).astype(np.float32)
    out = np.zeros((2 * rows + 1, width), np.float32)
    with dl.tuning(split_step_products=None, blas_kernels="SkylakeX"):
        product = fast_recurrent.StepProduct(right, out, 4, blas_threads=2)
        part = product.for_rows(rows, 2 * rows, blas_threads=1)
    assert len(part.pieces) == blocks and part.split is (blocks > 1)
    left = rng.standard_normal((rows, inner)).astype(np.float32)
    part(left)
    np.testing.assert_allclose(out[rows:2 * rows], left @ right, rtol=1e-4, atol=1e-3)
    assert not out[:rows].any() and not out[2 * rows:].any()


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("batch", [4, 7, 16])
@pytest.mark.parametrize("upstream", [("h", "c"), ("h",), ("c",)])
def test_compiled_loops_give_the_python_loops_bits(two_threads, monkeypatch, parallel, batch, upstream):
    """Each range's loop over time (the whole batch when serial) runs in one compiled call
    (lstm_forward_loop / lstm_backward_loop, calling NumPy's sgemm): the same sgemm calls as
    the Python loop's matmuls, so the same bits, with split step products too."""
    from deltalab.fast import recurrent_kernels

    if recurrent_kernels.sgemm_function() is None:
        pytest.skip("NumPy's OpenBLAS sgemm not found")
    p = parameters("lstm", 8, batch, 5, 13, seed=batch + 1)
    for split in (False, True):
        # several blocks when split
        with dl.tuning(split_step_products=split, small_matrix_max=100 if split else 1_000_000):
            with dl.tuning(loop_kernels=False):
                python_loops = run_lstm(p, parallel, upstream)
            with dl.tuning(loop_kernels=True):
                assert_same(run_lstm(p, parallel, upstream), python_loops)
    with dl.tuning(split_step_products=True, small_matrix_max=100):
        assert fast_recurrent.StepProduct(np.ones((13, 52), np.float32), np.ones((4, 52), np.float32), 4).split


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("batch, bias", [(4, True), (7, False), (16, True)])
def test_compiled_elman_loops_give_the_python_loops_bits(two_threads, parallel, batch, bias):
    """The Elman tanh step loops as one compiled call per range (elman_tanh_forward_loop /
    elman_tanh_backward_loop, NumPy's sgemm from compiled code): the Python loop's matmul
    makes the same sgemm calls, so outputs, deltas and every gradient have the same bits."""
    from deltalab.fast import recurrent_kernels

    if recurrent_kernels.sgemm_function() is None:
        pytest.skip("NumPy's OpenBLAS sgemm not found")
    p = parameters("elman", 9, batch, 5, 13, bias=bias, seed=batch + 3)
    with dl.tuning(loop_kernels=False):
        python_loops = run_elman(p, parallel)
    with dl.tuning(loop_kernels=True):
        assert_same(run_elman(p, parallel), python_loops)


# ------------------------------------------------------- backward loop and products overlapped
@pytest.mark.parametrize("kind", ["lstm", "elman"])
@pytest.mark.parametrize("batch, steps", [(16, 40), (7, 80), (2, 9)])  # 3, 3 and 1 chunks of steps
def test_pipelined_backward_matches_serial(two_threads, kind, batch, steps):
    """At two threads the backward's step loop runs over all rows while a worker computes each
    finished chunk's products (summed in chunk order: close to the serial whole products and
    the same bits run to run; inside another section the same chunks run one after the other)."""
    p = parameters(kind, steps, batch, 5, 13, seed=batch + steps)
    run = run_lstm if kind == "lstm" else run_elman
    serial = run(p, False)
    assert two_threads == []
    with dl.tuning(parallel=True):
        assert fast_recurrent.backward_pipelines(kind, batch, 13, steps)
    pipelined = run(p, True)
    assert two_threads and all(n == 2 for n in two_threads)
    assert_close(pipelined, serial)
    assert_same(run(p, True), pipelined)
    nested = threads.run_parallel([lambda: run(p, True), lambda: None])[0]
    assert_close(nested, serial)


def test_pipelined_backward_with_inputs_that_need_no_gradient(two_threads):
    """x without a gradient (no dx product), no bias: the products that are needed only."""
    p = parameters("lstm", 30, 16, 5, 13, bias=False, seed=9)
    results = []
    for parallel in (False, True):
        with dl.tuning(parallel=parallel):
            x = dl.tensor(p["x"])
            leaves = [dl.tensor(p[k], requires_grad=True) for k in ("h0", "c0", "weight_ih", "weight_hh")]
            hs, cs = recurrent.lstm_sequence(x, *leaves)
            (hs * dl.tensor(p["grad_h"])).sum().backward()
            assert x.grad is None
            results.append({f"grad_{k}": t.grad.data for k, t in zip(("h0", "c0", "ih", "hh"), leaves)})
    assert_close(results[1], results[0])


def test_pipelined_backward_rule(two_threads):
    pipelines = fast_recurrent.backward_pipelines
    from deltalab.fast import recurrent_kernels

    if recurrent_kernels.sgemm_function() is not None:
        assert pipelines("lstm", 32, 128, 100)  # the benchmark's rows
        assert pipelines("elman", 32, 128, 100)
        assert not pipelines("elman", 32, 128, 10)  # too few steps
        assert not pipelines("elman", 32, 32, 100)
        assert not pipelines("lstm", 32, 128, 16)
    assert not pipelines("lstm", 1, 128, 100)  # one row
    with dl.tuning(parallel=False):
        assert not pipelines("lstm", 32, 128, 100)
    threads.set_num_threads(1)
    assert not pipelines("lstm", 32, 128, 100)
    with dl.tuning(parallel=True):
        assert not pipelines("elman", 32, 128, 100)  # needs exactly two threads


def test_pipelined_backward_passes_an_error_on(two_threads):
    """An error in the step loop reaches the caller; the worker does not wait forever."""
    x = np.ones((6, 4, 3), np.float32)
    h = np.ones((7, 4, 5), np.float32)
    products = fast_recurrent.SequenceProducts(x, h, np.ones((5, 3), np.float32), True, True, True, True, True)

    def failing(t_lo, t_hi):
        if t_lo == 0:
            raise RuntimeError("step loop failed")

    with pytest.raises(RuntimeError, match="step loop failed"):
        fast_recurrent.backward_pipelined(failing, 6, np.ones((6, 4, 5), np.float32), products)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
@pytest.mark.parametrize("batch, steps", [(1, 5), (3, 1), (16, 37), (5, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_layers_match_torch(two_threads, kind, batch, steps, dtype):
    """nn.LSTM / nn.RNN with the parallel paths forced on (per-range projections, pipelined
    backward over several chunks; float64 and one row stay on the serial NumPy path) against
    torch.nn.LSTM / nn.RNN: outputs, final states and every gradient."""
    torch = pytest.importorskip("torch")
    features, hidden = 5, 13
    rng = np.random.default_rng(batch * 100 + steps)
    x = rng.standard_normal((steps, batch, features)).astype(dtype)
    upstream = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    ours = (dl.nn.LSTM if kind == "lstm" else dl.nn.RNN)(features, hidden)
    theirs = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(features, hidden).to(torch.float64)
    if dtype == np.float32:
        ours, theirs = ours.float(), theirs.float()
    else:
        ours = ours.double()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            getattr(ours, name).data[...] = p.detach().numpy()
    with dl.tuning(parallel=True):
        xt = dl.tensor(x, requires_grad=True)
        out, _ = ours(xt)
        (out * dl.tensor(upstream)).sum().backward()
    xr = torch.tensor(x, requires_grad=True)
    ref, _ = theirs(xr)
    (ref * torch.from_numpy(upstream)).sum().backward()
    rtol = 2e-5 if dtype == np.float32 else 1e-10
    pairs = [(out.data, ref.detach().numpy()), (xt.grad.data, xr.grad.numpy())]
    pairs += [(getattr(ours, name).grad.data, p.grad.numpy()) for name, p in theirs.named_parameters()]
    for got, expected in pairs:
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    if dtype == np.float32 and batch > 1 and steps > 1:
        assert two_threads  # the parallel sections ran


@pytest.mark.parametrize("batch", [3, 7])
def test_three_row_ranges_with_the_input_gradient_per_step(two_threads, batch):
    """Above two threads the LSTM backward runs batch-row ranges (no pipeline), each range
    also computing its rows' ∂E/∂x(t) step by step: close to serial, deterministic."""
    p = parameters("lstm", 6, batch, 5, 13, seed=batch + 20)
    serial = run_lstm(p, False)
    with dl.tuning(threads=3):
        assert not fast_recurrent.backward_pipelines("lstm", batch, 13, 6)
        parallel = run_lstm(p, True)
        assert_same(run_lstm(p, True), parallel)
    assert two_threads and max(two_threads) == 3
    assert_close(parallel, serial)

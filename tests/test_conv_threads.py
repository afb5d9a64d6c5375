"""conv2d's parallel sections (deltalab.fast.threads) give the 1-thread results, deterministically.

The parallel path is forced on (``dl.tuning(parallel=True, threads=2)``) whatever the
machine, and compared with the serial path on the same inputs: outputs and every gradient,
float64 to 1e-12 and float32 to 1e-5 (dW and db are summed in another order), and two
parallel runs must agree bit for bit.
"""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.fast import threads


@pytest.fixture
def two_threads(parallel_sections):
    with dl.tuning(threads=2):
        yield parallel_sections


CASES = [
    # n, c, (h, w), o, kernel, stride, padding, bias
    (4, 1, (28, 28), 3, (5, 5), 1, 2, True),        # conv a shape: per-image matmuls, wide rows
    (5, 4, (14, 14), 6, (3, 3), 1, 1, True),        # conv b shape: row bands, odd batch
    (3, 3, (32, 32), 4, (3, 3), 1, 1, False),       # conv c shape, no bias
    (4, 3, (11, 9), 5, (3, 3), 2, 1, True),         # stride 2: plain rows, odd sizes
    (3, 2, (13, 17), 3, (3, 2), (2, 1), (0, 1), False),  # strided height, wide rows
    (2, 2, (33, 30), 3, (3, 3), (2, 1), (1, 1), True),   # per-image matmuls, strided height
    (7, 2, (6, 7), 2, (5, 5), 1, 0, True),          # few columns: plain rows at stride 1
]


def run(x, w, b, stride, padding, parallel, needs_x=True):
    with dl.tuning(parallel=parallel):
        xt = dl.tensor(x, requires_grad=needs_x)
        wt = dl.tensor(w, requires_grad=True)
        bt = None if b is None else dl.tensor(b, requires_grad=True)
        y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
        g = np.random.default_rng(7).standard_normal(y.shape).astype(x.dtype)
        y.backward(g)
        grads = [t.grad.data for t in (xt, wt, bt) if t is not None and t.requires_grad]
        return [y.data] + grads


def make(case, dtype, seed=0):
    n, c, hw, o, kernel, stride, padding, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((o, c) + kernel).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if bias else None
    return x, w, b, stride, padding


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("case", CASES)
def test_parallel_matches_serial_and_is_deterministic(two_threads, case, dtype, rtol):
    x, w, b, stride, padding = make(case, dtype)
    serial = run(x, w, b, stride, padding, parallel=False)
    assert not two_threads
    first = run(x, w, b, stride, padding, parallel=True)
    assert two_threads == [2, 2]  # forward and backward each ran one section
    second = run(x, w, b, stride, padding, parallel=True)
    assert len(first) == len(serial) == len(second)
    for p, s, again in zip(first, serial, second):
        assert p.dtype == s.dtype == np.dtype(dtype)
        assert p.shape == s.shape
        scale = float(np.max(np.abs(s), initial=0.0))
        np.testing.assert_allclose(p, s, rtol=rtol, atol=rtol * scale)
        np.testing.assert_array_equal(p, again)  # bit-identical


def test_more_threads_than_images_and_weight_grad_only(two_threads):
    x, w, b, stride, padding = make(CASES[1], np.float64)
    x = x[:2]  # 2 images, 3 threads: 2 ranges
    with dl.tuning(threads=3):
        serial = run(x, w, b, stride, padding, parallel=False, needs_x=False)
        parallel = run(x, w, b, stride, padding, parallel=True, needs_x=False)
    assert two_threads == [2, 2]
    for p, s in zip(parallel, serial):
        np.testing.assert_allclose(p, s, rtol=1e-12, atol=1e-12 * np.max(np.abs(s)))


def test_busy_section_falls_back_to_serial(two_threads):
    x, w, b, stride, padding = make(CASES[0], np.float64)
    serial = run(x, w, b, stride, padding, parallel=False)
    # run from inside another section (task 0 runs on this thread)
    nested = threads.run_parallel([lambda: run(x, w, b, stride, padding, parallel=True), lambda: None])[0]
    assert two_threads == [2, 2, 2]  # the outer section; forward and backward asked, refused, ran serially
    for p, s in zip(nested, serial):
        np.testing.assert_array_equal(p, s)


def test_errors_in_workers_reach_the_caller(two_threads):
    def boom():
        raise ValueError("worker failed")

    with pytest.raises(ValueError, match="worker failed"):
        threads.run_parallel([lambda: 1, boom])
    assert threads.run_parallel([lambda: 1, lambda: 2]) == [1, 2]  # pool still usable


def test_size_rule_keeps_small_convolutions_serial(two_threads):
    x, w, b, stride, padding = make(CASES[3], np.float32)
    run(x, w, b, stride, padding, parallel=None)
    assert not two_threads


def test_set_num_threads_round_trip():
    before = threads.get_num_threads()
    with dl.tuning():  # restores the thread count on exit
        dl.set_num_threads(1)
        assert dl.get_num_threads() == 1
        assert threads.parallel_threads() == 1
        for bad, words in ((0, "at least 1 thread"), (1.5, "whole number"), ("2", "whole number")):
            with pytest.raises(dl.ConfigurationError, match=words):
                dl.set_num_threads(bad)
        assert dl.get_num_threads() == 1
    assert threads.get_num_threads() == before


def test_tuning_restores_every_setting_and_refuses_unknown_ones():
    before = dl.fast.current()
    with dl.tuning(parallel=False, threads=3) as inside:
        assert inside.parallel is False and dl.get_num_threads() == 3 and threads.parallel_threads() == 3
        with dl.tuning(parallel=True):
            assert dl.fast.current().parallel is True and dl.fast.current().threads == 3
        assert dl.fast.current() is inside
    assert dl.fast.current() == before
    with pytest.raises(dl.ConfigurationError, match="no setting 'paralel'"):
        with dl.tuning(paralel=False):
            pass
    with pytest.raises(dl.ConfigurationError, match="threads must be a whole number"):
        with dl.tuning(threads=0):
            pass


def test_without_threadpoolctl_convolutions_stay_serial(monkeypatch, parallel_sections):
    """Without threadpoolctl deltalab cannot hold BLAS at one thread per part, so it does not
    split work unless set_num_threads was called; the results are the same either way."""
    # the thread module's own detection state, as threadpoolctl's absence leaves it (the one
    # place a test sets it: it simulates an uninstalled library)
    monkeypatch.setattr(threads, "_blas", [])  # what blas_libraries() finds without threadpoolctl
    monkeypatch.setattr(threads, "_num_threads", 2)
    monkeypatch.setattr(threads, "_explicit", False)
    assert threads.parallel_threads() == 1
    rng = np.random.default_rng(7)
    x = dl.tensor(rng.standard_normal((8, 3, 12, 12)), requires_grad=True)
    w = dl.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    with dl.tuning(parallel=True):
        F.conv2d(x, w, padding=1).sum().backward()
    assert parallel_sections == []
    monkeypatch.setattr(threads, "_explicit", True)  # set_num_threads(2) was called
    assert threads.parallel_threads() == 2


def blas_threads():
    return threads.blas_libraries()[0].get_num_threads()


@pytest.mark.skipif(not threads.blas_libraries(), reason="needs threadpoolctl and NumPy's OpenBLAS")
def test_small_products_run_on_one_blas_thread_and_restore_the_count():
    """threads.product: below Tuning.blas_parallel_min_product BLAS runs on one thread (a
    2-thread call leaves a spinning thread behind); large products and busy sections keep it;
    products OpenBLAS runs on one thread by itself change nothing (no library lookup)."""
    small, limit = threads.BLAS_SINGLE_THREAD_BELOW, 20_000
    with dl.tuning(blas_parallel_min_product=limit):
        dl.set_num_threads(2)
        with threads.product(limit - 1):
            assert blas_threads() == 1
        assert blas_threads() == 2
        with threads.product(limit):
            assert blas_threads() == 2
        with threads.product(small - 1):  # OpenBLAS's own single-thread range: left alone
            assert blas_threads() == 2
        assert threads.run_parallel([lambda: threads.product(small) is not None, lambda: blas_threads()]) == [True, 1]
        with threads.product(small):  # nested: the outer one holds the section, the inner runs as is
            with threads.product(small):
                assert blas_threads() == 1
            assert blas_threads() == 1
        assert blas_threads() == 2
        rng = np.random.default_rng(3)
        x, w = rng.standard_normal((50, 70)), rng.standard_normal((40, 70))
        xt, wt = dl.tensor(x, requires_grad=True), dl.tensor(w, requires_grad=True)
        y = F.linear(xt, wt)
        y.backward(np.ones((50, 40)))
        np.testing.assert_allclose(y.data, x @ w.T, rtol=1e-13)
        np.testing.assert_allclose(wt.grad.data, np.ones((50, 40)).T @ x, rtol=1e-13)
        assert blas_threads() == 2
    with dl.tuning(blas_parallel_min_product=small + 1):
        assert threads.product(small) is not None


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_in_parallel_sections_gives_the_serial_bits(two_threads, kind, kernel, stride, padding):
    """Pooling works image by image, so batch ranges on two threads change no bit (ties, an
    inf upstream gradient and overlapping windows included)."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((5, 3, 9, 8)), 0)  # ReLU-like: ties at 0
    g_shape = F.max_pool2d(dl.tensor(x), kernel, stride, padding).shape
    g = rng.standard_normal(g_shape)
    g[1, 2, 0, 0] = np.inf
    results = {}
    for parallel in (False, True):
        for dtype in (np.float32, np.float64):
            with dl.tuning(parallel=parallel):
                xt = dl.tensor(x.astype(dtype), requires_grad=True)
                pool = F.max_pool2d if kind == "max" else F.avg_pool2d
                y = pool(xt, kernel, stride, padding)
                y.backward(g.astype(dtype))
                results[parallel, dtype] = (y.data, xt.grad.data)
    assert len(two_threads) == 4  # forward and backward of both dtypes
    for dtype in (np.float32, np.float64):
        for serial, parallel in zip(results[False, dtype], results[True, dtype]):
            np.testing.assert_array_equal(serial, parallel)


def test_backward_under_another_split_than_the_forward_rebuilds_its_columns(two_threads):
    """The forward keeps its column matrices per image range for the weight gradient; a backward
    that runs other ranges (here: serially) rebuilds them, and the gradients stay the same."""
    x, w, b, stride, padding = make(CASES[1], np.float64)
    want = run(x, w, b, stride, padding, parallel=False)
    for forward_parallel, backward_parallel in ((True, False), (False, True), (True, True)):
        xt, wt, bt = (dl.tensor(a, requires_grad=True) for a in (x, w, b))
        with dl.tuning(parallel=forward_parallel):
            y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
        g = np.random.default_rng(7).standard_normal(y.shape)
        with dl.tuning(parallel=backward_parallel):
            y.backward(g, retain_graph=True)
            y.backward(g)  # the kept columns serve a second backward too
        for got, expected in zip([y.data, xt.grad.data / 2, wt.grad.data / 2, bt.grad.data / 2], want):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

"""The compiled float32 2×2 / stride-2 max pooling (deltalab.fast.pooling) and ReLU
(deltalab.fast.activation_kernels) against the NumPy paths and torch: values and gradients bit
for bit, ties, NaN, ±inf and ±0 in the input, non-finite upstream gradients, image ranges over
two threads, and when they are (not) taken."""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.fast import pooling as fast_pooling

torch = pytest.importorskip("torch")
pytest.importorskip("numba")

COMPILED = dict(numba=True, kernel_min_work=0, kernel_warmup_calls=0)


def run(x, g, **tuning):
    with dl.tuning(**tuning):
        xt = dl.tensor(x, requires_grad=True)
        y = F.max_pool2d(xt, 2)
        y.backward(dl.tensor(g))
    return y.data, xt.grad.data


def torch_run(x, g):
    xt = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.max_pool2d(xt, 2)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy()


def specials(rng, shape):
    x = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)  # ReLU output: many ties at 0
    x[0, 0, 0, :4] = [np.nan, 1.0, np.nan, 2.0]  # two NaNs in one window: torch takes the last
    x[0, 0, 1, :4] = [3.0, np.nan, 5.0, 5.0]
    x[-1, -1, :2, :2] = -np.inf
    x[-1, 0, 2:4, 2:4] = [[np.inf, np.inf], [1.0, np.inf]]
    x[0, -1, 2:4, :2] = [[7.0, 7.0], [7.0, 7.0]]  # ties: the first (row-major) wins
    return x


@pytest.mark.parametrize("shape", [(3, 4, 8, 6), (2, 2, 4, 4), (5, 3, 4, 10)])
def test_compiled_max_pool_matches_torch_and_numpy_bits(shape):
    rng = np.random.default_rng(sum(shape))
    x = specials(rng, shape)
    g = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    g[0, 1, 0, 0] = np.inf
    y, dx = run(x, g, **COMPILED)
    ty, tdx = torch_run(x, g)
    ny, ndx = run(x, g, numba=False)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_array_equal(y, ty)  # NaN where torch has NaN
    np.testing.assert_array_equal(dx, tdx)
    np.testing.assert_array_equal(y, ny)
    np.testing.assert_array_equal(dx, ndx)


def test_compiled_max_pool_split_over_two_threads_gives_the_same_bits():
    rng = np.random.default_rng(4)
    x = specials(rng, (7, 3, 12, 12))
    g = rng.standard_normal((7, 3, 6, 6)).astype(np.float32)
    serial = run(x, g, **COMPILED, threads=1)
    split = run(x, g, **COMPILED, threads=2, parallel=True, elementwise_parallel_min_size=0)
    for a, b in zip(serial, split):
        np.testing.assert_array_equal(a, b)


def test_compiled_max_pool_reads_a_non_contiguous_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 10, 8)).astype(np.float32)[:, ::2]
    g = rng.standard_normal((4, 3, 5, 4)).astype(np.float32)
    for a, b in zip(run(x, g, **COMPILED), torch_run(np.ascontiguousarray(x), g)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype, kernel, stride, padding, hw, taken", [
    (np.float32, (2, 2), (2, 2), (0, 0), (8, 8), True),
    (np.float64, (2, 2), (2, 2), (0, 0), (8, 8), False),  # float64 keeps the NumPy path's bits
    (np.float32, (3, 3), (2, 2), (0, 0), (8, 8), False),
    (np.float32, (2, 2), (2, 2), (1, 1), (8, 8), False),
    (np.float32, (2, 2), (2, 2), (0, 0), (9, 8), False),  # a cropped row
])
def test_compiled_max_pool_only_for_float32_2x2_tiles(dtype, kernel, stride, padding, hw, taken):
    x = np.zeros((2, 3) + hw, dtype)
    with dl.tuning(**COMPILED):
        assert (fast_pooling.kernels(x, kernel, stride, padding) is not None) == taken
    with dl.tuning(numba=False, kernel_min_work=0, kernel_warmup_calls=0):
        assert fast_pooling.kernels(x, kernel, stride, padding) is None


def relu_run(x, g, **tuning):
    with dl.tuning(**tuning):
        xt = dl.tensor(x, requires_grad=True)
        y = xt.relu()
        y.backward(dl.tensor(g))
    return y.data, xt.grad.data


def test_compiled_relu_matches_the_numpy_path_bit_for_bit_and_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5, 7)).astype(np.float32)
    x.flat[:7] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-45]
    g = rng.standard_normal(x.shape).astype(np.float32)
    g.flat[:3] = [np.inf, np.nan, 2.0]  # masked out (NaN input passes, -0.0 / +0.0 do not)
    g.flat[7:10] = [np.nan, np.inf, -np.inf]
    compiled, numpy_path = relu_run(x, g, **COMPILED), relu_run(x, g, numba=False)
    xt = torch.tensor(x, requires_grad=True)
    y = torch.relu(xt)
    y.backward(torch.tensor(g))
    for ours, reference, theirs in zip(compiled, numpy_path, (y.detach().numpy(), xt.grad.numpy())):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours.view(np.int32), reference.view(np.int32))  # +0.0, not -0.0
        np.testing.assert_array_equal(ours, theirs)


def test_compiled_relu_takes_a_non_contiguous_gradient_and_leaves_other_inputs_to_numpy():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    g = rng.standard_normal((6, 4)).astype(np.float32).T  # not C-contiguous
    for a, b in zip(relu_run(x, g, **COMPILED), relu_run(x, g, numba=False)):
        np.testing.assert_array_equal(a, b)
    strided = rng.standard_normal((4, 12)).astype(np.float32)[:, ::2]  # NumPy path: same values
    for a, b in zip(relu_run(strided, g, **COMPILED), relu_run(strided, g, numba=False)):
        np.testing.assert_array_equal(a, b)
    doubles = rng.standard_normal((4, 6))
    for a, b in zip(relu_run(doubles, g.astype(np.float64), **COMPILED), relu_run(doubles, g.astype(np.float64), numba=False)):
        np.testing.assert_array_equal(a, b)


def test_a_one_off_large_call_does_not_import_numba_but_repeated_ones_do():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, deltalab as dl, deltalab.functional as F\n"
        "x = dl.tensor(np.ones((4, 16, 32, 32), np.float32))\n"
        "F.max_pool2d(x.relu(), 2)\n"
        "print('numba' in sys.modules)\n"
        "for _ in range(dl.fast.Tuning().kernel_warmup_calls): F.max_pool2d(x.relu(), 2)\n"
        "print('numba' in sys.modules)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "DELTALAB_NUMBA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["False", "True"]

"""The float32 training-mode batch norm (deltalab.fast.normalization: the NumPy fast path and the
compiled kernels) against the reference path (float64, the same inputs: ops.normalization.BatchNorm)
and torch, serial and in parallel sections, which must also agree with each other and be
deterministic."""
import numpy as np
import pytest
import torch

import deltalab as dl
import deltalab.functional as F

SHAPES = [(6, 3, 5, 4), (5, 4, 7), (9, 2), (3, 2, 1, 1)]


# the NumPy fast path (numba off) and the compiled kernels (from the first element on)
PATHS = {"numpy": {"numba": False}, "compiled": {"kernel_min_work": 1}}


def run(x, w, b, g, dtype, parallel=None, module=True, path="numpy"):
    """Output, dx, dγ, dβ and the running statistics of one training-mode call."""
    with dl.tuning(parallel=parallel, threads=2, **PATHS[path]):
        xt = dl.tensor(x.astype(dtype), requires_grad=True)
        wt = None if w is None else dl.tensor(w.astype(dtype), requires_grad=True)
        bt = None if b is None else dl.tensor(b.astype(dtype), requires_grad=True)
        mean, var = dl.tensor(np.zeros(x.shape[1], dtype)), dl.tensor(np.ones(x.shape[1], dtype))
        y = F.batch_norm(xt, mean, var, wt, bt, training=True, momentum=0.3)
        y.backward(g.astype(dtype))
        grads = [t.grad.data for t in (xt, wt, bt) if t is not None]
        return [y.data] + grads + [mean.data, var.data]


def make(shape, seed, affine=True, offset=0.5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + offset
    c = shape[1]
    w = rng.uniform(0.5, 1.5, c) if affine else None
    b = rng.standard_normal(c) if affine else None
    return x, w, b, rng.standard_normal(shape)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_fast_path_matches_the_float64_reference_and_torch(shape, affine, path, parallel_sections):
    x, w, b, g = make(shape, 3, affine)
    reference = run(x, w, b, g, np.float64, path=path)  # float64 takes the reference path (BatchNorm)
    for parallel in (False, True):
        fast = run(x, w, b, g, np.float32, parallel, path=path)
        for got, want in zip(fast, reference):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    assert parallel_sections, "the parallel run used parallel sections"
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    tw = None if w is None else torch.tensor(w, dtype=torch.float32, requires_grad=True)
    tb = None if b is None else torch.tensor(b, dtype=torch.float32, requires_grad=True)
    rm, rv = torch.zeros(shape[1]), torch.ones(shape[1])
    ty = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, training=True, momentum=0.3)
    ty.backward(torch.tensor(g, dtype=torch.float32))
    theirs = [ty.detach()] + [t.grad for t in (tx, tw, tb) if t is not None] + [rm, rv]
    for got, want in zip(run(x, w, b, g, np.float32, path=path), theirs):
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


@pytest.mark.parametrize("path", sorted(PATHS))
def test_parallel_runs_are_deterministic_and_large_means_stay_accurate(path):
    """A mean 1000× the spread: the centred form keeps the variance (x² − μ² would lose it)."""
    x, w, b, g = make((8, 3, 6, 6), 5, offset=1000.0)
    first, second = run(x, w, b, g, np.float32, True, path=path), run(x, w, b, g, np.float32, True, path=path)
    for a, c in zip(first, second):
        np.testing.assert_array_equal(a, c)
    reference = run(x.astype(np.float32).astype(np.float64), w, b, g, np.float64)
    for got, want in zip(first, reference):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_module_in_training_and_eval_with_float32():
    """nn.BatchNorm2d: training uses the fast path, eval the running statistics (reference)."""
    x, w, b, g = make((4, 3, 5, 5), 9)
    bn = dl.nn.BatchNorm2d(3).float()
    tb = torch.nn.BatchNorm2d(3)
    xs = x.astype(np.float32)
    for _ in range(2):
        bn.train(), tb.train()
        y, ty = bn(dl.tensor(xs)), tb(torch.tensor(xs))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    bn.eval(), tb.eval()
    np.testing.assert_allclose(bn(dl.tensor(xs)).data, tb(torch.tensor(xs)).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, tb.running_var.numpy(), rtol=1e-5)


def test_compiled_kernels_split_over_channels_give_the_serial_bits_and_are_used_for_large_inputs(parallel_sections):
    """The bench's size takes the kernels by default (kernel_min_work); a channel split changes no bit."""
    x, w, b, g = make((16, 5, 30, 30), 11)
    serial = run(x, w, b, g, np.float32, False, path="compiled")
    split = run(x, w, b, g, np.float32, True, path="compiled")
    for a, c in zip(serial, split):
        np.testing.assert_array_equal(a, c)
    assert parallel_sections == [2, 2]  # forward and backward, one channel range per thread
    from deltalab.fast import normalization

    assert normalization.kernels(x.astype(np.float32)) is not None  # 72,000 elements: compiled
    assert normalization.kernels(x[:1, :1].astype(np.float32)) is None  # 900: NumPy


def test_compiled_backward_refuses_an_input_changed_in_place():
    """The kernels' backward reads the saved input: an in-place change after the forward is an
    error, as in torch (whose batch norm saves its input too)."""
    x, w, b, g = make((4, 3, 5, 5), 2)
    with dl.tuning(kernel_min_work=1):
        xt = dl.tensor(x.astype(np.float32), requires_grad=True)
        source = xt * 1
        y = dl.nn.BatchNorm2d(3).float()(source)
        with dl.no_grad():
            source.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward(g.astype(np.float32))
    ts = torch.tensor(x, dtype=torch.float32, requires_grad=True) * 1
    ty = torch.nn.BatchNorm2d(3)(ts)
    with torch.no_grad():
        ts.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward(torch.tensor(g, dtype=torch.float32))

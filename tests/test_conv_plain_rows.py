"""conv2d's float32 per-image path on plain rows (exactly Wo columns per output row) and its
compiled column scatter (deltalab.fast.conv_kernels), against the float64 window reference,
torch, the NumPy scatter and the parallel split.

The per-image layout is taken for large output images (Ho·(W + pw) ≥ 512); float32 calls then
use plain rows (the product's output is the NCHW output itself), float64 keeps the wide rows.
"""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.fast import conv as fast_conv
from deltalab.ops.conv import conv2d_windows

torch = pytest.importorskip("torch")

# n, c, (h, w), o, kernel, stride, padding: every case is large enough for the per-image layout
CASES = [
    (1, 1, (20, 32), 2, (3, 3), 1, 0),        # batch 1, one channel, no padding
    (2, 2, (23, 25), 3, (3, 3), 1, 1),        # odd sizes
    (3, 3, (32, 32), 4, (3, 3), 1, 1),        # conv c's shape, fewer images
    (2, 4, (21, 27), 5, (3, 2), 1, (1, 0)),   # per-axis padding, non-square kernel
    (2, 3, (28, 28), 2, (5, 5), 1, 2),        # conv a's kernel
    (2, 2, (40, 33), 3, (3, 3), (2, 1), (1, 1)),  # strided height
    (2, 1, (20, 30), 2, (1, 1), 1, 0),        # 1x1 kernel
]


def _arrays(n, c, hw, o, kernel, stride, padding, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + hw).astype(np.float32)
    w = rng.standard_normal((o, c) + kernel).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    s = (stride, stride) if isinstance(stride, int) else stride
    p = (padding, padding) if isinstance(padding, int) else padding
    out = [(hw[d] + 2 * p[d] - kernel[d]) // s[d] + 1 for d in range(2)]
    g = rng.standard_normal((n, o) + tuple(out)).astype(np.float32)
    return x, w, b, g


def _run(conv, arrays, stride, padding, wanted=(True, True, True), dtype=np.float32, **tuning):
    x, w, b, g = arrays
    leaves = [dl.tensor(a.astype(dtype), requires_grad=want) for a, want in zip((x, w, b), wanted)]
    with dl.tuning(**tuning):
        y = conv(*leaves, stride=stride, padding=padding)
        y.backward(g.astype(dtype))
    return [y.data] + [t.grad.data if want else None for t, want in zip(leaves, wanted)]


def _torch(arrays, stride, padding):
    x, w, b, g = (torch.tensor(a.astype(np.float64)) for a in arrays)
    for t in (x, w, b):
        t.requires_grad_(True)
    y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
    y.backward(g)
    return [t.detach().numpy() for t in (y, x.grad, w.grad, b.grad)]


def _close(ours, theirs, rtol):
    scale = float(np.max(np.abs(theirs)))
    np.testing.assert_allclose(ours.astype(np.float64), theirs, rtol=rtol, atol=rtol * scale)


def test_float32_per_image_calls_use_plain_rows_and_float64_keeps_wide_rows():
    shape, kernel = (32, 3, 32, 32), (32, 3, 3, 3)
    plain = fast_conv.Geometry(shape, kernel, (1, 1), (1, 1), np.float32)
    wide = fast_conv.Geometry(shape, kernel, (1, 1), (1, 1), np.float64)
    assert plain.image_major and plain.wc == plain.wo == 32
    assert wide.image_major and wide.wc == 33
    assert plain.key != wide.key  # their padded buffers are laid out differently


@pytest.mark.parametrize("n, c, hw, o, kernel, stride, padding", CASES)
def test_plain_rows_match_the_reference_and_torch(n, c, hw, o, kernel, stride, padding):
    """float32 fast path (serial, compiled scatter) against the float64 window reference and
    torch in float64: output and every gradient to float32 accuracy."""
    arrays = _arrays(n, c, hw, o, kernel, stride, padding, seed=n * 10 + c)
    assert fast_conv.Geometry((n, c) + hw, (o, c) + kernel, _pair(stride), _pair(padding), np.float32).image_major
    ours = _run(F.conv2d, arrays, stride, padding, parallel=False, winograd=False, kernel_min_work=0)
    reference = _run(conv2d_windows, arrays, stride, padding, dtype=np.float64)
    for a, r, t in zip(ours, reference, _torch(arrays, stride, padding)):
        assert a.dtype == np.float32
        _close(a, r, 2e-5)
        _close(a, t, 2e-5)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


@pytest.mark.parametrize("n, c, hw, o, kernel, stride, padding", CASES)
def test_compiled_scatter_gives_the_numpy_scatter_bits(n, c, hw, o, kernel, stride, padding):
    """The compiled scatter adds the same products in the same order per pixel as the NumPy
    one (from a zero start): the same bits, for every geometry."""
    if fast_conv.conv_kernels() is None:
        pytest.skip("numba not installed")
    arrays = _arrays(n, c, hw, o, kernel, stride, padding, seed=3)
    compiled = _run(F.conv2d, arrays, stride, padding, parallel=False, numba=True, winograd=False, kernel_min_work=0)
    plain_numpy = _run(F.conv2d, arrays, stride, padding, parallel=False, numba=False, winograd=False)
    for a, b in zip(compiled, plain_numpy):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("wanted", [(True, False, False), (False, True, True), (True, True, False)])
def test_one_gradient_at_a_time(wanted):
    arrays = _arrays(2, 3, (25, 23), 4, (3, 3), 1, 1, seed=7)
    ours = _run(F.conv2d, arrays, 1, 1, wanted=wanted, parallel=False, winograd=False)
    everything = _run(F.conv2d, arrays, 1, 1, parallel=False, winograd=False)
    for a, b, want in zip(ours[1:], everything[1:], wanted):
        if want:
            np.testing.assert_array_equal(a, b)
        else:
            assert a is None


def test_parallel_split_is_deterministic_and_matches_serial():
    """Two threads, one image range each: outputs and dX are the serial bits (every image is
    computed alike); dW and db are summed over the ranges in range order (close to serial,
    and the same bits on every run)."""
    arrays = _arrays(5, 3, (32, 31), 6, (3, 3), 1, 1, seed=11)
    serial = _run(F.conv2d, arrays, 1, 1, parallel=False, winograd=False, kernel_min_work=0)
    first = _run(F.conv2d, arrays, 1, 1, parallel=True, threads=2, winograd=False, kernel_min_work=0)
    second = _run(F.conv2d, arrays, 1, 1, parallel=True, threads=2, winograd=False, kernel_min_work=0)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[0], serial[0])
    np.testing.assert_array_equal(first[1], serial[1])
    for a, s in zip(first[2:], serial[2:]):
        _close(a, s.astype(np.float64), 1e-5)


def test_padding_of_reused_buffers_stays_zero_between_geometries():
    """Two float32 calls whose padded buffers have the same size but different padding: the
    second must not read the first's pixels as padding."""
    a = _arrays(2, 2, (24, 30), 3, (3, 3), 1, (1, 0), seed=1)
    b = _arrays(2, 2, (24, 30), 3, (3, 3), 1, (0, 1), seed=2)
    for arrays, padding in ((a, (1, 0)), (b, (0, 1)), (a, (1, 0))):
        ours = _run(F.conv2d, arrays, 1, padding, parallel=False, winograd=False)
        for x, t in zip(ours, _torch(arrays, 1, padding)):
            _close(x, t, 2e-5)


def test_graphs_alive_at_once_keep_their_own_columns():
    """The float32 per-image forward keeps its columns for the weight gradient: two graphs
    built before either backward runs must each get their own input's gradient."""
    first, second = _arrays(2, 3, (24, 30), 4, (3, 3), 1, 1, seed=21), _arrays(2, 3, (24, 30), 4, (3, 3), 1, 1, seed=22)
    w = dl.tensor(first[1], requires_grad=True)
    b = dl.tensor(first[2], requires_grad=True)
    with dl.tuning(parallel=False, winograd=False):
        ys = [F.conv2d(dl.tensor(a[0]), w, b, stride=1, padding=1) for a in (first, second)]
        ys[1].backward(second[3])
        ys[0].backward(first[3])
    expected = [_torch((a[0], first[1], first[2], a[3]), 1, 1) for a in (first, second)]
    _close(w.grad.data, expected[0][2] + expected[1][2], 2e-5)
    _close(b.grad.data, expected[0][3] + expected[1][3], 2e-5)

"""conv2d, max_pool2d and avg_pool2d against PyTorch in float64: values and every gradient.

Covers the conv layouts (wide rows for stride 1 in width, plain rows otherwise; per-image
matmuls for large images, one matmul over row bands otherwise), per-dimension strides and paddings, the non-overlapping pooling fast path and the
general (overlapping, padded, cropped) one, ties (first maximum wins), reused work buffers and
float32 staying float32.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deltalab as dl
import deltalab.functional as F

torch = pytest.importorskip("torch")


def assert_close(ours, theirs, rtol=1e-10):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape
    scale = max(float(np.max(np.abs(theirs), initial=0.0)), 1e-300)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


def conv_twin(rng, n, c, hw, o, kernel, stride, padding, bias=True):
    x = rng.standard_normal((n, c) + hw)
    w = rng.standard_normal((o, c) + kernel)
    b = rng.standard_normal(o) if bias else None
    ours = [dl.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    y = F.conv2d(ours[0], ours[1], ours[2], stride=stride, padding=padding)
    ty = torch.nn.functional.conv2d(theirs[0], theirs[1], theirs[2], stride=stride, padding=padding)
    g = rng.standard_normal(ty.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(y.data, ty)
    for a, t in zip(ours, theirs):
        if a is not None:
            assert_close(a.grad.data, t.grad)


CONV_CASES = [
    # n, c, (h, w), o, kernel, stride, padding
    (2, 1, (28, 28), 3, (5, 5), 1, 2),      # conv a shape, wide rows
    (3, 4, (14, 14), 5, (3, 3), 1, 1),      # conv b shape, wide rows
    (2, 3, (7, 9), 4, (3, 2), (1, 1), (1, 0)),
    (3, 2, (8, 8), 5, (3, 3), (2, 3), (1, 2)),  # strided: plain rows
    (2, 3, (10, 11), 4, (3, 3), (2, 1), (0, 1)),  # strided height, wide rows
    (2, 2, (6, 6), 1, (5, 5), 1, 0),        # few columns: plain rows even at stride 1
    (1, 2, (5, 5), 2, (1, 1), 1, 0),        # 1x1 kernel
    (2, 2, (4, 5), 3, (6, 7), 1, (1, 1)),   # kernel equals the padded input
    (1, 3, (9, 7), 2, (2, 4), (3, 2), (0, 2)),
    (2, 2, (24, 24), 2, (3, 3), 1, 0),      # large images: per-image matmuls, no padding
    (2, 2, (33, 30), 3, (3, 3), (2, 1), (1, 1)),  # per-image matmuls, strided height
]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("n, c, hw, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_fast_path_matches_the_windows_reference(n, c, hw, o, kernel, stride, padding, parallel):
    """The fast path (deltalab.fast.conv: layouts, bands, per-image matmuls, and with two
    threads the batch split over parallel sections) against ``conv2d_windows``, the readable
    window-view reference: float64 to 1e-12 relative, outputs and every gradient."""
    from deltalab.ops.conv import conv2d_windows

    rng = np.random.default_rng(n * 100 + c * 10 + o)
    arrays = [rng.standard_normal((n, c) + hw), rng.standard_normal((o, c) + kernel), rng.standard_normal(o)]
    g = rng.standard_normal((n, o, dl.ops.output_size(hw[0], kernel[0], *_pair(stride, 0), *_pair(padding, 0)),
                             dl.ops.output_size(hw[1], kernel[1], *_pair(stride, 1), *_pair(padding, 1))))
    results = []
    for conv in (F.conv2d, conv2d_windows):
        leaves = [dl.tensor(a, requires_grad=True) for a in arrays]
        with dl.tuning(parallel=parallel, threads=2 if parallel else None):
            y = conv(leaves[0], leaves[1], leaves[2], stride=stride, padding=padding)
            y.backward(g)
        results.append([y.data] + [t.grad.data for t in leaves])
    for fast, reference in zip(*results):
        assert_close(fast, reference, rtol=1e-12)


def _pair(value, index):
    return ((value, value) if isinstance(value, int) else value)[index:index + 1]


@pytest.mark.parametrize("n, c, hw, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_matches_torch_in_float64(rng, n, c, hw, o, kernel, stride, padding):
    conv_twin(rng, n, c, hw, o, kernel, stride, padding)


@given(
    n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 3),
    h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
    sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
    bias=st.booleans(), seed=st.integers(0, 2**16),
)
def test_conv2d_sweep_matches_torch(n, c, o, h, w, kh, kw, sh, sw, ph, pw, bias, seed):
    if kh > h + 2 * ph or kw > w + 2 * pw:
        return
    conv_twin(np.random.default_rng(seed), n, c, (h, w), o, (kh, kw), (sh, sw), (ph, pw), bias)


def test_conv2d_gradient_of_only_the_input_or_only_the_weight(rng):
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, padding=1).backward(torch.ones(2, 4, 6, 6))
    xt = dl.tensor(x, requires_grad=True)
    F.conv2d(xt, dl.tensor(w), padding=1).sum().backward()
    assert_close(xt.grad.data, tx.grad)
    wt = dl.tensor(w, requires_grad=True)
    F.conv2d(dl.tensor(x), wt, padding=1).sum().backward()
    assert_close(wt.grad.data, tw.grad)


def test_conv2d_graphs_alive_at_once_keep_their_own_columns(rng):
    """Work buffers are reused between calls; two live graphs of the same shape must not share."""
    w = dl.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    xs = [rng.standard_normal((2, 2, 5, 5)) for _ in range(3)]
    ys = [F.conv2d(dl.tensor(x), w, padding=1) for x in xs]
    grads = []
    for y in ys:
        w.grad = None
        y.sum().backward()
        grads.append(w.grad.data.copy())
    tw = torch.tensor(w.data, requires_grad=True)
    for x, g in zip(xs, grads):
        tw.grad = None
        torch.nn.functional.conv2d(torch.tensor(x), tw, padding=1).sum().backward()
        assert_close(g, tw.grad)


def test_conv2d_backward_twice_accumulates_like_torch(rng):
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    wt = dl.tensor(w, requires_grad=True)
    y = F.conv2d(dl.tensor(x), wt, padding=1)
    F.conv2d(dl.tensor(x + 1), wt, padding=1)  # another call of the same shape in between
    y.sum().backward()
    y.sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(torch.tensor(x), tw, padding=1)
    ty.sum().backward(retain_graph=True)
    ty.sum().backward()
    assert_close(wt.grad.data, tw.grad)


def test_conv2d_float32_stays_float32_with_gradients(rng):
    x = dl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = dl.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = dl.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    y.backward(np.ones(y.shape, np.float32))
    assert {y.dtype, x.grad.dtype, w.grad.dtype, b.grad.dtype} == {np.dtype(np.float32)}


def test_conv2d_without_grad_and_on_a_single_image(rng):
    x, w = rng.standard_normal((3, 7, 7)), rng.standard_normal((2, 3, 3, 3))
    with dl.no_grad():
        y = F.conv2d(dl.tensor(x), dl.tensor(w, requires_grad=True), stride=2, padding=1)
    expected = torch.nn.functional.conv2d(torch.tensor(x)[None], torch.tensor(w), stride=2, padding=1)[0]
    assert_close(y.data, expected)


# --------------------------------------------------------------------------- pooling
def pool_twin(x, kind, kernel, stride, padding, g=None, rng=None):
    ours = F.max_pool2d if kind == "max" else F.avg_pool2d
    theirs = getattr(torch.nn.functional, f"{kind}_pool2d")
    xt, tx = dl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = ours(xt, kernel, stride, padding)
    ty = theirs(tx, kernel, stride, padding)
    if g is None:
        g = rng.standard_normal(ty.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(y.data, ty)
    assert_close(xt.grad.data, tx.grad)
    return xt.grad.data


def relu_with_ties(rng, shape):
    """Post-ReLU-like values rounded to one decimal: many windows hold tied maxima."""
    return np.maximum(np.round(rng.standard_normal(shape), 1), 0)


POOL_CASES = [
    # kernel, stride, padding, input (h, w)
    (2, None, 0, (8, 8)),          # fast path: disjoint windows tiling the input
    (2, None, 0, (9, 7)),          # disjoint, last row/column cropped
    ((2, 3), None, 0, (6, 9)),     # disjoint, rectangular
    (2, 3, 0, (8, 8)),             # disjoint with gaps
    (3, 2, 1, (9, 9)),             # overlapping and padded (the lecture's CNNs)
    (4, 2, 0, (28, 28)),           # overlapping, the 28x28 exercise
    ((3, 2), (1, 2), (1, 1), (8, 10)),
    ((2, 3), (3, 1), (1, 0), (6, 6)),
    (1, 1, 0, (3, 4)),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride, padding, hw", POOL_CASES)
def test_pooling_matches_torch_with_ties(rng, kind, kernel, stride, padding, hw):
    pool_twin(relu_with_ties(rng, (2, 3) + hw), kind, kernel, stride, padding, rng=rng)


def test_max_pool_gradient_goes_to_the_first_maximum_row_major():
    x = np.array([[[[1.0, 2.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    grad = pool_twin(x, "max", 2, None, 0, g=np.array([[[[5.0]], [[7.0]]]]))
    assert grad.tolist() == [[[[0.0, 5.0], [0.0, 0.0]], [[7.0, 0.0], [0.0, 0.0]]]]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2)])
def test_infinite_upstream_gradient_reaches_only_the_window_it_belongs_to(rng, kind, kernel, stride):
    x = relu_with_ties(rng, (1, 2, 6, 6))
    out = F.max_pool2d(dl.tensor(x), kernel, stride)
    g = rng.standard_normal(out.shape)
    g[0, 0, 0, 0] = np.inf
    ours = F.max_pool2d if kind == "max" else F.avg_pool2d
    xt = dl.tensor(x, requires_grad=True)
    ours(xt, kernel, stride).backward(g)
    tx = torch.tensor(x, requires_grad=True)
    getattr(torch.nn.functional, f"{kind}_pool2d")(tx, kernel, stride).backward(torch.tensor(g))
    expected = tx.grad.numpy()
    assert np.array_equal(np.isnan(xt.grad.data), np.isnan(expected))
    finite = np.isfinite(expected)
    assert np.array_equal(np.isinf(xt.grad.data), np.isinf(expected))
    np.testing.assert_allclose(xt.grad.data[finite], expected[finite], rtol=1e-10, atol=1e-12)


@given(
    kind=st.sampled_from(["max", "avg"]), n=st.integers(1, 2), c=st.integers(1, 3),
    h=st.integers(1, 10), w=st.integers(1, 10), kh=st.integers(1, 4), kw=st.integers(1, 4),
    sh=st.integers(1, 4), sw=st.integers(1, 4), ph=st.integers(0, 2), pw=st.integers(0, 2),
    default_stride=st.booleans(), seed=st.integers(0, 2**16),
)
def test_pooling_sweep_matches_torch(kind, n, c, h, w, kh, kw, sh, sw, ph, pw, default_stride, seed):
    if 2 * ph > kh or 2 * pw > kw or kh > h + 2 * ph or kw > w + 2 * pw:
        return
    rng = np.random.default_rng(seed)
    stride = None if default_stride else (sh, sw)
    pool_twin(relu_with_ties(rng, (n, c, h, w)), kind, (kh, kw), stride, (ph, pw), rng=rng)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1)])
def test_pooling_float32_stays_float32(rng, kind, kernel, stride, padding):
    x = dl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    y = (F.max_pool2d if kind == "max" else F.avg_pool2d)(x, kernel, stride, padding)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_pooling_a_single_image(rng):
    x = relu_with_ties(rng, (3, 6, 6))
    y = F.max_pool2d(dl.tensor(x), 2)
    assert_close(y.data, torch.nn.functional.max_pool2d(torch.tensor(x), 2))


@given(
    n=st.integers(1, 2), c=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 3),
    kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 1), pw=st.integers(0, 1),
    specials=st.integers(0, 5), unbatched=st.booleans(), seed=st.integers(0, 2**16),
)
def test_max_pool_return_indices_match_torch_with_ties_nan_and_inf(n, c, h, w, kh, kw, sh, sw, ph, pw, specials,
                                                                    unbatched, seed):
    # torch's rule: the first maximum row-major, the LAST NaN of a window, never padding
    if 2 * ph > kh or 2 * pw > kw or kh > h + 2 * ph or kw > w + 2 * pw:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, h, w)).astype(float)
    for _ in range(specials):
        x.flat[rng.integers(x.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if unbatched:
        x = x[0]
    ours = dl.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, indices = F.max_pool2d(ours, (kh, kw), (sh, sw), (ph, pw), return_indices=True)
    expected, expected_indices = torch.nn.functional.max_pool2d(theirs, (kh, kw), (sh, sw), (ph, pw),
                                                                return_indices=True)
    np.testing.assert_array_equal(y.numpy(), expected.detach().numpy())
    assert indices.numpy().dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    g = rng.standard_normal(tuple(expected.shape))
    y.backward(g)
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_module_returns_indices_and_refuses_what_it_lacks():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    values, indices = dl.nn.MaxPool2d(2, return_indices=True)(dl.tensor(x))
    expected, expected_indices = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    np.testing.assert_array_equal(values.numpy(), expected.numpy())
    with pytest.raises(dl.errors.ConfigurationError, match="dilation"):
        dl.nn.MaxPool2d(2, dilation=2)
    with pytest.raises(dl.errors.ConfigurationError, match="ceil_mode"):
        F.max_pool2d(dl.tensor(x), 3, ceil_mode=True)


def test_max_pool_return_indices_survives_a_checkpoint_and_torch_interop(tmp_path):
    from deltalab.io import interop

    model = dl.nn.Sequential(dl.nn.MaxPool2d(2, return_indices=True))
    dl.save(model, tmp_path / "pool.npz")
    assert dl.load(tmp_path / "pool.npz")[0].return_indices is True
    assert interop.to_torch(model)[0].return_indices is True
    assert interop.from_torch(torch.nn.Sequential(torch.nn.MaxPool2d(2, return_indices=True)))[0].return_indices


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_bitwise_path_equals_maximum_and_where_bit_for_bit(dtype):
    """ReLU's float path (a bitwise AND with a keep mask) gives np.maximum(a, 0) and
    np.where(a > 0 or NaN, g, 0) exactly: +0.0 for -0.0 and negatives, NaN kept, and a NaN or
    inf upstream gradient where a ≤ 0 stopped (as torch's threshold_backward)."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    flat = base.reshape(-1)
    flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan]
    upstream = rng.standard_normal(base.shape).astype(dtype)
    upstream.reshape(-1)[[1, 2, 4, 7, 8]] = [np.nan, np.inf, -np.inf, np.nan, -np.inf]
    for a, g in ((base, upstream), (base.transpose(0, 2, 1, 3), upstream.transpose(0, 2, 1, 3))):  # and strided
        t = dl.tensor(a, requires_grad=True)
        y = F.relu(t)
        y.backward(g)
        want_y = np.maximum(a, np.zeros((), dtype))
        want_g = np.where(~(a <= 0), g, np.zeros((), dtype))
        bits = {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
        assert y.data.dtype == dtype and t.grad.data.dtype == dtype
        np.testing.assert_array_equal(y.data.view(bits), want_y.view(bits))
        np.testing.assert_array_equal(t.grad.data.view(bits), want_g.view(bits))
    import torch

    a32 = base.astype(np.float32)
    tt = torch.tensor(a32, requires_grad=True)
    torch.relu(tt).backward(torch.tensor(upstream.astype(np.float32)))
    ours = dl.tensor(a32, requires_grad=True)
    F.relu(ours).backward(upstream.astype(np.float32))
    np.testing.assert_array_equal(ours.grad.data, tt.grad.numpy())

"""conv2d's Winograd F(2×2, 3×3) path (float32 3×3 stride-1 training, deltalab.fast.conv) against
the exact answer (torch in float64 on the same float32 values) and the direct path.

Tolerance: every output and gradient within 1e-6 of its largest exact magnitude, or within 4×
the float32 direct path's own error, whichever is larger.  (Measured on conv b's shape and odd
ones: Winograd 0.6–5.3e-7 of the largest magnitude, the direct path 0.5–5.8e-7.)  float64, other
kernels, strides, dilation, groups, non-finite values and a missing numba keep the direct
path, bit for bit.
"""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
from deltalab.fast import conv as fast_conv

torch = pytest.importorskip("torch")
pytest.importorskip("numba")


def arrays(rng, n, c, hw, o, padding, kernel=(3, 3), stride=(1, 1), dtype=np.float32):
    h, w = hw
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = (rng.standard_normal((o, c) + kernel) / np.sqrt(c * kernel[0] * kernel[1])).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    ho, wo = (h + 2 * ph - kernel[0]) // stride[0] + 1, (w + 2 * pw - kernel[1]) // stride[1] + 1
    g = rng.standard_normal((n, o, ho, wo)).astype(dtype)
    return x, weight, bias, g


def deltalab_run(x, weight, bias, g, padding, stride=1, dilation=1, groups=1, wants=(True, True, True), **tuning):
    leaves = [dl.tensor(a, requires_grad=want) if a is not None else None for a, want in zip((x, weight, bias), wants)]
    with dl.tuning(**tuning):
        y = F.conv2d(leaves[0], leaves[1], leaves[2], stride=stride, padding=padding, dilation=dilation, groups=groups)
        y.backward(g)
    return [y.data] + [None if t is None or t.grad is None else t.grad.data for t in leaves]


def exact_run(x, weight, bias, g, padding):
    leaves = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, weight, bias)]
    y = torch.nn.functional.conv2d(leaves[0], leaves[1], leaves[2], padding=padding)
    y.backward(torch.tensor(g.astype(np.float64)))
    return [y.detach().numpy()] + [t.grad.numpy() for t in leaves]


def error(ours, exact):
    return float(np.max(np.abs(ours.astype(np.float64) - exact))) / max(float(np.max(np.abs(exact))), 1e-30)


CASES = [
    # n, c, (h, w), o, padding
    (8, 16, (14, 14), 32, 1),   # conv b's layer, smaller batch
    (1, 16, (14, 14), 8, 1),    # one image
    (3, 1, (9, 7), 4, 1),       # one channel, odd sizes
    (2, 3, (5, 6), 2, 0),       # no padding, odd output height
    (2, 4, (3, 3), 5, 1),       # one tile per image
    (2, 5, (8, 11), 3, 2),      # padding 2, odd output width
    (4, 6, (7, 10), 7, (0, 1)),  # different paddings per axis
    (1, 2, (1, 1), 3, 1),       # a 1x1 image
    (16, 2, (5, 6), 3, 0),      # one group of 16 images: whole 16 x 16 register transposes
    (37, 3, (9, 7), 5, 1),      # groups of 16 and 21 images: the last image block overlaps the one before
    (20, 4, (2, 9), 3, 1),      # 18 pixels a row pair: the last pixel block overlaps
    (48, 16, (14, 14), 32, 1),  # conv b's layer in three groups
]


@pytest.mark.parametrize("n, c, hw, o, padding", CASES)
def test_winograd_matches_the_exact_answer_within_the_direct_paths_error(n, c, hw, o, padding):
    rng = np.random.default_rng(n * 1000 + c * 10 + o)
    x, weight, bias, g = arrays(rng, n, c, hw, o, padding)
    exact = exact_run(x, weight, bias, g, padding)
    winograd = deltalab_run(x, weight, bias, g, padding, winograd=True)
    direct = deltalab_run(x, weight, bias, g, padding, winograd=False)
    for name, ours, reference, exact_value in zip(("y", "dx", "dw", "db"), winograd, direct, exact):
        assert ours.dtype == np.float32 and ours.shape == exact_value.shape
        allowed = max(4 * error(reference, exact_value), 1e-6)
        assert error(ours, exact_value) <= allowed, name
    assert not all(np.array_equal(a, b) for a, b in zip(winograd, direct))  # it did run another path


def test_winograd_in_parallel_sections_matches_serial_and_repeats_its_bits():
    rng = np.random.default_rng(7)
    x, weight, bias, g = arrays(rng, 6, 16, (10, 9), 8, 1)
    exact = exact_run(x, weight, bias, g, 1)
    first = deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=True, threads=2)
    second = deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=True, threads=2)
    serial = deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=False)
    for a, b, s, e in zip(first, second, serial, exact):
        np.testing.assert_array_equal(a, b)
        assert error(a, e) <= 1e-6 and error(s, e) <= 1e-6


def test_winograd_image_groups_have_the_same_bits_at_one_and_two_threads():
    """Two threads take the image groups (16 images, the last 16-31) as they come free, and dW is
    summed per group in group order: whichever thread ran a group, every result keeps its bits."""
    rng = np.random.default_rng(8)
    x, weight, bias, g = arrays(rng, 53, 16, (6, 9), 8, 1)
    serial = deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=False)
    for _ in range(3):
        for a, b in zip(deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=True, threads=2), serial):
            np.testing.assert_array_equal(a, b)
    exact = exact_run(x, weight, bias, g, 1)
    assert all(error(a, e) <= 1e-6 for a, e in zip(serial, exact))


@pytest.mark.parametrize("threads, n", [(1, 5), (2, 5), (1, 35), (2, 35)])
def test_bias_gradient_summed_during_the_gradient_copy_is_exact_in_float64(threads, n):
    """db comes from float64 sums taken while the upstream gradient is copied: an offset gradient
    (every value ~1000, where float32 running sums lose digits) still matches the exact sum to
    float32 rounding, odd batch and partial tiles, serial and in parallel sections, one image group
    or several."""
    rng = np.random.default_rng(11)
    x, weight, bias, g = arrays(rng, n, 16, (7, 9), 6, 1)
    g = (g + 1000).astype(np.float32)
    with dl.tuning(threads=threads):
        ours = deltalab_run(x, weight, bias, g, 1, winograd=True, parallel=threads > 1)
    exact_db = g.astype(np.float64).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(ours[3], exact_db.astype(np.float32), rtol=3e-7, atol=0)
    assert error(ours[0], exact_run(x, weight, bias, g, 1)[0]) <= 1e-6


def test_only_the_wanted_gradients_and_two_graphs_alive_at_once():
    rng = np.random.default_rng(3)
    x, weight, bias, g = arrays(rng, 4, 16, (8, 8), 4, 1)
    exact = exact_run(x, weight, bias, g, 1)
    only_w = deltalab_run(x, weight, None, g, 1, wants=(False, True, False), winograd=True)
    assert only_w[1] is None and error(only_w[2], exact[2]) <= 1e-6
    only_x = deltalab_run(x, weight, bias, g, 1, wants=(True, False, False), winograd=True)
    assert only_x[2] is None and error(only_x[1], exact[1]) <= 1e-6
    # two forwards before their backwards: each keeps its own transformed input
    x2 = rng.standard_normal(x.shape).astype(np.float32)
    with dl.tuning(winograd=True):
        w1, w2 = dl.tensor(weight, requires_grad=True), dl.tensor(weight, requires_grad=True)
        y1 = F.conv2d(dl.tensor(x), w1, padding=1)
        y2 = F.conv2d(dl.tensor(x2), w2, padding=1)
        y2.backward(g)
        y1.backward(g)
    assert error(w1.grad.data, exact[2]) <= 1e-6
    assert error(w2.grad.data, exact_run(x2, weight, bias, g, 1)[2]) <= 1e-6


@pytest.mark.parametrize("options", [
    dict(dtype=np.float64, padding=1),       # the reference path, worked solutions
    dict(kernel=(5, 5), padding=2),
    dict(kernel=(3, 2), padding=1),
    dict(stride=(2, 1), padding=1),
    dict(dilation=2, padding=2),
    dict(groups=2, padding=1),
])
def test_what_winograd_does_not_compute_keeps_the_direct_bits(options):
    options = dict(options)
    dtype, kernel = options.pop("dtype", np.float32), options.pop("kernel", (3, 3))
    stride, padding = options.pop("stride", (1, 1)), options.pop("padding")
    dilation, groups = options.pop("dilation", 1), options.pop("groups", 1)
    rng = np.random.default_rng(11)
    x, weight, bias, _ = arrays(rng, 2, 4, (9, 9), 4, padding, kernel, stride, dtype)
    weight = weight[:, : 4 // groups]
    y = F.conv2d(dl.tensor(x), dl.tensor(weight), dl.tensor(bias), stride=stride, padding=padding, dilation=dilation,
                 groups=groups)
    g = rng.standard_normal(y.shape).astype(dtype)
    forced = deltalab_run(x, weight, bias, g, padding, stride, dilation, groups, winograd=True)
    direct = deltalab_run(x, weight, bias, g, padding, stride, dilation, groups, winograd=False)
    for a, b in zip(forced, direct):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("where", ["x", "weight", "grad", "overflow"])
def test_non_finite_values_run_the_direct_path(where):
    """NaN / inf would spread over a whole tile in the transforms; torch's direct kernels keep them
    to the pixels they reach: such calls (and an overflow inside the transforms) run the direct path."""
    rng = np.random.default_rng(5)
    x, weight, bias, g = arrays(rng, 3, 16, (6, 7), 4, 1)
    if where == "x":
        x[1, 2, 3, 4] = np.inf
        x[0, 0, 0, 0] = np.nan
    elif where == "weight":
        weight[0, 1, 2, 2] = -np.inf
    elif where == "grad":
        g[2, 1, 0, 3] = np.inf
    else:
        # finite, but Bᵀ d B of a tile (differences of rows of opposite sign) overflows
        x[:] = np.where(np.arange(x.shape[2])[:, None] % 2 == 0, 2e38, -2e38).astype(np.float32)
        weight *= np.float32(1e-3)
    with np.errstate(over="ignore", invalid="ignore"):
        forced = deltalab_run(x, weight, bias, g, 1, winograd=True)
        direct = deltalab_run(x, weight, bias, g, 1, winograd=False)
    if where == "grad":  # a finite forward ran Winograd; only the backward is direct
        assert error(forced[0], direct[0]) <= 1e-6
        forced, direct = forced[1:], direct[1:]
    for a, b in zip(forced, direct):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("where", ["x", "grad"])
def test_a_non_finite_value_in_any_image_group_runs_the_direct_path(where):
    """The images run in groups of 16: a NaN or inf in the last group (or the upstream gradient's
    middle group) sends the whole call to the direct path, as in the first."""
    rng = np.random.default_rng(9)
    x, weight, bias, g = arrays(rng, 40, 4, (6, 5), 3, 1)
    if where == "x":
        x[37, 1, 5, 4] = np.nan
    else:
        g[20, 2, 3, 0] = -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        forced = deltalab_run(x, weight, bias, g, 1, winograd=True)
        direct = deltalab_run(x, weight, bias, g, 1, winograd=False)
    if where == "grad":
        assert error(forced[0], direct[0]) <= 1e-6
        forced, direct = forced[1:], direct[1:]
    for a, b in zip(forced, direct):
        np.testing.assert_array_equal(a, b)


def test_size_rule_and_switches():
    geo = fast_conv.Geometry((64, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1))
    assert fast_conv.uses_winograd(geo, np.float32)  # conv b
    assert not fast_conv.uses_winograd(geo, np.float64)
    with dl.tuning(numba=False):
        assert not fast_conv.uses_winograd(geo, np.float32)
    with dl.tuning(winograd=False):
        assert not fast_conv.uses_winograd(geo, np.float32)
    conv_c = fast_conv.Geometry((32, 3, 32, 32), (32, 3, 3, 3), (1, 1), (1, 1))
    assert not fast_conv.uses_winograd(conv_c, np.float32)  # 3 channels: the direct path is faster
    small = fast_conv.Geometry((1, 16, 4, 4), (4, 16, 3, 3), (1, 1), (1, 1))
    assert not fast_conv.uses_winograd(small, np.float32)
    with dl.tuning(winograd=True):
        assert fast_conv.uses_winograd(small, np.float32) and fast_conv.uses_winograd(conv_c, np.float32)
        empty = fast_conv.Geometry((0, 16, 5, 5), (4, 16, 3, 3), (1, 1), (1, 1))
        assert not fast_conv.uses_winograd(empty, np.float32)  # an empty batch: the direct path, as torch


def test_without_numba_the_direct_path_runs(monkeypatch):
    rng = np.random.default_rng(2)
    x, weight, bias, g = arrays(rng, 4, 16, (8, 8), 8, 1)
    direct = deltalab_run(x, weight, bias, g, 1, winograd=False)
    monkeypatch.setenv("DELTALAB_NUMBA", "0")
    for a, b in zip(deltalab_run(x, weight, bias, g, 1, winograd=None, winograd_min_work=0), direct):
        np.testing.assert_array_equal(a, b)

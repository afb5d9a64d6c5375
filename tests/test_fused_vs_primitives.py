"""The fused kernels (conv2d, max_pool2d, avg_pool2d, linear) own hand-written backwards; each
must equal the same computation spelled out with primitive ops, in values and gradients.

The primitive versions follow the lecture's formula literally: pad, cut every window out with
slices, multiply and sum (or take the max / mean), and stack the results into the output grid.
"""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
import deltalab.ops as ops
from deltalab.ops import output_size


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def pad_spatial(x, padding, value=0.0):
    ph, pw = padding
    return ops.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)], value=value)


def window_grid(x, kernel, stride, padding, reduce_window, pad_value=0.0):
    """Apply ``reduce_window`` to every (N, C, kh, kw) window and stack into (N, ·, Ho, Wo)."""
    (kh, kw), (sh, sw) = kernel, stride
    xp = pad_spatial(x, padding, pad_value)
    ho = output_size(x.shape[2], kh, sh, padding[0])
    wo = output_size(x.shape[3], kw, sw, padding[1])
    rows = []
    for i in range(ho):
        row = [reduce_window(xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]) for j in range(wo)]
        rows.append(dl.stack(row, axis=-1))
    return dl.stack(rows, axis=-2)


def conv2d_primitive(x, weight, bias, stride, padding):
    """o[n, k, i, j] = Σ_c Σ_h Σ_w x_pad[n, c, i·s + h, j·s + w] K[k, c, h, w] + b[k]."""
    n, c = x.shape[:2]
    out_channels = weight.shape[0]

    def correlate(window):  # (N, C, kh, kw) -> (N, O)
        window = window.reshape(n, 1, c, *window.shape[2:])
        return (window * weight.reshape(1, *weight.shape)).sum((2, 3, 4))

    out = window_grid(x, weight.shape[2:], stride, padding, correlate)
    return out if bias is None else out + bias.reshape(1, out_channels, 1, 1)


def max_pool2d_primitive(x, kernel, stride, padding):
    return window_grid(x, kernel, stride, padding, lambda w: w.max((2, 3)), pad_value=-np.inf)


def avg_pool2d_primitive(x, kernel, stride, padding):
    return window_grid(x, kernel, stride, padding, lambda w: w.mean((2, 3)))


def linear_primitive(x, weight, bias):
    out = x @ weight.T
    return out if bias is None else out + bias


def compare(fused, primitive, arrays, seed=0):
    """Same values and same gradients (of a random projection) for every input."""
    fused_inputs = [dl.tensor(a, requires_grad=True) for a in arrays]
    primitive_inputs = [dl.tensor(a, requires_grad=True) for a in arrays]
    out, expected = fused(*fused_inputs), primitive(*primitive_inputs)
    assert out.shape == expected.shape
    close(out.numpy(), expected.numpy())
    projection = dl.tensor(np.random.default_rng(seed).standard_normal(out.shape))
    (out * projection).sum().backward()
    (expected * projection).sum().backward()
    for a, b in zip(fused_inputs, primitive_inputs):
        close(a.grad.numpy(), b.grad.numpy())


CONV_CASES = [
    # x shape, weight shape, stride, padding
    ((2, 1, 5, 5), (1, 1, 3, 3), (1, 1), (0, 0)),
    ((2, 3, 6, 5), (4, 3, 3, 2), (2, 1), (1, 0)),
    ((3, 2, 7, 4), (2, 2, 5, 3), (3, 2), (2, 1)),
    ((2, 2, 4, 6), (3, 2, 2, 4), (1, 3), (0, 2)),
    ((2, 1, 3, 3), (2, 1, 1, 1), (2, 2), (1, 1)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_equals_windows_times_kernel_summed(x_shape, w_shape, stride, padding, bias):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[:1]))
    compare(
        lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride=stride, padding=padding),
        lambda x, w, *b: conv2d_primitive(x, w, b[0] if b else None, stride, padding),
        arrays,
    )


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_the_windows_reference_conv_equals_windows_times_kernel_summed(x_shape, w_shape, stride, padding):
    """ops.conv.conv2d_windows, the reference the fast path is tested against, is itself the
    lecture's formula."""
    from deltalab.ops.conv import conv2d_windows

    rng = np.random.default_rng(sum(x_shape) * 7 + sum(w_shape))
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[:1])]
    compare(
        lambda x, w, b: conv2d_windows(x, w, b, stride=stride, padding=padding),
        lambda x, w, b: conv2d_primitive(x, w, b, stride, padding),
        arrays,
    )


POOL_CASES = [
    # x shape, kernel, stride, padding
    ((2, 2, 4, 4), (2, 2), (2, 2), (0, 0)),
    ((2, 1, 5, 7), (3, 3), (2, 2), (1, 1)),
    ((3, 2, 6, 5), (2, 3), (1, 2), (1, 0)),
    ((2, 3, 7, 6), (4, 2), (3, 1), (2, 1)),
]


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
def test_max_pool2d_equals_max_over_each_window(x_shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape)
    compare(
        lambda t: F.max_pool2d(t, kernel, stride, padding),
        lambda t: max_pool2d_primitive(t, kernel, stride, padding),
        [x],
    )


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
def test_max_pool2d_with_ties_equals_first_maximum_of_each_window(x_shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(x_shape) + 1)
    x = np.maximum(rng.integers(-2, 3, size=x_shape), 0).astype(float)  # ReLU-like: many tied zeros
    compare(
        lambda t: F.max_pool2d(t, kernel, stride, padding),
        lambda t: max_pool2d_primitive(t, kernel, stride, padding),
        [x],
    )


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
def test_avg_pool2d_equals_mean_over_each_zero_padded_window(x_shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(x_shape) + 2)
    compare(
        lambda t: F.avg_pool2d(t, kernel, stride, padding),
        lambda t: avg_pool2d_primitive(t, kernel, stride, padding),
        [rng.standard_normal(x_shape)],
    )


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)], ids=["vector", "batch", "batch-of-sequences"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_linear_equals_matmul_plus_bias(lead, bias):
    rng = np.random.default_rng(len(lead))
    arrays = [rng.standard_normal(lead + (4,)), rng.standard_normal((5, 4))]
    if bias:
        arrays.append(rng.standard_normal(5))
    compare(
        lambda x, w, *b: F.linear(x, w, b[0] if b else None),
        lambda x, w, *b: linear_primitive(x, w, b[0] if b else None),
        arrays,
    )


def test_the_primitive_conv_reproduces_the_lecture_image():
    """Anchor the primitive path itself on SPEC §2's worked example (ring kernel, padding 1)."""
    image = np.array([[10] * 6, [5] * 6, [2, 2, 2, 0, 0, 2], [2, 2, 2, 0, 0, 2],
                      [50, 10, 50, 50, 50, 10], [50, 10, 50, 50, 50, 10]], dtype=float)
    ring = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    out = conv2d_primitive(dl.tensor(image[None, None]), dl.tensor(ring[None, None]), None, (1, 1), (1, 1))
    np.testing.assert_array_equal(out.numpy()[0, 0, 1], [29, 46, 44, 42, 42, 27])
    pooled = max_pool2d_primitive(out, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(pooled.numpy()[0, 0], [[46, 44, 42], [120, 154, 114], [216, 252, 172]])

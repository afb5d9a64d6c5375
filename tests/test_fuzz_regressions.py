"""Wrong answers the differential fuzzer (tests/fuzz_programs.py) found, each as its minimal
program against PyTorch.  Every one gave a number with no error before its fix."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deltalab as dl  # noqa: E402
import deltalab.functional as F  # noqa: E402

TF = torch.nn.functional


def both(array, requires_grad=True):
    return dl.tensor(np.array(array), requires_grad=requires_grad), torch.tensor(np.array(array), requires_grad=requires_grad)


def same(ours, theirs, rtol=1e-12):
    """Equal values, NaN where torch has NaN."""
    expected = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=rtol, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("upstream", [np.nan, np.inf])
def test_relu_gradient_is_zero_where_the_input_is_negative_even_for_a_nan_upstream_gradient(upstream):
    # relu's gradient selects (torch's threshold_backward): 0 · NaN must not turn a dead unit's 0 into NaN
    ours, theirs = both([-1.0, 2.0, -3.0])
    g = np.array([upstream, 1.0, upstream])
    F.relu(ours).backward(g)
    TF.relu(theirs).backward(torch.tensor(g))
    same(ours.grad.numpy(), theirs.grad)
    assert ours.grad.numpy()[0] == 0.0


def test_relu_rnn_passes_the_gradient_of_a_nan_preactivation_and_blocks_it_where_z_is_negative():
    # fuzz: Cell(kind='rnn', nonlinearity='relu', special='nan' / 'inf'): the fused Elman step took
    # f'(NaN) = 0 and multiplied f' by the upstream gradient (0 · NaN = NaN at dead units)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 2))
    x[1, 0, 1] = np.nan
    x[0, 1, 0] = np.inf
    w_ih, w_hh, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 3)), rng.standard_normal(3)
    for inputs in (x, np.where(np.isnan(x), 0.5, x)):
        ours = dl.nn.RNN(2, 3, nonlinearity="relu")
        theirs = torch.nn.RNN(2, 3, nonlinearity="relu", dtype=torch.float64)
        params = dict(ours.named_parameters())
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0") if "weight_ih_l0" in params else ("weight_ih", "weight_hh", "bias")
        for name, value in zip(names, (w_ih, w_hh, b)):
            params[name].data = value.copy()
        if "bias_hh_l0" in params:
            params["bias_hh_l0"].data = np.zeros(3)
        with torch.no_grad():
            theirs.weight_ih_l0.copy_(torch.tensor(w_ih))
            theirs.weight_hh_l0.copy_(torch.tensor(w_hh))
            theirs.bias_ih_l0.copy_(torch.tensor(b))
            theirs.bias_hh_l0.zero_()
        xo, xt = both(inputs)
        g = rng.standard_normal((3, 2, 3))
        with np.errstate(invalid="ignore"):
            ours(xo)[0].backward(g)
        theirs(xt)[0].backward(torch.tensor(g))
        same(xo.grad.numpy(), xt.grad, rtol=1e-10)
        same(params[names[1]].grad.numpy(), theirs.weight_hh_l0.grad, rtol=1e-10)


def test_max_of_the_whole_tensor_shares_the_gradient_among_tied_maxima():
    # fuzz: Tensor(ops=(('permute', (1, 0)), ('max', None, False))) on tied data: torch.max(x)
    # (no dim) splits the gradient evenly among all maxima; deltalab gave it all to the first
    ours, theirs = both([[1.0, 3.0, 3.0], [2.0, 3.0, 0.0]])
    ours.max().backward()
    theirs.max().backward()
    same(ours.grad.numpy(), theirs.grad)
    same(ours.grad.numpy(), [[0, 1 / 3, 1 / 3], [0, 1 / 3, 0]])


def test_max_of_the_whole_tensor_keeps_a_nan_upstream_gradient_off_the_other_entries():
    ours, theirs = both([1.0, np.inf, 2.0])
    with np.errstate(invalid="ignore"):
        (ours.max() * -1.0).log().backward()
    (theirs.max() * -1.0).log().backward()
    same(ours.grad.numpy(), theirs.grad)


def test_max_with_a_dim_still_sends_the_gradient_to_the_first_maximum():
    ours, theirs = both([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    result = ours.max(1)
    getattr(result, "values", result).sum().backward()
    theirs.max(1).values.sum().backward()
    same(ours.grad.numpy(), theirs.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_gradient_at_probabilities_of_exactly_0_and_1(dtype, reduction):
    # fuzz: Loss(loss='binary_cross_entropy', case='extreme'): differentiating the clamped logs gave
    # 0 or 1 where torch's (p − t) / max(p(1 − p), 1e-12) gives 0 or ±1e12
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.3, 1e-14], dtype=dtype)
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.6, 1.0], dtype=dtype)
    ours, theirs = both(p)
    ours_t, theirs_t = both(t)
    loss = F.binary_cross_entropy(ours, ours_t, reduction=reduction)
    expected = TF.binary_cross_entropy(theirs, theirs_t, reduction=reduction)
    same(loss.numpy(), expected, rtol=1e-6 if dtype == np.float32 else 1e-12)
    g = np.linspace(0.5, 1.5, loss.numpy().size).reshape(loss.shape).astype(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss.backward(g)
    expected.backward(torch.tensor(g))
    same(ours.grad.numpy(), theirs.grad, rtol=1e-6 if dtype == np.float32 else 1e-12)
    same(ours_t.grad.numpy(), theirs_t.grad, rtol=1e-6 if dtype == np.float32 else 1e-12)  # −logit(p), inf at 0 and 1


@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_conv2d_weight_gradient_stays_finite_where_a_nan_input_never_meets_that_weight(special):
    # fuzz: Image(shape=(1, 3, 4, 21), layers=(('conv', 2, 3, (1, 1), (2, 0), ...), ...), special='nan'):
    # stride 1 in width computes thrown-away columns that read the next row's pixels; their
    # gradient is 0, but 0 · NaN put NaN into dW entries torch computes finite
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 21))
    x[0, 2, 1, 0] = special  # the first column: offset (0, 0) of a thrown-away column reads it
    w = rng.standard_normal((2, 3, 3, 3))
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        xo, xt = both(x.astype(dtype))
        wo, wt = both(w.astype(dtype))
        g = rng.standard_normal((2, 2, 6, 19)).astype(dtype)
        with np.errstate(invalid="ignore"):
            F.conv2d(xo, wo, stride=1, padding=(2, 0)).backward(g)
        TF.conv2d(xt, wt, stride=1, padding=(2, 0)).backward(torch.tensor(g))
        assert np.isfinite(wt.grad.numpy()).sum() > 0
        same(wo.grad.numpy(), wt.grad, rtol=rtol)
        same(xo.grad.numpy(), xt.grad, rtol=rtol)


def torch_native(function, *args, **kwargs):
    """``function`` with torch's own CPU kernels, not oneDNN: with NaN / inf, oneDNN's float32
    convolution skips the padding for some shapes and multiplies it for others (whichever
    kernel it picks), torch's native kernels always multiply it -- the rule deltalab follows."""
    with torch.backends.mkldnn.flags(enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None):
        return function(*args, **kwargs)  # (the other flags None: setting them only warns about Intel GPUs)


CONV_GEOMETRIES = [  # (x shape, w shape, stride, padding): the band and the per-image layouts
    ((1, 1, 7, 5), (2, 1, 1, 2), (3, 1), (0, 0)),
    ((1, 1, 6, 10), (2, 1, 1, 2), (3, 1), (2, 0)),
    ((1, 3, 4, 4), (3, 3, 2, 3), (2, 1), (0, 1)),
    ((2, 2, 30, 28), (3, 2, 3, 3), (1, 1), (1, 1)),  # Ho·Wc ≥ 512: one matmul per image
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES)
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_conv2d_input_gradient_of_a_non_finite_weight_reaches_only_the_pixels_it_multiplies(special, geometry, dtype):
    # fuzz: Image(layers=(('conv', ...),), special_weight=True): with stride 1 in width the
    # thrown-away columns have gradient 0, but dcols = Wᵀ · 0 is NaN for an inf weight and the
    # scatter back added it to the next row's pixels: NaN where torch has 0 or a finite value
    x_shape, w_shape, stride, padding = geometry
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    w[0, 0, 0, -1] = special
    w[-1, -1, -1, 0] = special
    xo, xt = both(x)
    wo, wt = both(w)
    yt = torch_native(TF.conv2d, xt, wt, stride=stride, padding=padding)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    with np.errstate(invalid="ignore"):
        yo = F.conv2d(xo, wo, stride=stride, padding=padding)
        yo.backward(g)
    torch_native(yt.backward, torch.tensor(g))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    same(yo.numpy(), yt, rtol=rtol)
    same(xo.grad.numpy(), xt.grad, rtol=rtol)
    same(wo.grad.numpy(), wt.grad, rtol=rtol)
    assert np.isfinite(xt.grad.numpy()).any()


@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_conv2d_multiplies_its_zero_padding_like_torch(special):
    # an inf weight tap that reads padding gives 0 · inf = NaN at the border (forward), an inf
    # upstream gradient does so in dW: what torch's native kernels compute, in every dtype
    x = np.arange(16.0).reshape(1, 1, 4, 4) / 10 + 0.1
    w = np.ones((1, 1, 3, 3))
    w[0, 0, 0, 0] = special
    xo, xt = both(x)
    wo, wt = both(w)
    with np.errstate(invalid="ignore"):
        y = F.conv2d(xo, wo, padding=1)
    expected = TF.conv2d(xt, wt, padding=1)
    same(y.numpy(), expected)
    assert np.isnan(y.numpy()[0, 0, 0]).all() and np.isnan(y.numpy()[0, 0, :, 0]).all()
    g = np.ones((1, 1, 4, 4))
    g[0, 0, 0, 0] = special
    xo, xt = both(x)
    wo, wt = both(np.ones((1, 1, 3, 3)))
    with np.errstate(invalid="ignore"):
        F.conv2d(xo, wo, padding=1).backward(g)
    TF.conv2d(xt, wt, padding=1).backward(torch.tensor(g))
    same(wo.grad.numpy(), wt.grad)
    same(xo.grad.numpy(), xt.grad)
    assert np.isnan(wo.grad.numpy()[0, 0, 0]).all()  # row 0 of the kernel reads padding for output row 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool2d_sends_the_gradient_of_a_window_with_nans_to_its_last_nan(dtype):
    # torch's CPU kernel scans a window row-major and takes an element when val > max or
    # isnan(val): the LAST NaN wins (deltalab gave it to the first); overlapping windows too
    nan = np.nan
    x = np.array([[[[1.0, nan, 3.0, nan, 0.0],
                    [nan, 2.0, 5.0, 5.0, nan],
                    [4.0, 4.0, nan, 1.0, 2.0]]]], dtype=dtype)
    for kernel, stride, padding in (((2, 2), (2, 2), (0, 0)), ((2, 3), (1, 1), (1, 1)), ((3, 3), (1, 2), (0, 1))):
        xo, xt = both(x)
        yo = F.max_pool2d(xo, kernel, stride, padding)
        yt = TF.max_pool2d(xt, kernel, stride, padding)
        g = np.arange(1.0, 1.0 + yt.numel()).reshape(tuple(yt.shape)).astype(dtype)
        yo.backward(g)
        yt.backward(torch.tensor(g))
        same(yo.numpy(), yt)
        same(xo.grad.numpy(), xt.grad)


def test_max_pool2d_gives_a_window_of_only_minus_inf_to_its_first_real_element_not_to_padding():
    # deltalab pads with -inf; a window whose real elements are all -inf matched the padding
    # first and its gradient was cropped away with it (torch: the first real element)
    x = np.array([[[[-np.inf, 1.0, -np.inf], [-np.inf, 2.0, -np.inf]]]])
    xo, xt = both(x)
    yo, yt = F.max_pool2d(xo, (1, 2), 1, (0, 1)), TF.max_pool2d(xt, (1, 2), 1, (0, 1))
    g = np.arange(1.0, 1.0 + yt.numel()).reshape(tuple(yt.shape))
    yo.backward(g)
    yt.backward(torch.tensor(g))
    same(yo.numpy(), yt)
    same(xo.grad.numpy(), xt.grad)
    assert xo.grad.numpy()[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_max_of_a_whole_tensor_with_nans_shares_the_gradient_among_the_nans(reduce):
    # fuzz: Tensor(ops=(('max', None, False),), special='nan'): torch.max(x) shares its gradient
    # among the NaNs (evenly_distribute_backward), deltalab divided by the count of x == NaN (0):
    # NaN everywhere -- which is right for amax, and stays so
    x = np.array([[np.nan, 1.0, np.nan], [2.0, 3.0, np.nan]])
    xo, xt = both(x)
    getattr(xo, reduce)().backward()
    getattr(xt, reduce)().backward()
    same(xo.grad.numpy(), xt.grad)
    xo, xt = both(x)
    xo.amax().backward()
    xt.amax().backward()
    same(xo.grad.numpy(), xt.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elu_gradient_at_a_nan_input_is_nan_as_torchs_vectorised_kernel(dtype):
    # fuzz: Image(layers=(('act', 'elu'), ('conv', ...)), special='nan'): deltalab passed the
    # upstream gradient through (slope 1); torch's vectorised elu backward takes the exponential
    # branch at NaN (slope αe^NaN = NaN).  Only torch's scalar loop over the last few elements
    # of a tensor passes it through, so the check uses 64 elements (all in the vector part).
    x = np.random.default_rng(4).standard_normal(64).astype(dtype)
    x[[3, 17, 40]] = [np.nan, np.inf, -np.inf]
    ours, theirs = both(x)
    F.elu(ours).backward(np.ones(64, dtype))
    TF.elu(theirs).backward(torch.ones(64, dtype=theirs.dtype))
    same(ours.grad.numpy(), theirs.grad, rtol=1e-6)
    assert np.isnan(ours.grad.numpy()[3])


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_max_of_a_whole_tensor_sends_a_nan_upstream_gradient_to_the_maximum_only(reduce):
    # fuzz: Tensor(ops=(('add', ...), ('max', None, False), ('pow', -1.5)), special='inf'):
    # (inf² + 0.5)^-1.5 back-propagates 2·inf·0 = NaN; torch.max() fills g / count into the
    # maxima and exact zeros elsewhere, deltalab multiplied (NaN · 0 = NaN everywhere).
    # amax multiplies in torch too (NaN everywhere), and must stay so.
    x = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 5.0]])
    for method in (reduce, "a" + reduce):
        ours, theirs = both(x)
        getattr(ours, method)().backward(np.array(np.nan))
        getattr(theirs, method)().backward(torch.tensor(np.nan, dtype=torch.float64))
        same(ours.grad.numpy(), theirs.grad)

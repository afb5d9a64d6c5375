"""Every op's analytic gradient against float64 central differences (``deltalab.gradcheck``),
and proof that the check can fail: a deliberately wrong backward is caught."""
import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F
import deltalab.ops as ops
from deltalab.autograd import Function

SMOOTH = 1e-7  # relative error allowed for smooth ops
PIECEWISE = 1e-5  # relu / max / max-pool, inputs chosen away from kinks and ties


def leaf(array):
    return dl.tensor(np.asarray(array, dtype=float), requires_grad=True)


def away_from_zero(rng, shape, margin=0.2):
    """Values with |v| >= margin, so relu's kink at 0 is never within a finite-difference step."""
    return rng.uniform(margin, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def distinct(rng, shape, gap=0.05):
    """A shuffled grid of values at least ``gap`` apart: no ties for max or max-pool."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * gap - size * gap / 2).reshape(shape)


RNG = np.random.default_rng(2024)
A34 = RNG.standard_normal((3, 4))
B34 = RNG.standard_normal((3, 4))
ROW4 = RNG.standard_normal((4,))
POSITIVE = RNG.uniform(0.5, 2.0, (3, 4))
IMAGES = RNG.standard_normal((2, 2, 5, 6))
KERNELS = RNG.standard_normal((3, 2, 3, 2))
BIAS3 = RNG.standard_normal((3,))
WEIGHT = RNG.standard_normal((5, 4))
BIAS5 = RNG.standard_normal((5,))
TARGET = np.array([0, 3, 1])

SMOOTH_CASES = {
    "add (broadcast)": (lambda a, b: a + b, [A34, ROW4]),
    "sub (broadcast)": (lambda a, b: a - b, [A34, ROW4]),
    "mul (broadcast)": (lambda a, b: a * b, [A34, ROW4]),
    "div": (lambda a, b: a / b, [A34, POSITIVE]),
    "pow scalar": (lambda a: a**3, [A34]),
    "pow fractional": (lambda a: a**-1.5, [POSITIVE]),
    "pow tensor": (lambda a, b: a**b, [POSITIVE, A34]),
    "rpow": (lambda a: 2.0**a, [A34]),
    "neg": (lambda a: -a, [A34]),
    "matmul": (lambda a, b: a @ b, [A34, B34.T]),
    "matmul batched": (lambda a, b: a @ b, [RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 2))]),
    "matmul vector": (lambda a, b: a @ b, [ROW4, B34.T]),
    "sum": (lambda a: a.sum(1), [A34]),
    "sum keepdims": (lambda a: a.sum((0, 1), keepdims=True), [A34]),
    "mean": (lambda a: a.mean(0), [A34]),
    "reshape": (lambda a: a.reshape(2, 6), [A34]),
    "transpose": (lambda a: a.transpose(1, 0), [A34]),
    "getitem slices": (lambda a: a[1:, ::2], [A34]),
    "getitem repeated": (lambda a: a[np.array([0, 2, 0])], [A34]),
    "concatenate": (lambda a, b: dl.concatenate([a, b], axis=1), [A34, B34]),
    "stack": (lambda a, b: dl.stack([a, b], axis=-1), [A34, B34]),
    "pad": (lambda a: ops.pad(a, [(1, 0), (2, 1)], value=0.5), [A34]),
    "exp": (ops.exp, [A34]),
    "log": (ops.log, [POSITIVE]),
    "tanh": (ops.tanh, [A34]),
    "sigmoid": (ops.sigmoid, [A34 * 3]),
    "softmax": (lambda a: ops.softmax(a, 1), [A34]),
    "log_softmax": (lambda a: ops.log_softmax(a, 0), [A34]),
    "where": (lambda a, b: dl.where(A34 > 0, a, b), [A34, B34]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)), [IMAGES, KERNELS, BIAS3]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1)), [IMAGES]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [A34, WEIGHT, BIAS5]),
    "half_squared_error": (lambda y, t: F.half_squared_error(y, t), [A34, B34]),
    "mse_loss": (lambda y, t: F.mse_loss(y, t), [A34, B34]),
    "cross_entropy indices": (lambda z: F.cross_entropy(z, TARGET), [A34]),
    "cross_entropy probabilities": (lambda z, t: F.cross_entropy(z, t), [A34, ops.softmax(dl.tensor(B34), 1).numpy()]),
    "binary_cross_entropy": (lambda p, t: F.binary_cross_entropy(p, t), [POSITIVE / 2.5, POSITIVE / 2.5]),
}


@pytest.mark.parametrize("name", list(SMOOTH_CASES))
def test_smooth_op_gradient_matches_central_differences(name):
    fn, arrays = SMOOTH_CASES[name]
    result = dl.gradcheck(fn, *[leaf(a) for a in arrays], tolerance=SMOOTH)
    assert len(result.errors) == len(arrays)
    assert result.passed, f"{name}: max relative error {result.max_error:.2e}"


def piecewise_cases():
    rng = np.random.default_rng(11)
    return {
        "relu": (ops.relu, [away_from_zero(rng, (3, 4))]),
        "max all": (lambda a: a.max(), [distinct(rng, (3, 4))]),
        "max axis": (lambda a: a.max(1).values, [distinct(rng, (3, 4))]),
        "max axes keepdims": (lambda a: a.max((0, 2), keepdims=True), [distinct(rng, (2, 3, 4))]),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), [distinct(rng, (2, 2, 4, 6))]),
        "max_pool2d strided, padded": (lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1)),
                                       [distinct(rng, (2, 2, 5, 6))]),
        "relu network": (lambda x, w: ops.relu(x @ w).sum(1), [away_from_zero(rng, (3, 2)), np.eye(2) * 1.5]),
    }


@pytest.mark.parametrize("name", list(piecewise_cases()))
def test_piecewise_op_gradient_matches_away_from_kinks(name):
    fn, arrays = piecewise_cases()[name]
    result = dl.gradcheck(fn, *[leaf(a) for a in arrays], tolerance=PIECEWISE)
    assert result.passed, f"{name}: max relative error {result.max_error:.2e}"


def test_gradcheck_of_a_composite_network():
    rng = np.random.default_rng(5)
    x = leaf(rng.standard_normal((2, 1, 6, 6)))
    w = leaf(rng.standard_normal((2, 1, 3, 3)))
    v = leaf(rng.standard_normal((3, 2 * 3 * 3)))

    def net(x, w, v):
        h = ops.tanh(F.conv2d(x, w, padding=1))
        h = F.avg_pool2d(h, 2).reshape(2, -1)
        return F.cross_entropy(F.linear(h, v), np.array([0, 2]))

    assert dl.gradcheck(net, x, w, v, tolerance=SMOOTH)


# ------------------------------------------------------------- the check can fail
class SquareWithForgottenFactor(Function):
    """x², but backward forgets the factor 2 (a classic hand-written-gradient bug)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * a


class SlightlyWrongExp(Function):
    """exp(x) with a backward that is off by one part in 10⁴."""

    @staticmethod
    def forward(ctx, a):
        return np.exp(a)

    @staticmethod
    def backward(ctx, grad):
        return grad * np.exp(ctx.parents[0].data) * (1 + 1e-4)


def test_gradcheck_detects_a_wrong_gradient():
    x = leaf([[0.5, -1.0, 2.0]])
    result = dl.gradcheck(SquareWithForgottenFactor.apply, x)
    assert not result.passed
    assert not result
    assert result.max_error == pytest.approx(0.5, rel=1e-6)  # analytic is half the true gradient


def test_gradcheck_detects_a_small_error_and_leaves_inputs_untouched():
    values = np.array([0.1, -0.4, 1.3])
    x = leaf(values)
    result = dl.gradcheck(SlightlyWrongExp.apply, x)
    assert not result.passed
    assert 5e-5 < result.max_error < 2e-4
    np.testing.assert_array_equal(x.numpy(), values)
    assert dl.gradcheck(ops.exp, leaf(values))  # the correct op passes on the same input


def test_gradcheck_detects_a_gradient_missing_from_one_input():
    class MulIgnoringSecond(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved
            return grad * b, None

    result = dl.gradcheck(MulIgnoringSecond.apply, leaf([1.0, 2.0]), leaf([3.0, -1.0]))
    assert result.errors[0] < 1e-9
    assert result.errors[1] == pytest.approx(1.0)
    assert not result

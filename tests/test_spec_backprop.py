"""SPEC §3 (exam solutions 001): backpropagation in small scalar networks, with engine ops.

Given these weights and inputs, these numbers -- typed in from the spec's recomputed answers.
"""
import math

import numpy as np
import pytest

import deltalab as dl
import deltalab.functional as F

# these tests compare at float64 precision (the default dtype is float32, as torch's)
pytestmark = pytest.mark.usefixtures("float64_default")


def scalar(value, name):
    return dl.tensor(float(value), requires_grad=True, name=name)


# ------------------------------------------------------------ the ReLU exam network
RELU_WEIGHTS = dict(w11=1.0, w12=-0.5, w21=0.5, w22=-1.0, w31=0.5, w32=-1.0, w41=-0.5, w42=1.0,
                    b1=0.5, b2=-0.5, b3=-1.0, b4=0.5)
RELU_GRADIENTS = dict(w11=3.0, w21=-1.5, b1=1.5, w31=-2.0, w32=-4.0, b3=-1.0, b4=-2.0,
                      w12=0.0, w22=0.0, b2=0.0, w41=0.0, w42=0.0)  # h2 is a dead ReLU


def relu_network(p, i1, i2):
    h1 = i1 * p["w11"] + i2 * p["w21"] + p["b1"]
    h2 = i1 * p["w12"] + i2 * p["w22"] + p["b2"]
    h3, h4 = F.relu(h1), F.relu(h2)
    o1 = h3 * p["w31"] + h4 * p["w41"] + p["b3"]
    o2 = h3 * p["w32"] + h4 * p["w42"] + p["b4"]
    return h1, h2, o1, o2


def test_relu_exam_network_forward_loss_gradients_and_update():
    p = {name: scalar(v, name) for name, v in RELU_WEIGHTS.items()}
    h1, h2, o1, o2 = relu_network(p, 2.0, -1.0)
    assert (h1.item(), h2.item()) == (2.0, -0.5)
    assert (o1.item(), o2.item()) == (0.0, -1.5)
    loss = F.half_squared_error(dl.stack([o1, o2]), np.array([1.0, 0.5]))
    assert loss.item() == pytest.approx(2.5, abs=1e-15)

    loss.backward()
    for name, expected in RELU_GRADIENTS.items():
        assert p[name].grad.item() == pytest.approx(expected, abs=1e-15), name

    dl.optim.SGD(p.values(), lr=0.1).step()
    assert p["w21"].item() == pytest.approx(0.65, abs=1e-15)
    assert p["w11"].item() == pytest.approx(1.0 - 0.1 * 3.0, abs=1e-15)
    assert p["w12"].item() == -0.5  # dead ReLU: no change


# ------------------------------------------------------- the sigmoid net with a skip
def test_sigmoid_skip_network():
    x, w1, b1, w2 = scalar(1.0, "x"), scalar(0.5, "w1"), scalar(-0.5, "b1"), scalar(-2.0, "w2")
    y_hat = F.sigmoid(w2 * F.sigmoid(w1 * x + b1) + x)
    loss = F.squared_error(y_hat, dl.tensor(1.0))  # L = (ŷ − y)², no ½
    assert y_hat.item() == pytest.approx(0.5, abs=1e-15)
    assert loss.item() == pytest.approx(0.25, abs=1e-15)
    loss.backward()
    assert w2.grad.item() == pytest.approx(-0.125, abs=1e-15)
    assert b1.grad.item() == pytest.approx(+0.125, abs=1e-15)  # the seed's −0.0625 drops the factor w2
    assert b1.grad.item() != pytest.approx(-0.0625)
    assert w1.grad.item() == pytest.approx(0.125, abs=1e-15)
    assert x.grad.item() == pytest.approx(-0.1875, abs=1e-15)  # skip path −0.25 plus hidden path +0.0625


# --------------------------------------------------- shared nodes: gradients add up
def test_a_node_with_several_consumers_sums_their_gradients():
    w, x = scalar(0.3, "w"), scalar(2.0, "x")
    h = w * x  # h = 0.6 feeds three consumers
    loss = 2 * h + h.exp() + h * h
    loss.backward()
    dloss_dh = 2 + math.exp(0.6) + 2 * 0.6
    assert w.grad.item() == pytest.approx(dloss_dh * 2.0, rel=1e-14)
    assert x.grad.item() == pytest.approx(dloss_dh * 0.3, rel=1e-14)


def test_a_consumer_reached_by_a_longer_path_still_counts():
    # b feeds the sum directly and through exp: the backward pass must finish exp(b) first
    x = scalar(1.5, "x")
    b = x * 2
    (b + b.exp()).backward()
    assert x.grad.item() == pytest.approx(2 + 2 * math.exp(3.0), rel=1e-14)


# ----------------------------------------------------------- the three-branch net
THREE_BRANCH = dict(w1=0.7, b1=-0.2, w2=-1.3, b2=0.4, w3=0.9)


def three_branch(x, p):
    """e = g(w1 x + b1), f = w2 x + b2, g = g(w3 x), y1 = e + f + g, y2 = g; g = tanh."""
    e = F.tanh(p["w1"] * x + p["b1"])
    f = p["w2"] * x + p["b2"]
    g = F.tanh(p["w3"] * x)
    return dl.stack([e + f + g, g])


def three_branch_loss(x, p, targets=(0.5, -0.25)):
    return F.half_squared_error(three_branch(x, p), np.array(targets))


@pytest.mark.parametrize("x0", [-1.1, 0.3, 2.0])
def test_three_branch_net_gradient_wrt_input(x0):
    p = {k: dl.tensor(v) for k, v in THREE_BRANCH.items()}
    x = scalar(x0, "x")
    three_branch_loss(x, p).backward()

    # closed form by the chain rule
    a1, a3 = THREE_BRANCH["w1"] * x0 + THREE_BRANCH["b1"], THREE_BRANCH["w3"] * x0
    y1 = math.tanh(a1) + THREE_BRANCH["w2"] * x0 + THREE_BRANCH["b2"] + math.tanh(a3)
    y2 = math.tanh(a3)
    dy1 = (1 - math.tanh(a1) ** 2) * THREE_BRANCH["w1"] + THREE_BRANCH["w2"] + (1 - y2**2) * THREE_BRANCH["w3"]
    dy2 = (1 - y2**2) * THREE_BRANCH["w3"]
    expected = (y1 - 0.5) * dy1 + (y2 + 0.25) * dy2
    assert x.grad.item() == pytest.approx(expected, rel=1e-13)

    # and by central differences, computed here in plain float64
    h = 1e-6
    with dl.no_grad():
        plus = three_branch_loss(dl.tensor(x0 + h), p).item()
        minus = three_branch_loss(dl.tensor(x0 - h), p).item()
    assert x.grad.item() == pytest.approx((plus - minus) / (2 * h), rel=1e-8)


def test_three_branch_weight_gradients_match_finite_differences():
    params = {k: scalar(v, k) for k, v in THREE_BRANCH.items()}
    three_branch_loss(dl.tensor(0.8), params).backward()
    h = 1e-6
    for name, value in THREE_BRANCH.items():
        def loss_at(v):
            shifted = {k: dl.tensor(v if k == name else u) for k, u in THREE_BRANCH.items()}
            return three_branch_loss(dl.tensor(0.8), shifted).item()

        numeric = (loss_at(value + h) - loss_at(value - h)) / (2 * h)
        assert params[name].grad.item() == pytest.approx(numeric, rel=1e-7, abs=1e-10), name


def test_multi_headed_residual_net_gradient_wrt_input():
    """Two heads share a residual trunk: r = x + tanh(w x); y1 = a r, y2 = sigmoid(c r); L = y1 + y2."""
    x0, w0, a0, c0 = 0.4, -0.8, 1.7, 0.6
    x = scalar(x0, "x")
    r = x + F.tanh(w0 * x)
    loss = a0 * r + F.sigmoid(c0 * r)
    loss.backward()
    r0 = x0 + math.tanh(w0 * x0)
    s = 1 / (1 + math.exp(-c0 * r0))
    dr_dx = 1 + (1 - math.tanh(w0 * x0) ** 2) * w0
    assert x.grad.item() == pytest.approx((a0 + s * (1 - s) * c0) * dr_dx, rel=1e-14)

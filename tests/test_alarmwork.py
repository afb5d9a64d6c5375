"""SPEC §7: AlarmworkNet.  Autodiff equals finite differences; so does the SPEC's corrected BPTT
recursion for in2; the seed's in2 formulas (3.8–3.11), which stop after one step, do not.

The reference below is written independently in NumPy with the seed's 1-based steps l = 1 … L.
"""
import numpy as np
import pytest

import deltalab as dl
from deltalab import ShapeError
from deltalab.models import AlarmworkNet
from deltalab.func import functional_call

NAMES = ("w_in2", "w_rec2", "b_in2", "w_in1", "w_rec1", "b_in1", "w_out", "b_out")
D, P, M, L = 2, 3, 2, 7


def reference_forward(p, x):
    """Dicts keyed by l = 1 … L (z2 also by 0): in2 updates on even l, holds on odd l."""
    z2, z1, y = {0: np.zeros(P)}, {}, {}
    for l in range(1, len(x) + 1):
        x_l = x[l - 1]
        if l % 2 == 0:
            z2[l] = np.tanh(p["w_in2"] @ x_l + p["w_rec2"] @ z2[l - 1] + p["b_in2"])
        else:
            z2[l] = z2[l - 1]
        z1[l] = np.tanh(p["w_in1"] @ x_l + p["w_rec1"] @ z2[l] + p["b_in1"])
        y[l] = np.tanh(p["w_out"] @ z1[l] + p["b_out"])
    return z2, z1, y


def reference_loss(p, x, t):
    _, _, y = reference_forward(p, x)
    return 0.5 * sum(np.sum((t[l - 1] - y[l]) ** 2) for l in y)


def finite_differences(p, x, t, eps=1e-6):
    grads = {}
    for name in NAMES:
        g = np.zeros_like(p[name])
        for i in np.ndindex(g.shape):
            plus, minus = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
            plus[name][i] += eps
            minus[name][i] -= eps
            g[i] = (reference_loss(plus, x, t) - reference_loss(minus, x, t)) / (2 * eps)
        grads[name] = g
    return grads


def hand_gradients(p, x, t, in2_rule):
    """Out and in1 by the seed's (3.1)–(3.7) summed over l; in2 by ``in2_rule``:
    "seed" -- (3.8)–(3.11), δ2[l] = (1 − z2[l]²) ∘ w_rec1ᵀ δ1[l] (stops after one step);
    "spec" -- g[l] = w_rec1ᵀ δ1[l] + w_rec1ᵀ δ1[l+1] + w_rec2ᵀ δ2[l+2], δ2[l] = (1 − z2[l]²) ∘ g[l].
    Returns the gradients and g[l] per even l."""
    z2, z1, y = reference_forward(p, x)
    n = len(x)
    grads = {name: np.zeros_like(v) for name, v in p.items()}
    delta1, delta2, g = {}, {}, {}
    for l in range(1, n + 1):
        delta_out = (t[l - 1] - y[l]) * (y[l] ** 2 - 1)  # (3.3)
        delta1[l] = (1 - z1[l] ** 2) * (p["w_out"].T @ delta_out)  # (3.7)
        grads["w_out"] += np.outer(delta_out, z1[l])
        grads["b_out"] += delta_out
        grads["w_in1"] += np.outer(delta1[l], x[l - 1])
        grads["b_in1"] += delta1[l]
        grads["w_rec1"] += np.outer(delta1[l], z2[l])
    for l in range(n - (n % 2), 0, -2):  # even l, going backward
        if in2_rule == "seed":
            g[l] = p["w_rec1"].T @ delta1[l]
        else:
            g[l] = p["w_rec1"].T @ delta1[l]
            if l + 1 <= n:
                g[l] = g[l] + p["w_rec1"].T @ delta1[l + 1]
            if l + 2 <= n:
                g[l] = g[l] + p["w_rec2"].T @ delta2[l + 2]
        delta2[l] = (1 - z2[l] ** 2) * g[l]
        grads["w_in2"] += np.outer(delta2[l], x[l - 1])
        grads["b_in2"] += delta2[l]
        grads["w_rec2"] += np.outer(delta2[l], z2[l - 1])
    return grads, g


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)))


@pytest.fixture
def problem():
    dl.manual_seed(21)
    net = AlarmworkNet(D, P, M)
    rng = np.random.default_rng(8)
    with dl.no_grad():
        for param in net.parameters():  # larger weights than the default init: strong recurrent paths
            param.data = rng.uniform(-1.2, 1.2, size=param.shape)
    x = rng.standard_normal((L, D))
    t = rng.uniform(-0.9, 0.9, size=(L, M))
    params = {name: getattr(net, name).numpy().copy() for name in NAMES}
    return net, params, x, t


def test_forward_follows_the_seed_step_numbering(problem):
    net, params, x, _ = problem
    y = net(dl.tensor(x))
    _, _, y_ref = reference_forward(params, x)
    np.testing.assert_allclose(y.numpy(), np.array([y_ref[l] for l in range(1, L + 1)]), rtol=1e-14)
    # l = 1 (array index 0) is odd: in2 holds z2[0] = 0; l = 2 (index 1) is its first update,
    # from z2[1] = 0, so the recurrent term vanishes there
    np.testing.assert_array_equal(net.z2[0].numpy(), np.zeros(P))
    np.testing.assert_allclose(net.z2[1].numpy(), np.tanh(params["w_in2"] @ x[1] + params["b_in2"]), rtol=1e-14)
    assert net.z2[2] is net.z2[1]  # l = 3 holds


def test_autodiff_gradients_equal_finite_differences_for_every_parameter(problem):
    net, params, x, t = problem
    net.loss(net(dl.tensor(x)), dl.tensor(t)).backward()
    numeric = finite_differences(params, x, t)
    for name in NAMES:
        assert relative_error(getattr(net, name).grad.numpy(), numeric[name]) < 1e-7, name


def test_spec_recursion_is_right_and_the_seed_in2_formulas_are_not(problem):
    net, params, x, t = problem
    numeric = finite_differences(params, x, t)
    spec, g = hand_gradients(params, x, t, "spec")
    seed, _ = hand_gradients(params, x, t, "seed")
    for name in NAMES:
        assert relative_error(spec[name], numeric[name]) < 1e-7, name
    for name in ("w_out", "b_out", "w_in1", "w_rec1", "b_in1"):  # seed 3.1–3.7: right
        assert relative_error(seed[name], numeric[name]) < 1e-7, name
    for name in ("w_in2", "b_in2", "w_rec2"):  # seed 3.8–3.11: stop after one step
        assert relative_error(seed[name], numeric[name]) > 0.05, name
    # and g[l] is the delta ∂E/∂z2[l] autodiff finds (the held copy at l+1 is the same tensor)
    y = net(dl.tensor(x))
    for z in net.z2:
        z.retain_grad()
    net.loss(y, dl.tensor(t)).backward()
    for l, g_l in g.items():
        np.testing.assert_allclose(net.z2[l - 1].grad.numpy(), g_l, rtol=1e-10, atol=1e-14)


def test_batched_gradients_equal_finite_differences():
    dl.manual_seed(3)
    net = AlarmworkNet(2, 3, 2)
    x = dl.tensor(np.random.default_rng(0).standard_normal((5, 4, 2)), requires_grad=True)

    def fn(*args):
        *weights, x = args
        return functional_call(net, dict(zip(NAMES, weights)), (x,))

    weights = [dl.tensor(getattr(net, n).numpy().copy(), requires_grad=True) for n in NAMES]
    result = dl.gradcheck(fn, *weights, x)
    assert result.passed, result.errors


def test_one_step_never_touches_the_slow_layer():
    net = AlarmworkNet(2, 3, 1)
    net.loss(net(dl.tensor([[0.5, -0.5]])), dl.tensor([[0.3]])).backward()
    assert net.w_in2.grad is None and net.b_in2.grad is None  # l = 1 is odd: in2 only holds z2[0] = 0


def test_bad_input_is_refused_naming_the_network_and_shapes():
    net = AlarmworkNet(2, 3, 1)
    with pytest.raises(ShapeError, match=r"AlarmworkNet\(input_size=2\).*\(0, 2\)"):
        net(dl.tensor(np.zeros((0, 2))))
    with pytest.raises(ShapeError, match=r"AlarmworkNet\(input_size=2\).*\(4, 3\)"):
        net(dl.tensor(np.zeros((4, 3))))

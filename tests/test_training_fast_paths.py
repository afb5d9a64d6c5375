"""Training-step fast paths that replace several graph nodes by one (the float32 cross-entropy of
class indices) against the general path (same bits) and torch."""
import numpy as np
import pytest
import torch

import deltalab as dl
import deltalab.functional as F
from deltalab import losses


def general_cross_entropy(x, t, reduction):
    """The five-node path: log-softmax, pick, negate, sum (/ N)."""
    log_p = dl.ops.log_softmax(x, axis=1)
    return losses._picked_loss("cross_entropy", log_p, t, 1, None, -100, reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n, c", [(16, 10), (1, 3), (5, 1), (33, 7)])
def test_float32_cross_entropy_of_indices_is_one_node_with_the_general_paths_bits(n, c, reduction):
    rng = np.random.default_rng(n * 10 + c)
    x = (rng.standard_normal((n, c)) * 4).astype(np.float32)
    t = rng.integers(0, c, n)
    results = []
    for fused in (True, False):
        xt = dl.tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, dl.tensor(t), reduction=reduction) if fused else \
            general_cross_entropy(xt, t, reduction)
        loss.backward(np.float32(0.75))
        results.append((loss.data, xt.grad.data, loss.grad_fn))
    (fused_loss, fused_grad, node), (loss, grad, _) = results
    assert node.name == "CrossEntropy" and not any(e is not None and e[0] is not None for e in node.edges)
    np.testing.assert_array_equal(fused_loss, loss)
    np.testing.assert_array_equal(fused_grad, grad)
    tx = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(t), reduction=reduction)
    tl.backward(torch.tensor(0.75))
    np.testing.assert_allclose(fused_loss, tl.item(), rtol=1e-6)
    np.testing.assert_allclose(fused_grad, tx.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", ["ignored", "weight", "none", "float64", "out of range"])
def test_cross_entropy_cases_outside_the_one_node_path_keep_the_general_path(case):
    rng = np.random.default_rng(3)
    dtype = np.float64 if case == "float64" else np.float32
    x = rng.standard_normal((6, 4)).astype(dtype)
    t = rng.integers(0, 4, 6)
    kwargs = {}
    if case == "ignored":
        t[2] = -100
    elif case == "weight":
        kwargs["weight"] = np.array([1.0, 2.0, 0.5, 1.0], dtype)
    elif case == "none":
        kwargs["reduction"] = "none"
    elif case == "out of range":
        t[0] = 4
        with pytest.raises(dl.errors.ClassIndexError, match="class indices must lie in 0..3"):
            F.cross_entropy(dl.tensor(x), dl.tensor(t))
        return
    xt = dl.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, dl.tensor(t), **kwargs)
    assert loss.grad_fn.name != "CrossEntropy"
    tx = torch.tensor(x, requires_grad=True)
    torch_kwargs = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(t), **torch_kwargs)
    loss.sum().backward()
    tl.sum().backward()
    np.testing.assert_allclose(loss.data, tl.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"betas": (0.3, 0.9), "weight_decay": 0.1},
                                     {"decoupled_weight_decay": True, "weight_decay": 0.01}])
def test_adam_updates_its_moments_in_place_with_torchs_values(options):
    """From the second step on Adam's moments are updated in place (as torch's exp_avg.lerp_):
    a reference to the state sees the step, and the values stay torch's, also after a state
    round trip through state_dict."""
    rng = np.random.default_rng(8)
    start = [rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    ours = [dl.nn.Parameter(a.copy()) for a in start]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in start]
    opt = dl.optim.Adam(ours, lr=0.01, **options)
    topt = torch.optim.Adam(theirs, lr=0.01, **options)
    for step in range(5):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in start]
        for p, tp, g in zip(ours, theirs, grads):
            p.grad, tp.grad = dl.tensor(g), torch.tensor(g)
        held = opt.state[ours[0]].get("exp_avg")
        opt.step()
        topt.step()
        if held is not None:
            assert opt.state[ours[0]]["exp_avg"] is held
        if step == 2:
            opt.load_state_dict(opt.state_dict())
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-7)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(opt.state[p]["exp_avg_sq"], topt.state[tp]["exp_avg_sq"].numpy(), rtol=1e-6)


@pytest.mark.parametrize("op", ["batch_norm", "max_pool", "avg_pool", "cross_entropy"])
def test_a_leafs_first_gradient_is_the_ops_fresh_array_and_later_ones_add(op):
    """Ops whose backward returns new arrays hand a leaf its first gradient without a copy (as
    torch's AccumulateGrad); a second backward still adds into it, a user's upstream gradient is
    never taken, and the values are torch's."""
    rng = np.random.default_rng(4)
    shape = (4, 3, 6, 6) if op != "cross_entropy" else (6, 5)
    x = rng.standard_normal(shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    xt = dl.tensor(x, requires_grad=True)

    def ours():
        with dl.tuning(kernel_min_work=1):
            if op == "batch_norm":
                return F.batch_norm(xt, None, None, training=True)
            if op == "max_pool":
                return F.max_pool2d(xt, 2)
            if op == "avg_pool":
                return F.avg_pool2d(xt, 2)
            return F.cross_entropy(xt, dl.tensor(np.arange(6) % 5))

    def theirs():
        if op == "batch_norm":
            return torch.nn.functional.batch_norm(tx, None, None, training=True)
        if op == "max_pool":
            return torch.nn.functional.max_pool2d(tx, 2)
        if op == "avg_pool":
            return torch.nn.functional.avg_pool2d(tx, 2)
        return torch.nn.functional.cross_entropy(tx, torch.arange(6) % 5)

    y = ours()
    upstream = np.ones(y.shape, np.float32) if y.ndim else None
    y.backward(upstream)
    first = xt.grad.data
    assert upstream is None or not np.shares_memory(first, upstream)
    ty = theirs()
    ty.backward(torch.ones(ty.shape) if ty.ndim else None)
    np.testing.assert_allclose(first, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    ours().backward(upstream)
    theirs().backward(torch.ones(ty.shape) if ty.ndim else None)
    np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-6)

"""Adam steps a whole parameter group as one flat array (torch's foreach, the default): the
same bits as stepping each parameter (``foreach=False``), whatever happens between steps."""
import numpy as np
import pytest

import deltalab as dl
from deltalab.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def make(dtype, foreach, **options):
    rng = np.random.default_rng(0)
    params = [dl.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in SHAPES]
    return params, dl.optim.Adam(params, lr=0.01, foreach=foreach, **options)


def train(dtype, foreach, steps=6, missing_at=None, reload_at=None, **options):
    params, opt = make(dtype, foreach, **options)
    rng = np.random.default_rng(1)
    for k in range(steps):
        for i, p in enumerate(params):
            missing = k == missing_at and i == 1
            p.grad = None if missing else Tensor(rng.standard_normal(p.data.shape).astype(dtype))
        opt.step()
        if k == reload_at:
            opt.load_state_dict(opt.state_dict())
    return params, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
                                     {"maximize": True}, {"amsgrad": True}])
@pytest.mark.parametrize("event", [{}, {"missing_at": 2}, {"reload_at": 2}])
def test_group_step_gives_the_per_parameter_bits(dtype, options, event):
    each, opt_each = train(dtype, False, **options, **event)
    group, opt_group = train(dtype, None, **options, **event)
    for a, b in zip(each, group):
        np.testing.assert_array_equal(b.data, a.data)
    for a, b in zip(each, group):
        for name, value in opt_each.state[a].items():
            np.testing.assert_array_equal(np.asarray(opt_group.state[b][name]), np.asarray(value), err_msg=name)


def test_group_step_matches_torch():
    torch = pytest.importorskip("torch")
    params, opt = make(np.float64, None)
    twins = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    reference = torch.optim.Adam(twins, lr=0.01)
    rng = np.random.default_rng(2)
    for _ in range(5):
        for p, t in zip(params, twins):
            g = rng.standard_normal(p.data.shape)
            p.grad, t.grad = Tensor(g), torch.tensor(g)
        opt.step()
        reference.step()
    for p, t in zip(params, twins):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(opt.state[p]["exp_avg_sq"], reference.state[t]["exp_avg_sq"].numpy(), rtol=1e-12)


def test_state_entries_follow_the_group_step():
    """The state entries are views of the flat moments: what state_dict saves is current."""
    params, opt = train(np.float32, None, steps=3)
    saved = opt.state_dict()["state"]
    for index, p in enumerate(params):
        assert opt.state[p]["step"] == 3
        np.testing.assert_array_equal(np.asarray(saved[index]["exp_avg"]), opt.state[p]["exp_avg"])
        assert opt.state[p]["exp_avg"].shape == p.data.shape

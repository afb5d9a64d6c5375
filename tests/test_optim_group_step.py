"""Adam's ``foreach`` (torch's default None, or False) is accepted and gives the same bits as
stepping each parameter, whatever happens between steps (a missing gradient, a reload, a
reshape, a deep copy), and torch's values."""
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
    """What state_dict saves is the current state."""
    params, opt = train(np.float32, None, steps=3)
    saved = opt.state_dict()["state"]
    for index, p in enumerate(params):
        assert opt.state[p]["step"] == 3
        np.testing.assert_array_equal(np.asarray(saved[index]["exp_avg"]), opt.state[p]["exp_avg"])
        assert opt.state[p]["exp_avg"].shape == p.data.shape


def test_a_parameter_given_new_values_of_another_shape_steps_alone():
    """A parameter whose values were replaced by an array of another shape fails (or not) as
    with foreach=False."""
    params, opt = train(np.float32, None, steps=2)
    params[0].data = np.zeros((2, 6), np.float32)
    params[0].grad = Tensor(np.ones((2, 6), np.float32))
    for p in params[1:]:
        p.grad = Tensor(np.ones_like(p.data))
    each, opt_each = train(np.float32, False, steps=2)
    each[0].data = np.zeros((2, 6), np.float32)
    each[0].grad = Tensor(np.ones((2, 6), np.float32))
    for p in each[1:]:
        p.grad = Tensor(np.ones_like(p.data))
    outcomes = []
    for optimizer in (opt, opt_each):
        try:
            optimizer.step()
            outcomes.append(None)
        except ValueError as error:
            outcomes.append(type(error))
    assert outcomes[0] == outcomes[1]


def test_a_deep_copied_optimizer_steps_from_its_own_state():
    import copy

    params, opt = train(np.float32, None, steps=2)
    twin = copy.deepcopy((params, opt))
    for optimizer, ps in ((opt, params), (twin[1], twin[0])):
        for p in ps:
            p.grad = Tensor(np.full_like(p.data, 0.5))
        next(iter(optimizer.state.values()))["exp_avg"][...] = 0.25  # an in-place change of the state
        optimizer.step()
    for a, b in zip(params, twin[0]):
        np.testing.assert_array_equal(a.data, b.data)

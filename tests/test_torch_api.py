"""The torch spelling means torch's behaviour: every Tensor method, in-place rule, factory and
module-level function here is run twice, in deltalab and in torch, on the same numbers; values,
gradients, dtypes and the exception types of the error cases must agree."""
import numpy as np
import pytest
import torch

import deltalab as dl
import deltalab.functional as F

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def torch_dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def assert_same(ours, theirs, what="value"):
    """Same dtype, shape and values (namedtuples and tuples element by element)."""
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs), what
        if hasattr(theirs, "_fields"):
            assert ours._fields == theirs._fields if hasattr(ours, "_fields") else False, what
        for a, b in zip(ours, theirs):
            assert_same(a, b, what)
        return
    if not isinstance(theirs, torch.Tensor):
        assert ours == theirs, what
        return
    assert isinstance(ours, dl.Tensor), f"{what}: {type(ours).__name__}, torch gives a Tensor"
    assert ours.dtype.name == torch_dtype_name(theirs), f"{what}: dtype {ours.dtype} vs {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {ours.shape} vs {tuple(theirs.shape)}"
    expected = theirs.detach().numpy()
    if expected.dtype.kind == "f":
        tol = TOLERANCE[expected.dtype.type]
        np.testing.assert_allclose(ours.data, expected, rtol=tol, atol=tol, err_msg=what)
    else:
        np.testing.assert_array_equal(ours.data, expected, err_msg=what)


def _float_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for item in out for o in _float_outputs(item)]
    if isinstance(out, (dl.Tensor, torch.Tensor)) and out.dtype in (np.float32, np.float64, torch.float32, torch.float64):
        return [out]
    return []


def twin(dl_fn, torch_fn, *arrays, grad=True, seed=1):
    """Run both on the same arrays; compare outputs, then the gradients of Σ(out · random weights)."""
    ours = [dl.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    out_ours, out_theirs = dl_fn(*ours), torch_fn(*theirs)
    assert_same(out_ours, out_theirs)
    if not grad:
        return out_ours
    pairs = [(o, t) for o, t in zip(_float_outputs(out_ours), _float_outputs(out_theirs)) if t.requires_grad]
    if not pairs:
        return out_ours
    rng = np.random.default_rng(seed)
    total_ours, total_theirs = 0, 0
    for o, t in pairs:
        w = rng.standard_normal(tuple(t.shape)).astype(o.dtype)
        total_ours = total_ours + (o * dl.tensor(w)).sum()
        total_theirs = total_theirs + (t * torch.tensor(w)).sum()
    total_ours.backward()
    total_theirs.backward()
    for o, t in zip(ours, theirs):
        if t.requires_grad:
            if t.grad is None:
                assert o.grad is None or not np.any(o.grad.data)
            else:
                assert_same(o.grad, t.grad, "gradient")
    return out_ours


def same_error(dl_fn, torch_fn, match=None):
    """Both raise, and deltalab's exception is an instance of torch's exception type."""
    with pytest.raises(Exception) as theirs:
        torch_fn()
    with pytest.raises(theirs.type, match=match):
        dl_fn()


# ------------------------------------------------------------------ comparisons and Python protocols
@pytest.mark.parametrize("op", ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"])
def test_comparisons_give_bool_tensors_elementwise(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([1.0, 0.0, 3.0])
    twin(lambda x, y: getattr(x, op)(y), lambda x, y: getattr(x, op)(y), a, b, grad=False)
    twin(lambda x: getattr(x, op)(2.0), lambda x: getattr(x, op)(2.0), a, grad=False)
    labels = np.array([0, 2, 1, 1])
    twin(lambda x, y: getattr(x, op)(y), lambda x, y: getattr(x, op)(y), labels, np.array([0, 1, 1, 2]), grad=False)


def test_per_class_accuracy_counts_matches():
    predicted, labels = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0])

    def accuracy(lib):
        p, t = lib.tensor(predicted), lib.tensor(labels)
        return [((p == t) & (t == c)).sum().item() for c in range(3)], (p == t).float().mean().item()

    assert accuracy(dl) == accuracy(torch)
    assert accuracy(dl)[0] == [1, 1, 2]


def test_tensors_hash_by_identity_so_sets_and_dicts_still_work():
    a, b = dl.tensor([1.0, 2.0]), dl.tensor([1.0, 2.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    assert a in [a] and (a == b).all()
    assert (a == None) is False and (a != None) is True  # noqa: E711 - torch's behaviour


def test_bool_of_one_element_and_torch_error_otherwise():
    assert bool(dl.tensor([3.0])) is True and bool(dl.tensor(0.0)) is False
    same_error(lambda: bool(dl.tensor([1.0, 2.0])), lambda: bool(torch.tensor([1.0, 2.0])),
               "more than one value is ambiguous")
    same_error(lambda: bool(dl.zeros(0)), lambda: bool(torch.zeros(0)), "no values")
    same_error(lambda: dl.tensor([1.0, 2.0]).item(), lambda: torch.tensor([1.0, 2.0]).item())


def test_len_iter_float_int_abs_and_format():
    x = rand(3, 2)
    assert len(dl.tensor(x)) == 3
    rows = list(dl.tensor(x, requires_grad=True))
    assert [r.shape for r in rows] == [(2,)] * 3
    twin(lambda t: tuple(t), lambda t: tuple(t), x)
    same_error(lambda: len(dl.tensor(1.0)), lambda: len(torch.tensor(1.0)))
    same_error(lambda: iter(dl.tensor(1.0)), lambda: iter(torch.tensor(1.0)))
    assert float(dl.tensor([2.5])) == 2.5 and int(dl.tensor(7)) == 7
    twin(lambda t: abs(t), lambda t: abs(t), x)
    assert f"{dl.tensor(1.23456):.2f}" == f"{torch.tensor(1.23456):.2f}" == "1.23"
    assert list(range(dl.tensor(3))) == [0, 1, 2]
    assert 2.0 in dl.tensor([1.0, 2.0]) and 5.0 not in dl.tensor([1.0, 2.0])


def test_size_dim_numel_item_tolist():
    x = rand(2, 3, 4)
    t, r = dl.tensor(x), torch.tensor(x)
    assert t.size() == r.size() and t.size(1) == r.size(1) == 3 and t.size(-1) == 4
    assert t.dim() == r.dim() and t.numel() == r.numel() and t.tolist() == r.tolist()
    assert t.size().numel() == 24 and t.sum().item() == pytest.approx(r.sum().item(), abs=1e-12)
    same_error(lambda: t.size(3), lambda: r.size(3))


# ------------------------------------------------------------------ dtypes: integers, bools, conversions
def test_integer_and_bool_results_where_torch_has_them():
    x = rand(4, 5)
    twin(lambda t: t.argmax(), lambda t: t.argmax(), x)
    twin(lambda t: t.argmax(1), lambda t: t.argmax(1), x)
    twin(lambda t: t.argmin(0, keepdim=True), lambda t: t.argmin(0, keepdim=True), x)
    twin(lambda t: (t > 0).sum(), lambda t: (t > 0).sum(), x)
    twin(lambda t: (t > 0).sum(1), lambda t: (t > 0).sum(1), x)
    twin(lambda t: t.sum(), lambda t: t.sum(), np.array([[1, 2], [3, 4]]), grad=False)
    twin(lambda t: t.argmax(1).float(), lambda t: t.argmax(1).float(), x)
    same_error(lambda: dl.tensor([1, 2]).mean(), lambda: torch.tensor([1, 2]).mean(), "mean")
    same_error(lambda: dl.tensor([1, 2], dtype=dl.int64).requires_grad_(),
               lambda: torch.tensor([1, 2]).requires_grad_(), "floating point")


@pytest.mark.parametrize("convert", ["float", "double", "long", "int", "bool"])
def test_dtype_conversions(convert):
    x = np.array([[1.7, -2.2, 0.0], [3.5, 0.4, -0.6]])
    twin(lambda t: getattr(t, convert)(), lambda t: getattr(t, convert)(), x)


def test_to_and_type():
    x = rand(2, 3, dtype=np.float32)
    twin(lambda t: t.to(dl.float64), lambda t: t.to(torch.float64), x)
    twin(lambda t: t.to("cpu", dl.int64), lambda t: t.to("cpu", torch.int64), x)
    twin(lambda t: t.type(dl.float64), lambda t: t.type(torch.float64), x)
    twin(lambda t: t.to(dtype=dl.long), lambda t: t.to(dtype=torch.long), x)
    t = dl.tensor(x)
    assert t.to("cpu") is t and t.cpu() is t and t.to(dl.float32) is t
    assert t.type() == torch.tensor(x).type() == "torch.FloatTensor"
    assert t.device == "cpu" and str(t.device) == "cpu"
    with pytest.raises(RuntimeError, match="CPU only"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        t.cuda()


def test_integer_tensors_promote_as_torch():
    i, f32 = np.array([1, 2, 3]), np.array([0.5, 1.5, 2.5], dtype=np.float32)
    twin(lambda a: a * 0.5, lambda a: a * 0.5, i, grad=False)
    twin(lambda a: a / 2, lambda a: a / 2, i, grad=False)
    twin(lambda a, b: a / b, lambda a, b: a / b, i, np.array([2, 4, 5]), grad=False)
    twin(lambda a, b: a + b, lambda a, b: a + b, i, f32)
    twin(lambda a: a.exp(), lambda a: a.exp(), i, grad=False)
    twin(lambda a: (a > 1) * 2.0, lambda a: (a > 1) * 2.0, i, grad=False)
    twin(lambda a: a + 1, lambda a: a + 1, i, grad=False)
    twin(lambda a: a // 2, lambda a: a // 2, np.array([5, -3, 7]), grad=False)
    twin(lambda a: a % 3, lambda a: a % 3, np.array([5, -3, 7]), grad=False)


# ------------------------------------------------------------------ reductions
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_dim_keepdim(name, dim, keepdim):
    x = rand(2, 3, 4)
    if dim is None:
        twin(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x)
    else:
        twin(lambda t: getattr(t, name)(dim, keepdim), lambda t: getattr(t, name)(dim, keepdim), x)
        twin(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), x)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_min_along_a_dim_return_values_and_indices(dim, keepdim):
    x = rand(3, 4, 5)
    out = twin(lambda t: t.max(dim, keepdim), lambda t: t.max(dim, keepdim), x)
    assert out.values is out[0] and out.indices.dtype == np.int64
    twin(lambda t: t.min(dim=dim, keepdim=keepdim), lambda t: t.min(dim=dim, keepdim=keepdim), x)
    twin(lambda t: dl.max(t, dim), lambda t: torch.max(t, dim), x)
    values, indices = dl.tensor(x).max(dim)
    assert indices.dtype == np.int64


def test_full_max_and_amax_share_the_gradient_of_ties_as_torch():
    x = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])
    twin(lambda t: t.max(), lambda t: t.max(), x)
    twin(lambda t: t.min(), lambda t: t.min(), -x)
    twin(lambda t: t.amax(1), lambda t: t.amax(1), x)
    twin(lambda t: t.amax((0, 1), keepdim=True), lambda t: t.amax((0, 1), keepdim=True), x)
    twin(lambda t: t.amin(0), lambda t: t.amin(0), x)
    twin(lambda t, u: t.max(u), lambda t, u: t.max(u), x, x[::-1].copy())
    twin(lambda t, u: dl.maximum(t, u), lambda t, u: torch.maximum(t, u), x, np.full_like(x, 3.0))
    twin(lambda t, u: dl.minimum(t, u), lambda t, u: torch.minimum(t, u), x, np.full_like(x, 2.0))


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_var_std_logsumexp_norm_cumsum(dim):
    x = rand(3, 4)
    x[1, 2] = 0.0  # prod's gradient is exact with a zero
    kw = {} if dim is None else {"dim": dim}
    twin(lambda t: t.prod(**kw), lambda t: t.prod(**kw), x)
    twin(lambda t: t.var(**kw), lambda t: t.var(**kw), x)
    twin(lambda t: t.std(**kw), lambda t: t.std(**kw), x)
    twin(lambda t: t.var(**kw, unbiased=False), lambda t: t.var(**kw, unbiased=False), x)
    twin(lambda t: t.norm(**kw), lambda t: t.norm(**kw), x)
    if dim is not None:
        twin(lambda t: t.logsumexp(dim), lambda t: t.logsumexp(dim), x * 100)
        twin(lambda t: t.cumsum(dim), lambda t: t.cumsum(dim), x)
        twin(lambda t: t.std(dim, keepdim=True), lambda t: t.std(dim, keepdim=True), x)


def test_all_any():
    m = np.array([[True, False], [True, True]])
    for call in (lambda t: t.all(), lambda t: t.any(), lambda t: t.all(1), lambda t: t.any(0, keepdim=True)):
        twin(call, call, m, grad=False)


@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_log_softmax_dim(dim):
    x = rand(3, 4)
    twin(lambda t: t.softmax(dim), lambda t: t.softmax(dim), x)
    twin(lambda t: t.log_softmax(dim=dim), lambda t: t.log_softmax(dim=dim), x)
    twin(lambda t: F.softmax(t, dim=dim), lambda t: torch.nn.functional.softmax(t, dim=dim), x)
    twin(lambda t: F.log_softmax(t, dim=dim), lambda t: torch.nn.functional.log_softmax(t, dim=dim), x)


def test_reduction_dim_out_of_range_is_an_index_error():
    same_error(lambda: dl.ones(2, 3).sum(2), lambda: torch.ones(2, 3).sum(2), "out of range")


# ------------------------------------------------------------------ indexing ops
@pytest.mark.parametrize("largest", [True, False])
def test_topk_and_sort(largest):
    x = rand(3, 6)
    twin(lambda t: t.topk(2, largest=largest), lambda t: t.topk(2, largest=largest), x)
    twin(lambda t: t.topk(2, dim=0, largest=largest), lambda t: t.topk(2, dim=0, largest=largest), x)
    twin(lambda t: t.sort(descending=largest), lambda t: t.sort(descending=largest), x)
    twin(lambda t: t.sort(0), lambda t: t.sort(0), x)
    twin(lambda t: t.argsort(1), lambda t: t.argsort(1), x, grad=False)


def test_gather_scatter_masked_fill_where_clamp():
    x = rand(3, 4)
    index = np.array([[0, 3], [1, 1], [2, 0]])
    twin(lambda t, i: t.gather(1, i), lambda t, i: t.gather(1, i), x, index)
    twin(lambda t, i: dl.gather(t, 0, i), lambda t, i: torch.gather(t, 0, i), x, np.array([[0, 2, 1, 0]]))
    src = rand(3, 2, seed=5)
    twin(lambda t, i, s: t.scatter(1, i[:, :1], s[:, :1]), lambda t, i, s: t.scatter(1, i[:, :1], s[:, :1]),
         x, index, src)
    twin(lambda t, i, s: t.scatter_add(1, i, s), lambda t, i, s: t.scatter_add(1, i, s), x, index, src)
    twin(lambda t, i: t.scatter(1, i, 0.5), lambda t, i: t.scatter(1, i, 0.5), x, index)
    mask = x > 0
    twin(lambda t, m: t.masked_fill(m, -1.0), lambda t, m: t.masked_fill(m, -1.0), x, mask)
    twin(lambda t, m: dl.where(m, t, t * 2), lambda t, m: torch.where(m, t, t * 2), x, mask)
    twin(lambda t, m: dl.where(m, t, 0.0), lambda t, m: torch.where(m, t, 0.0), x, mask)
    twin(lambda t: t.clamp(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5), x)
    twin(lambda t: t.clamp(min=0.0), lambda t: t.clamp(min=0.0), x)
    twin(lambda t: dl.clamp(t, max=0.1), lambda t: torch.clamp(t, max=0.1), x)
    same_error(lambda: dl.tensor(x).masked_fill(dl.tensor([1, 0, 1, 0]), 0.0),
               lambda: torch.tensor(x).masked_fill(torch.tensor([1, 0, 1, 0]), 0.0))
    same_error(lambda: dl.ones(3).gather(0, dl.tensor([0.5])), lambda: torch.ones(3).gather(0, torch.tensor([0.5])))


def test_index_select_narrow_flip_unbind_nonzero():
    x = rand(4, 3)
    twin(lambda t: t.index_select(0, dl.tensor([2, 0, 2])), lambda t: t.index_select(0, torch.tensor([2, 0, 2])), x)
    twin(lambda t: t.narrow(1, 1, 2), lambda t: t.narrow(1, 1, 2), x)
    twin(lambda t: t.flip(0), lambda t: t.flip(0), x)
    twin(lambda t: t.unbind(1), lambda t: t.unbind(1), x)
    twin(lambda t: (t > 0).nonzero(), lambda t: (t > 0).nonzero(), x, grad=False)
    twin(lambda t: t[t > 0], lambda t: t[t > 0], x)
    twin(lambda t: t[dl.tensor([0, 0, 3])], lambda t: t[torch.tensor([0, 0, 3])], x)
    same_error(lambda: dl.ones(2, 3)[5], lambda: torch.ones(2, 3)[5])


# ------------------------------------------------------------------ shape ops
def test_view_reshape_permute_transpose_t_contiguous():
    x = rand(2, 3, 4)
    twin(lambda t: t.view(6, 4), lambda t: t.view(6, 4), x)
    twin(lambda t: t.view(-1), lambda t: t.view(-1), x)
    twin(lambda t: t.reshape((4, -1)), lambda t: t.reshape((4, -1)), x)
    twin(lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), x)
    twin(lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2), x)
    twin(lambda t: t.transpose(-1, 1), lambda t: t.transpose(-1, 1), x)
    twin(lambda t: t[0].t(), lambda t: t[0].t(), x)
    twin(lambda t: t.transpose(0, 1).contiguous().view(-1), lambda t: t.transpose(0, 1).contiguous().view(-1), x)
    twin(lambda t: t.flatten(1), lambda t: t.flatten(1), x)
    twin(lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1), x)
    twin(lambda t: t.unsqueeze(1).squeeze(1), lambda t: t.unsqueeze(1).squeeze(1), x)
    twin(lambda t: t[:1].squeeze(0), lambda t: t[:1].squeeze(0), x)
    twin(lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1), x)
    twin(lambda t: t.unflatten(2, (2, 2)), lambda t: t.unflatten(2, (2, 2)), x)
    assert not dl.tensor(x).transpose(0, 1).is_contiguous()
    same_error(lambda: dl.tensor(x).transpose(0, 1).view(-1), lambda: torch.tensor(x).transpose(0, 1).view(-1),
               "view size is not compatible")
    same_error(lambda: dl.tensor(x).view(5), lambda: torch.tensor(x).view(5))
    same_error(lambda: dl.tensor(x).permute(0, 1), lambda: torch.tensor(x).permute(0, 1))
    same_error(lambda: dl.tensor(x).t(), lambda: torch.tensor(x).t())


def test_chunk_split_expand_repeat():
    x = rand(5, 3)
    twin(lambda t: t.chunk(2), lambda t: t.chunk(2), x)
    twin(lambda t: t.chunk(3, dim=1), lambda t: t.chunk(3, dim=1), x)
    twin(lambda t: t.split(2), lambda t: t.split(2), x)
    twin(lambda t: t.split([1, 4]), lambda t: t.split([1, 4]), x)
    twin(lambda t: dl.split(t, 1, dim=1), lambda t: torch.split(t, 1, dim=1), x)
    twin(lambda t: t[:, :1].expand(5, 4), lambda t: t[:, :1].expand(5, 4), x)
    twin(lambda t: t[:1].expand(2, -1, 3), lambda t: t[:1].expand(2, -1, 3), x)
    twin(lambda t: t.repeat(2, 1), lambda t: t.repeat(2, 1), x)
    twin(lambda t: t.repeat(2, 1, 3), lambda t: t.repeat(2, 1, 3), x)
    twin(lambda t: t[0].expand_as(t), lambda t: t[0].expand_as(t), x)
    same_error(lambda: dl.tensor(x).split([1, 1]), lambda: torch.tensor(x).split([1, 1]))
    same_error(lambda: dl.tensor(x).expand(5, 4), lambda: torch.tensor(x).expand(5, 4))


def test_cat_stack_with_dim():
    a, b = rand(2, 3), rand(2, 3, seed=4)
    twin(lambda s, t: dl.cat([s, t], dim=1), lambda s, t: torch.cat([s, t], dim=1), a, b)
    twin(lambda s, t: dl.cat((s, t)), lambda s, t: torch.cat((s, t)), a, b)
    twin(lambda s, t: dl.stack([s, t], dim=-1), lambda s, t: torch.stack([s, t], dim=-1), a, b)
    twin(lambda s, t: dl.stack([s, t]), lambda s, t: torch.stack([s, t]), a, b)


# ------------------------------------------------------------------ elementwise methods
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "sin", "cos", "abs", "neg", "square",
                                  "floor", "ceil", "round", "trunc", "sign", "expm1"])
def test_unary_methods(name):
    x = rand(3, 4)
    twin(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x)
    twin(lambda t: getattr(dl, name)(t), lambda t: getattr(torch, name)(t), x)


@pytest.mark.parametrize("name", ["log", "sqrt", "log1p", "rsqrt", "reciprocal"])
def test_unary_methods_on_positive_values(name):
    x = np.abs(rand(3, 4)) + 0.1
    twin(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x)


def test_binary_methods_and_products():
    a, b = rand(3, 4), rand(3, 4, seed=3)
    for name in ("add", "sub", "mul", "div", "pow"):
        base = np.abs(a) + 0.5 if name == "pow" else a
        twin(lambda s, t: getattr(s, name)(t), lambda s, t: getattr(s, name)(t), base, b)
        twin(lambda s, t: getattr(dl, name)(s, t), lambda s, t: getattr(torch, name)(s, t), base, b)
    twin(lambda s, t: s.add(t, alpha=2.5), lambda s, t: s.add(t, alpha=2.5), a, b)
    twin(lambda s, t: s.sub(t, alpha=0.5), lambda s, t: s.sub(t, alpha=0.5), a, b)
    twin(lambda s: s.pow(2), lambda s: s.pow(2), a)
    twin(lambda s, t: s.mm(t), lambda s, t: s.mm(t), a, b.T.copy())
    twin(lambda s, t: dl.mm(s, t), lambda s, t: torch.mm(s, t), a, b.T.copy())
    twin(lambda s, t: s.matmul(t), lambda s, t: s.matmul(t), a, b[0].copy())
    twin(lambda s, t: s.bmm(t), lambda s, t: s.bmm(t), rand(2, 3, 4), rand(2, 4, 5, seed=2))
    twin(lambda s, t: dl.matmul(s, t), lambda s, t: torch.matmul(s, t), rand(2, 3, 4), rand(4, 2, seed=2))
    twin(lambda s, t: s.div(t, rounding_mode="floor"), lambda s, t: s.div(t, rounding_mode="floor"), a, b)
    same_error(lambda: dl.ones(2, 3) @ dl.ones(2, 3), lambda: torch.ones(2, 3) @ torch.ones(2, 3))
    same_error(lambda: dl.ones(2, 3) + dl.ones(2, 4), lambda: torch.ones(2, 3) + torch.ones(2, 4))
    same_error(lambda: dl.ones(2, 3) == dl.ones(2, 4), lambda: torch.ones(2, 3) == torch.ones(2, 4))


def test_module_level_functions():
    x = rand(3, 4)
    for name, args in [("sum", ()), ("sum", (1,)), ("mean", (0,)), ("tanh", ()), ("sigmoid", ()), ("exp", ()),
                       ("abs", ()), ("argmax", ()), ("argmax", (1,)), ("flatten", ()), ("max", ()), ("min", ()),
                       ("max", (1,)), ("min", (0,))]:
        twin(lambda t: getattr(dl, name)(t, *args), lambda t: getattr(torch, name)(t, *args), x)
    twin(lambda t: dl.log(t.abs()), lambda t: torch.log(t.abs()), x)
    twin(lambda t: dl.reshape(t, (2, 6)), lambda t: torch.reshape(t, (2, 6)), x)
    twin(lambda t: dl.sum(t, dim=(0, 1), keepdim=True), lambda t: torch.sum(t, dim=(0, 1), keepdim=True), x)
    twin(lambda t: dl.flatten(t, start_dim=0, end_dim=1), lambda t: torch.flatten(t, start_dim=0, end_dim=1), x)


# ------------------------------------------------------------------ in place
def test_manual_sgd_step_in_no_grad_changes_the_modules_parameters():
    x = rand(5, 3)
    ours, theirs = dl.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    weight = ours.weight
    for _ in range(3):
        loss_ours = (ours(dl.tensor(x, dtype=dl.float32)) ** 2).sum()
        loss_theirs = (theirs(torch.tensor(x, dtype=torch.float32)) ** 2).sum()
        assert loss_ours.item() == pytest.approx(loss_theirs.item(), rel=1e-5)
        ours.zero_grad()
        theirs.zero_grad()
        loss_ours.backward()
        loss_theirs.backward()
        with dl.no_grad():
            for p in ours.parameters():
                p -= 0.1 * p.grad
        with torch.no_grad():
            for p in theirs.parameters():
                p -= 0.1 * p.grad
    assert ours.weight is weight
    assert_same(ours.weight, theirs.weight)
    assert_same(ours.bias, theirs.bias)


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
def test_inplace_arithmetic_in_no_grad(op):
    a, b = rand(3, 4), rand(4, seed=2)
    ours, theirs = dl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with dl.no_grad():
        out = getattr(ours, op)(dl.tensor(b))
    with torch.no_grad():
        getattr(theirs, op)(torch.tensor(b))
    assert out is ours
    assert_same(ours, theirs)


def test_augmented_assignment_changes_the_tensor_itself():
    a = rand(2, 3)
    ours, theirs = dl.tensor(a), torch.tensor(a)
    for t in (ours, theirs):
        alias = t
        alias += 1.0
        alias *= 3.0
        alias -= 0.5
        alias /= 2.0
    assert_same(ours, theirs)  # changed through the alias: += is in place
    for lib in (dl, torch):
        mask = lib.tensor([True, False, False])
        alias = mask
        alias |= lib.tensor([False, True, False])
        alias &= lib.tensor([True, True, False])
        assert mask.tolist() == [True, True, False]
        n = lib.tensor([7, 8])
        alias = n
        alias //= 2
        alias %= 3
        assert n.tolist() == [0, 1]
    counts = dl.zeros(3, dtype=dl.int64)
    counts += 2
    assert counts.tolist() == [2, 2, 2] and counts.dtype == np.int64


def test_fill_zero_copy_clamp_setitem():
    a = rand(3, 4)
    for call in (lambda t: t.zero_(), lambda t: t.fill_(2.5), lambda t: t.clamp_(-0.2, 0.3),
                 lambda t: t.copy_(t[0] * 0 + 7),
                 lambda t: t.__setitem__((slice(None), 1), 9.0),
                 lambda t: t.__setitem__(t > 0, 0.0),
                 lambda t: t.__setitem__(0, t[1] * 2),
                 lambda t: t.masked_fill_(t < 0, 1.0)):
        ours, theirs = dl.tensor(a), torch.tensor(a)
        call(ours)
        call(theirs)
        assert_same(ours, theirs)
    labels = dl.zeros(3, dtype=dl.int64)
    labels[1] = 2.7  # cast like torch (truncates)
    assert labels.tolist() == torch.tensor([0, 2, 0]).tolist()


def test_normal_uniform_fill_in_no_grad():
    dl.manual_seed(0)
    w = dl.zeros(20000, requires_grad=True)
    with dl.no_grad():
        w.normal_(1.0, 2.0)
    assert abs(w.data.mean() - 1.0) < 0.05 and abs(w.data.std() - 2.0) < 0.05
    with dl.no_grad():
        w.uniform_(-1.0, 3.0)
    assert w.data.min() >= -1.0 and w.data.max() < 3.0 and abs(w.data.mean() - 1.0) < 0.05
    assert w.dtype == np.float32
    same_error(lambda: dl.zeros(3, requires_grad=True).normal_(), lambda: torch.zeros(3, requires_grad=True).normal_(),
               "leaf Variable")


def test_inplace_on_a_leaf_that_requires_grad_outside_no_grad_is_torchs_error():
    for call in (lambda t: t.add_(1), lambda t: t.zero_(), lambda t: t.__isub__(1.0),
                 lambda t: t.__setitem__(0, 1.0), lambda t: t.copy_(t.detach() * 2)):
        same_error(lambda: call(dl.ones(3, requires_grad=True)), lambda: call(torch.ones(3, requires_grad=True)),
                   "a leaf Variable that requires grad is being used in an in-place operation")
    same_error(lambda: dl.ones(3, requires_grad=True)[:2].add_(1), lambda: torch.ones(3, requires_grad=True)[:2].add_(1),
               "a view of a leaf Variable")


def test_inplace_errors_for_dtype_shape_and_expanded_tensors():
    same_error(lambda: dl.zeros(3, dtype=dl.long).add_(1.5), lambda: torch.zeros(3, dtype=torch.long).add_(1.5),
               "can't be cast")
    same_error(lambda: dl.zeros(3).add_(dl.zeros(2, 3)), lambda: torch.zeros(3).add_(torch.zeros(2, 3)),
               "doesn't match the broadcast shape")
    same_error(lambda: dl.ones(2).expand(3, 2).add_(1), lambda: torch.ones(2).expand(3, 2).add_(1),
               "more than one element")


def test_a_value_saved_for_backward_and_changed_in_place_raises_at_backward():
    def changed_output(lib):
        x = lib.ones(3, requires_grad=True)
        y = x.exp()
        y.add_(1)
        return y.sum()

    def changed_input(lib):
        w = lib.ones(3, requires_grad=True)
        x = lib.ones(3)
        y = w * x
        x.mul_(2)
        return y.sum()

    for build in (changed_output, changed_input):
        theirs, ours = build(torch), build(dl)
        same_error(ours.backward, theirs.backward, "modified by an inplace operation")


def test_an_inplace_change_of_a_value_nothing_saved_is_fine():
    def program(lib):
        x = lib.ones(3, requires_grad=True)
        y = x + 1
        z = y + 2  # add saves nothing
        y.mul_(3)
        (z.sum() + y.sum()).backward()
        return x.grad

    assert_same(program(dl), program(torch))


def test_views_share_the_version_counter():
    def program(lib):
        w, v = lib.ones(3, requires_grad=True), lib.ones(4)
        out = (w * v[:3]).sum()
        v[3] = 5.0  # the saved view v[:3] shares v's buffer and version
        return out

    same_error(program(dl).backward, program(torch).backward, "modified by an inplace operation")
    t = dl.ones(3, requires_grad=True)
    d = t.detach()
    y = t.exp()
    (y * 1).detach().zero_()  # a detached copy of another tensor: nothing y saved
    y.sum().backward()
    assert d.data is t.data


def test_recorded_inplace_ops_give_torchs_gradients():
    a, b = rand(3, 4), rand(3, 4, seed=7)

    def program(x, w):
        y = x * 2
        y.add_(w)
        y.mul_(w)
        y[0] = w[1] * 3
        y[:, 1] += w[:, 2]
        y.clamp_(-1.0, 1.0)
        buf = x.new_zeros((3, 4)) if isinstance(x, torch.Tensor) else dl.zeros(3, 4, dtype=x.dtype)
        buf[1:] = y[:2]
        buf += y
        return buf

    twin(program, program, a, b)


def test_detach_requires_grad_and_clone():
    a = rand(3)
    twin(lambda t: t.clone() * 2, lambda t: t.clone() * 2, a)
    t = dl.tensor(a, requires_grad=True)
    d = t.detach()
    assert not d.requires_grad and np.shares_memory(d.data, t.data)
    y = t * 2
    assert y.detach_() is y and y.grad_fn is None and not y.requires_grad
    same_error(lambda: (dl.ones(2, requires_grad=True) * 2).requires_grad_(False),
               lambda: (torch.ones(2, requires_grad=True) * 2).requires_grad_(False), "leaf variables")
    assert dl.zeros(2).requires_grad_().requires_grad


@pytest.mark.parametrize("call", [
    lambda lib, a, mask: a.permute(dims=(1, 0)), lambda lib, a, mask: a.transpose(dim0=1, dim1=0),
    lambda lib, a, mask: a.split(split_size=2, dim=1), lambda lib, a, mask: lib.split(a, split_size_or_sections=[1, 3], dim=1),
    lambda lib, a, mask: lib.where(mask, 1.0, 0.0), lambda lib, a, mask: lib.where(mask, 1, 0),
    lambda lib, a, mask: lib.where(mask, 1, 0.5), lambda lib, a, mask: lib.where(mask, a, 0.0),
])
def test_keyword_spellings_and_scalar_where_are_torchs(call):
    a, mask = rand(3, 4), rand(3, 4, seed=2) > 0
    assert_same(call(dl, dl.tensor(a), dl.tensor(mask)), call(torch, torch.tensor(a), torch.tensor(mask)))


def test_python_scalar_conversions_and_bad_rounding_mode_raise_torchs_errors():
    for call in (lambda lib: float(lib.ones(2)), lambda lib: int(lib.ones(2, 2)), lambda lib: float(lib.ones(0)),
                 lambda lib: lib.ones(2).item(), lambda lib: lib.ones(2).div(2, rounding_mode="round"),
                 lambda lib: lib.ones(2).permute(0, dims=(0,)), lambda lib: lib.ones(2, 2).transpose(dim0=0)):
        same_error(lambda: call(dl), lambda: call(torch))


def test_assigning_a_tensor_to_data_gives_its_values_as_torch():
    w = rand(3, 2, seed=4).astype(np.float32)
    x = rand(1, 2, seed=5).astype(np.float32)
    outputs = []
    for lib in (dl, torch):
        layer = lib.nn.Linear(2, 3)
        new = lib.tensor(w)
        layer.weight.data = new  # the tutorials' weight initialisation
        layer.bias.data = lib.zeros(3)
        outputs.append(layer(lib.tensor(x)).detach().numpy())
        new.add_(1)  # the memory is shared, as torch's
        assert np.allclose(np.asarray(layer.weight.detach().numpy()), w + 1)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6)


# ------------------------------------------------------------------ factories
def test_factories_dtypes_and_shapes_match_torch():
    cases = [
        (lambda lib: lib.zeros(2, 3)), (lambda lib: lib.ones((2, 3))), (lambda lib: lib.empty(4).zero_()),
        (lambda lib: lib.full((2, 2), 7)), (lambda lib: lib.full((2,), 1.5)), (lambda lib: lib.full((2,), True)),
        (lambda lib: lib.arange(5)), (lambda lib: lib.arange(1, 2, 0.25)), (lambda lib: lib.arange(0, 10, 3)),
        (lambda lib: lib.arange(5.0)), (lambda lib: lib.linspace(0, 1, 5)), (lambda lib: lib.eye(3)),
        (lambda lib: lib.eye(2, 3)), (lambda lib: lib.tensor([1.0, 2.0])), (lambda lib: lib.tensor([1, 2])),
        (lambda lib: lib.tensor([True, False])), (lambda lib: lib.tensor(3.5)),
        (lambda lib: lib.tensor(np.array([1.0, 2.0]))), (lambda lib: lib.tensor(np.array([1.0], np.float32))),
        (lambda lib: lib.zeros(2, dtype=lib.int64)), (lambda lib: lib.ones(2, dtype=lib.bool)),
        (lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.float64))), (lambda lib: lib.ones_like(lib.tensor([1, 2]))),
        (lambda lib: lib.full_like(lib.ones(2), 3.0)), (lambda lib: lib.from_numpy(np.arange(3))),
        (lambda lib: lib.as_tensor([1.0, 2.0])), (lambda lib: lib.tensor([1, 2], dtype=lib.float32)),
        (lambda lib: lib.zeros(2, 3, device="cpu")),
    ]
    for make in cases:
        assert_same(make(dl), make(torch))
    for make in (lambda lib: lib.rand(3, 2), lambda lib: lib.randn(4), lambda lib: lib.randint(0, 5, (3,)),
                 lambda lib: lib.randint(5, (2, 2)), lambda lib: lib.randn(2, dtype=lib.float64),
                 lambda lib: lib.randperm(5), lambda lib: lib.rand_like(lib.ones(2, dtype=lib.float64))):
        ours, theirs = make(dl), make(torch)
        assert ours.dtype.name == torch_dtype_name(theirs) and tuple(ours.shape) == tuple(theirs.shape)
    assert str(torch.get_default_dtype()) == f"torch.{dl.get_default_dtype()}"



def deterministic(t):
    """What a factory gives apart from its random values: shape, dtype, requires_grad."""
    return tuple(t.shape), torch_dtype_name(t) if isinstance(t, torch.Tensor) else t.dtype.name, t.requires_grad


FACTORY_FORMS = [
    "zeros(size=(2, 3))", "zeros(size=[2])", "ones(size=(2,), dtype=lib.float64)", "zeros(lib.Size([2, 3]))",
    "zeros(np.int64(3))", "zeros(lib.tensor(3))", "zeros(())", "zeros(2, 0)", "empty(size=(2, 3))",
    "empty(2, layout=lib.strided)", "empty(2, memory_format=lib.contiguous_format)", "empty(2, pin_memory=False)",
    "zeros(2, dtype=lib.float64, requires_grad=True)", "ones(2, 2, dtype=lib.bool)",
    "full(size=(2,), fill_value=1.5)", "full([2, 2], 2, dtype=lib.float64)", "full((2,), lib.tensor(3.0))",
    "full((2,), 1.0, requires_grad=True)", "full((2,), 3, dtype=None)",
    "rand(size=(2, 3))", "rand(2, 3, dtype=lib.float64, requires_grad=True)", "randn(size=(4,))",
    "randn((2, 3), requires_grad=True)", "randint(5, (3,))", "randint(2, 5, (3,))", "randint(5, size=(3,))",
    "randint(low=2, high=5, size=(3,))", "randint(high=5, size=(3,))", "randint(0, 5, size=(3,), dtype=lib.float32)",
    "randint_like(lib.ones(2), 5)", "randint_like(lib.ones(2, dtype=lib.int64), 2, 5)",
    "rand_like(lib.ones(2), dtype=lib.float64)", "zeros_like(lib.ones(2), requires_grad=True)",
    "zeros_like(lib.ones(2), memory_format=lib.preserve_format)", "ones_like(lib.ones(2), dtype=lib.int64)",
    "empty_like(lib.ones(2, 3))", "full_like(lib.ones(2, dtype=lib.int64), 2.7)", "randperm(4, dtype=lib.float64)",
    "arange(end=5)", "arange(start=1, end=5)", "arange(1, 5, step=2)", "arange(5.0, requires_grad=True)",
    "arange(lib.tensor(3))", "arange(5, 1, -1)", "linspace(0, 1, steps=3, dtype=lib.float64)",
    "linspace(0, 10, 4, requires_grad=True)", "linspace(0, 1, 0)", "linspace(0, 1, 1)",
    "linspace(-5.36, 3.6, 24, dtype=lib.int64)", "linspace(lib.tensor(0.0), 1, 3)", "logspace(0, 2, 3)",
    "eye(n=2, m=3)", "eye(3, dtype=lib.int64)", "eye(2, requires_grad=True)", "normal(0.0, 1.0, size=(2,))",
    "normal(lib.zeros(2), 1.0)", "normal(0.0, lib.ones(3, dtype=lib.float64))",
    "normal(0.0, 1.0, (2,), dtype=lib.float64)",
]


@pytest.mark.parametrize("form", FACTORY_FORMS)
def test_factory_signatures_are_torchs(form):
    ours, theirs = (eval(f"lib.{form}", {"lib": lib, "np": np}) for lib in (dl, torch))  # noqa: S307
    assert deterministic(ours) == deterministic(theirs)
    if not form.startswith(("rand", "normal", "empty")):
        assert_same(ours.detach(), theirs.detach())


FACTORY_ERRORS = [
    "zeros(2, size=(3,))", "zeros(size=3)", "zeros(-1)", "zeros((2, -3))", "zeros(2.0)", "zeros(2, 3.5)",
    "zeros(True)", "zeros(lib.tensor([2, 3]))", "zeros(2, bogus=1)", "empty(2, bogus=1)",
    "zeros_like(lib.ones(2), bogus=1)", "zeros(2, dtype=lib.int64, requires_grad=True)", "full(2, 1.0)",
    "full((2,), 1, requires_grad=True)", "rand(2, dtype=lib.int64)", "randn_like(lib.ones(2, dtype=lib.int64))",
    "randint(5)", "randint(5, 2, (3,))", "randint(0, 5.5, (3,))", "randint(0, 5, (3,), requires_grad=True)",
    "arange(5, 1)", "arange(0, 1, 0)", "arange(5, requires_grad=True)", "linspace(0, 1, -1)", "linspace(0, 1)",
    "eye(-1)", "eye(2, -1)", "eye(2.0)", "randperm(-1)", "normal(0.0, 1.0)", "empty(2, pin_memory=True)",
    "rand(2, generator=3)", "tensor([1.0], pin_memory=True)",
]


@pytest.mark.parametrize("form", FACTORY_ERRORS)
def test_factory_errors_are_torchs(form):
    same_error(lambda: eval(f"lib.{form}", {"lib": dl, "np": np}),  # noqa: S307
               lambda: eval(f"lib.{form}", {"lib": torch, "np": np}))  # noqa: S307


@pytest.mark.parametrize("form", ["zeros(2, out=lib.empty(2))", "ones((2,), out=lib.empty(2))",
                                  "empty(2, out=lib.empty(2))", "full((2,), 1.0, out=lib.empty(2))",
                                  "rand(2, out=lib.empty(2))", "randn(2, out=lib.empty(2))",
                                  "randint(3, (2,), out=lib.empty(2))", "arange(2, out=lib.empty(2))",
                                  "linspace(0, 1, 2, out=lib.empty(2))", "eye(2, out=lib.empty(2, 2))",
                                  "randperm(2, out=lib.empty(2))"])
def test_factory_out_is_refused_by_name(form):
    eval(f"lib.{form}", {"lib": torch})  # noqa: S307 - torch has it
    with pytest.raises(NotImplementedError, match="deltalab has no out= for torch"):
        eval(f"lib.{form}", {"lib": dl})  # noqa: S307


def test_linspace_rounds_within_an_ulp_of_torchs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        start, end = rng.standard_normal(2) * 100
        steps = int(rng.integers(2, 40))
        for dtype in ("float32", "float64"):
            ours = dl.linspace(start, end, steps, dtype=getattr(dl, dtype)).numpy()
            theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype)).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=4 * np.finfo(dtype).eps * max(abs(start), abs(end)))
        # integers: torch's vectorised kernel truncates values computed in chunks of its SIMD width, so a
        # value within rounding of an integer may come out one lower or higher (the README says so)
        ints = dl.linspace(start, end, steps, dtype=dl.int64).numpy()
        np.testing.assert_allclose(ints, torch.linspace(start, end, steps, dtype=torch.int64).numpy(), rtol=0, atol=1)


def test_from_numpy_shares_memory_both_ways_as_torch():
    for lib in (dl, torch):
        array = np.arange(3.0)
        t = lib.from_numpy(array)
        array[0] = 9.0
        t.add_(1)
        assert t.tolist() == [10.0, 2.0, 3.0] and array.tolist() == [10.0, 2.0, 3.0]
        assert lib.from_numpy(np.arange(3, dtype=np.int32)).dtype == lib.int32
    same_error(lambda: dl.from_numpy([1, 2]), lambda: torch.from_numpy([1, 2]), "expected np.ndarray")


def test_from_numpy_shares_memory_and_manual_seed_repeats_draws():
    array = np.zeros(3)
    t = dl.from_numpy(array)
    t += 1
    assert array.tolist() == [1.0, 1.0, 1.0]
    dl.manual_seed(3)
    first = dl.randn(5).tolist()
    dl.manual_seed(3)
    assert dl.randn(5).tolist() == first
    assert dl.randint(0, 10, (1000,)).data.min() >= 0 and dl.rand(1000).data.max() < 1


def test_default_dtype_switches_like_torch():
    assert dl.get_default_dtype() == np.float32
    dl.set_default_dtype(dl.float64)
    try:
        assert dl.tensor([1.0]).dtype == np.float64 and dl.zeros(1).dtype == np.float64
        assert dl.nn.Linear(2, 2).weight.dtype == np.float64
    finally:
        dl.set_default_dtype(dl.float32)
    same_error(lambda: dl.set_default_dtype(dl.int64), lambda: torch.set_default_dtype(torch.int64))


def test_other_devices_are_a_clear_error():
    assert not dl.cuda.is_available()
    device = dl.device("cuda" if dl.cuda.is_available() else "cpu")
    assert dl.ones(2, device=device).to(device).device == device
    for call in (lambda: dl.zeros(2, device="cuda"), lambda: dl.tensor([1.0], device="cuda:0"),
                 lambda: dl.device("mps"), lambda: dl.randn(2, device="cuda")):
        with pytest.raises(RuntimeError, match="CPU only"):
            call()


# ------------------------------------------------------------------ grad modes
def test_enable_grad_and_set_grad_enabled():
    x = dl.ones(2, requires_grad=True)
    with dl.no_grad():
        with dl.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with dl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with dl.inference_mode():
        assert not (x * 2).requires_grad
    with dl.inference_mode(False):
        assert (x * 2).requires_grad
    assert (x * 2).requires_grad


# ------------------------------------------------------------------ saving
def test_save_load_tensor_and_state_dict_without_pickle(tmp_path):
    path = tmp_path / "t.pt"
    t = dl.tensor(rand(3, 4, dtype=np.float32))
    dl.save(t, path)
    back = dl.load(path)
    assert isinstance(back, dl.Tensor) and back.dtype == np.float32 and np.array_equal(back.data, t.data)
    model = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.ReLU(), dl.nn.Linear(4, 2))
    dl.save(model.state_dict(), tmp_path / "model.pt")
    fresh = dl.nn.Sequential(dl.nn.Linear(3, 4), dl.nn.ReLU(), dl.nn.Linear(4, 2))
    fresh.load_state_dict(dl.load(tmp_path / "model.pt"))
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        assert np.array_equal(a.data, b.data) and a.dtype == b.dtype, name
    with open(tmp_path / "model.pt", "rb") as f:
        assert set(dl.load(f)) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    nested = {"step": 3, "lr": 0.1, "state": {0: {"buf": dl.zeros(2)}}, "groups": [(1, 2.5, None, "x")], "inf": float("inf")}
    dl.save(nested, tmp_path / "opt.pt")
    loaded = dl.load(tmp_path / "opt.pt")
    assert loaded["state"][0]["buf"].tolist() == [0.0, 0.0] and loaded["groups"] == [(1, 2.5, None, "x")]
    assert loaded["step"] == 3 and loaded["inf"] == float("inf")
    dl.save(model, tmp_path / "arch.npz")  # a Module still carries its architecture
    rebuilt = dl.load(tmp_path / "arch.npz")
    assert isinstance(rebuilt, dl.nn.Sequential) and np.array_equal(rebuilt[0].weight.data, model[0].weight.data)


def test_save_refuses_what_needs_pickle_and_load_refuses_pickle_files(tmp_path):
    with pytest.raises(TypeError, match="without pickle"):
        dl.save({"fn": lambda x: x}, tmp_path / "bad.pt")
    with pytest.raises(TypeError, match="without pickle"):
        dl.save([{1, 2}], tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    with pytest.raises(dl.CheckpointError):
        dl.load(tmp_path / "torch.pt")
    import pickle

    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(dl.CheckpointError):
        dl.load(tmp_path / "p.pkl")


# ------------------------------------------------------------------ what deltalab does not have
def test_missing_torch_names_raise_not_implemented_naming_them():
    with pytest.raises(NotImplementedError, match="deltalab has no torch.fft"):
        dl.fft  # noqa: B018
    with pytest.raises(NotImplementedError, match="deltalab has no torch.Tensor.stft"):
        dl.ones(2).stft  # noqa: B018
    with pytest.raises(NotImplementedError, match="deltalab has no torch.float16"):
        dl.ones(2).half()
    with pytest.raises(NotImplementedError, match="float16"):
        dl.zeros(2, dtype="float16")
    with pytest.raises(NotImplementedError, match="deltalab has no torch.nn.functional.ctc_loss"):
        F.ctc_loss  # noqa: B018
    assert not hasattr(dl, "fft") and not hasattr(dl.ones(1), "stft")
    with pytest.raises(NotImplementedError, match="create_graph"):
        (dl.ones(1, requires_grad=True) * 2).sum().backward(create_graph=True)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_factories_without_a_size_are_torchs_type_error(name):
    with pytest.raises(TypeError):
        getattr(torch, name)()
    with pytest.raises(TypeError, match="size"):
        getattr(dl, name)()
    assert getattr(dl, name)(()).shape == getattr(torch, name)(()).shape == ()


def test_a_zero_learning_rate_is_allowed_and_a_negative_one_is_torchs_value_error():
    for optimiser in ("SGD", "Adam", "AdamW", "RMSprop"):
        getattr(torch.optim, optimiser)([torch.zeros(1, requires_grad=True)], lr=0)
        getattr(dl.optim, optimiser)([dl.zeros(1, requires_grad=True)], lr=0)
        with pytest.raises(ValueError, match="Invalid learning rate"):
            getattr(torch.optim, optimiser)([torch.zeros(1, requires_grad=True)], lr=-1)
        with pytest.raises(ValueError, match="Invalid learning rate"):
            getattr(dl.optim, optimiser)([dl.zeros(1, requires_grad=True)], lr=-1)


def test_optimizer_state_is_keyed_by_the_parameter_as_torchs():
    values = np.array([0.5, -1.0, 2.0])
    ours, theirs = dl.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    unused = dl.zeros(2, requires_grad=True)
    opt, topt = dl.optim.Adam([ours, unused], lr=0.1), torch.optim.Adam([theirs], lr=0.1)
    assert len(opt.state) == len(topt.state) == 0 and opt.state[ours] == {} and topt.state[theirs] == {}
    for _ in range(3):
        ours.grad, theirs.grad = dl.tensor(values * 2), torch.tensor(values * 2)
        opt.step()
        topt.step()
    assert sorted(opt.state[ours]) == sorted(topt.state[theirs]) and unused not in opt.state
    assert opt.state[ours]["step"] == int(topt.state[theirs]["step"]) == 3
    np.testing.assert_allclose(opt.state[ours]["exp_avg_sq"], topt.state[theirs]["exp_avg_sq"].numpy(), rtol=1e-12)
    restored = dl.optim.Adam([ours, unused], lr=0.1)
    restored.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(restored.state[ours]["exp_avg"], opt.state[ours]["exp_avg"])

"""``solve --check-torch``: the same step in PyTorch float64, written independently of the engine.

Only imported when asked for; PyTorch is an optional extra.
"""
from __future__ import annotations


from .errors import DeltalabError
from .gradcheck import relative_error
from .trace import Check

TORCH_TOLERANCE = 1e-9


def _activation(torch, name, z, axis=-1):
    return {
        "identity": lambda v: v,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "softmax": lambda v: torch.softmax(v, dim=axis),
    }[name](z)


def _recurrent(torch, problem, p):
    x = torch.tensor(problem.inputs)
    n = problem.hidden_size
    h = torch.zeros(n, dtype=torch.float64) if problem.initial_state is None else torch.tensor(problem.initial_state)
    c = torch.zeros(n, dtype=torch.float64) if problem.initial_cell is None else torch.tensor(problem.initial_cell)
    b1 = p.get("b1", torch.zeros(p["W1"].shape[0], dtype=torch.float64))
    b2 = p.get("b2", torch.zeros(problem.output_size, dtype=torch.float64))
    hs = []
    for t in range(x.shape[0]):
        a = p["W1"] @ x[t] + p["H1"] @ h + b1
        if problem.model_type == "rnn":
            h = _activation(torch, problem.hidden_activation, a)
        else:
            i, f, g, o = torch.sigmoid(a[:n]), torch.sigmoid(a[n:2 * n]), torch.tanh(a[2 * n:3 * n]), torch.sigmoid(a[3 * n:])
            c = f * c + i * g
            h = o * torch.tanh(c)
        hs.append(h)
    top = hs[-1] if problem.many_to_one else torch.stack(hs)
    z = top @ p["W2"].T + b2
    return z, _activation(torch, problem.output_activation, z)


def _layered(torch, problem, p):
    functional = torch.nn.functional
    x = torch.tensor(problem.inputs)
    if problem.inputs.shape == problem.input_shape:
        x = x.unsqueeze(0)
    z = None
    for l, spec in enumerate(problem.layers, start=1):
        w, b = p.get(f"W{l}"), p.get(f"b{l}")
        if spec.type == "dense":
            z = functional.linear(x, w, b)
        elif spec.type == "conv2d":
            padding = spec.padding if spec.padding != "same" else tuple((k - 1) // 2 for k in spec.kernel_size)
            z = functional.conv2d(x, w, b, stride=spec.stride, padding=padding)
        elif spec.type == "max_pool2d":
            x = functional.max_pool2d(x, spec.kernel_size, spec.stride, spec.padding)
            continue
        elif spec.type == "avg_pool2d":
            x = functional.avg_pool2d(x, spec.kernel_size, spec.stride, spec.padding)
            continue
        else:
            x = torch.flatten(x, 1)
            continue
        x = _activation(torch, spec.activation, z, axis=1)
    if problem.inputs.shape == problem.input_shape:
        return (x if z is None else z)[0], x[0]
    return (x if z is None else z), x


def _loss(torch, problem, z, y):
    t = torch.tensor(problem.targets)
    if problem.target_steps is not None:
        rows = [s - 1 for s in problem.target_steps]
        z, y = z[rows], y[rows]
    if problem.loss == "half_squared_error":
        return 0.5 * ((y - t) ** 2).sum()
    if problem.loss == "squared_error":
        return ((y - t) ** 2).sum()
    if problem.loss == "mse":
        return ((y - t) ** 2).mean()
    if problem.loss == "cross_entropy":
        axis = 1 if problem.model_type in ("mlp", "cnn") and z.ndim > 1 else -1
        return -(t * torch.log_softmax(z, dim=axis)).sum()
    return torch.nn.functional.binary_cross_entropy(y, t, reduction="sum")


def torch_check(problem, parameters, gradients):
    """Relative error between our step-1 gradients and PyTorch's on the same parameters."""
    try:
        import torch
    except ImportError:
        raise DeltalabError("--check-torch needs PyTorch: pip install 'deltalab[torch]'") from None
    p = {name: torch.tensor(value, requires_grad=True) for name, value in parameters.items()}
    if problem.model_type in ("rnn", "lstm"):
        z, y = _recurrent(torch, problem, p)
    else:
        z, y = _layered(torch, problem, p)
    _loss(torch, problem, z, y).backward()
    per_parameter = {name: relative_error(gradients[name], tensor.grad.numpy()) for name, tensor in p.items()}
    return Check("PyTorch float64", max(per_parameter.values(), default=0.0), per_parameter, TORCH_TOLERANCE)

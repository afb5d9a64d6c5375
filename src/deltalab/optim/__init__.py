"""Optimisers with torch's update rules, parameter groups and ``state_dict`` format:
SGD (momentum, dampening, Nesterov, weight decay), Adam / AdamW (amsgrad), RMSprop
(momentum, centered); ``optim.lr_scheduler`` has StepLR and CosineAnnealingLR.

``optimizer.param_groups`` is torch's list of dicts (a scheduler changes ``group["lr"]``);
``optimizer.state`` maps each parameter to its dict of state, as torch's (``optimizer.state[p]``,
empty until the parameter's first step); the entries are NumPy arrays and a Python int ``step``.  A step
changes each parameter in place, as torch's ``p.add_``: views and references see it, and a graph
that saved the parameter before the step refuses ``backward()`` (the version counter).
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..autograd import no_grad
from ..errors import ConfigurationError, missing_torch_names
from ..tensor import Tensor, from_array, write_in_place


class ParameterState(dict):
    """torch's ``optimizer.state``: a parameter's state dict, made empty on first use (a
    defaultdict(dict) keyed by the parameter itself)."""

    def __missing__(self, parameter):
        self[parameter] = entries = {}
        return entries


class Optimizer:
    """Base class: ``step()`` updates every parameter that has a gradient, group by group."""

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        for name in ("differentiable",):
            if defaults.get(name):
                raise NotImplementedError(f"deltalab has no torch.optim {name}=True")
        self.defaults = defaults
        self.param_groups = []
        self.state = ParameterState()
        groups = list(params)
        if not groups:
            raise ConfigurationError(f"{type(self).__name__}: got an empty parameter list "
                                     "(optimizer got an empty parameter list)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (the rest from the defaults)."""
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
        known = {id(p) for p in self.params}
        if any(id(p) in known for p in group["params"]) or len({id(p) for p in group["params"]}) < len(group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        lr = group["lr"]
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group.get("eps", 0) < 0:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")

    @property
    def params(self):
        """Every parameter, in group order (the order of ``state_dict()``'s indices)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self):
        """The first group's learning rate; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:  # zeroed in place, as torch: a reference to p.grad sees it
                with no_grad():
                    p.grad.zero_()

    def step(self, closure=None):
        """One update of every parameter with a gradient; ``closure`` (re-evaluates the loss)
        is called first and its loss returned, as torch."""
        loss = None
        if closure is not None:
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = -p.grad.data if group.get("maximize") else p.grad.data
                # in place, as torch's p.add_: views and aliases see the step, the version moves
                write_in_place(p, self._update(p.data, grad.astype(p.data.dtype, copy=False), state, group))
        return loss

    def _update(self, value, grad, state, group):  # pragma: no cover - interface
        """The parameter's new value."""
        raise NotImplementedError

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """torch's format: ``{"state": {index: {name: tensor}}, "param_groups": [{options...,
        "params": [indices]}]}``; tensors are copies, Adam's and RMSprop's ``step`` a float32 tensor."""
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        state = {}
        for index, p in enumerate(self.params):
            entries = self.state.get(p)
            if entries:
                state[index] = {k: _state_tensor(k, v) for k, v in entries.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` (also one written by torch): every group's options and
        each parameter's state, cast to the parameter's dtype."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        params = self.params
        positions = {key: k for k, key in enumerate(key for g in groups for key in g["params"])}
        states = ParameterState()
        for key, entries in state_dict["state"].items():
            index = positions[key]
            dtype = params[index].data.dtype
            own_state = states[params[index]]
            for name, value in entries.items():
                if value is None:
                    continue
                if hasattr(value, "detach"):  # a torch tensor
                    value = value.detach().cpu().numpy()
                array = np.array(value.data if isinstance(value, Tensor) else value)
                if name == "step":
                    own_state[name] = int(array)
                else:
                    own_state[name] = array.astype(dtype) if array.dtype.kind == "f" else array
        for saved, own in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    own[key] = copy.deepcopy(value)
        self.state = states

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines) + "\n)"


def _state_tensor(name, value):
    if name == "step":
        return Tensor(np.array(float(value), dtype=np.float32))
    return from_array(np.array(value, copy=True))


class SGD(Optimizer):
    """θ ← θ − η·d, d = ∇ (+ weight_decay·θ), with optional momentum as ``torch.optim.SGD``."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigurationError("SGD: Nesterov momentum needs momentum > 0 and dampening 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update(self, value, grad, state, group):
        d = grad + group["weight_decay"] * value if group["weight_decay"] else grad
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                buffer = np.array(d, copy=True)
            else:
                buffer = momentum * state["momentum_buffer"] + (1 - group["dampening"]) * d
            state["momentum_buffer"] = buffer
            d = d + momentum * buffer if group["nesterov"] else buffer
        return value - group["lr"] * d


def lerp(start, end, weight):
    """start + weight·(end − start), rounded as torch's ``lerp_`` (from the nearer end)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _updatable(moment, grad):
    """Whether an optimiser's moment array can be updated in place for ``grad`` (a float array of
    its shape and dtype that it owns); otherwise (the first step, a loaded state of another
    dtype) the update makes new arrays."""
    return (isinstance(moment, np.ndarray) and moment.shape == grad.shape and moment.dtype == grad.dtype
            and moment.flags.writeable and moment.flags.owndata)


def _check_betas(betas):
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``: L2 weight decay added to
    the gradient, or decoupled (AdamW) with ``decoupled_weight_decay=True``; ``amsgrad``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, value, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        if weight_decay:
            if group["decoupled_weight_decay"]:
                value = value * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * value
        step = state.get("step", 0) + 1
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        if _updatable(m, grad) and _updatable(v, grad):
            # the moments in place, with the arithmetic of the expressions below (the same bits)
            # and two scratch arrays instead of a dozen temporaries
            scratch = np.subtract(grad, m)
            weight = 1 - beta1
            if weight < 0.5:  # lerp, rounded from the nearer end
                np.add(m, np.multiply(scratch, weight, out=scratch), out=m)
            else:
                np.subtract(grad, np.multiply(scratch, 1 - weight, out=scratch), out=m)
            np.multiply(v, beta2, out=v)
            np.multiply(np.multiply(grad, 1 - beta2, out=scratch), grad, out=scratch)
            np.add(v, scratch, out=v)
            state["step"] = step
        else:
            m = lerp(m, grad, 1 - beta1) if m is not None else (1 - beta1) * grad
            v = beta2 * (0 if v is None else v) + (1 - beta2) * grad * grad
            state.update(step=step, exp_avg=m, exp_avg_sq=v)
            scratch = None
        bias1, bias2 = 1 - beta1**step, 1 - beta2**step
        if group["amsgrad"]:
            v = np.maximum(state.get("max_exp_avg_sq", v), v)
            state["max_exp_avg_sq"] = v
        if scratch is None:
            denominator = np.sqrt(v) / math.sqrt(bias2) + group["eps"]
            return value - (lr / bias1) * m / denominator
        denominator = np.add(np.divide(np.sqrt(v, out=scratch), math.sqrt(bias2), out=scratch), group["eps"],
                             out=scratch)
        update = np.divide(np.multiply(m, lr / bias1), denominator)
        return np.subtract(value, update, out=update)


class AdamW(Adam):
    """Adam with decoupled weight decay θ ← θ(1 − η·λ) (default λ = 0.01), as ``torch.optim.AdamW``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop as ``torch.optim.RMSprop``: s ← αs + (1 − α)g², θ ← θ − η·g/(√s + ε) (centered:
    s − ḡ² under the root; momentum: a buffer b ← μb + g/(√s + ε))."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if alpha < 0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _update(self, value, grad, state, group):
        alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * value
        state["step"] = state.get("step", 0) + 1
        square_avg = alpha * state.get("square_avg", 0) + (1 - alpha) * grad * grad
        state["square_avg"] = square_avg
        if group["centered"]:
            grad_avg = lerp(state["grad_avg"], grad, 1 - alpha) if "grad_avg" in state else (1 - alpha) * grad
            state["grad_avg"] = grad_avg
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if group["momentum"] > 0:
            buffer = group["momentum"] * state.get("momentum_buffer", 0) + grad / avg
            state["momentum_buffer"] = buffer
            return value - lr * buffer
        return value - lr * grad / avg


from . import lr_scheduler  # noqa: E402  (schedulers need Optimizer)

__getattr__ = missing_torch_names(__name__, "torch.optim")

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]

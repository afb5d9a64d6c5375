"""Optimisers with PyTorch's update rules: SGD (momentum, dampening, Nesterov, weight decay) and Adam."""
from __future__ import annotations

import numpy as np

from .errors import ConfigurationError


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ConfigurationError(f"{type(self).__name__}: got an empty parameter list")
        if not lr > 0:
            raise ConfigurationError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.state = [dict() for _ in self.params]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data = np.zeros_like(p.grad.data)

    def step(self):
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                p.data = p.data - self._update(p.data, p.grad.data, state).astype(p.data.dtype, copy=False)

    def _update(self, value, grad, state):  # pragma: no cover - interface
        raise NotImplementedError


class SGD(Optimizer):
    """θ ← θ − η·d, d = ∇ (+ weight_decay·θ), with optional momentum as ``torch.optim.SGD``."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigurationError("SGD: Nesterov momentum needs momentum > 0 and dampening 0")
        self.momentum, self.dampening, self.weight_decay, self.nesterov = momentum, dampening, weight_decay, nesterov

    def _update(self, value, grad, state):
        d = grad + self.weight_decay * value if self.weight_decay else grad
        if self.momentum:
            if "momentum_buffer" not in state:
                buffer = np.array(d, copy=True)
            else:
                buffer = self.momentum * state["momentum_buffer"] + (1 - self.dampening) * d
            state["momentum_buffer"] = buffer
            d = d + self.momentum * buffer if self.nesterov else buffer
        return self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam`` (L2 weight decay)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def _update(self, value, grad, state):
        beta1, beta2 = self.betas
        g = grad + self.weight_decay * value if self.weight_decay else grad
        step = state.get("step", 0) + 1
        m = beta1 * state.get("exp_avg", 0) + (1 - beta1) * g
        v = beta2 * state.get("exp_avg_sq", 0) + (1 - beta2) * g * g
        state.update(step=step, exp_avg=m, exp_avg_sq=v)
        bias1, bias2 = 1 - beta1**step, 1 - beta2**step
        denominator = np.sqrt(v) / np.sqrt(bias2) + self.eps
        return (self.lr / bias1) * m / denominator

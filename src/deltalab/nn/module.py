"""Module and Parameter: the PyTorch-shaped container for layers and their weights."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import dtypes
from ..errors import DeltalabError, ShapeError
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimiser updates (requires_grad=True)."""

    __slots__ = ()

    def __init__(self, data, dtype=None, name=None):
        super().__init__(data, dtype=dtype or _float_dtype(data), requires_grad=True, name=name)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _float_dtype(data):
    array = data.data if isinstance(data, Tensor) else data
    kind = getattr(array, "dtype", None)
    if kind is not None and np.dtype(kind) in (np.float32, np.float64):
        return np.dtype(kind)
    return dtypes.get_default_dtype()


class Module:
    """Base class: assign Parameters and Modules as attributes; they are found in that order.

    ``parameters()``, ``named_parameters()``, ``state_dict()`` (nested keys "0.weight"),
    ``load_state_dict()``, ``zero_grad()``, ``float()``/``double()`` -- as in PyTorch.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, value):
        if value is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, value)

    # ------------------------------------------------------------------ calls
    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_prefix}.{name}" if module_prefix else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def zero_grad(self, set_to_none=True):
        """Clear accumulated gradients (backward adds into .grad)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data = np.zeros_like(p.grad.data)

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """Name -> copy of each parameter's array, in registration order."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters; unknown, missing or mis-shaped entries are refused."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unexpected:
                parts.append(f"unexpected {unexpected}")
            raise DeltalabError(f"load_state_dict for {type(self).__name__}: " + ", ".join(parts))
        arrays = {}
        for name, value in state.items():
            if name not in own:
                continue
            array = np.asarray(getattr(value, "data", value))
            if array.shape != own[name].shape:
                raise ShapeError(
                    f"load_state_dict for {type(self).__name__}: parameter {name!r} has shape "
                    f"{own[name].shape}, the state holds {array.shape}"
                )
            arrays[name] = array
        # copy only once every entry fits: a refused state leaves the module unchanged
        for name, array in arrays.items():
            own[name].data = array.astype(own[name].dtype, copy=True)
        return self

    # ----------------------------------------------------------------- dtype
    def to(self, dtype):
        """Cast every parameter to ``dtype`` in place (float32 for speed, float64 for exactness)."""
        dtype = dtypes.resolve(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad.data = p.grad.data.astype(dtype)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    @property
    def dtype(self):
        for p in self.parameters():
            return p.dtype
        return dtypes.get_default_dtype()

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child_repr}")
            return lines[0] + "\n" + "\n".join(lines[1:]) + "\n)"
        return lines[0] + ")"


def uniform_(shape, fan_in, dtype=None):
    """U(−1/√fan_in, 1/√fan_in): PyTorch's default for Linear, Conv2d and RNN weights."""
    from ..random import generator

    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    array = generator().uniform(-bound, bound, size=shape)
    return Parameter(array.astype(dtypes.resolve(dtype) if dtype else dtypes.get_default_dtype()))


def check_input(layer, x, ndims, axis, expected, axis_name):
    """Raise a ShapeError naming the layer when x has the wrong rank or size on ``axis``."""
    if x.ndim not in ndims:
        ranks = " or ".join(f"{n}-D" for n in ndims)
        raise ShapeError(f"{layer!r}: expected a {ranks} input, got shape {x.shape}")
    if x.shape[axis] != expected:
        raise ShapeError(
            f"{layer!r}: expected {expected} {axis_name} on axis {axis % x.ndim}, got input of shape {x.shape}"
        )

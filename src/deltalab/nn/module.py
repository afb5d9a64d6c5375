"""Module and Parameter: the PyTorch-shaped container for layers and their weights."""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .. import dtypes
from ..autograd import no_grad
from ..errors import DeltalabError, ShapeError
from ..io.arguments import record_if_built_in
from ..tensor import MissingTorchFeature, Tensor


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


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as torch: the names it did not find and did not use."""

    missing_keys: list
    unexpected_keys: list

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


class StateDictError(DeltalabError, RuntimeError):
    """A state_dict with missing or unexpected entries (a RuntimeError, as torch raises)."""


class Module:
    """Base class: assign Parameters, buffers and Modules as attributes; they are found in that order.

    ``parameters()``, ``named_parameters()``, ``buffers()``, ``named_modules()``, ``children()``,
    ``apply()``, ``register_buffer()``, ``state_dict()`` (nested keys "0.weight", each module's
    parameters then its persistent buffers, then its children, as torch orders them; the values
    are NumPy copies), ``load_state_dict()``, ``zero_grad()``, ``train()``/``eval()``,
    ``float()``/``double()`` -- as in PyTorch.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        record_if_built_in(cls)  # the built-in kinds save their constructor arguments (deltalab.io.arguments)

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        """torch's rules: a Parameter registers itself, a Module becomes a child, a tensor given to a
        buffer's name replaces the buffer; a name registered as a parameter (or child module) takes
        only another Parameter (Module) or None -- anything else is torch's TypeError, not a silent swap
        (change a parameter's values with ``copy_`` under ``no_grad``, or use ``functional_call``)."""
        if "_parameters" not in self.__dict__:  # before Module.__init__: plain attributes only, as torch
            if isinstance(value, (Parameter, Module)):
                what = "parameters" if isinstance(value, Parameter) else "module"
                raise AttributeError(f"cannot assign {what} before Module.__init__() call")
            object.__setattr__(self, name, value)
            return
        if isinstance(value, Parameter):
            self._forget(name, self._buffers, self._modules, self._non_persistent_buffers)
            self._parameters[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign '{typename(value)}' as parameter '{name}' "
                                "(deltalab.nn.Parameter or None expected)")
            self._parameters[name] = None  # torch keeps the name registered, holding None
        elif isinstance(value, Module):
            self._forget(name, self._parameters, self._buffers, self._non_persistent_buffers)
            self._modules[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{typename(value)}' as child module '{name}' "
                                "(deltalab.nn.Module or None expected)")
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{typename(value)}' as buffer '{name}' "
                                "(deltalab.Tensor or None expected)")
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def _forget(self, name, *registries):
        for registry in registries:
            if isinstance(registry, set):
                registry.discard(name)
            else:
                registry.pop(name, None)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)
        object.__delattr__(self, name)

    def _renumber_children(self, modules):
        """Hold exactly ``modules`` under the keys "0", "1", ... (Sequential and ModuleList after an
        insert or a delete, as torch renumbers them)."""
        for key in list(self._modules):
            self.__dict__.pop(key, None)
        self._modules.clear()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def _check_new_name(self, name, what):
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{what} name can't contain \".\" or be empty, got {name!r}")

    def register_parameter(self, name, value):
        """Add a Parameter (or None: an absent optional parameter, like a layer without bias)."""
        self._check_new_name(name, "parameter")
        if value is None:
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            object.__setattr__(self, name, None)
            self._parameters[name] = None
        elif not isinstance(value, Parameter):
            raise TypeError(f"cannot assign '{typename(value)}' object to parameter '{name}' "
                            "(deltalab.nn.Parameter or None required)")
        else:
            setattr(self, name, value)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor the module keeps and saves but no optimiser updates (BatchNorm's running
        statistics); ``persistent=False`` leaves it out of ``state_dict``."""
        self._check_new_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{typename(tensor)}' object to buffer '{name}' "
                            "(deltalab Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name, module):
        """Add a child module under ``name`` (``setattr`` with a name check), as torch."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name(name, "module")
        if module is None:
            self._modules[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    register_module = add_module

    def __getattr__(self, name):  # only for names the normal lookup did not find
        if name in TORCH_MODULE_ONLY:
            raise MissingTorchFeature(f"deltalab has no torch.nn.Module.{name}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_submodule(self, target):
        """The module at a dotted path ("encoder.0"), as torch."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no attribute `{part}`")
            module = module._modules[part]
        return module

    def get_parameter(self, target):
        return self._get_registered(target, "_parameters", "parameter")

    def get_buffer(self, target):
        return self._get_registered(target, "_buffers", "buffer")

    def _get_registered(self, target, table, what):
        """``a.b.name`` from the ``table`` (``_parameters`` / ``_buffers``) of submodule ``a.b``."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        registered = getattr(module, table)
        if name not in registered:
            raise AttributeError(f"{type(module).__name__} has no {what} `{name}`")
        return registered[name]

    # ------------------------------------------------------------------ calls
    def forward(self, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first; a module reached
        twice is listed once unless ``remove_duplicate=False`` (as torch)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively) and then on this module; returns self
        (for weight initialisation, as ``torch.nn.Module.apply``)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named_members(self, members, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in members(module).items():
                if value is None or remove_duplicate and id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs; a parameter shared by two modules is listed once unless
        ``remove_duplicate=False`` (as torch)."""
        return self._named_members(lambda m: m._parameters, prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers, prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def zero_grad(self, set_to_none=True):
        """Clear accumulated gradients (backward adds into .grad): None by default, as torch, or
        zeros in place with ``set_to_none=False``."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:  # zeroed in place, as torch: a reference to p.grad sees it
                with no_grad():
                    p.grad.zero_()

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    # ----------------------------------------------------------------- state
    def _state_items(self, prefix=""):
        """(name, tensor) of every parameter and persistent buffer, torch's state_dict order."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                yield prefix + name, b
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """Name -> copy of each parameter's and persistent buffer's array, in torch's order (with
        ``keep_vars=True`` the tensors themselves, as torch; ``prefix`` goes before every name)."""
        destination = OrderedDict() if destination is None else destination
        for name, t in self._state_items(prefix):
            destination[name] = t if keep_vars else t.data.copy()
        return destination

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers; unknown, missing or mis-shaped entries are
        refused (RuntimeError, as torch), and a refused state leaves the module unchanged.
        Returns torch's ``(missing_keys, unexpected_keys)`` (both empty unless ``strict=False``)."""
        own = dict(self._state_items())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unexpected:
                parts.append(f"unexpected {unexpected}")
            raise StateDictError(f"load_state_dict for {type(self).__name__}: " + ", ".join(parts))
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
        # copy only once every entry fits: a refused state leaves the module unchanged; in place, as
        # torch's copy_ (an optimiser or a view holding a parameter sees the loaded values)
        with no_grad():
            for name, array in arrays.items():
                own[name].copy_(array.astype(own[name].dtype, copy=False))
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- dtype
    def to(self, *args, **kwargs):
        """Cast every parameter and floating buffer to a dtype in place (float32 for speed,
        float64 for exactness); a device may be given as "cpu" (the only one)."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if _is_device(arg):
                device = arg
            elif dtype is None:
                dtype = arg
            else:
                raise TypeError("Module.to() takes at most one dtype")
        if device is not None:
            check_device(device)
        if dtype is None:
            return self
        dtype = dtypes.resolve(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad.data = p.grad.data.astype(dtype)
        for b in self.buffers():
            if np.issubdtype(b.data.dtype, np.floating):
                b.data = b.data.astype(dtype)
        return self

    def cpu(self):
        return self

    def cuda(self, device=None):
        check_device("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    @property
    def dtype(self):
        for p in self.parameters():
            return p.dtype
        for b in self.buffers():  # a layer without parameters (BatchNorm(affine=False))
            if np.issubdtype(b.dtype, np.floating):
                return b.dtype
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


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``module(*args, **kwargs)`` computed with the given tensors in place of the parameters and
    buffers of those (dotted) names, as ``torch.func.functional_call``: the module is unchanged
    afterwards, and gradients flow to the given tensors (a gradient check of a module's weights)."""
    if isinstance(parameters_and_buffers, (list, tuple)):
        merged = {}
        for mapping in parameters_and_buffers:
            repeated = sorted(set(merged) & set(mapping))
            if repeated:
                raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
                                 "ambiguous")
            merged.update(mapping)
        parameters_and_buffers = merged
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with swapped_tensors(module, parameters_and_buffers, tie_weights=tie_weights, strict=strict):
        return module(*args, **(kwargs or {}))


@contextlib.contextmanager
def swapped_tensors(module, tensors, *, tie_weights=True, strict=False):
    """Within the block, the parameters and buffers named in ``tensors`` ("0.weight") are those
    tensors (plain tensors are fine: nothing is registered); the originals come back afterwards.
    ``tie_weights``: a parameter shared under several names is swapped under all of them (torch's
    default).  ``strict``: every parameter and buffer must be given, and nothing else (RuntimeError)."""
    slots = {}  # full name -> (owning module, registry name or None, short name)
    by_identity = {}
    for prefix, owner in module.named_modules(remove_duplicate=False):
        for registry in ("_parameters", "_buffers"):
            for short, value in getattr(owner, registry).items():
                full = f"{prefix}.{short}" if prefix else short
                slots[full] = (owner, registry, short)
                if value is not None:
                    by_identity.setdefault(id(value), []).append(full)
    if strict:
        missing = [name for name in slots if name not in tensors]
        unexpected = [name for name in tensors if name not in slots]
        if missing or unexpected:
            parts = ([f"Missing key(s): {', '.join(repr(k) for k in missing)}."] if missing else []) + (
                [f"Unexpected key(s): {', '.join(repr(k) for k in unexpected)}."] if unexpected else [])
            raise StateDictError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(parts))
    targets = dict(tensors)
    for name, value in tensors.items():
        original = getattr(slots[name][0], slots[name][1])[slots[name][2]] if name in slots else None
        if tie_weights and original is not None:
            for tied in by_identity[id(original)]:
                targets.setdefault(tied, value)
    saved = []
    try:
        for name, value in targets.items():
            if name in slots:
                owner, registry, short = slots[name]
                saved.append((owner, registry, short, getattr(owner, registry)[short]))
                getattr(owner, registry)[short] = value
            else:  # an unknown name becomes a plain attribute for the call, as torch
                path, _, short = name.rpartition(".")
                owner = module.get_submodule(path)
                saved.append((owner, None, short, owner.__dict__.get(short, _ABSENT)))
            object.__setattr__(owner, short, value)
        yield
    finally:
        for owner, registry, short, original in reversed(saved):
            if registry is not None:
                getattr(owner, registry)[short] = original
            if original is _ABSENT:
                object.__delattr__(owner, short)
            else:
                object.__setattr__(owner, short, original)


_ABSENT = object()


def typename(value):
    """A value's type as torch.typename spells it, with deltalab's names ('deltalab.FloatTensor',
    'int', 'deltalab.nn.layers.Linear') -- for error messages."""
    if isinstance(value, Tensor):
        return f"deltalab.{dtypes.torch_name(value.dtype)}Tensor"
    kind = type(value)
    if kind.__module__ in ("builtins", "__builtin__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


# torch.nn.Module methods deltalab does not have: asking for one names it
TORCH_MODULE_ONLY = frozenset({
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_backward_hook",
    "register_full_backward_pre_hook", "register_state_dict_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "half", "bfloat16", "to_empty", "share_memory", "compile", "ipu", "xpu",
    "mtia", "type",
})


def _is_device(value):
    return isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps", "meta", "xpu") or (
        type(value).__name__ == "device")


def check_device(device):
    """deltalab computes on the CPU only: "cpu" is accepted, any other device is refused."""
    name = str(device)
    if name not in ("cpu", "cpu:0"):
        raise RuntimeError(f"deltalab runs on the CPU only; device {name!r} is not available")


def uniform_(shape, fan_in, dtype=None):
    """U(−1/√fan_in, 1/√fan_in): PyTorch's default for Linear, Conv2d and RNN weights."""
    from ..random import uniform

    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    array = uniform(-bound, bound, shape)
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

"""The one registry of module kinds, read by architecture configs, checkpoints and torch interop.

A kind is registered once, with everything the three need:

* ``arguments(module) -> dict``: the constructor keywords that rebuild the module.  By
  default these are the arguments the module was built with: registering a class makes its
  instances record them (``recorded_arguments``), without ``device``/``dtype`` (a checkpoint
  stores every array in its own dtype) and without keywords the kind leaves out (``omit``);
* ``build(**kwargs)`` (default: the class) after nested configs became modules again;
* ``torch``: ``(torch class name, to_torch(module, torch), from_torch(module, torch))``.

Only the exact registered class is accepted: a subclass might add state its parent cannot
describe.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, replace
from typing import Callable

from .arguments import RECORD, RegistryError, qualified_name, record_arguments, recorded_arguments, records_arguments

__all__ = ["ModuleKind", "RegistryError", "by_class", "by_name", "by_torch_name", "names", "recorded_arguments",
           "register", "register_torch", "torch_kinds"]

#: keywords that place or type a module's arrays, not part of what it is
PLACEMENT = ("device", "dtype")
#: the built-in kinds, registered on the first lookup (so ``import deltalab`` and a worked solution
#: never import every layer and model class); a module of the registry's plug-ins, like the
#: problem kinds of :mod:`deltalab.problems.kinds`, imported by name
BUILT_IN_KINDS = "deltalab.io.module_kinds"
__all__ += ["BUILT_IN_KINDS", "RECORD"]


@dataclass(frozen=True)
class ModuleKind:
    name: str
    cls: type
    arguments: Callable | None = None  # None: the kind has no config (torch interop only)
    build: Callable | None = None
    torch_name: str | None = None
    to_torch: Callable | None = None
    from_torch: Callable | None = None


_BY_NAME: dict[str, ModuleKind] = {}
_BY_CLASS: dict[type, ModuleKind] = {}
_BY_TORCH_NAME: dict[str, ModuleKind] = {}


def register(cls, arguments=None, *, name=None, build=None, omit=(), torch=None):
    """Register ``cls`` once for configs, checkpoints and (with ``torch``) interop; returns ``cls``.

    ``arguments`` None: the constructor arguments each instance records (minus ``omit`` and
    device/dtype).  ``torch`` is ``(torch class name, to_torch, from_torch)``."""
    name = name or cls.__name__
    existing = _BY_NAME.get(name)
    if existing is not None and existing.cls is not cls:
        raise RegistryError(f"architecture name {name!r} is already registered for {existing.cls!r}")
    if arguments is None:
        if cls.__module__.startswith("deltalab.") and not records_arguments(cls):
            raise RegistryError(f"built-in {qualified_name(cls)} must record its arguments from its definition: "
                                "add it to deltalab.io.arguments.RECORDED_BUILT_INS")
        record_arguments(cls)
        arguments = functools.partial(_recorded_without, omit=tuple(omit))
    kind = ModuleKind(name, cls, arguments, build or cls)
    previous = _BY_CLASS.get(cls)
    if previous is not None and previous.torch_name is not None:
        kind = replace(kind, torch_name=previous.torch_name, to_torch=previous.to_torch,
                       from_torch=previous.from_torch)
    if torch is not None:
        kind = replace(kind, torch_name=torch[0], to_torch=torch[1], from_torch=torch[2])
    _store(kind)
    return cls


def register_torch(cls, torch_name, to_torch, from_torch):
    """Add (or replace) the torch counterpart of ``cls``, registered for configs or not."""
    kind = _BY_CLASS.get(cls) or ModuleKind(cls.__name__, cls)
    _store(replace(kind, torch_name=torch_name, to_torch=to_torch, from_torch=from_torch))


def _store(kind):
    if kind.arguments is not None:
        _BY_NAME[kind.name] = kind
    _BY_CLASS[kind.cls] = kind
    if kind.torch_name is not None and kind.from_torch is not None:
        _BY_TORCH_NAME[kind.torch_name] = kind


def built_in_kinds():
    """Register the built-in kinds (once, on the first lookup)."""
    importlib.import_module(BUILT_IN_KINDS)


def by_class(cls):
    """The kind registered for exactly ``cls``, or None."""
    built_in_kinds()
    return _BY_CLASS.get(cls)


def by_name(name):
    """The kind a config's ``type`` names, or None."""
    built_in_kinds()
    return _BY_NAME.get(name)


def by_torch_name(name):
    """The kind converting the ``torch.nn`` class called ``name``, or None."""
    built_in_kinds()
    return _BY_TORCH_NAME.get(name)


def names():
    """Names of the kinds a config may hold, sorted."""
    built_in_kinds()
    return sorted(_BY_NAME)


def torch_kinds():
    """(deltalab class names with a torch counterpart, torch class names deltalab converts)."""
    built_in_kinds()
    return (sorted(k.cls.__name__ for k in _BY_CLASS.values() if k.to_torch is not None), sorted(_BY_TORCH_NAME))


# ------------------------------------------------------------ recorded arguments
def _recorded_without(module, omit):
    return {k: v for k, v in recorded_arguments(module).items() if k not in omit and k not in PLACEMENT}

"""Architectures as plain data: ``to_config(module) -> dict`` and ``from_config(dict) -> Module``.

A config is JSON-ready: ``{"type": "Conv2d", "kwargs": {"in_channels": 1, ...}}``.  The
keywords come from the one module registry (:mod:`deltalab.io.registry`): by default the
arguments the module was built with; a keyword whose value is a module (or a name → module
mapping, as for Sequential) is stored as a nested config.  Add a class with::

    register(MyLayer)                      # its recorded constructor arguments
    register(MyLayer, lambda m: {...})     # or a function reading them back

Only the exact registered class is accepted: a subclass might add state its parent cannot
describe.
"""
from __future__ import annotations

from collections import OrderedDict

from ..errors import DeltalabError
from ..nn.module import Module
from . import registry

CONFIG_VERSION = 1


class ArchitectureError(DeltalabError, ValueError):
    """A module that cannot be described as a config, or a config that names no known class."""


def register(cls, to_kwargs=None, name=None, build=None):
    """Make ``cls`` serialisable: ``to_kwargs(module)`` returns the keywords that rebuild it
    (None: the arguments each instance was built with).

    ``build(**kwargs)`` (default ``cls``) constructs it from those keywords after nested
    configs were turned back into modules.  Returns ``cls`` so it can wrap a class statement.
    """
    try:
        return registry.register(cls, to_kwargs, name=name, build=build)
    except registry.RegistryError as exc:
        raise ArchitectureError(str(exc)) from None


def register_module(to_kwargs=None, name=None, build=None):
    """Class decorator form of :func:`register`."""
    return lambda cls: register(cls, to_kwargs, name=name, build=build)


def registered():
    """Names of the classes ``to_config`` accepts."""
    return registry.names()


# ------------------------------------------------------------------ encoding
def _encode(value, where):
    if isinstance(value, Module):
        return {"module": to_config(value, where)}
    if isinstance(value, (dict, OrderedDict)):
        # a list of pairs keeps the names and their order explicit in the JSON
        if value and all(isinstance(v, Module) for v in value.values()):
            return {"modules": [[str(k), to_config(v, f"{where}.{k}")] for k, v in value.items()]}
        if any(isinstance(v, Module) for v in value.values()):
            raise ArchitectureError(f"{where}: a mapping argument must hold only modules or only plain values")
        return {"dict": [[str(k), _encode(v, f"{where}.{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return value.item()
    raise ArchitectureError(f"{where}: cannot store a {type(value).__name__} argument ({value!r}) in a config")


def _decode(value, where):
    if isinstance(value, dict):
        if set(value) == {"module"}:
            return from_config(value["module"], where)
        if set(value) == {"modules"}:
            return OrderedDict((name, from_config(c, f"{where}.{name}")) for name, c in value["modules"])
        if set(value) == {"tuple"}:
            return tuple(_decode(v, where) for v in value["tuple"])
        if set(value) == {"dict"}:
            return {str(k): _decode(v, f"{where}.{k}") for k, v in value["dict"]}
        raise ArchitectureError(f"{where}: unknown argument encoding with keys {sorted(value)}")
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    return value


def to_config(module, where="model") -> dict:
    """A JSON-ready description of ``module`` from which :func:`from_config` rebuilds it."""
    kind = registry.by_class(type(module))
    if kind is None or kind.arguments is None:
        raise ArchitectureError(
            f"{where}: {type(module).__name__} is not a registered architecture (known: {', '.join(registered())}); "
            "register it with deltalab.io.architecture.register(cls)"
        )
    try:
        kwargs = kind.arguments(module)
    except registry.RegistryError as exc:
        raise ArchitectureError(f"{where}: {exc}") from None
    return {"type": kind.name, "kwargs": {k: _encode(v, f"{where}.{k}") for k, v in kwargs.items()}}


def from_config(config, where="model") -> Module:
    """Rebuild a module (with fresh parameters) from a :func:`to_config` dict."""
    if not isinstance(config, dict) or "type" not in config:
        raise ArchitectureError(f"{where}: a module config must be a dict with a 'type', got {config!r:.80}")
    kind = registry.by_name(config["type"])
    if kind is None:
        raise ArchitectureError(
            f"{where}: unknown module type {config['type']!r} (known: {', '.join(registered())})"
        )
    raw = config.get("kwargs", {})
    if not isinstance(raw, dict):
        raise ArchitectureError(f"{where}: 'kwargs' of {config['type']} must be a dict")
    kwargs = {k: _decode(v, f"{where}.{k}") for k, v in raw.items()}
    try:
        return kind.build(**kwargs)
    except DeltalabError as exc:
        raise ArchitectureError(f"{where}: cannot build {config['type']}: {exc}") from None
    except TypeError as exc:
        raise ArchitectureError(f"{where}: cannot build {config['type']} from {sorted(kwargs)}: {exc}") from None

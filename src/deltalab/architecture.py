"""Architectures as plain data: ``to_config(module) -> dict`` and ``from_config(dict) -> Module``.

A config is JSON-ready: ``{"type": "Conv2d", "kwargs": {"in_channels": 1, ...}}``.  Each
supported class is registered with a function that reads its constructor arguments back from
the module's attributes; a keyword whose value is a module (or a name → module mapping, as
for Sequential) is stored as a nested config.  Add a class with::

    @register_module(to_kwargs=lambda m: {"input_size": m.input_size, ...})
    class MyLayer(Module): ...

or ``register(MyLayer, to_kwargs)`` for a class defined elsewhere.  Only the exact registered
class is accepted: a subclass might add state its parent cannot describe.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from . import nn
from .errors import DeltalabError
from .nn.module import Module

CONFIG_VERSION = 1


class ArchitectureError(DeltalabError, ValueError):
    """A module that cannot be described as a config, or a config that names no known class."""


@dataclass(frozen=True)
class Registration:
    name: str
    cls: type
    to_kwargs: Callable[[Module], dict]
    build: Callable[..., Module]


_BY_NAME: dict[str, Registration] = {}
_BY_CLASS: dict[type, Registration] = {}


def register(cls, to_kwargs, name=None, build=None):
    """Make ``cls`` serialisable: ``to_kwargs(module)`` returns the keywords that rebuild it.

    ``build(**kwargs)`` (default ``cls``) constructs it from those keywords after nested
    configs were turned back into modules.  Returns ``cls`` so it can wrap a class statement.
    """
    name = name or cls.__name__
    existing = _BY_NAME.get(name)
    if existing is not None and existing.cls is not cls:
        raise ArchitectureError(f"architecture name {name!r} is already registered for {existing.cls!r}")
    registration = Registration(name, cls, to_kwargs, build or cls)
    _BY_NAME[name] = registration
    _BY_CLASS[cls] = registration
    return cls


def register_module(to_kwargs, name=None, build=None):
    """Class decorator form of :func:`register`."""
    return lambda cls: register(cls, to_kwargs, name=name, build=build)


def registered():
    """Names of the classes ``to_config`` accepts."""
    return sorted(_BY_NAME)


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
    registration = _BY_CLASS.get(type(module))
    if registration is None:
        raise ArchitectureError(
            f"{where}: {type(module).__name__} is not a registered architecture (known: {', '.join(registered())}); "
            "register it with deltalab.architecture.register(cls, to_kwargs)"
        )
    kwargs = registration.to_kwargs(module)
    return {"type": registration.name, "kwargs": {k: _encode(v, f"{where}.{k}") for k, v in kwargs.items()}}


def from_config(config, where="model") -> Module:
    """Rebuild a module (with fresh parameters) from a :func:`to_config` dict."""
    if not isinstance(config, dict) or "type" not in config:
        raise ArchitectureError(f"{where}: a module config must be a dict with a 'type', got {config!r:.80}")
    registration = _BY_NAME.get(config["type"])
    if registration is None:
        raise ArchitectureError(
            f"{where}: unknown module type {config['type']!r} (known: {', '.join(registered())})"
        )
    raw = config.get("kwargs", {})
    if not isinstance(raw, dict):
        raise ArchitectureError(f"{where}: 'kwargs' of {config['type']} must be a dict")
    kwargs = {k: _decode(v, f"{where}.{k}") for k, v in raw.items()}
    try:
        return registration.build(**kwargs)
    except DeltalabError as exc:
        raise ArchitectureError(f"{where}: cannot build {config['type']}: {exc}") from None
    except TypeError as exc:
        raise ArchitectureError(f"{where}: cannot build {config['type']} from {sorted(kwargs)}: {exc}") from None


# ---------------------------------------------------------- built-in classes
register(nn.Linear, lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None})
register(
    nn.Conv2d,
    lambda m: {
        "in_channels": m.in_channels, "out_channels": m.out_channels, "kernel_size": tuple(m.kernel_size),
        "stride": tuple(m.stride), "padding": tuple(m.padding), "dilation": tuple(m.dilation), "groups": m.groups,
        "bias": m.bias is not None,
    },
)
register(nn.MaxPool2d, lambda m: {"kernel_size": tuple(m.kernel_size), "stride": tuple(m.stride), "padding": tuple(m.padding),
                                   "return_indices": m.return_indices})
register(nn.AvgPool2d, lambda m: {"kernel_size": tuple(m.kernel_size), "stride": tuple(m.stride), "padding": tuple(m.padding)})
register(nn.Flatten, lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim})
for _activation in (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity):
    register(_activation, lambda m: {})
for _softmax in (nn.Softmax, nn.LogSoftmax):
    register(_softmax, lambda m: {"dim": m.dim})
register(nn.Sequential, lambda m: {"modules": OrderedDict(m._modules)}, build=lambda modules: nn.Sequential(modules))


# --------------------------------------------------------------- recurrent
def _layer_kwargs(m, *names):
    kwargs = {"input_size": m.input_size, "hidden_size": m.hidden_size, "num_layers": m.num_layers, "bias": m.bias,
              "batch_first": m.batch_first, "dropout": m.dropout, "bidirectional": m.bidirectional,
              "bptt_truncate": m.bptt_truncate}
    kwargs.update({name: getattr(m, name) for name in names})
    return kwargs


def _legacy_single_bias(cls):
    """Configs written before torch's two biases (no ``single_bias`` key) had the lecture's one bias."""
    def build(**kwargs):
        kwargs.setdefault("single_bias", True)
        return cls(**kwargs)

    return build


register(nn.RNN, lambda m: _layer_kwargs(m, "nonlinearity", "single_bias"), build=_legacy_single_bias(nn.RNN))
register(nn.LSTM, lambda m: _layer_kwargs(m, "single_bias"), build=_legacy_single_bias(nn.LSTM))
register(nn.GRU, lambda m: _layer_kwargs(m))
register(nn.RNNCell, lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias,
                                "nonlinearity": m.nonlinearity})
for _cell in (nn.LSTMCell, nn.GRUCell):
    register(_cell, lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias})
register(nn.Dropout, lambda m: {"p": m.p})
for _norm in (nn.BatchNorm1d, nn.BatchNorm2d):
    register(_norm, lambda m: {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                               "affine": m.affine, "track_running_stats": m.track_running_stats})
register(nn.Embedding, lambda m: {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
                                  "padding_idx": m.padding_idx})
register(nn.ELU, lambda m: {"alpha": m.alpha})
register(nn.LeakyReLU, lambda m: {"negative_slope": m.negative_slope})
register(nn.Softplus, lambda m: {"beta": m.beta, "threshold": m.threshold})
register(nn.GELU, lambda m: {"approximate": m.approximate})
register(nn.ModuleList, lambda m: {"modules": list(m)}, build=lambda modules: nn.ModuleList(modules))
register(nn.ModuleDict, lambda m: {"modules": OrderedDict(m.items())}, build=lambda modules: nn.ModuleDict(modules))
register(nn.Recurrent, lambda m: {"cell": m.cell, "truncate": m.truncate, "retain_grad": m.retain_grad})


def _network_kwargs(m):
    kwargs = {
        "input_size": m.input_size, "hidden_size": m.hidden_size, "output_size": m.output_size,
        "hidden_activation": m.hidden_activation, "output_activation": m.output_activation,
        "many_to_one": m.many_to_one, "bias": m.b1 is not None, "bptt_truncate": m.bptt_truncate,
    }
    if isinstance(m, _models.LSTMNetwork):
        del kwargs["hidden_activation"]  # fixed: sigmoid gates, tanh cell
    return kwargs


from . import models as _models  # noqa: E402  (models import nn only; no cycle)
from .models.shift_register import FeedbackCell  # noqa: E402

register(_models.ElmanNetwork, _network_kwargs)
register(_models.LSTMNetwork, _network_kwargs)
register(
    _models.LayeredNetwork,
    lambda m: {"input_shape": m.input_shape, "layers": [dict(spec) for spec in m.specs]},
    build=lambda input_shape, layers: _models.LayeredNetwork(tuple(input_shape), layers),
)
register(FeedbackCell, lambda m: {"size": m.size})

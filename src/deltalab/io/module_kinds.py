"""The built-in module kinds, each registered once for configs, checkpoints and torch interop.

Most kinds are described by the constructor arguments their modules recorded.  A few read
their keywords back from the module instead, to keep the config format that checkpoints
already hold: Linear and Conv2d (``bias`` as a flag, sizes as pairs), pooling (pairs),
Sequential and the containers (their children), the recurrent layers (configs from before
torch's two biases) and LayeredNetwork (its layer specs as given).
"""
from __future__ import annotations

from collections import OrderedDict

from .. import models, nn
from ..models.shift_register import FeedbackCell
from .registry import register

__all__ = []  # importing the module registers the kinds


def _interop(name, *extra):
    """interop's converter ``name`` (called with ``extra`` after the module and torch), imported
    on the first conversion: torch interop stays off the path of ``import deltalab``."""
    def convert(module, torch):
        from . import interop

        return getattr(interop, name)(module, torch, *extra)
    return convert


def _softmax_from_torch(cls):
    def convert(module, torch):
        from . import interop

        return interop.softmax_from_torch(cls)(module, torch)
    return convert


def _same(name):
    """(to_torch, from_torch) of a torch class with no arguments, e.g. ReLU."""
    return name, (lambda m, torch: getattr(torch.nn, name)()), (lambda t, torch: getattr(nn, name)())


# --------------------------------------------------------------- layers and shapes
register(nn.Linear, lambda m: {"in_features": m.in_features, "out_features": m.out_features,
                               "bias": m.bias is not None},
         torch=("Linear", _interop("linear_to_torch"), _interop("linear_from_torch")))
register(nn.Conv2d, lambda m: {
    "in_channels": m.in_channels, "out_channels": m.out_channels, "kernel_size": tuple(m.kernel_size),
    "stride": tuple(m.stride), "padding": tuple(m.padding), "dilation": tuple(m.dilation), "groups": m.groups,
    "bias": m.bias is not None,
}, torch=("Conv2d", _interop("conv_to_torch"), _interop("conv_from_torch")))


def _pool_arguments(m):
    return {"kernel_size": tuple(m.kernel_size), "stride": tuple(m.stride), "padding": tuple(m.padding)}


register(nn.MaxPool2d, lambda m: {**_pool_arguments(m), "return_indices": m.return_indices},
         torch=("MaxPool2d", _interop("max_pool_to_torch"), _interop("max_pool_from_torch")))
register(nn.AvgPool2d, _pool_arguments, torch=("AvgPool2d", _interop("avg_pool_to_torch"), _interop("avg_pool_from_torch")))
register(nn.Flatten, torch=("Flatten", lambda m, torch: torch.nn.Flatten(m.start_dim, m.end_dim),
                            lambda t, torch: nn.Flatten(t.start_dim, t.end_dim)))
for _name in ("ReLU", "Tanh", "Sigmoid", "Identity"):
    register(getattr(nn, _name), torch=_same(_name))
register(nn.Softmax, torch=("Softmax", lambda m, torch: torch.nn.Softmax(dim=m.dim),
                            _softmax_from_torch(nn.Softmax)))
register(nn.LogSoftmax, torch=("LogSoftmax", lambda m, torch: torch.nn.LogSoftmax(dim=m.dim),
                               _softmax_from_torch(nn.LogSoftmax)))
register(nn.ELU, omit=("inplace",), torch=("ELU", lambda m, torch: torch.nn.ELU(m.alpha),
                                            lambda t, torch: nn.ELU(t.alpha)))
register(nn.LeakyReLU, omit=("inplace",), torch=("LeakyReLU", lambda m, torch: torch.nn.LeakyReLU(m.negative_slope),
                                                  lambda t, torch: nn.LeakyReLU(t.negative_slope)))
register(nn.Softplus, torch=("Softplus", lambda m, torch: torch.nn.Softplus(m.beta, m.threshold),
                             lambda t, torch: nn.Softplus(t.beta, t.threshold)))
register(nn.GELU, torch=("GELU", lambda m, torch: torch.nn.GELU(m.approximate),
                         lambda t, torch: nn.GELU(t.approximate)))
register(nn.Dropout, omit=("inplace",), torch=("Dropout", lambda m, torch: torch.nn.Dropout(m.p),
                                                lambda t, torch: nn.Dropout(t.p)))
for _name in ("BatchNorm1d", "BatchNorm2d"):
    register(getattr(nn, _name), torch=(_name, _interop("batch_norm_to_torch"), _interop("batch_norm_from_torch")))
register(nn.Embedding, omit=("max_norm", "norm_type", "scale_grad_by_freq", "sparse", "_weight", "_freeze"),
         torch=("Embedding", _interop("embedding_to_torch"), _interop("embedding_from_torch")))

# -------------------------------------------------------------------- containers
register(nn.Sequential, lambda m: {"modules": OrderedDict(m.named_children())},
         build=lambda modules: nn.Sequential(modules),
         torch=("Sequential", _interop("sequential_to_torch"), _interop("sequential_from_torch")))
register(nn.ModuleList, lambda m: {"modules": list(m)}, build=lambda modules: nn.ModuleList(modules))
register(nn.ModuleDict, lambda m: {"modules": OrderedDict(m.items())}, build=lambda modules: nn.ModuleDict(modules))


# --------------------------------------------------------------------- recurrent
def _layer_arguments(*names):
    def arguments(m):
        kwargs = {"input_size": m.input_size, "hidden_size": m.hidden_size, "num_layers": m.num_layers,
                  "bias": m.bias, "batch_first": m.batch_first, "dropout": m.dropout,
                  "bidirectional": m.bidirectional, "bptt_truncate": m.bptt_truncate}
        kwargs.update({name: getattr(m, name) for name in names})
        return kwargs
    return arguments


def _legacy_single_bias(cls):
    """Configs written before torch's two biases (no ``single_bias`` key) had the lecture's one bias."""
    def build(**kwargs):
        kwargs.setdefault("single_bias", True)
        return cls(**kwargs)

    return build


def _torch_layer(kind):
    return kind, _interop("layer_to_torch", kind), _interop("layer_from_torch", kind)


def _torch_cell(kind):
    return kind, _interop("cell_to_torch", kind), _interop("cell_from_torch", kind)


register(nn.RNN, _layer_arguments("nonlinearity", "single_bias"), build=_legacy_single_bias(nn.RNN),
         torch=_torch_layer("RNN"))
register(nn.LSTM, _layer_arguments("single_bias"), build=_legacy_single_bias(nn.LSTM), torch=_torch_layer("LSTM"))
register(nn.GRU, _layer_arguments(), torch=_torch_layer("GRU"))
for _kind in ("RNNCell", "LSTMCell", "GRUCell"):
    register(getattr(nn, _kind), torch=_torch_cell(_kind))
register(nn.Recurrent)

# ------------------------------------------------------------ the lecture's models
register(models.ElmanNetwork, torch=("ElmanNetwork", _interop("network_to_torch"), None))
register(models.LSTMNetwork, torch=("LSTMNetwork", _interop("network_to_torch"), None))
register(models.LayeredNetwork, lambda m: {"input_shape": m.input_shape, "layers": [dict(spec) for spec in m.specs]},
         build=lambda input_shape, layers: models.LayeredNetwork(tuple(input_shape), layers))
register(FeedbackCell)

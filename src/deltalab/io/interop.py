"""The way out to PyTorch and back: ``to_torch(model)`` and ``from_torch(module)``.

Supported: Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, ReLU, Tanh, Sigmoid, Identity,
Softmax, LogSoftmax, ELU, LeakyReLU, Softplus, GELU, Dropout, BatchNorm1d/2d, Embedding,
(nested) Sequential, RNN, LSTM and GRU (any layers and directions), RNNCell, LSTMCell, GRUCell, and the
lecture's ElmanNetwork / LSTMNetwork (as :func:`torch_network_class`, a small torch Module: an
``nn.RNN``/``nn.LSTM``, an ``nn.Linear`` and the output activation).  Weights are copied, never
shared, and keep their dtype (float32 or float64), so both models compute the same function.

torch is imported only inside these functions: ``import deltalab`` never loads it.  The
converters below are registered with their classes, once, in :mod:`.module_kinds` (the one
module registry); more classes are added with :func:`register` (a deltalab class, the torch
class name, and one converter for each direction).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ..errors import DeltalabError
from . import registry


class InteropError(DeltalabError, ValueError):
    """A module with no counterpart on the other side, or an option the other side lacks."""


def register(deltalab_class, torch_class_name, to_torch_fn, from_torch_fn):
    """Teach the converters a pair of classes (in the one module registry).

    ``to_torch_fn(module, torch) -> torch.nn.Module`` and ``from_torch_fn(module, torch) ->
    deltalab Module`` (``torch`` is the imported package); ``torch_class_name`` is the name
    of the ``torch.nn`` class, e.g. ``"Linear"``.
    """
    registry.register_torch(deltalab_class, torch_class_name, to_torch_fn, from_torch_fn)


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise InteropError("PyTorch interop needs torch: pip install 'deltalab[torch]'") from None
    return torch


def to_torch(model):
    """A ``torch.nn.Module`` computing what the deltalab ``model`` computes (weights copied)."""
    torch = _torch()
    return convert_to_torch(model, torch, "model")


def from_torch(module):
    """A deltalab module computing what the ``torch.nn.Module`` computes (weights copied)."""
    torch = _torch()
    return convert_from_torch(module, torch, "module")


def convert_to_torch(module, torch, where):
    """:func:`to_torch` of a part of a model (``where`` names it in errors)."""
    kind = registry.by_class(type(module))
    if kind is None or kind.to_torch is None:
        raise InteropError(
            f"to_torch: {where} is a {type(module).__name__}, which has no PyTorch counterpart here "
            f"(supported: {', '.join(registry.torch_kinds()[0])})"
        )
    return kind.to_torch(module, torch)


def convert_from_torch(module, torch, where):
    """:func:`from_torch` of a part of a torch model (``where`` names it in errors)."""
    name = type(module).__name__
    if type(module) is _NETWORK_CLASS.get("class"):
        return network_from_torch(module, torch)
    kind = registry.by_torch_name(name) if type(module).__module__.startswith("torch.nn") else None
    if kind is None:
        raise InteropError(
            f"from_torch: {where} is a {type(module).__module__}.{name}, which deltalab cannot convert "
            f"(supported torch.nn classes: {', '.join(registry.torch_kinds()[1])})"
        )
    return kind.from_torch(module, torch)


# ------------------------------------------------------------------ helpers
def tensor_to_torch(array, torch):
    """A torch tensor with a copy of ``array``'s values and its dtype."""
    return torch.from_numpy(np.array(array, copy=True))


def tensor_from_torch(tensor, where):
    """A NumPy copy of a torch float32/float64 tensor."""
    array = tensor.detach().cpu().numpy().copy()
    if array.dtype not in (np.float32, np.float64):
        raise InteropError(f"from_torch: {where} is {array.dtype}; deltalab holds float32 or float64")
    return array


def _set(parameter, array):
    parameter.data = array


def _torch_dtype(module, torch):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(module.dtype)]


def _copy_into_torch(torch_module, pairs, torch):
    with torch.no_grad():
        for name, array in pairs:
            getattr(torch_module, name).copy_(tensor_to_torch(array, torch))
    return torch_module


def _check(condition, message):
    if not condition:
        raise InteropError(message)


# ---------------------------------------------------------------- Linear
def linear_to_torch(m, torch):
    t = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=_torch_dtype(m, torch))
    pairs = [("weight", m.weight.data)] + ([("bias", m.bias.data)] if m.bias is not None else [])
    return _copy_into_torch(t, pairs, torch)


def linear_from_torch(t, torch):
    weight = tensor_from_torch(t.weight, "Linear.weight")
    m = nn.Linear(t.in_features, t.out_features, bias=t.bias is not None, dtype=weight.dtype)
    _set(m.weight, weight)
    if t.bias is not None:
        _set(m.bias, tensor_from_torch(t.bias, "Linear.bias"))
    return m


# ---------------------------------------------------------------- Conv2d
def conv_to_torch(m, torch):
    t = torch.nn.Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation,
        groups=m.groups, bias=m.bias is not None, dtype=_torch_dtype(m, torch),
    )
    pairs = [("weight", m.weight.data)] + ([("bias", m.bias.data)] if m.bias is not None else [])
    return _copy_into_torch(t, pairs, torch)


def conv_from_torch(t, torch):
    _check(t.padding_mode == "zeros", f"from_torch: Conv2d with padding_mode={t.padding_mode!r} is not supported")
    padding = t.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = nn.same_padding([d * (k - 1) + 1 for k, d in zip(t.kernel_size, t.dilation)])  # odd spans only
    weight = tensor_from_torch(t.weight, "Conv2d.weight")
    m = nn.Conv2d(
        t.in_channels, t.out_channels, tuple(t.kernel_size), stride=tuple(t.stride), padding=padding,
        dilation=tuple(t.dilation), groups=t.groups, bias=t.bias is not None, dtype=weight.dtype,
    )
    _set(m.weight, weight)
    if t.bias is not None:
        _set(m.bias, tensor_from_torch(t.bias, "Conv2d.bias"))
    return m


# --------------------------------------------------------------- pooling
def max_pool_to_torch(m, torch):
    return torch.nn.MaxPool2d(m.kernel_size, stride=m.stride, padding=m.padding, return_indices=m.return_indices)


def max_pool_from_torch(t, torch):
    _check(t.dilation in (1, (1, 1)), f"from_torch: MaxPool2d with dilation={t.dilation} is not supported")
    _check(not t.ceil_mode, "from_torch: MaxPool2d with ceil_mode=True is not supported")
    return nn.MaxPool2d(t.kernel_size, stride=t.stride, padding=t.padding, return_indices=t.return_indices)


def avg_pool_to_torch(m, torch):
    return torch.nn.AvgPool2d(m.kernel_size, stride=m.stride, padding=m.padding, count_include_pad=True)


def avg_pool_from_torch(t, torch):
    _check(t.count_include_pad, "from_torch: AvgPool2d with count_include_pad=False is not supported")
    _check(not t.ceil_mode, "from_torch: AvgPool2d with ceil_mode=True is not supported")
    _check(t.divisor_override is None, "from_torch: AvgPool2d with divisor_override is not supported")
    return nn.AvgPool2d(t.kernel_size, stride=t.stride, padding=t.padding)


# ------------------------------------------------- shape and activations
def softmax_from_torch(cls):
    def convert(t, torch):
        return cls(dim=t.dim)  # dim=None: torch's implicit dim, which deltalab's modules share

    return convert


# ------------------------------------------------------------ Sequential
def sequential_to_torch(m, torch):
    return torch.nn.Sequential(
        OrderedDict((name, convert_to_torch(child, torch, name)) for name, child in m.named_children())
    )


def sequential_from_torch(t, torch):
    return nn.Sequential(OrderedDict((name, convert_from_torch(child, torch, name)) for name, child in t.named_children()))


# ------------------------------------------------------- RNN, LSTM, GRU
LAYERS = ("RNN", "LSTM", "GRU")


def layer_to_torch(m, torch, kind):
    """Parameters by torch's names; the lecture's single bias becomes bias_ih with bias_hh zero
    (their sum is what counts)."""
    extra = {"nonlinearity": m.nonlinearity} if kind == "RNN" else {}
    if kind == "RNN":
        _check(m.nonlinearity in ("tanh", "relu"),
               f"to_torch: torch.nn.RNN has no nonlinearity {m.nonlinearity!r} (tanh or relu only)")
    t = getattr(torch.nn, kind)(m.input_size, m.hidden_size, num_layers=m.num_layers, bias=m.bias,
                                batch_first=m.batch_first, dropout=m.dropout, bidirectional=m.bidirectional,
                                dtype=_torch_dtype(m, torch), **extra)
    pairs = []
    for name, _ in t.named_parameters():
        if m.single_bias and name.startswith("bias_"):
            single = getattr(m, name.replace("bias_ih", "bias").replace("bias_hh", "bias")).data
            pairs.append((name, single if name.startswith("bias_ih") else np.zeros_like(single)))
        else:
            pairs.append((name, getattr(m, name).data))
    return _copy_into_torch(t, pairs, torch)


def layer_from_torch(t, torch, kind):
    _check(not getattr(t, "proj_size", 0), f"from_torch: {kind} with proj_size is not supported")
    extra = {"nonlinearity": t.nonlinearity} if kind == "RNN" else {}
    first = tensor_from_torch(t.weight_ih_l0, f"{kind}.weight_ih_l0")
    m = getattr(nn, kind)(t.input_size, t.hidden_size, num_layers=t.num_layers, bias=t.bias,
                          batch_first=t.batch_first, dropout=t.dropout, bidirectional=t.bidirectional,
                          dtype=first.dtype, **extra)
    for name, value in t.named_parameters():
        _set(getattr(m, name), tensor_from_torch(value, f"{kind}.{name}"))
    return m


def cell_to_torch(m, torch, kind):
    extra = {"nonlinearity": m.nonlinearity} if kind == "RNNCell" else {}
    if kind == "RNNCell":
        _check(m.nonlinearity in ("tanh", "relu"),
               f"to_torch: torch.nn.RNNCell has no nonlinearity {m.nonlinearity!r} (tanh or relu only)")
    t = getattr(torch.nn, kind)(m.input_size, m.hidden_size, bias=m.bias, dtype=_torch_dtype(m, torch), **extra)
    return _copy_into_torch(t, [(name, p.data) for name, p in m.named_parameters()], torch)


def cell_from_torch(t, torch, kind):
    extra = {"nonlinearity": t.nonlinearity} if kind == "RNNCell" else {}
    first = tensor_from_torch(t.weight_ih, f"{kind}.weight_ih")
    m = getattr(nn, kind)(t.input_size, t.hidden_size, bias=t.bias, dtype=first.dtype, **extra)
    for name, value in t.named_parameters():
        _set(getattr(m, name), tensor_from_torch(value, f"{kind}.{name}"))
    return m


# ------------------------------------------- dropout, normalisation, embedding
def batch_norm_to_torch(m, torch):
    t = getattr(torch.nn, type(m).__name__)(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                                           track_running_stats=m.track_running_stats, dtype=_torch_dtype(m, torch))
    with torch.no_grad():
        for name, value in m.state_dict().items():
            getattr(t, name).copy_(tensor_to_torch(value, torch))
    return t.train(m.training)


def batch_norm_from_torch(t, torch):
    m = getattr(nn, type(t).__name__)(t.num_features, eps=t.eps, momentum=t.momentum, affine=t.affine,
                                      track_running_stats=t.track_running_stats)
    state = {k: v.detach().cpu().numpy().copy() for k, v in t.state_dict().items()}
    dtype = next((v.dtype for v in state.values() if v.dtype.kind == "f"), None)
    if dtype is not None:
        m.to(dtype)
    m.load_state_dict(state)
    return m.train(t.training)


def embedding_to_torch(m, torch):
    t = torch.nn.Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx, dtype=_torch_dtype(m, torch))
    return _copy_into_torch(t, [("weight", m.weight.data)], torch)


def embedding_from_torch(t, torch):
    _check(t.max_norm is None, "from_torch: Embedding with max_norm is not supported")
    _check(not t.scale_grad_by_freq and not t.sparse, "from_torch: Embedding with scale_grad_by_freq or sparse is "
                                                       "not supported")
    weight = tensor_from_torch(t.weight, "Embedding.weight")
    return nn.Embedding(t.num_embeddings, t.embedding_dim, padding_idx=t.padding_idx, _weight=weight)


# ------------------------------------------------- ElmanNetwork and LSTMNetwork
_NETWORK_CLASS = {}  # the torch wrapper class, created on first use (torch is imported lazily)


def torch_network_class(torch=None):
    """The torch Module that ``to_torch`` makes of an ElmanNetwork or LSTMNetwork.

    ``TorchElmanNetwork(recurrent, linear, output_activation, many_to_one)``: ``recurrent`` is
    an ``nn.RNN`` or ``nn.LSTM`` (one layer, time-major), ``linear`` the output layer (W2, b2),
    ``output_activation`` one of identity, softmax (last axis), sigmoid, tanh, relu.  Forward:
    ``y = act(linear(h))`` over all steps, or only the last step when ``many_to_one``; an
    optional initial state is passed to the recurrent layer as PyTorch shapes it.
    ``bptt_truncate`` is kept so ``from_torch`` restores it (torch's autograd runs full BPTT).
    """
    if "class" in _NETWORK_CLASS:
        return _NETWORK_CLASS["class"]
    torch = torch or _torch()

    class TorchElmanNetwork(torch.nn.Module):
        def __init__(self, recurrent, linear, output_activation="identity", many_to_one=False, bptt_truncate=None):
            super().__init__()
            if output_activation not in _TORCH_OUTPUT_ACTIVATIONS:
                raise InteropError(f"TorchElmanNetwork: output_activation must be one of "
                                   f"{', '.join(_TORCH_OUTPUT_ACTIVATIONS)}, got {output_activation!r}")
            self.recurrent, self.linear = recurrent, linear
            self.output_activation, self.many_to_one = output_activation, many_to_one
            self.bptt_truncate = bptt_truncate

        def forward(self, x, state=None):
            hidden, _ = self.recurrent(x, state)
            top = hidden[-1] if self.many_to_one else hidden
            z = self.linear(top)
            activation = self.output_activation
            if activation == "softmax":
                return torch.softmax(z, dim=-1)
            return z if activation == "identity" else getattr(torch, activation)(z)

        def extra_repr(self):
            return f"output_activation={self.output_activation!r}, many_to_one={self.many_to_one}"

    _NETWORK_CLASS["class"] = TorchElmanNetwork
    return TorchElmanNetwork


_TORCH_OUTPUT_ACTIVATIONS = ("identity", "softmax", "sigmoid", "tanh", "relu")


def network_to_torch(m, torch):
    from ..models import LSTMNetwork

    lstm = isinstance(m, LSTMNetwork)
    kind = "LSTM" if lstm else "RNN"
    _check(lstm or m.hidden_activation in ("tanh", "relu"),
           f"to_torch: torch.nn.RNN has no hidden activation {m.hidden_activation!r} (tanh or relu only)")
    extra = {} if lstm else {"nonlinearity": m.hidden_activation}
    dtype = _torch_dtype(m, torch)
    bias = m.b1 is not None
    recurrent = getattr(torch.nn, kind)(m.input_size, m.hidden_size, num_layers=1, bias=bias, dtype=dtype, **extra)
    pairs = [("weight_ih_l0", m.W1.data), ("weight_hh_l0", m.H1.data)]
    if bias:
        pairs += [("bias_ih_l0", m.b1.data), ("bias_hh_l0", np.zeros_like(m.b1.data))]
    _copy_into_torch(recurrent, pairs, torch)
    linear = torch.nn.Linear(m.hidden_size, m.output_size, bias=m.b2 is not None, dtype=dtype)
    _copy_into_torch(linear, [("weight", m.W2.data)] + ([("bias", m.b2.data)] if m.b2 is not None else []), torch)
    return torch_network_class(torch)(recurrent, linear, m.output_activation, m.many_to_one, m.bptt_truncate)


def network_from_torch(t, torch):
    from ..models import ElmanNetwork, LSTMNetwork

    recurrent = convert_from_torch(t.recurrent, torch, "recurrent")
    _check(isinstance(recurrent, (nn.RNN, nn.LSTM)), "from_torch: TorchElmanNetwork.recurrent must be an RNN or LSTM")
    _check(recurrent.num_layers == 1 and not recurrent.bidirectional,
           "from_torch: TorchElmanNetwork.recurrent must have one layer and one direction")
    _check(not recurrent.batch_first, "from_torch: TorchElmanNetwork.recurrent with batch_first=True is not supported")
    linear = convert_from_torch(t.linear, torch, "linear")
    _check(isinstance(linear, nn.Linear) and linear.in_features == recurrent.hidden_size,
           "from_torch: TorchElmanNetwork.linear must be a Linear from the hidden size")
    bias = recurrent.bias
    _check(bias == (linear.bias is not None),
           "from_torch: TorchElmanNetwork needs biases in both layers or in neither (deltalab's bias flag is shared)")
    common = dict(output_activation=t.output_activation, many_to_one=t.many_to_one, bias=bias,
                  bptt_truncate=t.bptt_truncate, dtype=linear.weight.dtype)
    if isinstance(recurrent, nn.LSTM):
        m = LSTMNetwork(recurrent.input_size, recurrent.hidden_size, linear.out_features, **common)
    else:
        m = ElmanNetwork(recurrent.input_size, recurrent.hidden_size, linear.out_features,
                         hidden_activation=recurrent.nonlinearity, **common)
    _set(m.W1, recurrent.weight_ih_l0.data)
    _set(m.H1, recurrent.weight_hh_l0.data)
    _set(m.W2, linear.weight.data)
    if bias:  # the lecture's one bias is torch's bias_ih + bias_hh
        _set(m.b1, recurrent.bias_ih_l0.data + recurrent.bias_hh_l0.data)
        _set(m.b2, linear.bias.data)
    return m

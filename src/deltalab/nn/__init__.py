"""Layers, containers and loss modules, named as in ``torch.nn``.

``deltalab.nn.functional`` is :mod:`deltalab.functional` itself (one module under both
names), so ``import deltalab.nn.functional as F`` works as in torch.
"""
import sys

from .. import functional
from .containers import ModuleDict, ModuleList
from .dropout import Dropout
from .embedding import Embedding
from .layers import (
    ACTIVATIONS,
    ELU,
    GELU,
    AvgPool2d,
    Conv2d,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    same_padding,
)
from .losses import BCELoss, CrossEntropyLoss, HalfSquaredError, MSELoss, NLLLoss, SquaredError
from .module import Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .recurrent_cell import Recurrent

sys.modules[__name__ + ".functional"] = functional
from . import utils  # noqa: E402  (utils uses nothing above; after the alias for import order)

from ..errors import missing_torch_names  # noqa: E402

__getattr__ = missing_torch_names(__name__, "torch.nn")

__all__ = [
    "ACTIVATIONS", "AvgPool2d", "BCELoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout",
    "ELU", "Embedding", "Flatten", "GELU", "GRU", "GRUCell", "HalfSquaredError", "Identity", "LSTM", "LSTMCell",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss",
    "Parameter", "RNN", "RNNCell", "ReLU", "Recurrent", "Sequential", "Sigmoid", "Softmax", "Softplus", "SquaredError",
    "Tanh", "functional", "same_padding", "utils",
]

"""Layers, containers and loss modules, named as in ``torch.nn``.

``deltalab.nn.functional`` is :mod:`deltalab.functional` itself (one module under both
names), so ``import deltalab.nn.functional as F`` works as in torch.

Only :class:`Module` and :class:`Parameter` load with the package; every other name imports
its module the first time it is read (``nn.Linear`` loads :mod:`.layers`, see
:mod:`deltalab.lazy`): a recurrent worked solution never compiles the conv, pooling and
batch-norm layers.
"""
from ..errors import missing_torch_names
from ..lazy import lazy_exports
from .module import Module, Parameter

_DEFINED_IN = {
    ".containers": ("ModuleDict", "ModuleList"),
    ".dropout": ("Dropout",),
    ".embedding": ("Embedding",),
    ".layers": ("ACTIVATIONS", "ELU", "GELU", "AvgPool2d", "Conv2d", "Flatten", "Identity", "LeakyReLU", "Linear",
                "LogSoftmax", "MaxPool2d", "ReLU", "Sequential", "Sigmoid", "Softmax", "Softplus", "Tanh",
                "same_padding"),
    ".losses": ("BCELoss", "CrossEntropyLoss", "HalfSquaredError", "MSELoss", "NLLLoss", "SquaredError"),
    ".normalization": ("BatchNorm1d", "BatchNorm2d"),
    ".recurrent": ("GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"),
    ".recurrent_cell": ("Recurrent",),
}

__getattr__, __dir__ = lazy_exports(
    __name__, {name: module for module, names in _DEFINED_IN.items() for name in names},
    {"functional": "..functional", "utils": ".utils"}, missing_torch_names(__name__, "torch.nn"))

__all__ = [
    "ACTIVATIONS", "AvgPool2d", "BCELoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout",
    "ELU", "Embedding", "Flatten", "GELU", "GRU", "GRUCell", "HalfSquaredError", "Identity", "LSTM", "LSTMCell",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss",
    "Parameter", "RNN", "RNNCell", "ReLU", "Recurrent", "Sequential", "Sigmoid", "Softmax", "Softplus", "SquaredError",
    "Tanh", "functional", "same_padding", "utils",
]

"""Layers, containers and loss modules, named as in ``torch.nn``."""
from .layers import (
    ACTIVATIONS,
    AvgPool2d,
    Conv2d,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    same_padding,
)
from .losses import BCELoss, CrossEntropyLoss, HalfSquaredError, MSELoss, NLLLoss, SquaredError
from .module import Module, Parameter

__all__ = [
    "ACTIVATIONS", "AvgPool2d", "BCELoss", "Conv2d", "CrossEntropyLoss", "Flatten", "HalfSquaredError",
    "Identity", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "NLLLoss", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "SquaredError", "Tanh", "same_padding",
]
from .recurrent import LSTM, RNN, LSTMCell, RNNCell  # noqa: E402

__all__ += ["LSTM", "LSTMCell", "RNN", "RNNCell"]
from .recurrent_cell import Recurrent  # noqa: E402
__all__ += ["Recurrent"]

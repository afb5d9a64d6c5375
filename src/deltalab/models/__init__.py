"""Ready-made networks: the lecture's CNN examples and its recurrent models.

Each model's module is imported the first time its name is read (:mod:`deltalab.lazy`): an Elman
network's worked solution does not load the layered network or the custom cells.
"""
from ..lazy import lazy_exports
from .lecture_cnn import LECTURE_CNNS, lecture_cnn  # eager: `lecture_cnn` is also this submodule's name

_DEFINED_IN = {
    ".elman": ("ElmanNetwork", "ElmanRun", "LSTMNetwork"),
    ".alarmwork": ("AlarmworkNet",),
    ".cells": ("AdditiveCell", "ElmanReLUCell", "GateLSTMCell", "ModifiedCell"),
    ".layered": ("LayeredNetwork", "LayerValue"),
}

__getattr__, __dir__ = lazy_exports(__name__, {name: module for module, names in _DEFINED_IN.items() for name in names})

__all__ = ["LECTURE_CNNS", "lecture_cnn", "ElmanNetwork", "ElmanRun", "LSTMNetwork", "AlarmworkNet", "AdditiveCell",
           "ElmanReLUCell", "GateLSTMCell", "ModifiedCell", "LayeredNetwork", "LayerValue"]

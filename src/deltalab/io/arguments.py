"""Modules that record the arguments they were built with (configs and checkpoints rebuild them
from those).  Standard library only: :class:`deltalab.nn.Module` asks it about each subclass.

The built-in kinds whose config is their constructor arguments (:data:`RECORDED_BUILT_INS`)
record from their class definition on, so a module built before the registry's kinds were
loaded (they load on the registry's first lookup, :mod:`.registry`) can still be saved.  A
user's class records from the moment it is registered.
"""
from __future__ import annotations

import functools
import inspect

from ..errors import DeltalabError

__all__ = ["RECORD", "RECORDED_BUILT_INS", "RegistryError", "qualified_name", "record_arguments", "record_if_built_in",
           "recorded_arguments", "records_arguments"]

RECORD = "_deltalab_constructor_arguments"  # the instance attribute the recording __init__ sets

#: the built-in classes :mod:`.module_kinds` registers with their recorded arguments (it refuses
#: one that is missing here, so the list cannot drift)
RECORDED_BUILT_INS = frozenset({
    "deltalab.nn.layers.Flatten", "deltalab.nn.layers.ReLU", "deltalab.nn.layers.Tanh", "deltalab.nn.layers.Sigmoid",
    "deltalab.nn.layers.Identity", "deltalab.nn.layers.Softmax", "deltalab.nn.layers.LogSoftmax",
    "deltalab.nn.layers.ELU", "deltalab.nn.layers.LeakyReLU", "deltalab.nn.layers.Softplus", "deltalab.nn.layers.GELU",
    "deltalab.nn.dropout.Dropout", "deltalab.nn.normalization.BatchNorm1d", "deltalab.nn.normalization.BatchNorm2d",
    "deltalab.nn.embedding.Embedding", "deltalab.nn.recurrent.RNNCell", "deltalab.nn.recurrent.LSTMCell",
    "deltalab.nn.recurrent.GRUCell", "deltalab.nn.recurrent_cell.Recurrent", "deltalab.models.elman.ElmanNetwork",
    "deltalab.models.elman.LSTMNetwork", "deltalab.models.shift_register.FeedbackCell",
})


class RegistryError(DeltalabError, ValueError):
    """A name registered twice for two classes, or a module that did not record its arguments."""


def qualified_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def records_arguments(cls):
    """Whether instances of exactly ``cls`` record their constructor arguments."""
    return getattr(cls.__dict__.get("__init__"), "records_arguments", False)


def record_arguments(cls):
    """Make instances of exactly ``cls`` record the arguments their constructor was called with
    (the signature is read on the first construction, not when the class is defined)."""
    init = cls.__dict__.get("__init__")
    if init is None:  # inherits its constructor: wrap it on this class
        init = cls.__init__
    elif getattr(init, "records_arguments", False):
        return cls
    signature = []

    @functools.wraps(init)
    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is cls:
            if not signature:
                signature.append(inspect.signature(init))
            bound = signature[0].bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(list(bound.arguments.items())[1:])  # without self
            object.__setattr__(self, RECORD, arguments)

    recording_init.records_arguments = True
    cls.__init__ = recording_init
    return cls


def record_if_built_in(cls):
    """:class:`Module`'s hook for each subclass: a built-in kind in :data:`RECORDED_BUILT_INS` records."""
    if qualified_name(cls) in RECORDED_BUILT_INS:
        record_arguments(cls)


def recorded_arguments(module):
    """The constructor arguments ``module`` was built with (defaults filled in)."""
    arguments = getattr(module, RECORD, None)
    if arguments is None:
        raise RegistryError(f"{type(module).__name__} was built before it was registered, so it did not record "
                            "its constructor arguments; register the class before building it")
    return dict(arguments)

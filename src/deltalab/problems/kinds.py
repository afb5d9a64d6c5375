"""The problem-kind registry: ``model.type`` -> its :class:`~.base.ProblemKind`.

A new kind is one module with its kind object, named here; nothing else branches on
``model.type``.  A kind's module is imported when a problem of that kind is read (an mlp
solve never imports the equations machinery).
"""
from __future__ import annotations

import importlib

# model.type -> (module, kind object), in the order error messages list them
REGISTRY = {"mlp": (".layered", "MLP"), "cnn": (".layered", "CNN"), "rnn": (".recurrent", "RNN"),
            "lstm": (".recurrent", "LSTM"), "equations": (".equations", "EQUATIONS")}
MODEL_TYPES = tuple(REGISTRY)


def kind_named(name):
    """The kind of ``model.type = name`` (KeyError for a name that is none)."""
    module, attribute = REGISTRY[name]
    return getattr(importlib.import_module(module, __package__), attribute)


def problem_kind(problem):
    """The kind of a loaded Problem."""
    return kind_named(problem.model_type)

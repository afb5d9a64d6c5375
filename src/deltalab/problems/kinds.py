"""The problem-kind registry: ``model.type`` -> its :class:`~.base.ProblemKind`.

A new kind is one module with its kind object, named here; nothing else branches on
``model.type``.
"""
from __future__ import annotations

from .equations import EquationsKind
from .layered import CNN, MLP
from .recurrent import LSTM, RNN

KINDS = {name: kind for kind in (MLP, CNN, RNN, LSTM, EquationsKind()) for name in kind.names}
MODEL_TYPES = tuple(KINDS)  # the order error messages list them in


def problem_kind(problem):
    """The kind of a loaded Problem."""
    return KINDS[problem.model_type]

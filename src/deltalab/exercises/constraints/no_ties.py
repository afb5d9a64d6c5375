"""``no_ties = true``: no max-pool window has two equal largest entries, no max(a, b) has
a = b, and no softmax output has two equal largest probabilities (the predicted class).

A tie makes the max-pool gradient's route a convention (the engine, like PyTorch, takes the
first) and the argmax ambiguous; a student cannot be expected to guess it.

Example: a 2×2 window [[3, 1], [3, 0]] is rejected.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..applications import applications
from . import Constraint, flag, register

CLOSE = 1e-9


def _window_tie(x, kernel, stride, padding):
    (ph, pw) = padding
    pad = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    view = sliding_window_view(np.pad(x, pad, constant_values=-np.inf), kernel, axis=(-2, -1))
    view = view[..., :: stride[0], :: stride[1], :, :]
    flat = np.sort(view.reshape(view.shape[:-2] + (-1,)), axis=-1)
    return bool(np.any(flat[..., -1] - flat[..., -2] <= CLOSE * np.maximum(1.0, np.abs(flat[..., -1]))))


def _top_two_tie(values):
    flat = np.sort(np.asarray(values, dtype=np.float64).reshape(-1, np.shape(values)[-1]), axis=-1)
    return flat.shape[-1] > 1 and bool(np.any(flat[:, -1] - flat[:, -2] <= CLOSE))


@register
class NoTies(Constraint):
    name = "no_ties"
    keys = ("no_ties",)

    @classmethod
    def read(cls, table, fail):
        return cls() if flag(table, "no_ties", fail) else None

    def check(self, candidate):
        for derivation in candidate.derivations:
            for a in applications(derivation):
                if a.function == "max_pool" and _window_tie(a.arguments[0], a.params["kernel"], a.params["stride"],
                                                            a.params["padding"]):
                    return f"a max-pool window of {a.node.symbol} has two equal largest entries"
                if a.function == "max" and len(a.arguments) == 2 and np.any(np.abs(a.arguments[0] - a.arguments[1]) <= CLOSE):
                    return f"max(·, ·) in {a.node.symbol} compares two equal values"
                if a.function == "max" and len(a.arguments) == 1 and np.size(a.arguments[0]) > 1 \
                        and _top_two_tie(np.reshape(a.arguments[0], (1, -1))):
                    return f"max(·) in {a.node.symbol} has two equal largest entries"
                if a.function == "softmax" and np.ndim(a.arguments[0]) >= 1 and _top_two_tie(a.arguments[0]):
                    return f"the softmax in {a.node.symbol} has two equal largest outputs"
        return None

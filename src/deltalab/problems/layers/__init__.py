"""The layer registry of layered (mlp / cnn) problems: one module per layer kind.

Each module that defines ``KIND``, a :class:`~.base.LayerKind`, is a layer kind, with
everything about that layer: its keys and how they are read, its size, parameters and engine
forward pass, its PyTorch reference, its description and its formulas in the derivation
record.  Adding a layer kind means adding one module here; nothing else names layer kinds.
"""
from __future__ import annotations

import importlib
import os

from .base import LayerKind, LayerSpec, spec_dict


def _discover():
    kinds = []
    for file in sorted(os.listdir(__path__[0])):
        if not file.endswith(".py") or file.startswith("_"):
            continue
        kind = getattr(importlib.import_module(f".{file[:-3]}", __name__), "KIND", None)
        if kind is not None:
            kinds.append(kind)
    return {kind.name: kind for kind in sorted(kinds, key=lambda k: (k.order, k.name))}


LAYERS = _discover()
LAYER_TYPES = tuple(LAYERS)  # in ``order``: the order error messages list them in


def layer_kind(name) -> LayerKind:
    """The registered kind ``name`` (KeyError for an unknown one: specs are validated when read)."""
    return LAYERS[name]


__all__ = ["LAYERS", "LAYER_TYPES", "LayerKind", "LayerSpec", "layer_kind", "spec_dict"]

"""The layer registry of layered (mlp / cnn) problems: one module per layer kind.

Each module defines ``KIND``, a :class:`~.base.LayerKind` with everything about that layer:
its keys and how they are read, its size, parameters and engine forward pass, its PyTorch
reference, its description and its formulas in the derivation record.  Adding a layer kind
means adding one module and its name to ``MODULES``; nothing else names layer kinds.
"""
from __future__ import annotations

import importlib

from .base import LayerKind, LayerSpec, spec_dict

MODULES = ("dense", "conv2d", "max_pool2d", "avg_pool2d", "flatten")  # the order error messages list them in

LAYERS = {kind.name: kind for kind in (importlib.import_module(f".{name}", __name__).KIND for name in MODULES)}
LAYER_TYPES = tuple(LAYERS)


def layer_kind(name) -> LayerKind:
    """The registered kind ``name`` (KeyError for an unknown one: specs are validated when read)."""
    return LAYERS[name]


__all__ = ["LAYERS", "LAYER_TYPES", "LayerKind", "LayerSpec", "layer_kind", "spec_dict"]

"""Names a package exports but imports on first use (a module ``__getattr__``, PEP 562).

``import deltalab`` used to import every layer, op, optimiser and model at once (≈ 140 KiB of
source a recurrent ``deltalab solve`` never runs, compiled at every start where bytecode is not
cached).  A package now names each export's module in a table; the module is imported the first
time the name is read, and the value is then kept in the package, so later reads are plain
attribute reads.  Standard library only.

A name that is also one of the package's submodules (``deltalab.ops.dropout`` the function and
``deltalab/ops/dropout.py``) must stay an eager import: importing the submodule later would
set the package attribute to the module.
"""
from __future__ import annotations

import importlib
import sys

__all__ = ["lazy_exports"]


def lazy_exports(package, attributes=None, submodules=None, missing=None):
    """``(__getattr__, __dir__)`` for ``package`` (its ``__name__``).

    ``attributes``: {exported name: module defining it, relative to the package (``".layers"``)}.
    ``submodules``: {exported name: module that is the value itself (``"..functional"``)}.
    ``missing(name)``: what an unknown name does (default: AttributeError)."""
    attributes = dict(attributes or {})
    submodules = dict(submodules or {})

    def __getattr__(name):
        if name in attributes:
            value = getattr(importlib.import_module(attributes[name], package), name)
        elif name in submodules:
            value = importlib.import_module(submodules[name], package)
        elif missing is not None:
            return missing(name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # kept: the next read does not come here
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(attributes) | set(submodules))

    return __getattr__, __dir__

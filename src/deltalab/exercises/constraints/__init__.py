"""Constraints: named predicates a variant must satisfy, one module each.

A constraint is a class registered with :func:`register`: its ``name``, the ``[generate]``
keys it reads (``keys``), ``read(table, fail)`` turning those keys into an instance (None
when switched off), and ``check(candidate)`` returning None when the variant is good or a
short reason when it is not.  A candidate (:class:`deltalab.exercises.engine.Candidate`)
carries the solved trace and its derivation record; constraints only read it.  Adding a
constraint is adding one module here; nothing else branches on its name.
"""
from __future__ import annotations

import importlib
import pkgutil

CONSTRAINTS: dict = {}  # name -> class, in module order


def register(cls):
    """Class decorator: make a constraint known by its ``name``."""
    CONSTRAINTS[cls.name] = cls
    return cls


class Constraint:
    name = ""
    keys: tuple = ()
    description = ""

    @classmethod
    def read(cls, table, fail):
        raise NotImplementedError

    def check(self, candidate) -> str | None:
        raise NotImplementedError

    def setting(self):
        """The constraint as the [generate] table wrote it (for stress.json)."""
        return True


def flag(table, key, fail) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        fail(f"generate.{key}", f"expected true or false, got {value!r}")
    return value


for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["CONSTRAINTS", "Constraint", "flag", "register"]

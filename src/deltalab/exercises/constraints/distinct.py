"""``distinct = true``: no two variants have the same numbers, and none has the numbers of
the original exercise (``original = "NAME"`` in [generate]: a built-in example or a problem
file beside the template).

Variants are compared by their givens (inputs, targets, initial states, parameters) as the
derivation records them, so a draw that only changes a number's spelling (1 and 1.0) is the
same variant.
"""
from __future__ import annotations

from . import Constraint, flag, register


@register
class Distinct(Constraint):
    name = "distinct"
    keys = ("distinct",)

    @classmethod
    def read(cls, table, fail):
        return cls() if flag(table, "distinct", fail) else None

    def check(self, candidate):
        if candidate.fingerprint == candidate.generation.original_fingerprint:
            return "it has the original exercise's numbers"
        if candidate.fingerprint in candidate.generation.fingerprints:
            return "an earlier variant has the same numbers"
        return None

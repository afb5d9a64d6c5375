"""``decimals = d``: every value of the key is a number with at most d decimals.

Or ``exact = true`` with ``max_denominator = N`` (default 16): every value is a fraction with
denominator at most N, and the key writes fractions.  "Every value of the key" is every
computed node of the derivation record: forward values, outputs, errors, the loss, deltas,
local derivatives, per-step contributions, gradients and updated parameters (givens are the
template's own numbers).  How exactness is judged: :mod:`deltalab.exercises.numbers`.

Example: ``decimals = 2`` rejects a draw whose δ[1] = 0.125 (three decimals).
"""
from __future__ import annotations

from ..numbers import DecimalNumbers, FractionNumbers, as_fraction, flat, is_decimal
from . import Constraint, flag, register

COMPUTED_KINDS = ("forward", "output", "error", "loss", "delta", "local", "contribution", "gradient", "update")


@register
class Decimals(Constraint):
    name = "decimals"
    keys = ("decimals", "exact", "max_denominator")

    def __init__(self, decimals=None, max_denominator=None):
        self.decimals, self.max_denominator = decimals, max_denominator

    @classmethod
    def read(cls, table, fail):
        exact = flag(table, "exact", fail)
        if "max_denominator" in table and not exact:
            fail("generate.max_denominator", "belongs to exact = true (values as fractions)")
        if exact:
            if "decimals" in table:
                fail("generate.exact", "choose decimals = d or exact = true, not both")
            n = table.get("max_denominator", 16)
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10_000:
                fail("generate.max_denominator", f"expected an integer from 1 to 10000, got {n!r}")
            return cls(max_denominator=n)
        d = table["decimals"]
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 8:
            fail("generate.decimals", f"expected an integer from 0 to 8, got {d!r}")
        return cls(decimals=d)

    def setting(self):
        return {"decimals": self.decimals} if self.decimals is not None else {"exact": True,
                                                                             "max_denominator": self.max_denominator}

    def numbers(self, tolerance=None):
        if self.decimals is not None:
            return DecimalNumbers(self.decimals, tolerance)
        return FractionNumbers(self.max_denominator, tolerance)

    def holds(self, value) -> bool:
        if self.decimals is not None:
            return is_decimal(value, self.decimals)
        return as_fraction(value, self.max_denominator) is not None

    def check(self, candidate):
        for derivation in candidate.derivations:
            for node in derivation:
                if node.kind in COMPUTED_KINDS:
                    bad = next((v for v in flat(node.value) if not self.holds(v)), None)
                    if bad is not None:
                        want = (f"{self.decimals} decimals" if self.decimals is not None
                                else f"a fraction with denominator ≤ {self.max_denominator}")
                        return f"{node.symbol} has the entry {bad:.6g}, not {want}"
        return None

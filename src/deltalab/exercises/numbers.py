"""Hand-friendly numbers: is a value exactly a d-decimal number (or a small fraction), and how
a key writes it.

Binary floats cannot hold 0.1 exactly, and a forward pass over d-decimal inputs accumulates
rounding of about 1e-16 per operation, so "exactly representable with at most d decimals" is
judged with a margin far above that rounding and far below the next decimal:
|v·10ᵈ − round(v·10ᵈ)| ≤ 1e-9 · max(1, |v|·10ᵈ).  Fractions likewise: the nearest fraction
with denominator ≤ N (``Fraction.limit_denominator``) within 1e-9 · max(1, |v|).  A value that
is truly irrational (σ(0.5), a softmax) lies that close to such a number only by an accident
of probability ~1e-9 per value; sums and products of d-decimal numbers pass by construction.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

MARGIN = 1e-9


def is_decimal(value, decimals: int) -> bool:
    """Whether ``value`` is (up to float rounding) a number with at most ``decimals`` decimals."""
    scaled = float(value) * 10.0 ** decimals
    return abs(scaled - round(scaled)) <= MARGIN * max(1.0, abs(scaled))


def as_fraction(value, max_denominator: int):
    """The fraction with denominator ≤ ``max_denominator`` that ``value`` is, or None."""
    value = float(value)
    fraction = Fraction(value).limit_denominator(max_denominator)
    return fraction if abs(value - fraction) <= MARGIN * max(1.0, abs(value)) else None


class Numbers:
    """How a key writes a value and how close an answer must be (Moodle's tolerance)."""

    exact = False

    def text(self, value) -> str:
        raise NotImplementedError

    def answer(self, value):
        """The value as the answers file writes it (a number, or a fraction as a string)."""
        return float(value)

    tolerance = 0.0


class DecimalNumbers(Numbers):
    """Values that are d-decimal numbers: written with no more decimals than they need."""

    exact = True

    def __init__(self, decimals, tolerance=None):
        self.decimals = decimals
        self.tolerance = 0.5 * 10.0 ** -decimals if tolerance is None else tolerance

    def rounded(self, value) -> float:
        v = round(float(value), self.decimals)
        return 0.0 if v == 0 else v

    def text(self, value):
        v = self.rounded(value)
        text = f"{v:.{self.decimals}f}".rstrip("0").rstrip(".") if self.decimals else f"{v:.0f}"
        return text.replace("-", "−")

    def answer(self, value):
        v = self.rounded(value)
        return int(v) if v == int(v) else v


class FractionNumbers(Numbers):
    """Values that are small fractions: written as fractions (3/8, −1/2, 2)."""

    exact = True

    def __init__(self, max_denominator, tolerance=None):
        self.max_denominator = max_denominator
        self.tolerance = 1e-6 if tolerance is None else tolerance

    def fraction(self, value):
        return Fraction(float(value)).limit_denominator(self.max_denominator)

    def text(self, value):
        return str(self.fraction(value)).replace("-", "−")

    def answer(self, value):
        f = self.fraction(value)
        return int(f) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


class RoundedNumbers(Numbers):
    """Anything else: rounded to a fixed number of decimals; an answer within one unit of the
    last decimal is right (rounded or truncated)."""

    def __init__(self, decimals=4, tolerance=None):
        self.decimals = decimals
        self.tolerance = 10.0 ** -decimals if tolerance is None else tolerance

    def text(self, value):
        v = round(float(value), self.decimals)
        return f"{0.0 if v == 0 else v:.{self.decimals}f}".replace("-", "−")


def shown_decimals(numbers) -> int:
    """Decimals a key's worked solution shows: at least 4, all of an exact key's."""
    if isinstance(numbers, DecimalNumbers):
        return max(4, numbers.decimals)
    return getattr(numbers, "decimals", 4)


def flat(value):
    return np.asarray(value, dtype=np.float64).reshape(-1)


__all__ = ["DecimalNumbers", "FractionNumbers", "MARGIN", "Numbers", "RoundedNumbers", "as_fraction", "is_decimal", "shown_decimals"]

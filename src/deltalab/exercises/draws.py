"""Draws: the numbers of a template that change from variant to variant.

A draw is an inline table in place of a number (or of a whole array):

- ``{ints = [-2, 2]}``: an integer from -2 to 2 (both included);
- ``{choices = [0, 0.5, 1]}``: one of the listed numbers (or ``{choices = [[1, 0], [0, 1]]}``:
  one of the listed arrays, e.g. a one-hot target);
- ``{range = [-1, 1], step = 0.5}``: -1, -0.5, 0, 0.5 or 1 (the grid from the low end);

optionally with ``exclude = [0]`` (values never drawn) and ``shape = [2, 3]`` (an array of
that shape, every entry drawn alone).  Grid values are computed in decimal arithmetic, so
``step = 0.1`` gives 0.3, not 0.30000000000000004.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

KINDS = ("ints", "choices", "range")
DRAW_KEYS = KINDS + ("step", "exclude", "shape")
MAX_ENTRIES = 10_000  # entries of one drawn array: a template is an exercise, not a data set
MAX_GRID = 100_000  # values of one range grid


def is_draw(value) -> bool:
    """Whether a template value is a draw (an inline table with ints, choices or range)."""
    return isinstance(value, dict) and any(k in value for k in KINDS) and all(k in DRAW_KEYS for k in value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


@dataclass(frozen=True)
class Draw:
    """One draw of a template; ``where`` is its field path ("parameters.W1[0][1]")."""

    where: str
    values: tuple  # the numbers it can take, in increasing order (choices: as listed)
    shape: tuple | None  # None: a single number; () or more: an array of the declared shape

    @property
    def whole(self) -> bool:
        """Whether the draw chooses among whole arrays (then it never fills a shape)."""
        return bool(self.values) and isinstance(self.values[0], list)

    def sample(self, rng, shape=None):
        """One number, or a nested list of the given ``shape`` (default: the declared one)."""
        shape = self.shape if shape is None else shape
        if shape is None:
            return copy.deepcopy(self.values[int(rng.integers(len(self.values)))])
        picks = rng.integers(len(self.values), size=shape)
        return np.asarray(self.values, dtype=object)[picks].tolist()


def read_draw(value, where, fail) -> Draw:
    """The :class:`Draw` of a template's inline table; ``fail(where, message)`` raises."""
    kinds = [k for k in KINDS if k in value]
    if len(kinds) != 1:
        fail(where, f"a draw has exactly one of {', '.join(KINDS)}, got {', '.join(kinds)}")
    kind = kinds[0]
    spec = value[kind]
    if kind == "ints":
        if (not isinstance(spec, list) or len(spec) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in spec) or spec[0] > spec[1]):
            fail(f"{where}.ints", "expected [low, high], two integers with low ≤ high")
        if spec[1] - spec[0] >= MAX_GRID:
            fail(f"{where}.ints", f"at most {MAX_GRID:,} values")
        values = list(range(spec[0], spec[1] + 1))
    elif kind == "choices":
        arrays = isinstance(spec, list) and spec and all(isinstance(v, list) for v in spec)
        if arrays:  # whole arrays to choose from (a one-hot target): all of one shape
            try:
                shapes = {np.array(v, dtype=np.float64).shape for v in spec}
            except (ValueError, TypeError):
                shapes = set()
            if len(shapes) != 1 or "shape" in value or "exclude" in value:
                fail(f"{where}.choices", "expected numbers, or arrays of one shape (without shape or exclude)")
            return Draw(where, tuple(spec), None)
        if not isinstance(spec, list) or not spec or not all(_is_number(v) for v in spec):
            fail(f"{where}.choices", "expected a non-empty list of numbers (or of arrays of one shape)")
        values = list(spec)
    else:
        if not isinstance(spec, list) or len(spec) != 2 or not all(_is_number(v) for v in spec) or spec[0] > spec[1]:
            fail(f"{where}.range", "expected [low, high], two numbers with low ≤ high")
        step = value.get("step")
        if step is None or not _is_number(step) or step <= 0:
            fail(f"{where}.step", "a range needs a positive step, e.g. step = 0.5")
        low, high, dstep = (Decimal(repr(float(v))) if isinstance(v, float) else Decimal(v) for v in (*spec, step))
        count = int((high - low) / dstep) + 1
        if count > MAX_GRID:
            fail(f"{where}.step", f"the range has {count:,} values; at most {MAX_GRID:,}")
        values = [_plain(low + k * dstep) for k in range(count)]
    if "step" in value and kind != "range":
        fail(f"{where}.step", "step belongs to a range draw")
    exclude = value.get("exclude", [])
    if not isinstance(exclude, list) or not all(_is_number(v) for v in exclude):
        fail(f"{where}.exclude", "expected a list of numbers")
    values = [v for v in values if not any(float(v) == float(e) for e in exclude)]
    if not values:
        fail(where, "every value of the draw is excluded")
    shape = value.get("shape")
    if shape is not None:
        if (not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
            fail(f"{where}.shape", "expected a list of positive integers")
        if int(np.prod(shape)) > MAX_ENTRIES:
            fail(f"{where}.shape", f"at most {MAX_ENTRIES:,} entries")
        shape = tuple(shape)
    return Draw(where, tuple(values), shape)


def _plain(d: Decimal):
    """A decimal as an int when whole, else the float nearest to it."""
    return int(d) if d == d.to_integral_value() else float(d)


__all__ = ["DRAW_KEYS", "Draw", "KINDS", "is_draw", "read_draw"]

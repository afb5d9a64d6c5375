"""The problem-file field reader: one-line errors that name the file and the field path
("model.hidden_size: expected a positive integer, got -3"), did-you-mean for unknown keys."""
from __future__ import annotations

import numpy as np

from .. import limits
from ..errors import SpecError


class FieldReader:
    """Field access with errors that name the file and the field path; unknown keys and
    values get a did-you-mean.  Every problem kind and layer kind reads its section with it."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, message):
        raise SpecError(f"{self.path}: {where}: {message}")

    def check_keys(self, table, allowed, where):
        for key in table:
            if key not in allowed:
                import difflib  # only for the message: a correct file never loads it

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
                self.fail(f"{where}.{key}" if where else key, f"unknown key{hint}")

    def table(self, data, key, where, required=True):
        if key not in data:
            if required:
                self.fail(where, f"missing table [{key}]")
            return {}
        value = data[key]
        if not isinstance(value, dict):
            self.fail(where, f"expected a table [{key}], got {describe_value(value)}")
        return value

    def positive_int(self, table, key, where, default=None, largest=None):
        if key not in table:
            if default is None:
                self.fail(where, "missing; expected a positive integer")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(where, f"expected a positive integer, got {describe_value(value)}")
        self.at_most(value, largest, where)
        return value

    def at_most(self, value, largest, where, what=None):
        if largest is not None and value > largest:
            self.fail(where, f"{what or f'{value:,}'} is too large; the largest is {largest:,}")

    def non_negative_int(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"expected a non-negative integer, got {describe_value(value)}")
        return value

    def choice(self, table, key, choices, where, default=None):
        if key not in table:
            if default is None:
                self.fail(where, f"missing; expected one of {', '.join(choices)}")
            return default
        value = table[key]
        if value not in choices:
            import difflib  # only for the message: a correct file never loads it

            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(where, f"expected one of {', '.join(choices)}, got {describe_value(value)}{hint}")
        return value

    def boolean(self, table, key, where, default):
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {describe_value(value)}")
        return value

    def number(self, table, key, where, default=None, positive=False):
        if key not in table:
            if default is None:
                self.fail(where, "missing; expected a number")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            self.fail(where, f"expected a finite number, got {describe_value(value)}")
        if positive and value <= 0:
            self.fail(where, f"expected a positive number, got {value}")
        return float(value)

    def array(self, value, where):
        """A number or (nested) list of numbers as a float64 array; ragged or non-numeric refused.

        A boolean is no number here (NumPy would read true as 1.0): refused with its position.
        """
        if isinstance(value, bool) or isinstance(value, str) or isinstance(value, dict):
            self.fail(where, f"expected a number or a list of numbers, got {describe_value(value)}")
        stack = [(value, where)]
        while stack:
            item, at = stack.pop()
            if isinstance(item, list):
                stack.extend((entry, f"{at}[{i}]") for i, entry in reversed(list(enumerate(item))))
            elif isinstance(item, bool) or not isinstance(item, (int, float)):
                self.fail(at, f"expected a number, got {describe_value(item)}")
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError):
            self.fail(where, "expected a rectangular list of numbers (rows of equal length, numbers only)")
        if not np.all(np.isfinite(array)):
            self.fail(where, "contains a non-finite number (nan or inf)")
        return array

    def pair(self, value, where, allow_same=False, largest=limits.WINDOW):
        if allow_same and value == "same":
            return "same"
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            self.at_most(max(value), largest, where)
            return tuple(value)
        expected = "an integer, a pair [h, w]" + (' or "same"' if allow_same else "")
        self.fail(where, f"expected {expected}, got {describe_value(value)}")


def describe_value(value):
    """A value as an error message shows it: short strings quoted, long ones cut, tables and lists named."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "…"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'table'}"
    if isinstance(value, int) and abs(value) > limits.INTEGER:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    return repr(value)

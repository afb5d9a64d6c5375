"""Problem data (plain dicts, lists, numbers, strings, booleans) written back as TOML text.

No TOML writer ships with Python; a resolved template needs only this small subset, written
in one fixed order so that the same variant always gives the same bytes.
"""
from __future__ import annotations

import math
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


class Written(str):
    """A number already written as TOML text (e.g. with trailing zeros): written as it is."""


def key_text(key: str) -> str:
    return key if _BARE.fullmatch(key) else string_text(key)


def string_text(value: str) -> str:
    if "\n" in value and '"""' not in value and "\\" not in value:
        return '"""' + value + '"""'
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + escaped + '"'


def number_text(value) -> str:
    """The shortest text that reads back as the same float (integers stay integers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} to a problem file")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value)) if value != 0 else "0"
    return repr(value)


def value_text(value) -> str:
    if isinstance(value, Written):
        return str(value)
    if isinstance(value, str):
        return string_text(value)
    if isinstance(value, (bool, int, float)):
        return number_text(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key_text(k)} = {value_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "tolist"):  # a NumPy number or array
        return value_text(value.tolist())
    raise TypeError(f"cannot write {type(value).__name__} to a problem file")


def _is_table_list(value):
    return isinstance(value, list) and value and all(isinstance(v, dict) for v in value)


def dumps(data: dict) -> str:
    """``data`` as TOML: plain keys first, then [tables] and [[arrays of tables]], recursively."""
    lines: list = []
    _table(data, (), lines)
    return "\n".join(lines).strip() + "\n"


def _table(table, path, lines):
    plain = [(k, v) for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)]
    for key, value in plain:
        lines.append(f"{key_text(key)} = {value_text(value)}")
    for key, value in table.items():
        name = path + (key,)
        if isinstance(value, dict):
            if not value or any(not isinstance(v, dict) and not _is_table_list(v) for v in value.values()):
                lines += ["", "[" + ".".join(key_text(k) for k in name) + "]"]  # else [a.b] headers say it
            _table(value, name, lines)
        elif _is_table_list(value):
            for item in value:
                lines += ["", "[[" + ".".join(key_text(k) for k in name) + "]]"]
                _table(item, name, lines)

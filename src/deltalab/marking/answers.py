"""Answers files: a student's numbers for the quantities of ``deltalab solve --format json``.

An answers file is TOML with the sections and keys of the JSON solution: a top-level
``loss``; tables ``[errors]``, ``[outputs]``, ``[forward]``, ``[deltas]``, ``[gradients]``,
``[parameters_after]``; ``[steps.2.gradients]`` (and so on) for later training steps; an
optional ``student = "…"``.  Any subset may be given.

**How many decimals were written.**  A value is right when it is the true value rounded or
truncated to the decimals the student wrote (|v − true| < 10⁻ᵈ).  ``tomllib`` turns ``0.1670``
into the float 0.167 and loses the trailing zero, so the file is parsed with
``parse_float=Decimal``: tomllib hands us the exact written digits of every float, and the
decimals come from the Decimal's exponent (``0.1670`` → 4, ``1.5e-3`` → 4, an integer → 0).
A string holds an exact number -- a fraction or arithmetic on numbers (``"1/8"``,
``"(1 - 0.5)**2"``), evaluated with :class:`fractions.Fraction` by a small parser that accepts
numbers, + − * / ** and parentheses only (nothing is evaluated as Python) -- and is compared
to 10⁻⁹ relative.  Answers given from Python as floats take their decimals from ``repr``.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import SpecError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SECTIONS = ("errors", "outputs", "forward", "deltas", "gradients", "parameters_after")
TOP_KEYS = ("student", "loss", "steps") + SECTIONS
MAX_FILE_SIZE = 1_000_000
MAX_EXPRESSION = 200  # characters of a string answer
EXACT_TOLERANCE = 1e-9  # relative, for exact (string) answers


class AnswersError(SpecError):
    """An answers file that cannot be read; the message names the file and the field."""


@dataclass
class Answer:
    """One answered quantity: the number(s) written and how precisely they were written."""

    section: str  # "loss" or one of SECTIONS
    key: str  # "loss" for the loss
    step: int  # 1-based training step
    value: np.ndarray
    tolerance: np.ndarray  # per entry: |answer − true| below this is right
    written: object  # the entries as written (strings), for reports
    raw: object = None  # a string answer as written, when unknown symbols are allowed

    @property
    def where(self) -> str:
        prefix = "" if self.step == 1 else f"steps.{self.step}."
        return f"{prefix}{self.key}" if self.section == "loss" else f"{prefix}{self.section}.{self.key}"


@dataclass
class Answers:
    source: str  # file name, or "<answers>"
    student: str | None
    entries: list  # [Answer]


def read_answers(source, tolerance=None, symbolic=False) -> Answers:
    """An answers file (path), TOML text (a string with a newline) or a dict like the TOML's;
    ``symbolic``: string answers may be expressions in unknowns (kept as written)."""
    if isinstance(source, Answers):
        return source
    if isinstance(source, dict):
        return _entries(source, "<answers>", tolerance, symbolic)
    if isinstance(source, str) and "\n" in source:
        return _entries(_parse(source, "<answers>"), "<answers>", tolerance, symbolic)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_SIZE:
            raise AnswersError(f"{path}: the file has {size:,} bytes; an answers file may have at most "
                               f"{MAX_FILE_SIZE:,}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnswersError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnswersError(f"{path}: cannot read the file ({exc})") from None
    return _entries(_parse(text, str(path)), str(path), tolerance, symbolic)


_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse(text, path):
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except RecursionError:
        raise AnswersError(f"{path}: arrays nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _LINE.search(message)
        if match:
            raise AnswersError(f"{path}:{match.group(1)}:{match.group(2)}: TOML syntax error: "
                               f"{_LINE.sub('', message).strip()}") from None
        raise AnswersError(f"{path}: TOML syntax error: {message}") from None


def _fail(path, where, message):
    raise AnswersError(f"{path}: {where}: {message}")


def _unknown(path, where, key, allowed):
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(allowed) or '(none)'}"
    _fail(path, f"{where}{key}" if not where else f"{where}.{key}", f"unknown key; {hint}")


def _entries(data, path, tolerance, symbolic=False) -> Answers:
    for key in data:
        if key not in TOP_KEYS:
            _unknown(path, "", key, TOP_KEYS)
    student = data.get("student")
    if student is not None and not isinstance(student, str):
        _fail(path, "student", "expected a string")
    entries = _step_entries(data, 1, "", path, tolerance, symbolic)
    steps = data.get("steps", {})
    if not isinstance(steps, dict):
        _fail(path, "steps", "expected tables [steps.2.gradients], …")
    for name, table in steps.items():
        if not (isinstance(name, str) and name.isdigit() and int(name) >= 1):
            _fail(path, f"steps.{name}", "expected a training step number (1, 2, …)")
        if not isinstance(table, dict):
            _fail(path, f"steps.{name}", "expected a table of sections")
        for key in table:
            if key not in ("loss",) + SECTIONS:
                _unknown(path, f"steps.{name}", key, ("loss",) + SECTIONS)
        entries += _step_entries(table, int(name), f"steps.{name}.", path, tolerance, symbolic)
    return Answers(path, student, entries)


def _step_entries(table, step, prefix, path, tolerance, symbolic=False):
    out = []
    if "loss" in table:
        out.append(_answer("loss", "loss", step, table["loss"], f"{prefix}loss", path, tolerance, symbolic))
    for section in SECTIONS:
        if section not in table:
            continue
        values = table[section]
        if not isinstance(values, dict):
            _fail(path, f"{prefix}{section}", f"expected a table [{prefix}{section}]")
        for key, value in values.items():
            out.append(_answer(section, key, step, value, f"{prefix}{section}.{key}", path, tolerance, symbolic))
    return out


def _answer(section, key, step, raw, where, path, tolerance, symbolic=False):
    if isinstance(raw, np.ndarray):
        raw = raw.tolist()
    if symbolic and isinstance(raw, str):  # read against the problem's unknowns later (exact.py)
        return Answer(section, key, step, np.array(np.nan), np.array(0.0), raw, raw)
    if not isinstance(key, str):
        _fail(path, where, "keys are names such as \"z[1](2)\"")
    entries = _flatten(raw, where, path)
    numbers = [n for n, _, _ in entries]
    shape = _shape(raw, where, path)
    value = np.array(numbers, dtype=np.float64).reshape(shape)
    if not np.all(np.isfinite(value)):
        _fail(path, where, "contains a non-finite number (nan or inf)")
    if tolerance is not None:
        tol = np.full(shape, float(tolerance))
    else:
        tol = np.array([t if t is not None else EXACT_TOLERANCE * max(1.0, abs(n)) for n, t, _ in entries],
                       dtype=np.float64).reshape(shape)
    written = np.array([w for _, _, w in entries], dtype=object).reshape(shape)
    return Answer(section, key, step, value, tol, written.tolist() if shape else str(written.item()))


def _shape(raw, where, path):
    if isinstance(raw, list):
        if not raw:
            _fail(path, where, "an empty list")
        shapes = {_shape(item, where, path) for item in raw}
        if len(shapes) != 1:
            _fail(path, where, "expected a rectangular list of numbers (rows of equal length)")
        return (len(raw),) + shapes.pop()
    return ()


def _flatten(raw, where, path):
    """[(value, tolerance or None for exact, written text)] in row-major order."""
    if isinstance(raw, list):
        return [entry for item in raw for entry in _flatten(item, where, path)]
    if isinstance(raw, bool) or isinstance(raw, dict) or raw is None:
        _fail(path, where, f"expected a number, a list of numbers or a string such as \"1/8\", got "
                           f"{'a table' if isinstance(raw, dict) else repr(raw)}")
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            _fail(path, where, "contains a non-finite number (nan or inf)")
        return [(float(raw), written_tolerance(raw), str(raw))]
    if isinstance(raw, int):
        return [(float(raw), 1.0, str(raw))]
    if isinstance(raw, (float, np.floating)):  # from Python: the shortest text that reads back as it
        raw = float(raw)
        return [(raw, written_tolerance(Decimal(repr(raw))) if np.isfinite(raw) else 0.0, repr(raw))]
    if isinstance(raw, np.integer):
        return [(float(raw), 1.0, str(raw))]
    if isinstance(raw, str):
        return [(float(exact_number(raw, where, path)), None, raw)]
    _fail(path, where, f"expected a number, got {type(raw).__name__}")


def written_tolerance(number: Decimal) -> float:
    """10⁻ᵈ for a number written with d decimals (1.5e-3 has 4; 120 has 0)."""
    exponent = number.as_tuple().exponent
    return 10.0 ** min(int(exponent), 0) if isinstance(exponent, int) else 0.0


_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
            ast.USub, ast.UAdd)


def arithmetic(tree, constant, divide, power, name=None):
    """The value of a checked tree of + − * / ** and parentheses over constants (and names):
    ``constant``, ``divide``, ``power`` and ``name`` build the values (Fractions, SymPy) and
    refuse what they cannot take."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Name):
            return name(node.id)
        if isinstance(node, ast.Constant):
            return constant(node.value)
        if isinstance(node, ast.UnaryOp):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        a, b = walk(node.left), walk(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            return divide(a, b)
        return power(a, b)

    return walk(tree)


def exact_number(text: str, where="answer", path="<answers>") -> Fraction:
    """A string answer as an exact number: numbers, + − * / ** and parentheses only."""
    if len(text) > MAX_EXPRESSION:
        _fail(path, where, f"a string answer may have at most {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text.replace("−", "-").replace("^", "**"), mode="eval")
    except SyntaxError:
        tree = None
    if tree is None or not all(isinstance(n, _ALLOWED) for n in ast.walk(tree)):
        _fail(path, where, f"cannot read {text!r} as a number: write a number, a fraction such as \"1/8\" or "
                           "arithmetic on numbers (expressions in unknown symbols are not supported)")

    def constant(number):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            _fail(path, where, f"cannot read {text!r} as a number")
        return Fraction(str(number)) if isinstance(number, float) else Fraction(number)

    def divide(a, b):
        if b == 0:
            _fail(path, where, f"{text!r} divides by zero")
        return a / b

    def power(a, b):
        if b.denominator != 1 or abs(b) > 64 or (a == 0 and b < 0) or (
                max(a.numerator.bit_length(), a.denominator.bit_length()) * abs(int(b)) > 4096):
            _fail(path, where, f"{text!r}: only small integer powers of small numbers are supported")
        return a ** int(b)

    try:
        number = arithmetic(tree, constant, divide, power)
        float(number)
    except (RecursionError, OverflowError):
        _fail(path, where, f"{text!r} is too large or too deeply nested")
    return number


__all__ = ["Answer", "Answers", "AnswersError", "SECTIONS", "arithmetic", "exact_number", "read_answers", "written_tolerance"]

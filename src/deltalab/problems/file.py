"""Problem files: a TOML description of one exercise (model, parameters, data, training).

Read with ``tomllib`` (nothing in a file is ever executed) and validated field by field:
every error is a :class:`~deltalab.errors.SpecError` whose one-line message names the file
and the field path ("model.hidden_size: expected a positive integer, got -3"), unknown keys
get a did-you-mean, and a matrix of the wrong shape names the parameter and both shapes.
What each ``model.type`` reads is its problem kind's business (:mod:`deltalab.problems.kinds`).
"""
from __future__ import annotations

import os
import re
from dataclasses import field

import numpy as np

from .. import files, limits
from ..errors import SpecError
from ..records import dataclass
from .reader import FieldReader, describe_value

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

MAX_FILE_SIZE = limits.FILE_BYTES  # a problem file is small; a huge one is refused before reading it
TOP_KEYS = ("title", "description", "model", "parameters", "data", "training", "check")  # check: points (deltalab check)


@dataclass
class Problem:
    """A validated problem file."""

    path: str
    title: str
    model_type: str
    loss: str
    input_size: int = 0
    hidden_size: int = 0
    output_size: int = 0
    hidden_activation: str = "tanh"
    output_activation: str = "identity"
    many_to_one: bool = False
    bias: bool = True
    input_shape: tuple = ()
    layers: list = field(default_factory=list)
    parameters: dict = field(default_factory=dict)  # explicit arrays by name
    fill: float | None = None
    init: str = "fill"
    seed: int = 0
    inputs: np.ndarray | None = None
    targets: np.ndarray | None = None
    initial_state: np.ndarray | None = None
    initial_cell: np.ndarray | None = None
    target_steps: tuple | None = None  # 1-based time steps that have targets (default: all)
    reduction: str | None = None  # rnn / lstm: "sum" or "mean" of the sequences' errors (model.reduction)
    learning_rate: float | None = None
    steps: int = 1
    description: str = ""
    equations: object = None  # an equations.spec.EquationProblem (model type "equations")
    size: object = None  # NetworkSize of a layered / recurrent network (None: equations)


@dataclass
class NetworkSize:
    """What one forward pass over the problem's data costs, counted from the file before building."""

    parameters: int = 0
    values: int = 0  # every layer's output over the batch (or the sequence), the input included
    multiply_adds: int = 0

    @property
    def cost(self) -> int:
        return self.multiply_adds + self.values + self.parameters


_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_problem(path) -> Problem:
    """Read and validate a problem file; raises SpecError (file, line or field path) on any mistake.

    Only a regular file of at most ``limits.FILE_BYTES`` is read (a FIFO or device is refused
    before it is opened).
    """
    shown = os.fspath(path)
    raw = files.read_regular_file(shown, MAX_FILE_SIZE, SpecError, "file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"{shown}:{line}: not UTF-8 text (byte {exc.start + 1} of the file); "
                        "save the problem file as UTF-8") from None
    return parse_problem(text, shown)


def parse_problem(text, path="<problem>") -> Problem:
    if len(text) > MAX_FILE_SIZE:
        raise SpecError(f"{path}: the file has {len(text):,} characters; the largest is {MAX_FILE_SIZE:,}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _LINE.search(message)
        if match:
            message = _LINE.sub("", message).strip()
            raise SpecError(f"{path}:{match.group(1)}:{match.group(2)}: TOML syntax error: {message}") from None
        raise SpecError(f"{path}: TOML syntax error: {message}") from None
    except RecursionError:
        raise SpecError(f"{path}: lists or inline tables nested too deeply; the largest depth is "
                        f"{limits.ARRAY_DEPTH}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise SpecError(f"{path}: TOML: {exc}") from None
    reader = FieldReader(path)
    _check_tree(data, reader)
    return _read(data, reader)


def _check_tree(data, r):
    """Before reading any field: lists nested at most ARRAY_DEPTH deep, at most FILE_NUMBERS numbers,
    integers within 64 bits -- each refusal names the first field that breaks the rule."""
    numbers = 0
    stack = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else k, depth) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            if depth + 1 > limits.ARRAY_DEPTH:
                r.fail(where, f"lists nested {depth + 1} deep; the largest depth is {limits.ARRAY_DEPTH}")
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers += 1
            if numbers > limits.FILE_NUMBERS:
                r.fail(where, f"the file holds more than {limits.FILE_NUMBERS:,} numbers; "
                              f"the largest is {limits.FILE_NUMBERS:,}")
            if isinstance(value, int) and not -limits.INTEGER - 1 <= value <= limits.INTEGER:
                r.fail(where, f"{describe_value(value)} is beyond 64 bits; the largest is {limits.INTEGER:,}")


def _read(data, r) -> Problem:
    from .kinds import MODEL_TYPES, kind_named

    model = data.get("model")
    named = model.get("type") if isinstance(model, dict) else None
    if isinstance(named, str) and named in MODEL_TYPES and kind_named(named).own_layout:
        # a file of its own shape (equations)
        return kind_named(named).read_file(data, r, named, title_and_description(data, r))
    r.check_keys(data, TOP_KEYS, "")
    heading = title_and_description(data, r)
    model = r.table(data, "model", "model")
    model_type = r.choice(model, "type", MODEL_TYPES, "model.type")
    return kind_named(model_type).read_file(data, r, model_type, heading)


def title_and_description(data, r):
    if "title" in data:
        title = data["title"]
    else:  # pathlib only for a file without a title (a solve's start does not import it)
        from pathlib import Path

        title = Path(r.path).stem
    if not isinstance(title, str):
        r.fail("title", f"expected a string, got {describe_value(title)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        r.fail("description", f"expected a string, got {describe_value(description)}")
    return title, description

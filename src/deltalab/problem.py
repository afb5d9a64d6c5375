"""Problem files: a TOML description of one exercise (model, parameters, data, training).

Read with ``tomllib`` (nothing in a file is ever executed) and validated field by field:
every error is a :class:`~deltalab.errors.SpecError` whose one-line message names the file
and the field path ("model.hidden_size: expected a positive integer, got -3"), unknown keys
get a did-you-mean, and a matrix of the wrong shape names the parameter and both shapes.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import files, limits
from .errors import SpecError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

MODEL_TYPES = ("mlp", "cnn", "rnn", "lstm", "equations")
MAX_FILE_SIZE = limits.FILE_BYTES  # a problem file is small; a huge one is refused before reading it
HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
OUTPUT_ACTIVATIONS = ("identity", "softmax", "sigmoid", "tanh", "relu")
LOSSES = ("half_squared_error", "squared_error", "mse", "cross_entropy", "binary_cross_entropy")
LAYER_TYPES = ("dense", "conv2d", "max_pool2d", "avg_pool2d", "flatten")

TOP_KEYS = ("title", "description", "model", "parameters", "data", "training", "check")  # check: points (deltalab check)
RECURRENT_MODEL_KEYS = ("type", "input_size", "hidden_size", "output_size", "hidden_activation",
                        "output_activation", "many_to_one", "loss", "bias")
LAYERED_MODEL_KEYS = ("type", "input_shape", "layers", "loss")
LAYER_KEYS = {
    "dense": ("type", "units", "activation", "bias"),
    "conv2d": ("type", "out_channels", "kernel_size", "stride", "padding", "bias", "activation"),
    "max_pool2d": ("type", "kernel_size", "stride", "padding"),
    "avg_pool2d": ("type", "kernel_size", "stride", "padding"),
    "flatten": ("type",),
}
PARAMETER_OPTIONS = ("fill", "init", "seed")
DATA_KEYS = ("inputs", "targets", "target_steps", "initial_state", "initial_cell")
TRAINING_KEYS = ("learning_rate", "steps")


@dataclass
class LayerSpec:
    type: str
    units: int = 0
    out_channels: int = 0
    kernel_size: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: object = (0, 0)
    bias: bool = True
    activation: str = "identity"


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


class _Reader:
    """Field access with errors that name the file and the field path."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, message):
        raise SpecError(f"{self.path}: {where}: {message}")

    def check_keys(self, table, allowed, where):
        for key in table:
            if key not in allowed:
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
            self.fail(where, f"expected a table [{key}], got {_describe(value)}")
        return value

    def positive_int(self, table, key, where, default=None, largest=None):
        if key not in table:
            if default is None:
                self.fail(where, "missing; expected a positive integer")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(where, f"expected a positive integer, got {_describe(value)}")
        self.at_most(value, largest, where)
        return value

    def at_most(self, value, largest, where, what=None):
        if largest is not None and value > largest:
            self.fail(where, f"{what or f'{value:,}'} is too large; the largest is {largest:,}")

    def non_negative_int(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, f"expected a non-negative integer, got {_describe(value)}")
        return value

    def choice(self, table, key, choices, where, default=None):
        if key not in table:
            if default is None:
                self.fail(where, f"missing; expected one of {', '.join(choices)}")
            return default
        value = table[key]
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(where, f"expected one of {', '.join(choices)}, got {_describe(value)}{hint}")
        return value

    def boolean(self, table, key, where, default):
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {_describe(value)}")
        return value

    def number(self, table, key, where, default=None, positive=False):
        if key not in table:
            if default is None:
                self.fail(where, "missing; expected a number")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            self.fail(where, f"expected a finite number, got {_describe(value)}")
        if positive and value <= 0:
            self.fail(where, f"expected a positive number, got {value}")
        return float(value)

    def array(self, value, where):
        """A number or (nested) list of numbers as a float64 array; ragged or non-numeric refused.

        A boolean is no number here (NumPy would read true as 1.0): refused with its position.
        """
        if isinstance(value, bool) or isinstance(value, str) or isinstance(value, dict):
            self.fail(where, f"expected a number or a list of numbers, got {_describe(value)}")
        stack = [(value, where)]
        while stack:
            item, at = stack.pop()
            if isinstance(item, list):
                stack.extend((entry, f"{at}[{i}]") for i, entry in reversed(list(enumerate(item))))
            elif isinstance(item, bool) or not isinstance(item, (int, float)):
                self.fail(at, f"expected a number, got {_describe(item)}")
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
        self.fail(where, f"expected {expected}, got {_describe(value)}")


def _describe(value):
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "…"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'table'}"
    if isinstance(value, int) and abs(value) > limits.INTEGER:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    return repr(value)


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
    reader = _Reader(path)
    _check_tree(data, reader)
    return _validate(data, reader)


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
                r.fail(where, f"{_describe(value)} is beyond 64 bits; the largest is {limits.INTEGER:,}")


def _validate(data, r) -> Problem:
    model = data.get("model")
    if isinstance(model, dict) and model.get("type") == "equations":
        return _equations(data, r)
    r.check_keys(data, TOP_KEYS, "")
    title, description = _title_and_description(data, r)
    model = r.table(data, "model", "model")
    model_type = r.choice(model, "type", MODEL_TYPES, "model.type")
    problem = Problem(path=r.path, title=title, model_type=model_type, loss="half_squared_error",
                      description=description)
    if model_type in ("rnn", "lstm"):
        r.check_keys(model, RECURRENT_MODEL_KEYS, "model")
        for key in ("input_size", "hidden_size", "output_size"):
            setattr(problem, key, r.positive_int(model, key, f"model.{key}", largest=limits.WIDTH))
        if model_type == "rnn":
            problem.hidden_activation = r.choice(model, "hidden_activation", HIDDEN_ACTIVATIONS,
                                                 "model.hidden_activation", "tanh")
        elif "hidden_activation" in model:
            r.fail("model.hidden_activation", "an LSTM's activations are fixed (sigmoid gates, tanh cell); remove this key")
        problem.output_activation = r.choice(model, "output_activation", OUTPUT_ACTIVATIONS,
                                             "model.output_activation", "identity")
        problem.many_to_one = r.boolean(model, "many_to_one", "model.many_to_one", False)
        problem.bias = r.boolean(model, "bias", "model.bias", True)
    else:
        r.check_keys(model, LAYERED_MODEL_KEYS, "model")
        problem.input_shape = _input_shape(model, model_type, r)
        problem.layers = _layers(model, model_type, r)
    problem.loss = r.choice(model, "loss", LOSSES, "model.loss", "half_squared_error")
    _check_loss_fits(problem, r)
    _parameters(r.table(data, "parameters", "parameters", required=False), problem, r)
    _data(r.table(data, "data", "data"), problem, r)
    training = r.table(data, "training", "training", required=problem.targets is not None)
    r.check_keys(training, TRAINING_KEYS, "training")
    if problem.targets is not None:
        problem.learning_rate = r.number(training, "learning_rate", "training.learning_rate", positive=True)
    elif "learning_rate" in training:
        problem.learning_rate = r.number(training, "learning_rate", "training.learning_rate", positive=True)
    problem.steps = r.positive_int(training, "steps", "training.steps", default=1, largest=limits.STEPS)
    _check_size(problem, r)
    return problem


def _title_and_description(data, r):
    title = data.get("title", Path(r.path).stem)
    if not isinstance(title, str):
        r.fail("title", f"expected a string, got {_describe(title)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        r.fail("description", f"expected a string, got {_describe(description)}")
    return title, description


def _equations(data, r) -> Problem:
    """A model given as equations (see :mod:`deltalab.equations`)."""
    from .equations.spec import read

    title, description = _title_and_description(data, r)
    equations, learning_rate, steps = read(data, r, r.path)
    return Problem(path=r.path, title=title, model_type="equations", loss=equations.loss or "",
                   description=description, learning_rate=learning_rate, steps=steps, equations=equations)


def _input_shape(model, model_type, r):
    if "input_shape" not in model:
        r.fail("model.input_shape", "missing; expected a list of positive integers"
               + (" (channels, height, width)" if model_type == "cnn" else " (features)"))
    value = model["input_shape"]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        r.fail("model.input_shape", f"expected a list of positive integers, got {_describe(value)}")
    if model_type == "cnn" and len(value) != 3:
        r.fail("model.input_shape", f"a cnn needs (channels, height, width), got {value}")
    if model_type == "mlp" and len(value) != 1:
        r.fail("model.input_shape", f"an mlp needs (features,), got {value}; use type = \"cnn\" for images")
    for i, n in enumerate(value):
        r.at_most(n, limits.WIDTH, f"model.input_shape[{i}]")
    r.at_most(int(np.prod(value, dtype=object)), limits.VALUES, "model.input_shape",
              f"one sample of {'×'.join(map(str, value))} = {int(np.prod(value, dtype=object)):,} values")
    return tuple(value)


def _layers(model, model_type, r):
    layers = model.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        r.fail("model.layers", "expected one or more [[model.layers]] tables")
    specs = []
    for i, layer in enumerate(layers):
        where = f"model.layers[{i}]"
        kind = r.choice(layer, "type", LAYER_TYPES, f"{where}.type")
        r.check_keys(layer, LAYER_KEYS[kind], where)
        spec = LayerSpec(type=kind)
        if kind == "dense":
            spec.units = r.positive_int(layer, "units", f"{where}.units", largest=limits.WIDTH)
            spec.activation = r.choice(layer, "activation", OUTPUT_ACTIVATIONS, f"{where}.activation", "identity")
            spec.bias = r.boolean(layer, "bias", f"{where}.bias", True)
        elif kind == "conv2d":
            if model_type != "cnn":
                r.fail(f"{where}.type", "conv2d layers need model.type = \"cnn\"")
            spec.out_channels = r.positive_int(layer, "out_channels", f"{where}.out_channels", largest=limits.WIDTH)
            spec.kernel_size = r.pair(layer.get("kernel_size"), f"{where}.kernel_size")
            spec.stride = r.pair(layer.get("stride", 1), f"{where}.stride")
            spec.padding = r.pair(layer.get("padding", 0), f"{where}.padding", allow_same=True)
            spec.bias = r.boolean(layer, "bias", f"{where}.bias", True)
            spec.activation = r.choice(layer, "activation", OUTPUT_ACTIVATIONS, f"{where}.activation", "identity")
        elif kind in ("max_pool2d", "avg_pool2d"):
            if model_type != "cnn":
                r.fail(f"{where}.type", f"{kind} layers need model.type = \"cnn\"")
            spec.kernel_size = r.pair(layer.get("kernel_size"), f"{where}.kernel_size")
            spec.stride = r.pair(layer.get("stride", list(spec.kernel_size)), f"{where}.stride")
            spec.padding = r.pair(layer.get("padding", 0), f"{where}.padding")
        for name in ("kernel_size", "stride"):
            if kind != "dense" and kind != "flatten" and min(getattr(spec, name)) < 1:
                r.fail(f"{where}.{name}", f"expected values of at least 1, got {list(getattr(spec, name))}")
        if spec.padding != "same" and kind != "dense" and kind != "flatten" and min(spec.padding) < 0:
            r.fail(f"{where}.padding", f"expected non-negative values, got {list(spec.padding)}")
        specs.append(spec)
    return specs


def _check_loss_fits(problem, r):
    last = problem.output_activation if problem.model_type in ("rnn", "lstm") else (
        next((s.activation for s in reversed(problem.layers) if s.type in ("dense", "conv2d")), "identity"))
    if problem.loss == "cross_entropy" and last not in ("softmax", "identity"):
        r.fail("model.loss", f"cross_entropy needs a softmax (or identity = logits) output, the output activation is {last!r}")
    if problem.loss == "binary_cross_entropy" and last != "sigmoid":
        r.fail("model.loss", f"binary_cross_entropy needs a sigmoid output, the output activation is {last!r}")


def _parameters(table, problem, r):
    for key, value in table.items():
        if key in PARAMETER_OPTIONS:
            continue
        if not re.fullmatch(r"[WHb][1-9][0-9]*", key):
            close = difflib.get_close_matches(key, list(PARAMETER_OPTIONS) + ["W1", "H1", "b1", "W2", "b2"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            r.fail(f"parameters.{key}", f"unknown key: parameters are named W<l>, H<l>, b<l> or are one of "
                                        f"{', '.join(PARAMETER_OPTIONS)}{hint}")
        problem.parameters[key] = r.array(value, f"parameters.{key}")
    if "fill" in table:
        problem.fill = r.number(table, "fill", "parameters.fill")
    problem.init = r.choice(table, "init", ("fill", "random"), "parameters.init",
                            "fill" if "fill" in table else "random")
    if problem.init == "fill" and problem.fill is None:
        problem.fill = 0.0
    if "seed" in table:
        problem.seed = r.non_negative_int(table["seed"], "parameters.seed")


def _data(table, problem, r):
    r.check_keys(table, DATA_KEYS, "data")
    if "inputs" not in table:
        r.fail("data.inputs", "missing; expected the input values")
    problem.inputs = r.array(table["inputs"], "data.inputs")
    if problem.inputs.ndim == 0 and problem.model_type in ("mlp", "cnn"):
        # a single number fills one sample (shape exercises need no real image)
        problem.inputs = np.full(problem.input_shape, float(problem.inputs))
    if "target_steps" in table:
        steps = table["target_steps"]
        if problem.model_type not in ("rnn", "lstm") or problem.many_to_one:
            r.fail("data.target_steps", "only a many-to-many rnn or lstm has targets per time step")
        if (not isinstance(steps, list) or not steps
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in steps)):
            r.fail("data.target_steps", f"expected a list of time steps (1-based integers), got {_describe(steps)}")
        problem.target_steps = tuple(steps)
    if "targets" in table:
        problem.targets = r.array(table["targets"], "data.targets")
    for key in ("initial_state", "initial_cell"):
        if key in table:
            if problem.model_type not in ("rnn", "lstm") or (key == "initial_cell" and problem.model_type != "lstm"):
                r.fail(f"data.{key}", f"only {'an lstm' if key == 'initial_cell' else 'an rnn or lstm'} has an initial {key.split('_')[1]}")
            setattr(problem, key, r.array(table[key], f"data.{key}"))
    _check_data_shapes(problem, r)


def _check_data_shapes(problem, r):
    x, t = problem.inputs, problem.targets
    if problem.model_type in ("rnn", "lstm"):
        if x.ndim != 2 or x.shape[1] != problem.input_size:
            r.fail("data.inputs", f"expected a sequence of shape (T, {problem.input_size}) (one row per time step), "
                                  f"got shape {x.shape}")
        if x.shape[0] == 0:
            r.fail("data.inputs", "the sequence is empty")
        r.at_most(x.shape[0], limits.SEQUENCE, "data.inputs", f"a sequence of {x.shape[0]:,} time steps")
        if problem.target_steps is not None:
            bad = [v for v in problem.target_steps if not 1 <= v <= x.shape[0]]
            if bad or len(set(problem.target_steps)) != len(problem.target_steps):
                r.fail("data.target_steps", f"expected distinct steps between 1 and {x.shape[0]}, got {list(problem.target_steps)}")
        rows = x.shape[0] if problem.target_steps is None else len(problem.target_steps)
        expected = (problem.output_size,) if problem.many_to_one else (rows, problem.output_size)
        for key in ("initial_state", "initial_cell"):
            value = getattr(problem, key)
            if value is not None and value.shape != (problem.hidden_size,):
                r.fail(f"data.{key}", f"expected shape ({problem.hidden_size},), got {value.shape}")
    else:
        sample = problem.input_shape
        if x.shape != sample and x.shape[1:] != sample:
            r.fail("data.inputs", f"expected one sample of shape {sample} or a batch (N, {', '.join(map(str, sample))}), "
                                  f"got shape {x.shape}")
        expected = None
    if t is not None and expected is not None and t.shape != expected:
        r.fail("data.targets", f"expected shape {expected}"
               + (" (the output at the last step)" if problem.many_to_one else " (one row per time step)")
               + f", got shape {t.shape}")


# ------------------------------------------------------------------ size, before anything is built
def _check_size(problem, r):
    """Count parameters, values and multiply-adds from the file's numbers alone and refuse a network
    beyond the limits (:mod:`deltalab.limits`) before a single array of it is allocated; also the
    static checks a forward pass would otherwise make (so ``summary`` refuses what ``solve`` does)."""
    if problem.model_type in ("rnn", "lstm"):
        size, per_layer = _recurrent_size(problem), []
    else:
        size, per_layer, output_shape = _layered_size(problem, r)
        if output_shape is not None:
            _check_layered_targets(problem, output_shape, r)
    problem.size = size

    def biggest(index):
        if not per_layer:
            return ""
        layer = max(range(len(per_layer)), key=lambda i: per_layer[i][index])
        return f" (most in model.layers[{layer}], a {problem.layers[layer].type} layer)"

    r.at_most(size.parameters, limits.PARAMETERS, "model",
              f"the network has {size.parameters:,} parameters{biggest(0)}, which")
    r.at_most(size.values, limits.VALUES, "model",
              f"one forward pass over the data computes {size.values:,} values{biggest(1)}, which")
    r.at_most(size.multiply_adds, limits.MULTIPLY_ADDS, "model",
              f"one forward pass takes {size.multiply_adds:,} multiply-adds{biggest(2)}, which")
    steps = problem.steps if problem.targets is not None else 1
    shown = steps * (size.values + size.parameters)
    r.at_most(shown, limits.SHOWN, "training.steps",
              f"{steps:,} steps of {size.values + size.parameters:,} values and parameters each = {shown:,} "
              "numbers to show, which")
    work = steps * size.multiply_adds
    r.at_most(work, limits.TOTAL_MULTIPLY_ADDS, "training.steps",
              f"{steps:,} steps of {size.multiply_adds:,} multiply-adds each = {work:,}, which")


def _recurrent_size(problem):
    n_in, hidden, n_out = problem.input_size, problem.hidden_size, problem.output_size
    gates = 4 if problem.model_type == "lstm" else 1
    bias = 1 if problem.bias else 0
    steps = problem.inputs.shape[0]
    parameters = gates * hidden * (n_in + hidden + bias) + n_out * (hidden + bias)
    per_step = n_in + (gates + 1 if problem.model_type == "rnn" else gates + 2) * hidden + 2 * n_out
    multiply_adds = steps * (gates * hidden * (n_in + hidden) + n_out * hidden)
    return NetworkSize(parameters, steps * per_step + 2 * hidden, multiply_adds)


def _layered_size(problem, r):
    """(NetworkSize, per-layer [parameters, values, multiply-adds], output shape of one sample or None).

    Counts up to the first layer that does not fit its input (building the network refuses that
    one with its own message, after allocating only the layers counted here)."""
    inputs = problem.inputs
    batch = 1 if inputs.shape == problem.input_shape else inputs.shape[0]
    shape = problem.input_shape
    size = NetworkSize(values=batch * int(np.prod(shape)))
    per_layer = []
    for i, spec in enumerate(problem.layers):
        where = f"model.layers[{i}]"
        parameters = multiply_adds = 0
        if spec.type == "dense":
            if len(shape) != 1:
                return size, per_layer, None
            parameters = spec.units * (shape[0] + (1 if spec.bias else 0))
            multiply_adds = batch * spec.units * shape[0]
            shape = (spec.units,)
        elif spec.type == "flatten":
            shape = (int(np.prod(shape)),)
        else:
            if len(shape) != 3:
                return size, per_layer, None
            kernel, stride, padding = spec.kernel_size, spec.stride, spec.padding
            if padding == "same":
                if stride != (1, 1) or any(k % 2 == 0 for k in kernel):
                    return size, per_layer, None
                padding = tuple((k - 1) // 2 for k in kernel)
            elif spec.type != "conv2d" and any(2 * p > k for p, k in zip(padding, kernel)):
                r.fail(f"{where}.padding", f"padding {list(padding)} must be at most half the kernel size "
                                           f"{list(kernel)} (otherwise a window could hold only padding)")
            out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(shape[1:], kernel, stride, padding))
            if min(out) < 1:
                return size, per_layer, None
            channels = spec.out_channels if spec.type == "conv2d" else shape[0]
            window = kernel[0] * kernel[1]
            if spec.type == "conv2d":
                parameters = channels * (shape[0] * window + (1 if spec.bias else 0))
                multiply_adds = batch * channels * out[0] * out[1] * shape[0] * window
            else:
                multiply_adds = batch * channels * out[0] * out[1] * window
            shape = (channels,) + out
        outputs = 2 if spec.type in ("dense", "conv2d") and spec.activation != "identity" else 1
        values = batch * int(np.prod(shape)) * outputs
        per_layer.append((parameters, values, multiply_adds))
        size.parameters += parameters
        size.values += values
        size.multiply_adds += multiply_adds
    return size, per_layer, shape


def _check_layered_targets(problem, output_shape, r):
    """The targets must have the network's output shape (one sample, or the batch)."""
    if problem.targets is None:
        return
    batched = problem.inputs.shape != problem.input_shape
    batch = problem.inputs.shape[0] if batched else 1
    whole = (batch,) + tuple(output_shape)
    if problem.targets.shape not in (whole, whole[1:]):
        r.fail("data.targets", f"expected shape {whole[1:]}{' or ' + str(whole) if batched else ''} "
                               f"(the network's output), got {problem.targets.shape}")

"""What a stored architecture config may hold, checked before any module is built.

A checkpoint may come from anywhere, and its architecture decides which modules are built
and how large their parameters are.  So every keyword of the built-in classes is checked for
its type and range, and the parameters the config would allocate are counted from the sizes
alone (:func:`check` returns that count): a crafted file cannot make deltalab allocate 7 TB,
recurse 3,000 modules deep or build a layer with -2 units.  A class the user registered
themselves is checked only for the shape of its encoding; its nested modules are checked in
full.

Errors are :class:`ArchitectureRuleError` whose message starts with the field's path, e.g.
``architecture.layers[0].units: expected an integer from 1 to 1,048,576, got -2``.
"""
from __future__ import annotations

from ..errors import ConfigurationError

MAX_SIZE = 1 << 20  # one size: features, channels, hidden units, a kernel side, an input side
MAX_PARAMETERS = 16_000_000  # parameter entries of a whole model (128 MB in float64)
MAX_VALUES_PER_SAMPLE = 1 << 24  # values of one sample between two layers of a LayeredNetwork
MAX_MODULES = 10_000
MAX_LAYERS = 1_000
MAX_AXIS = 32  # |dim| of Flatten / Softmax

RECURRENT_ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")
OUTPUT_ACTIVATIONS = ("identity", "relu", "sigmoid", "softmax", "tanh")


class ArchitectureRuleError(ValueError):
    """A stored architecture that breaks a rule; the message starts with the field's path."""


def _fail(where, message):
    raise ArchitectureRuleError(f"{where}: {message}")


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value, where, low=1, high=MAX_SIZE):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(where, f"expected an integer from {low:,} to {high:,}, got {_show(value)}")
    return value


def _optional_int(value, where, low=1, high=MAX_SIZE):
    return None if value is None else _int(value, where, low, high)


def _bool(value, where):
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {_show(value)}")
    return value


def _choice(value, where, choices):
    if not isinstance(value, str) or value not in choices:
        _fail(where, f"expected one of {', '.join(choices)}, got {_show(value)}")
    return value


def _tuple(value, where):
    """The items of an encoded tuple ``{"tuple": [...]}`` (a plain list is accepted too)."""
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return value["tuple"]
    if isinstance(value, list):
        return value
    _fail(where, f"expected a tuple of integers, got {_show(value)}")


def _pair(value, where, low):
    items = _tuple(value, where)
    if len(items) != 2:
        _fail(where, f"expected two integers (height, width), got {_show(value)}")
    return tuple(_int(v, f"{where}[{i}]", low) for i, v in enumerate(items))


def _pairs(value, where):
    """The (key, value) pairs of an encoded mapping ``{"dict": [[k, v], ...]}`` (or a plain dict)."""
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], list):
        pairs = value["dict"]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            _fail(where, "expected [name, value] pairs")
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            _fail(where, "a key appears twice")
        return dict(pairs)
    _fail(where, f"expected a table of settings, got {_show(value)}")


class _Walk:
    """One walk over a config: counts modules, returns parameter counts."""

    def __init__(self, registered):
        self.registered = registered
        self.modules = 0

    def module(self, config, where):
        self.modules += 1
        if self.modules > MAX_MODULES:
            _fail(where, f"the architecture has more than {MAX_MODULES:,} modules")
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            _fail(where, f"expected a module config with a 'type', got {_show(config)}")
        unknown = sorted(set(config) - {"type", "kwargs"})
        if unknown:
            _fail(f"{where}.{unknown[0]}", "unknown key (a module config has only 'type' and 'kwargs')")
        kind = config["type"]
        if kind not in self.registered:
            _fail(f"{where}.type", f"unknown module type {_show(kind)}")
        kwargs = config.get("kwargs", {})
        if not isinstance(kwargs, dict):
            _fail(f"{where}.kwargs", f"expected a table of keyword arguments, got {_show(kwargs)}")
        rule = RULES.get(kind)
        if rule is None:
            return self.generic(kwargs, where)
        keywords, count = rule
        needed = [k for k, check_value in keywords.items() if not isinstance(check_value, Optional)]
        missing = [k for k in needed if k not in kwargs]
        unexpected = [k for k in kwargs if k not in keywords]
        if unexpected:
            _fail(f"{where}.{unexpected[0]}", f"{kind} takes no keyword {unexpected[0]!r}")
        if missing:
            _fail(f"{where}.{missing[0]}", f"missing (a {kind} needs {', '.join(needed)})")
        values = {k: check_value(kwargs[k], f"{where}.{k}") for k, check_value in keywords.items() if k in kwargs}
        return count(self, values, kwargs, where)

    def generic(self, value, where, depth=0):
        """A user-registered class: any JSON value, nested modules checked in full."""
        if isinstance(value, dict):
            if set(value) == {"module"}:
                return self.module(value["module"], f"{where}.module")
            if set(value) == {"modules"}:
                return self.modules_list(value, where)
            return sum(self.generic(v, f"{where}.{k}", depth + 1) for k, v in value.items())
        if isinstance(value, list):
            return sum(self.generic(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        return 0

    def modules_list(self, value, where):
        if not (isinstance(value, dict) and set(value) == {"modules"} and isinstance(value["modules"], list)):
            _fail(where, f"expected the list of named modules, got {_show(value)}")
        total, names = 0, set()
        for i, item in enumerate(value["modules"]):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                _fail(f"{where}[{i}]", "expected a [name, module config] pair")
            name, config = item
            if name in names:
                _fail(f"{where}[{name!r}]", "a module name appears twice")
            names.add(name)
            total += self.module(config, f"{where}[{name!r}]")
        return total


def _nothing(walk, values, kwargs, where):
    return 0


def _linear(walk, v, kwargs, where):
    return v["out_features"] * (v["in_features"] + 1)


def _conv(walk, v, kwargs, where):
    kh, kw = v["kernel_size"]
    return v["out_channels"] * (v["in_channels"] * kh * kw + 1)


def _recurrent(gates):
    """Parameters of an RNN/LSTM/GRU layer stack (``num_layers``, ``bidirectional``) or a cell."""
    def count(walk, v, kwargs, where):
        hidden, layers = v["hidden_size"], v.get("num_layers", 1)
        directions = 2 if v.get("bidirectional", False) else 1
        first = gates * hidden * (v["input_size"] + hidden + 2)
        later = gates * hidden * (directions * hidden + hidden + 2)
        return directions * (first + (layers - 1) * later)
    return count


def _module_list(walk, v, kwargs, where):
    items = kwargs["modules"]
    if not isinstance(items, list):
        _fail(f"{where}.modules", f"expected a list of modules, got {_show(items)}")
    total = 0
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and set(item) == {"module"}):
            _fail(f"{where}.modules[{i}]", f"expected a module, got {_show(item)}")
        total += walk.module(item["module"], f"{where}.modules[{i}]")
    return total


def _batch_norm(walk, v, kwargs, where):
    return 4 * v["num_features"] + 1  # weight, bias, running mean and variance, batch count


def _embedding(walk, v, kwargs, where):
    return v["num_embeddings"] * v["embedding_dim"]


def _network(gates):
    def count(walk, v, kwargs, where):
        hidden = v["hidden_size"]
        return gates * hidden * (v["input_size"] + hidden + 2) + v["output_size"] * (hidden + 1)
    return count


def _sequential(walk, v, kwargs, where):
    return walk.modules_list(kwargs["modules"], f"{where}.modules")


def _recurrent_wrapper(walk, v, kwargs, where):
    cell = kwargs["cell"]
    if not (isinstance(cell, dict) and set(cell) == {"module"}):
        _fail(f"{where}.cell", f"expected a module, got {_show(cell)}")
    return walk.module(cell["module"], f"{where}.cell")


def _feedback(walk, v, kwargs, where):
    return v["size"] ** 2


class _StoredLayerReader:
    """The field reader a layer kind reads a stored layer with (the layer registry's
    ``read`` and ``count``), answering in this module's words: a checkpoint's sizes are
    bounded by :data:`MAX_SIZE`, not by the problem-file limits, since a model built in
    Python may be larger than an exercise written by hand."""

    def fail(self, where, message):
        _fail(where, message)

    def positive_int(self, table, key, where, default=None, largest=None):
        if key not in table and default is not None:
            return default
        return _int(table.get(key), where)

    def choice(self, table, key, choices, where, default=None):
        if key not in table and default is not None:
            return default
        return _choice(table.get(key), where, choices)

    def boolean(self, table, key, where, default):
        return _bool(table.get(key, default), where)

    def pair(self, value, where, allow_same=False, largest=None):
        if allow_same and value == "same":
            return "same"
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        return _pair(value, where, 0)


def _layered(walk, v, kwargs, where):
    """Parameters of a LayeredNetwork, following the per-sample shape through its layers.

    Each layer is read and counted by its kind in the layer registry (the same code that reads
    a problem file's layers), so a new layer kind is checked here without naming it."""
    from ..problems.layers import LAYER_TYPES, LayerSpec, layer_kind, spec_dict
    from ..problems.layers.base import spec_keys

    shape = v["input_shape"]
    layers = kwargs["layers"]
    if not isinstance(layers, list):
        _fail(f"{where}.layers", f"expected a list of layers, got {_show(layers)}")
    if len(layers) > MAX_LAYERS:
        _fail(f"{where}.layers", f"{len(layers):,} layers; at most {MAX_LAYERS:,} are allowed")
    reader, known = _StoredLayerReader(), spec_keys()
    total = 0
    for i, raw in enumerate(layers):
        at = f"{where}.layers[{i}]"
        stored = _pairs(raw, at)
        unknown = [k for k in stored if k not in known]
        if unknown:
            _fail(f"{at}.{unknown[0]}", f"unknown layer key (known: {', '.join(known)})")
        kind = layer_kind(_choice(stored.get("type"), f"{at}.type", LAYER_TYPES))
        spec = LayerSpec(type=kind.name)
        kind.read(stored, spec, at, reader)
        counted = kind.count(spec_dict(spec), shape, 1, at, reader)
        if counted is None:
            try:
                kind.build(i + 1, spec_dict(spec), shape)
            except ConfigurationError as exc:
                _fail(at, str(exc))
            _fail(at, f"a {kind.name} layer does not fit its input of shape {shape}")
        total += counted.parameters
        shape = counted.shape
        if _product(shape) > MAX_VALUES_PER_SAMPLE:
            _fail(at, f"the layer's output has {_product(shape):,} values per sample; "
                      f"the largest allowed is {MAX_VALUES_PER_SAMPLE:,}")
    return total


def _product(shape):
    out = 1
    for n in shape:
        out *= n
    return out


def _input_shape(value, where):
    items = _tuple(value, where)
    if len(items) not in (1, 3):
        _fail(where, f"expected (features,) or (channels, height, width), got {_show(value)}")
    shape = tuple(_int(n, f"{where}[{i}]") for i, n in enumerate(items))
    if _product(shape) > MAX_VALUES_PER_SAMPLE:
        _fail(where, f"{_product(shape):,} values per sample; the largest allowed is {MAX_VALUES_PER_SAMPLE:,}")
    return shape


def _any(value, where):
    return value


def _size(value, where):
    return _int(value, where)


def _kernel(value, where):
    return _pair(value, where, 1)


def _padding(value, where):
    return _pair(value, where, 0)


def _axis(value, where):
    return _int(value, where, -MAX_AXIS, MAX_AXIS)


def _softmax_axis(value, where):
    """A softmax's dim, or None: torch's legacy implicit dim, as nn.Softmax() builds it."""
    return None if value is None else _axis(value, where)


def _truncate(value, where):
    return _optional_int(value, where)


def _one_of(*choices):
    return lambda value, where: _choice(value, where, choices)


class Optional:
    """A keyword a config may leave out (configs written before it existed)."""

    def __init__(self, check):
        self.check = check

    def __call__(self, value, where):
        return self.check(value, where)


def _number(low=-1e9, high=1e9):
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            _fail(where, f"expected a number from {low:g} to {high:g}, got {_show(value)}")
        return value
    return check


def _optional_number(low=-1e9, high=1e9):
    check = _number(low, high)
    return lambda value, where: None if value is None else check(value, where)


def _optional_index(value, where):
    return None if value is None else _int(value, where, -MAX_SIZE, MAX_SIZE)


_PROBABILITY = _number(0, 1)


_POOL = ({"kernel_size": _kernel, "stride": _kernel, "padding": _padding}, _nothing)
_layers = lambda value, where: _int(value, where, 1, MAX_LAYERS)  # noqa: E731
# RNN/LSTM keywords added with torch's layer stacks (older configs have a single-bias, one-layer layer)
_STACKED = {"num_layers": Optional(_layers), "dropout": Optional(_PROBABILITY), "bidirectional": Optional(_bool),
            "single_bias": Optional(_bool)}
_BATCH_NORM = ({"num_features": _size, "eps": _number(0, 1), "momentum": _optional_number(0, 1), "affine": _bool,
                "track_running_stats": _bool}, _batch_norm)
_NO_ARGUMENTS = ({}, _nothing)

# class name -> ({keyword: check(value, where)}, parameter count(walk, values, kwargs, where))
RULES = {
    "Linear": ({"in_features": _size, "out_features": _size, "bias": _bool}, _linear),
    "Conv2d": ({"in_channels": _size, "out_channels": _size, "kernel_size": _kernel, "stride": _kernel,
                "padding": _padding, "dilation": Optional(_kernel), "groups": Optional(_size), "bias": _bool},
               _conv),
    "MaxPool2d": ({**_POOL[0], "return_indices": Optional(_bool)}, _POOL[1]),  # (older configs lack it: False)
    "AvgPool2d": _POOL,
    "Flatten": ({"start_dim": _axis, "end_dim": _axis}, _nothing),
    "ReLU": _NO_ARGUMENTS, "Tanh": _NO_ARGUMENTS, "Sigmoid": _NO_ARGUMENTS, "Identity": _NO_ARGUMENTS,
    "Softmax": ({"dim": _softmax_axis}, _nothing),
    "LogSoftmax": ({"dim": _softmax_axis}, _nothing),
    "Sequential": ({"modules": _any}, _sequential),
    "RNN": ({"input_size": _size, "hidden_size": _size, "bias": _bool,
             "nonlinearity": _one_of(*RECURRENT_ACTIVATIONS), "batch_first": _bool, "bptt_truncate": _truncate,
             **_STACKED}, _recurrent(1)),
    "LSTM": ({"input_size": _size, "hidden_size": _size, "bias": _bool, "batch_first": _bool,
              "bptt_truncate": _truncate, **_STACKED}, _recurrent(4)),
    "GRU": ({"input_size": _size, "hidden_size": _size, "bias": _bool, "batch_first": _bool,
             "bptt_truncate": _truncate, "num_layers": _layers, "dropout": _PROBABILITY, "bidirectional": _bool},
            _recurrent(3)),
    "RNNCell": ({"input_size": _size, "hidden_size": _size, "bias": _bool,
                 "nonlinearity": _one_of(*RECURRENT_ACTIVATIONS)}, _recurrent(1)),
    "LSTMCell": ({"input_size": _size, "hidden_size": _size, "bias": _bool}, _recurrent(4)),
    "GRUCell": ({"input_size": _size, "hidden_size": _size, "bias": _bool}, _recurrent(3)),
    "Dropout": ({"p": _PROBABILITY}, _nothing),
    "BatchNorm1d": _BATCH_NORM,
    "BatchNorm2d": _BATCH_NORM,
    "Embedding": ({"num_embeddings": _size, "embedding_dim": _size, "padding_idx": _optional_index}, _embedding),
    "ELU": ({"alpha": _number()}, _nothing),
    "LeakyReLU": ({"negative_slope": _number()}, _nothing),
    "Softplus": ({"beta": _number(), "threshold": _number()}, _nothing),
    "GELU": ({"approximate": _one_of("none", "tanh")}, _nothing),
    "ModuleList": ({"modules": _any}, _module_list),
    "ModuleDict": ({"modules": _any}, _sequential),
    "Recurrent": ({"cell": _any, "truncate": _truncate, "retain_grad": _bool}, _recurrent_wrapper),
    "ElmanNetwork": ({"input_size": _size, "hidden_size": _size, "output_size": _size,
                      "hidden_activation": _one_of(*RECURRENT_ACTIVATIONS),
                      "output_activation": _one_of(*OUTPUT_ACTIVATIONS), "many_to_one": _bool, "bias": _bool,
                      "bptt_truncate": _truncate}, _network(1)),
    "LSTMNetwork": ({"input_size": _size, "hidden_size": _size, "output_size": _size,
                     "output_activation": _one_of(*OUTPUT_ACTIVATIONS), "many_to_one": _bool, "bias": _bool,
                     "bptt_truncate": _truncate}, _network(4)),
    "LayeredNetwork": ({"input_shape": _input_shape, "layers": _any}, _layered),
    "FeedbackCell": ({"size": _size}, _feedback),
}


def check(config, registered, where="architecture"):
    """Check ``config`` (a :func:`deltalab.io.architecture.to_config` dict read from a file) against
    the rules; returns an upper bound of the parameter entries building it allocates.

    ``registered`` holds the class names :func:`deltalab.io.architecture.from_config` knows."""
    parameters = _Walk(set(registered)).module(config, where)
    if parameters > MAX_PARAMETERS:
        _fail(where, f"about {parameters:,} parameters; the largest model a checkpoint may hold has "
                     f"{MAX_PARAMETERS:,}")
    return parameters


def differences(have, want, where="architecture"):
    """The first place two configs differ, as ``(path, have, want)`` (None when they are equal).

    Paths name what a user sees: ``architecture['1'].type``, ``architecture.layers[0].activation``."""
    stack = [(have, want, where)]
    while stack:
        a, b, at = stack.pop()
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            if "type" in a and "type" in b and ("kwargs" in a or "kwargs" in b):
                if a["type"] != b["type"]:
                    return f"{at}", a["type"], b["type"]
                ka, kb = a.get("kwargs", {}), b.get("kwargs", {})
                children = [(ka.get(k), kb.get(k), at if _is_module_list(ka.get(k)) else f"{at}.{k}")
                            for k in list(ka) + [k for k in kb if k not in ka]]
                stack += reversed(children)
                continue
            for key in ("modules", "dict"):
                if set(a) == {key} and set(b) == {key} and isinstance(a[key], list) and isinstance(b[key], list):
                    pa, pb = a[key], b[key]
                    names_a = [p[0] for p in pa]
                    names_b = [p[0] for p in pb]
                    if key == "modules" and names_a != names_b:
                        return f"{at} (module names)", names_a, names_b
                    da, db = dict(map(tuple, pa)), dict(map(tuple, pb))
                    fmt = (lambda n: f"{at}[{n!r}]") if key == "modules" else (lambda n: f"{at}.{n}")
                    children = [(da.get(n), db.get(n), fmt(n)) for n in names_a + [n for n in names_b if n not in da]]
                    stack += reversed(children)
                    break
            else:
                if set(a) == {"tuple"} and set(b) == {"tuple"}:
                    return at, tuple(a["tuple"]), tuple(b["tuple"])
                return at, a, b
            continue
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            stack += reversed([(x, y, f"{at}[{i}]") for i, (x, y) in enumerate(zip(a, b))])
            continue
        if isinstance(a, list) and isinstance(b, list):
            return f"{at} (length)", len(a), len(b)
        return at, _plain(a), _plain(b)
    return None


def _is_module_list(value):
    return isinstance(value, dict) and set(value) == {"modules"}


def _plain(value):
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(value["tuple"])
    if isinstance(value, dict) and set(value) == {"module"}:
        return value["module"].get("type") if isinstance(value["module"], dict) else value
    return value

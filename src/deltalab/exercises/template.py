"""Templates: a problem file whose numbers may be draws (:mod:`.draws`), plus a ``[generate]``
table saying what a good variant is.

Resolving a template replaces every draw by numbers and drops ``[generate]``: the result is a
plain problem file that :func:`deltalab.problem.parse_problem` reads like any other.

A draw in place of a whole array takes its shape from ``shape = [...]`` when given, else:
``parameters.W1`` (any W<l>, H<l>, b<l> of a layered or recurrent model) the model's
parameter shape; ``data.inputs`` of an mlp or cnn its input shape; ``data.targets`` of an mlp
or cnn the network's output shape (one sample, or the batch's); ``data.initial_state`` and
``data.initial_cell`` the hidden size; ``data.targets`` of a recurrent net one row per
targeted step.  Anything else is one number (equations parameters are numbers).
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpecError
from .draws import Draw, is_draw, read_draw
from .toml_text import dumps

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

MAX_TEMPLATE_SIZE = 1_000_000
GENERAL_KEYS = ("ask", "original", "max_tries", "tolerance", "display_decimals")
DEFAULT_MAX_TRIES = 2000  # draws per variant before giving up
_PARAMETER = re.compile(r"[WHb][1-9][0-9]*")


@dataclass
class Site:
    """Where a draw sits: ``path`` of keys and list indices into the template's data."""

    path: tuple
    draw: Draw
    shape: tuple | None  # None: one number


@dataclass
class Settings:
    """The ``[generate]`` table (constraints are read by their own modules)."""

    ask: list | None = None  # [(step, section, key)]: step None = every step, ("loss", None); None: default
    original: str | None = None
    max_tries: int = DEFAULT_MAX_TRIES
    tolerance: float | None = None
    display_decimals: int = 4
    table: dict = field(default_factory=dict)


@dataclass
class Template:
    path: str
    data: dict  # the problem with draws still in place, without [generate]
    sites: list
    settings: Settings
    constraints: list  # instances of the constraints the [generate] table switched on

    @property
    def title(self) -> str:
        return str(self.data.get("title", Path(self.path).stem))

    def resolve(self, rng) -> dict:
        """The problem data with every draw replaced by drawn numbers (a new dict)."""
        data = copy.deepcopy(self.data)
        for site in self.sites:
            _set(data, site.path, site.draw.sample(rng, site.shape))
        return data

    def fail(self, where, message):
        raise SpecError(f"{self.path}: {where}: {message}")


def _set(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _where(path) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def load_template(path) -> Template:
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_TEMPLATE_SIZE:
            raise SpecError(f"{path}: the file is larger than {MAX_TEMPLATE_SIZE:,} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the file ({exc})") from None
    return parse_template(text, str(path))


def parse_template(text: str, path="<template>") -> Template:
    """Read a template; errors name the file and the field, as the problem reader's do."""
    if len(text) > MAX_TEMPLATE_SIZE:
        raise SpecError(f"{path}: the file has {len(text):,} characters; at most {MAX_TEMPLATE_SIZE:,}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: TOML syntax error: {exc}") from None
    table = data.pop("generate", None)
    if table is None:
        raise SpecError(f"{path}: generate: missing table [generate] (what a good variant is: decimals, "
                        "constraints, ask)")
    if not isinstance(table, dict):
        raise SpecError(f"{path}: generate: expected a table [generate]")
    template = Template(path, data, [], Settings(table=table), [])
    found = []
    _find_draws(data, (), found, template.fail)
    template.settings = _settings(table, template)
    template.sites = _with_shapes(template, found)
    return template


def _find_draws(value, path, found, fail):
    if is_draw(value):
        found.append((path, read_draw(value, _where(path), fail)))
    elif isinstance(value, dict):
        for key, item in value.items():
            _find_draws(item, path + (key,), found, fail)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _find_draws(item, path + (index,), found, fail)


def _settings(table, template) -> Settings:
    from .constraints import CONSTRAINTS

    owned = {key: c for c in CONSTRAINTS.values() for key in c.keys}
    allowed = list(GENERAL_KEYS) + list(owned)
    settings = Settings(table=table)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            template.fail(f"generate.{key}", f"unknown key{hint}")
    if "ask" in table:
        ask = table["ask"]
        if not isinstance(ask, list) or not ask or not all(isinstance(a, str) for a in ask):
            template.fail("generate.ask", 'expected a list of quantities, e.g. ["loss", "gradients.W1"]')
        settings.ask = [parse_ask(a, template.fail) for a in ask]
    if "original" in table:
        if not isinstance(table["original"], str):
            template.fail("generate.original", "expected a built-in example's name or a problem file's path")
        settings.original = table["original"]
    for key, low, high in (("max_tries", 1, 1_000_000), ("display_decimals", 0, 12)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                template.fail(f"generate.{key}", f"expected an integer from {low} to {high}, got {value!r}")
            setattr(settings, key, value)
    if "tolerance" in table:
        value = table["tolerance"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < np.inf):
            template.fail("generate.tolerance", f"expected a non-negative number, got {value!r}")
        settings.tolerance = float(value)
    template.constraints = [c.read(table, template.fail) for c in CONSTRAINTS.values()
                            if any(k in table for k in c.keys)]
    template.constraints = [c for c in template.constraints if c is not None]
    return settings


def parse_ask(text, fail):
    """ "loss" → (None, "loss", None); "deltas.z[1](2)" → (None, "deltas", "z[1](2)");
    "steps.2.gradients.W1" → (2, "gradients", "W1").  Step None: every training step."""
    step = None
    match = re.match(r"steps\.([^.]*)\.(.*)$", text, re.S)
    if match:
        if not (match.group(1).isdigit() and int(match.group(1)) >= 1):
            fail("generate.ask", f"{text!r}: expected steps.N.SECTION.KEY with N a training step (1, 2, …)")
        step, text = int(match.group(1)), match.group(2)
    if text == "loss":
        return (step, "loss", None)
    section, dot, key = text.partition(".")
    sections = ("forward", "outputs", "errors", "deltas", "gradients", "parameters_after")
    if not dot or section not in sections or not key:
        fail("generate.ask", f"{text!r}: expected \"loss\" or SECTION.KEY with SECTION one of {', '.join(sections)} "
                             "(keys as in `deltalab solve --format json`; steps.N.… for training step N only)")
    return (step, section, key)


def _with_shapes(template, found) -> list:
    """Sites with the shape each draw fills (see the module docstring for the rule)."""
    needs = [(path, draw) for path, draw in found if draw.shape is None and not draw.whole and _array_field(path)]
    paths = [p for p, _ in needs]
    shapes = _inferred_shapes(template, paths) if needs else {}
    sites = []
    for path, draw in found:
        shape = draw.shape if draw.shape is not None else (shapes.get(path) if path in paths else None)
        sites.append(Site(path, draw, shape))
    return sites


def _array_field(path) -> bool:
    if len(path) != 2:
        return False
    section, key = path
    return (section == "parameters" and bool(_PARAMETER.fullmatch(str(key)))) or (
        section == "data" and key in ("inputs", "targets", "initial_state", "initial_cell"))


def _inferred_shapes(template, paths) -> dict:
    """Shapes for whole-array draws without ``shape``, read off the model the template builds."""
    from ..problem import parse_problem

    from ..problems.kinds import MODEL_TYPES, kind_named

    model_type = template.data.get("model", {}).get("type") if isinstance(template.data.get("model"), dict) else None
    known = model_type in MODEL_TYPES
    if model_type is None or known and kind_named(model_type).own_layout:
        return {}  # an own-layout kind (equations) has no [parameters] / [data] arrays to shape
    sequence = known and kind_named(model_type).sequence  # (an unknown type: the reader names it below)
    probe = copy.deepcopy(template.data)
    # every other draw at its first value; the arrays whose shape we need left out for now
    for path, draw in _all_draws(probe):
        _set(probe, path, draw.values[0] if draw.shape is None else np.full(draw.shape, draw.values[0]).tolist())
    for section, key in paths:
        probe[section].pop(key, None)
    if ("data", "inputs") in paths:
        if sequence:
            template.fail("data.inputs", "a drawn sequence needs its shape: add shape = [T, input_size]")
        probe["data"]["inputs"] = 0
    targets_drawn = ("data", "targets") in paths
    if targets_drawn and sequence:
        probe["data"].pop("target_steps", None)
    problem = parse_problem(dumps(probe), template.path)
    shapes = {}
    if sequence:
        hidden, output = problem.hidden_size, problem.output_size
        rows = len(template.data["data"].get("target_steps", [])) or problem.inputs.shape[0]
        shapes[("data", "targets")] = (output,) if problem.many_to_one else (rows, output)
        shapes[("data", "initial_state")] = shapes[("data", "initial_cell")] = (hidden,)
    else:
        shapes[("data", "inputs")] = tuple(problem.input_shape)
    if any(p[0] == "parameters" for p in paths) or (targets_drawn and not sequence):
        from ..recorder import build_model

        model = build_model(problem)
        shapes.update({("parameters", name): tuple(p.shape) for name, p in model.named_parameters()})
        if not sequence:
            drawn_inputs = ("data", "inputs") in paths
            batch = () if drawn_inputs or problem.inputs.shape == tuple(problem.input_shape) else problem.inputs.shape[:1]
            shapes[("data", "targets")] = batch + tuple(model.shapes[-1])
    for path in paths:
        if path not in shapes:
            template.fail(_where(path), "this model has no such parameter" if path[0] == "parameters"
                          else "cannot tell the shape of this draw: add shape = [...]")
    return shapes


def _all_draws(data):
    found = []
    _find_draws(data, (), found, lambda where, message: None)
    return found


__all__ = ["Settings", "Site", "Template", "load_template", "parse_ask", "parse_template"]

"""Checkpoints: ``save(model, path)`` / ``load(path)`` as a ``.npz`` file that needs no pickle.

Layout of the file (a NumPy ``.npz``, i.e. a zip of ``.npy`` arrays, read with
``allow_pickle=False``):

* ``__deltalab__`` — a uint8 array holding UTF-8 JSON: ``{"format": "deltalab-checkpoint",
  "version": 1, "architecture": <architecture.to_config(model)>, "parameters": [names],
  "metadata": {...}, "extra": [names]}``;
* ``param/<name>`` — one array per parameter (``state_dict`` names), stored in its own
  dtype, so save → load is bit-exact;
* ``extra/<name>`` — optional arrays the caller adds (the trainer stores optimiser state).

The file is written atomically: into a temporary file in the same directory, flushed and
fsync'ed, then renamed over the target with ``os.replace``.  A crash or an error mid-write
leaves the previous file as it was.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import architecture, files
from .errors import CheckpointError, DeltalabError

FORMAT = "deltalab-checkpoint"
VERSION = 1
HEADER_KEY = "__deltalab__"
PARAM_PREFIX = "param/"
EXTRA_PREFIX = "extra/"


@dataclass
class Checkpoint:
    """What a checkpoint file holds, before any model is built."""

    path: str
    architecture: dict
    state: dict
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    version: int = VERSION

    def build(self):
        """A new model of the stored architecture with the stored parameters."""
        try:
            model = _build_quietly(self.architecture)
        except DeltalabError as exc:
            raise CheckpointError(f"{self.path}: the stored architecture cannot be built: {exc}") from None
        _assign(model, self.state, self.path)
        return model


# ------------------------------------------------------------------- saving
def save(model, path, metadata=None, extra=None):
    """Write ``model`` (architecture + parameters) to ``path`` atomically; returns the path.

    ``metadata`` is any JSON-serialisable dict stored with the architecture; ``extra`` maps
    names to arrays stored beside the parameters (e.g. optimiser state).
    """
    path = os.fspath(path)
    state = {name: np.asarray(p.data) for name, p in model.named_parameters()}
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture.to_config(model),
        "parameters": list(state),
        "extra": list(extra or {}),
        "metadata": metadata or {},
    }
    try:
        header_bytes = json.dumps(header, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the metadata cannot be stored as JSON: {exc}") from None
    arrays = {HEADER_KEY: np.frombuffer(header_bytes, dtype=np.uint8)}
    for name, value in state.items():
        arrays[PARAM_PREFIX + name] = value
    for name, value in (extra or {}).items():
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise CheckpointError(f"{path}: extra array {name!r} holds Python objects, which a checkpoint cannot store")
        arrays[EXTRA_PREFIX + name] = value
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def atomic_write(path, write):
    """:func:`deltalab.files.atomic_write`, with a failure to create the file as a CheckpointError."""
    try:
        files.atomic_write(path, write)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise CheckpointError(f"{path}: cannot write a checkpoint here: {exc.strerror or exc}") from None


# ------------------------------------------------------------------ loading
def read_checkpoint(path) -> Checkpoint:
    """Read and validate a checkpoint file without building the model."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            start = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc.strerror or exc}") from None
    if start[:2] != b"PK":
        raise CheckpointError(f"{path}: not a deltalab checkpoint: not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise CheckpointError(f"{path}: refused: the file holds pickled Python objects, which deltalab never loads") from None
        raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    if HEADER_KEY not in arrays:
        raise CheckpointError(f"{path}: not a deltalab checkpoint: the .npz has no '{HEADER_KEY}' entry")
    header = _parse_header(arrays.pop(HEADER_KEY), path)
    names = header["parameters"]
    missing = [n for n in names if PARAM_PREFIX + n not in arrays]
    if missing:
        raise CheckpointError(f"{path}: corrupt checkpoint: the arrays of parameters {missing} are missing")
    state = {n: arrays[PARAM_PREFIX + n] for n in names}
    extra = {n: arrays[EXTRA_PREFIX + n] for n in header.get("extra", []) if EXTRA_PREFIX + n in arrays}
    return Checkpoint(path, header["architecture"], state, header.get("metadata", {}), extra, header["version"])


def _parse_header(raw, path):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: corrupt checkpoint: '{HEADER_KEY}' is {raw.dtype}{list(raw.shape)}, not bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: its architecture JSON does not parse ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a deltalab checkpoint: the header's format is not {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: corrupt checkpoint: format version {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this deltalab reads ({VERSION}); upgrade deltalab"
        )
    if not isinstance(header.get("architecture"), dict) or not isinstance(header.get("parameters"), list):
        raise CheckpointError(f"{path}: corrupt checkpoint: the header lacks 'architecture' or 'parameters'")
    return header


def load(path):
    """The model stored in ``path``, rebuilt from its architecture with the saved parameters."""
    return read_checkpoint(path).build()


def load_into(model, path):
    """Copy the parameters saved in ``path`` into ``model``; the architectures must match."""
    checkpoint = read_checkpoint(path)
    try:
        own = architecture.to_config(model)
    except DeltalabError:
        own = None  # an unregistered model can still take matching parameters
    if own is not None and own != checkpoint.architecture:
        raise CheckpointError(
            f"{path}: architecture mismatch: the checkpoint holds {describe(checkpoint.architecture)}, "
            f"the model is {describe(own)}"
        )
    _assign(model, checkpoint.state, path)
    return model


def describe(config):
    """A one-line description of a config: ``Sequential(Conv2d(1→8, 3×3), ReLU, ...)``."""
    kwargs = config.get("kwargs", {})
    if "modules" in kwargs and isinstance(kwargs["modules"], dict):
        return f"{config['type']}({', '.join(describe(c) for _, c in kwargs['modules']['modules'])})"
    inner = ", ".join(f"{k}={_show(v)}" for k, v in kwargs.items())
    return f"{config['type']}({inner})" if inner else config["type"]


def _show(value):
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return "(" + ", ".join(_show(v) for v in value["tuple"]) + ")"
    if isinstance(value, dict) and set(value) == {"module"}:
        return describe(value["module"])
    return repr(value)


def _assign(model, state, path):
    own = dict(model.named_parameters())
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = ([f"missing parameters {missing}"] if missing else []) + (
            [f"unexpected parameters {unexpected}"] if unexpected else []
        )
        raise CheckpointError(f"{path}: architecture mismatch: {', '.join(parts)}")
    for name, array in state.items():
        if array.shape != own[name].shape:
            raise CheckpointError(
                f"{path}: architecture mismatch: parameter {name!r} has shape {own[name].shape} in the model, "
                f"{array.shape} in the checkpoint"
            )
        if array.dtype.kind != "f":
            raise CheckpointError(f"{path}: corrupt checkpoint: parameter {name!r} is {array.dtype}, not a float array")
    for name, array in state.items():
        own[name].data = np.array(array, copy=True)  # keeps the saved dtype: bit-exact
        own[name].grad = None


def _build_quietly(config):
    """Build a model without moving deltalab's seeded generator (fresh weights draw from it)."""
    from . import random as deltalab_random

    generator = deltalab_random.generator()
    saved = generator.bit_generator.state
    try:
        return architecture.from_config(config)
    finally:
        generator.bit_generator.state = saved


# ------------------------------------------------------- optimiser state
def optimizer_state(optimizer):
    """The optimiser's per-parameter state as ``{"optimizer/<i>/<key>": array}`` for ``extra``."""
    arrays = {}
    for index, state in enumerate(optimizer.state):
        for key, value in state.items():
            arrays[f"optimizer/{index}/{key}"] = np.asarray(value)
    return arrays


def load_optimizer_state(optimizer, extra, path="checkpoint"):
    """Restore what :func:`optimizer_state` stored (ignores entries of other kinds)."""
    states = [dict() for _ in optimizer.params]
    for name, value in extra.items():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "optimizer":
            continue
        index = int(parts[1])
        if index >= len(states):
            raise CheckpointError(f"{path}: optimiser state for parameter {index}, the optimiser has {len(states)}")
        states[index][parts[2]] = value.item() if value.ndim == 0 else np.array(value, copy=True)
    optimizer.state = states

"""``dl.save(obj, f)`` / ``dl.load(f)`` like ``torch.save``/``torch.load``, without pickle.

* A Module is saved as a checkpoint (architecture JSON + parameters, :mod:`deltalab.io.checkpoint`);
  ``load`` rebuilds the model.
* A tensor, or a state_dict -- any nesting of dicts, lists and tuples of tensors, NumPy arrays,
  numbers, strings, booleans and None (an optimiser's ``state_dict()`` too) -- is saved as a NumPy
  ``.npz``: ``__deltalab_tensors__`` holds the structure as UTF-8 JSON, ``tensor/<i>`` the arrays in
  their own dtype (bit-exact).  ``load`` gives the same structure back with tensors in it, so
  ``model.load_state_dict(dl.load("model.pt"))`` works.

Anything else (a lambda, a custom object) is refused with a TypeError naming where it sits, and a
file with pickled objects (e.g. one written by ``torch.save``) is refused when loading.
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from .. import files
from ..errors import CheckpointError
from ..tensor import Tensor
from . import checkpoint

FORMAT = "deltalab-tensors"
VERSION = 1
HEADER_KEY = "__deltalab_tensors__"
TENSOR_PREFIX = "tensor/"


def save(obj, f, metadata=None, extra=None, **_torch_options):
    """Save a Module (as a checkpoint), a tensor or a state_dict to a path or a binary file object."""
    from ..nn import Module

    if isinstance(obj, Module):
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError("dl.save: a Module is saved to a file path (the checkpoint is written atomically)")
        return checkpoint.save(obj, f, metadata=metadata, extra=extra)
    arrays = {}
    structure = _encode(obj, arrays, "the object")
    header = {"format": FORMAT, "version": VERSION, "object": structure}
    payload = {HEADER_KEY: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    payload.update({TENSOR_PREFIX + str(i): a for i, a in enumerate(arrays.values())})
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        try:
            files.atomic_write(path, lambda handle: np.savez(handle, **payload))
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise CheckpointError(f"{path}: cannot write here: {exc.strerror or exc}") from None
        return path
    np.savez(f, **payload)
    return f


def _encode(obj, arrays, where):
    if isinstance(obj, Tensor):
        return {"__tensor__": _store(obj.data, arrays), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"dl.save: {where} is a NumPy array of Python objects, which deltalab saves without pickle only for numbers")
        return {"__array__": _store(obj, arrays)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        keys = []
        for k in obj:
            if not isinstance(k, (str, int, float, bool)) or k is None:
                raise TypeError(f"dl.save: {where} has a key of type {type(k).__name__}; keys must be strings or numbers")
            keys.append(k)
        return {"__items__": [[k, _encode(obj[k], arrays, f"{where}[{k!r}]")] for k in keys]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(
        f"dl.save: {where} is a {type(obj).__name__}, which deltalab cannot save without pickle; save tensors, "
        "arrays, numbers, strings and dicts/lists/tuples of them (a state_dict), or a Module")


def _store(array, arrays):
    key = len(arrays)
    arrays[key] = np.ascontiguousarray(array)
    return key


def load(f, map_location=None, weights_only=None, **_torch_options):
    """What :func:`save` wrote: a model (from a checkpoint), a tensor, or a state_dict of tensors."""
    if map_location is not None:
        from .tensor import check_device

        check_device(map_location if not isinstance(map_location, dict) else None)
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        arrays = _tensor_file_arrays(path)
        if arrays is None:  # a model checkpoint, or not ours: the checkpoint reader names the problem
            return checkpoint.load(path)
        return _decode_file(arrays, path)
    name = getattr(f, "name", "the file")
    raw = f.read()
    if raw[:2] != b"PK":
        raise CheckpointError(f"{name}: not a file deltalab saved (not an .npz)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            if HEADER_KEY not in npz.files:
                kind = "a model checkpoint: load it from its path" if checkpoint.HEADER_KEY in npz.files else (
                    "not a file deltalab saved")
                raise CheckpointError(f"{name}: {kind}")
            arrays = {k: npz[k] for k in npz.files}
    except CheckpointError:
        raise
    except ValueError as exc:
        raise CheckpointError(f"{name}: refused or corrupt: {exc} (deltalab never loads pickled objects)") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise CheckpointError(f"{name}: corrupt or truncated file ({type(exc).__name__}: {exc})") from None
    return _decode_file(arrays, name)


def _tensor_file_arrays(path):
    """The arrays of a tensor/state_dict file at ``path``, or None if it is anything else."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if HEADER_KEY not in npz.files:
                return None
            return {k: npz[k] for k in npz.files}
    except Exception:  # noqa: BLE001 - every other case is reported by the checkpoint reader
        return None


def _decode_file(arrays, name):
    try:
        header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{name}: corrupt file: its header does not parse ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "object" not in header:
        raise CheckpointError(f"{name}: corrupt file: the header is not a {FORMAT!r} header")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise CheckpointError(f"{name}: saved by a newer deltalab (format version {header.get('version')!r}); upgrade deltalab")
    return _decode(header["object"], arrays, name)


def _decode(node, arrays, name):
    if isinstance(node, list):
        return [_decode(v, arrays, name) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node or "__array__" in node:
        key = TENSOR_PREFIX + str(node.get("__tensor__", node.get("__array__")))
        if key not in arrays:
            raise CheckpointError(f"{name}: corrupt file: the array {key!r} is missing")
        array = np.array(arrays[key], copy=True)
        if "__array__" in node:
            return array
        return Tensor(array, requires_grad=bool(node.get("requires_grad")) and array.dtype.kind == "f")
    if "__float__" in node:
        return float(node["__float__"])
    if "__tuple__" in node:
        return tuple(_decode(v, arrays, name) for v in node["__tuple__"])
    if "__items__" in node:
        return {k: _decode(v, arrays, name) for k, v in node["__items__"]}
    return {k: _decode(v, arrays, name) for k, v in node.items()}

"""Checkpoints: ``save(model, path)`` / ``load(path)`` as a ``.npz`` file that needs no pickle.

Layout of the file (a NumPy ``.npz``, i.e. a zip of ``.npy`` arrays, read with
``allow_pickle=False``):

* ``__deltalab__`` — a uint8 array holding UTF-8 JSON: ``{"format": "deltalab-checkpoint",
  "version": 1, "architecture": <architecture.to_config(model)>, "parameters": [names],
  "buffers": [names], "metadata": {...}, "extra": [names]}``;
* ``param/<name>`` — one array per parameter (``state_dict`` names), stored in its own
  dtype, so save → load is bit-exact;
* ``buffer/<name>`` — one array per persistent buffer (BatchNorm's running mean and variance,
  its batch count), listed in the header's ``"buffers"``; files written before buffers were
  saved have no such list, and their models keep freshly built buffers;
* ``extra/<name>`` — optional arrays the caller adds (the trainer stores optimiser state).

The file is written atomically: into a temporary file in the same directory, flushed and
fsync'ed, then renamed over the target with ``os.replace``.  A crash or an error mid-write
leaves the previous file as it was.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import files
from ..errors import CheckpointError, DeltalabError, ShapeError
from ..nn.module import StateDictError
from . import architecture, architecture_rules

FORMAT = "deltalab-checkpoint"
VERSION = 1
HEADER_KEY = "__deltalab__"
PARAM_PREFIX = "param/"
BUFFER_PREFIX = "buffer/"
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
    buffers: dict | None = None  # None: a file from before buffers were saved

    def build(self):
        """A new model of the stored architecture with the stored parameters and buffers."""
        try:
            model = _build_quietly(self.architecture)
        except (DeltalabError, ValueError, TypeError, KeyError, IndexError, MemoryError) as exc:
            # the rules checked sizes and types already; this is a combination the class refuses
            raise CheckpointError(f"{self.path}: the stored architecture cannot be built: {_reason(exc)}") from None
        load_state(model, self)
        return model


# ------------------------------------------------------------------- saving
def save(model, path, metadata=None, extra=None):
    """Write ``model`` (architecture + parameters) to ``path`` atomically; returns the path.

    ``metadata`` is any JSON-serialisable dict stored with the architecture; ``extra`` maps
    names to arrays stored beside the parameters (e.g. optimiser state).
    """
    path = os.fspath(path)
    state = {name: np.asarray(p.data) for name, p in model.named_parameters()}
    buffers = {name: value for name, value in model.state_dict().items() if name not in state}
    for name, value in [*state.items(), *buffers.items(), *(extra or {}).items()]:
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            # read_checkpoint refuses such a file, so it is never written
            raise CheckpointError(f"{path}: {name!r} holds non-finite values (nan or inf); the checkpoint is not "
                                  "written")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture.to_config(model),
        "parameters": list(state),
        "buffers": list(buffers),
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
    for name, value in buffers.items():
        arrays[BUFFER_PREFIX + name] = value
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
# A checkpoint may come from anywhere: everything below bounds time and memory before reading.
MAX_CHECKPOINT_BYTES = 512 << 20  # the file, and the sum of its members' uncompressed sizes
MAX_HEADER_BYTES = 16 << 20  # the JSON header (architecture, metadata, training history)
MAX_MEMBERS = 10_000  # arrays in the .npz
MAX_JSON_DEPTH = 100  # nesting of the header (a Sequential inside a Sequential ... 20 deep)
MAX_NPY_HEADER = 10_000  # bytes of one .npy header (NumPy's own default limit)
READABLE_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # numpy.savez(_compressed)
HEADER_KEYS = ("format", "version", "architecture", "parameters", "buffers", "extra", "metadata")
ARRAY_KINDS = "fiub"  # float, signed and unsigned integer, bool; never objects, strings or records
PICKLE_START = b"\x80"


def read_checkpoint(path) -> Checkpoint:
    """Read and validate a checkpoint file without building the model.

    Refused with one :class:`CheckpointError` line naming the file and the field: anything
    but a regular file, a file or member over the size limits, a member compressed any other
    way than numpy.savez writes or encrypted, an array of Python objects (never unpickled),
    a header field of the wrong type or range, and non-finite parameters or extra arrays."""
    path = os.fspath(path)
    with _open_regular(path) as handle:
        try:
            start = handle.read(4)
            handle.seek(0)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read checkpoint: {exc.strerror or exc}") from None
        if start.startswith(PICKLE_START):
            raise CheckpointError(f"{path}: not a deltalab checkpoint: it looks like a Python pickle, "
                                  "which deltalab never loads")
        if start != b"PK\x03\x04":
            raise CheckpointError(f"{path}: not a deltalab checkpoint: not an .npz (zip) file")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error,
                UnicodeDecodeError, NotImplementedError) as exc:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_reason(exc)})") from None
        with archive:
            members = _members(archive, path, os.fstat(handle.fileno()).st_size)
            if HEADER_KEY not in members:
                raise CheckpointError(f"{path}: not a deltalab checkpoint: the .npz has no '{HEADER_KEY}' entry")
            header = _parse_header(_read_array(archive, members[HEADER_KEY], HEADER_KEY, path), path)
            names, extras, buffer_names = header["parameters"], header["extra"], header["buffers"] or []
            expected = ({HEADER_KEY} | {PARAM_PREFIX + n for n in names} | {BUFFER_PREFIX + n for n in buffer_names}
                        | {EXTRA_PREFIX + n for n in extras})
            missing = [n for n in names if PARAM_PREFIX + n not in members]
            if missing:
                raise CheckpointError(f"{path}: corrupt checkpoint: the arrays of parameters {_few(missing)} are missing")
            missing = [n for n in buffer_names if BUFFER_PREFIX + n not in members]
            if missing:
                raise CheckpointError(f"{path}: corrupt checkpoint: the arrays of buffers {_few(missing)} are missing")
            missing = [n for n in extras if EXTRA_PREFIX + n not in members]
            if missing:
                raise CheckpointError(f"{path}: corrupt checkpoint: the extra arrays {_few(missing)} are missing")
            unexpected = [key for key in members if key not in expected]
            if unexpected:
                raise CheckpointError(f"{path}: corrupt checkpoint: member {unexpected[0] + '.npy'!r} is not listed "
                                      "in its header")
            state = {n: _finite(_read_array(archive, members[PARAM_PREFIX + n], PARAM_PREFIX + n, path),
                                f"parameter {n!r}", path) for n in names}
            buffers = {n: _finite(_read_array(archive, members[BUFFER_PREFIX + n], BUFFER_PREFIX + n, path),
                                  f"buffer {n!r}", path) for n in buffer_names}
            extra = {n: _finite(_read_array(archive, members[EXTRA_PREFIX + n], EXTRA_PREFIX + n, path),
                                f"extra array {n!r}", path) for n in extras}
    for name, array in state.items():
        if array.dtype.kind != "f":
            raise CheckpointError(f"{path}: corrupt checkpoint: parameter {name!r} is {array.dtype}, not a float array")
    for name, array in buffers.items():
        if array.dtype.kind == "b" or (array.dtype.kind in "iu" and (array < 0).any()):
            raise CheckpointError(f"{path}: corrupt checkpoint: buffer {name!r} is {array.dtype}"
                                  + (" with negative counts" if array.dtype.kind != "b" else "")
                                  + "; a buffer holds floats or non-negative counts")
    return Checkpoint(path, header["architecture"], state, header["metadata"], extra, header["version"],
                      None if header["buffers"] is None else buffers)


def _open_regular(path):
    """``path`` opened for reading if it is a regular file within the size limit.

    Opened without blocking and checked on the open descriptor, so a FIFO never hangs and a
    device (``/dev/zero``) is never read.  TODO: use the bounded reader of deltalab.files."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{path}: not a regular file (a FIFO, socket or device); a checkpoint is a file")
        if info.st_size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"{path}: the file has {info.st_size:,} bytes; the largest checkpoint deltalab "
                                  f"reads is {MAX_CHECKPOINT_BYTES:,} bytes")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _reason(exc):
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _few(names, shown=5):
    listed = ", ".join(repr(n) for n in names[:shown])
    return f"[{listed}{', …' if len(names) > shown else ''}]"


def _members(archive, path, file_size):
    """{array name: ZipInfo}, after checking every member's name, method, flags and size."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: the .npz has {len(infos):,} members; a checkpoint may have at most "
                              f"{MAX_MEMBERS:,}")
    members, total = {}, 0
    for info in infos:
        name = info.filename
        if not name.endswith(".npy"):
            raise CheckpointError(f"{path}: corrupt checkpoint: member {name!r} is not a .npy array")
        key = name[: -len(".npy")]
        if key in members:
            raise CheckpointError(f"{path}: corrupt checkpoint: member {name!r} appears twice")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{path}: member {name!r} is encrypted; deltalab reads only plain .npz files")
        if info.compress_type not in READABLE_COMPRESSION:
            raise CheckpointError(
                f"{path}: member {name!r} uses zip compression method {info.compress_type}; deltalab reads only "
                "stored or deflated members (as numpy.savez and numpy.savez_compressed write them)")
        if info.compress_size > file_size:
            raise CheckpointError(f"{path}: corrupt checkpoint: member {name!r} claims {info.compress_size:,} "
                                  f"compressed bytes, the whole file has {file_size:,}")
        limit = MAX_HEADER_BYTES if key == HEADER_KEY else MAX_CHECKPOINT_BYTES
        total += info.file_size
        if info.file_size > limit or total > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(
                f"{path}: member {name!r} unpacks to {info.file_size:,} bytes"
                + (f" ({total:,} in all)" if total > info.file_size else "")
                + f"; the largest a checkpoint may unpack to is {min(limit, MAX_CHECKPOINT_BYTES):,}")
        members[key] = info
    return members


def _read_array(archive, info, key, path):
    """One member as an array: at most its declared (bounded) size is unpacked, and the .npy
    header's shape and dtype are checked against the bytes before any array is allocated."""
    where = f"{path}: corrupt checkpoint: member {info.filename!r}"
    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError,
            struct.error) as exc:
        raise CheckpointError(f"{where} does not unpack ({_reason(exc)})") from None
    if len(raw) != info.file_size:
        raise CheckpointError(f"{where} unpacks to {len(raw):,} bytes, its header says "
                              f"{info.file_size:,}")
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream, MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream, MAX_NPY_HEADER)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not one numpy.savez writes here")
    except (ValueError, TypeError, SyntaxError, struct.error, EOFError) as exc:
        raise CheckpointError(f"{where} is not a valid .npy array ({_reason(exc)})") from None
    if dtype.hasobject:
        raise CheckpointError(f"{path}: refused: the file holds pickled Python objects, which deltalab never "
                              f"loads (member {info.filename!r})")
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"{where} holds {dtype} values; a checkpoint holds numbers only")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CheckpointError(f"{where} has the impossible shape {shape}")
    entries = math.prod(shape)
    payload = len(raw) - stream.tell()
    if entries * dtype.itemsize != payload:
        raise CheckpointError(f"{where}: its shape {shape} of {dtype} needs "
                              f"{entries * dtype.itemsize:,} bytes, it holds {payload:,}")
    array = np.frombuffer(raw, dtype=dtype, count=entries, offset=stream.tell())
    array = array.reshape(shape[::-1]).transpose() if fortran_order else array.reshape(shape)
    return np.array(array, dtype=dtype.newbyteorder("="), order="C")  # owned, writable, native byte order


def _finite(array, what, path):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CheckpointError(f"{path}: {what} holds non-finite values (nan or inf): a checkpoint of a diverged "
                              "run is not loaded")
    return array


def _parse_header(raw, path):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: corrupt checkpoint: '{HEADER_KEY}' is {raw.dtype}{list(raw.shape)}, not bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else _reason(exc)
        raise CheckpointError(f"{path}: corrupt checkpoint: its architecture JSON does not parse ({reason})") from None
    depth = _json_depth(header)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: corrupt checkpoint: its header is nested {depth} levels deep; "
                              f"the largest allowed is {MAX_JSON_DEPTH}")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a deltalab checkpoint: the header's format is not {FORMAT!r}")
    unknown = [k for k in header if k not in HEADER_KEYS]
    if unknown:
        raise CheckpointError(f"{path}: corrupt checkpoint: header.{unknown[0]}: unknown field "
                              f"(known: {', '.join(HEADER_KEYS)})")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: corrupt checkpoint: header.version: expected a positive integer, "
                              f"got {_short(version)}")
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {_short(version)} is newer than this deltalab reads ({VERSION}); "
            "upgrade deltalab"
        )
    for field_name in ("architecture", "parameters"):
        if field_name not in header:
            raise CheckpointError(f"{path}: corrupt checkpoint: the header lacks '{field_name}'")
    header.setdefault("extra", [])
    header.setdefault("buffers", None)  # None: written before buffers were saved
    header.setdefault("metadata", {})
    if not isinstance(header["metadata"], dict):
        raise CheckpointError(f"{path}: corrupt checkpoint: header.metadata: expected a table, "
                              f"got {_short(header['metadata'])}")
    for field_name in ("parameters", "buffers", "extra"):
        names = header[field_name]
        if field_name == "buffers" and names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise CheckpointError(f"{path}: corrupt checkpoint: header.{field_name}: expected a list of names, "
                                  f"got {_short(names)}")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise CheckpointError(f"{path}: corrupt checkpoint: header.{field_name}: {twice!r} appears twice")
    try:
        architecture_rules.check(header["architecture"], architecture.registered())
    except architecture_rules.ArchitectureRuleError as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint: {exc}") from None
    return header


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number a checkpoint holds")


def _json_depth(value):
    """How deeply ``value`` nests lists and dicts, found without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    load_state(model, checkpoint)
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


def load_state(model, checkpoint):
    """Copy the checkpoint's parameters and buffers into ``model`` through ``load_state_dict``,
    each array keeping its saved dtype (bit-exact).  A file from before buffers were saved
    leaves the model's own buffers as they are."""
    state = dict(checkpoint.state)
    if checkpoint.buffers is None:
        params = {name for name, _ in model.named_parameters()}
        state.update((name, value) for name, value in model.state_dict().items() if name not in params)
    else:
        state.update(checkpoint.buffers)
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    for name, array in state.items():  # the saved dtype wins: cast the model's tensor first
        tensor = tensors.get(name)
        if tensor is not None and tensor.dtype != array.dtype and tensor.dtype.kind == array.dtype.kind == "f":
            tensor.data = tensor.data.astype(array.dtype)
    try:
        model.load_state_dict(state)
    except (StateDictError, ShapeError):
        raise CheckpointError(f"{checkpoint.path}: architecture mismatch: {_mismatch(model, state)}") from None
    for parameter in model.parameters():
        parameter.grad = None


def _mismatch(model, state):
    """What load_state_dict refused, said with both sides' names and shapes."""
    params = dict(model.named_parameters())
    own = {**params, **dict(model.named_buffers())}
    expected = model.state_dict()
    parts = []
    for what, names in (("parameters", params), ("buffers", [k for k in expected if k not in params])):
        missing = [k for k in names if k not in state]
        if missing:
            parts.append(f"missing {what} {missing}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        parts.append(f"unexpected parameters {unexpected}")
    if parts:
        return ", ".join(parts)
    name = next(k for k in state if tuple(state[k].shape) != tuple(own[k].shape))
    what = "parameter" if name in params else "buffer"
    return f"{what} {name!r} has shape {own[name].shape} in the model, {state[name].shape} in the checkpoint"


def _build_quietly(config):
    """Build a model without moving deltalab's seeded generator (fresh weights draw from it)."""
    from .. import random as deltalab_random

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
    for index, p in enumerate(optimizer.params):
        for key, value in optimizer.state.get(p, {}).items():
            arrays[f"optimizer/{index}/{key}"] = np.asarray(value)
    return arrays


# state key -> what it holds, for the optimisers deltalab has: "array" (shaped like its
# parameter), "non-negative array", or "count" (a whole number of steps taken)
OPTIMIZER_STATE = {
    "SGD": {"momentum_buffer": "array"},
    "Adam": {"step": "count", "exp_avg": "array", "exp_avg_sq": "non-negative array"},
}
MAX_STEPS = 1 << 53  # a step count beyond this is not a count a float can hold
_OPTIMIZER_KEY = re.compile(r"optimizer/(0|[1-9][0-9]{0,8})/([A-Za-z_][A-Za-z0-9_]{0,63})", re.ASCII)


def load_optimizer_state(optimizer, extra, path="checkpoint"):
    """Restore what :func:`optimizer_state` stored (ignores entries of other kinds).

    Every ``optimizer/<i>/<key>`` is checked first: ``i`` a parameter of this optimiser, ``key``
    a state it keeps, an array shaped like its parameter, a step count a whole number; then a
    parameter has all of its state or none, so a crafted file cannot make the next step fail."""
    states = [dict() for _ in optimizer.params]
    kinds = OPTIMIZER_STATE.get(type(optimizer).__name__)
    for name, value in extra.items():
        if not name.startswith("optimizer/"):
            continue
        where = f"{path}: optimiser state {name!r}"
        match = _OPTIMIZER_KEY.fullmatch(name)
        if match is None:
            raise CheckpointError(f"{where}: expected optimizer/<parameter index>/<state name>")
        index, key = int(match.group(1)), match.group(2)
        if index >= len(states):
            raise CheckpointError(f"{path}: optimiser state for parameter {index}, the optimiser has {len(states)}")
        kind = "any" if kinds is None else kinds.get(key)
        if kind is None:
            raise CheckpointError(f"{where}: {type(optimizer).__name__} keeps no state {key!r} "
                                  f"(it keeps {', '.join(kinds)})")
        states[index][key] = _optimizer_value(value, kind, optimizer.params[index].shape, where)
    if kinds is not None:
        for index, state in enumerate(states):
            if state and set(state) != set(kinds):
                missing = sorted(set(kinds) - set(state))
                raise CheckpointError(f"{path}: optimiser state of parameter {index} lacks {', '.join(missing)}")
    optimizer.state.clear()
    optimizer.state.update((p, state) for p, state in zip(optimizer.params, states) if state)


def _optimizer_value(value, kind, shape, where):
    value = np.asarray(value)
    if kind == "any":  # an optimiser deltalab does not know: a number, or an array like its parameter
        if value.dtype.kind not in "iuf" or value.shape not in ((), tuple(shape)):
            raise CheckpointError(f"{where}: expected a number or an array of shape {tuple(shape)}, got "
                                  f"{value.dtype}{list(value.shape)}")
        return value.item() if value.ndim == 0 else np.array(value, copy=True)
    if kind == "count":
        if value.ndim != 0 or value.dtype.kind not in "iu" or not 1 <= int(value) <= MAX_STEPS:
            raise CheckpointError(f"{where}: expected a whole number of steps from 1 to {MAX_STEPS:,}, got "
                                  f"{value.dtype}{list(value.shape)}" + (f" {value.item()!r}" if value.ndim == 0 else ""))
        return int(value)
    if value.dtype.kind != "f" or value.shape != tuple(shape):
        raise CheckpointError(f"{where}: expected a float array of shape {tuple(shape)} (its parameter's), got "
                              f"{value.dtype}{list(value.shape)}")
    if kind == "non-negative array" and (value < 0).any():
        raise CheckpointError(f"{where}: holds negative values; this state is a running mean of squares")
    return np.array(value, copy=True)

"""Reader for the IDX files MNIST ships in (``train-images-idx3-ubyte[.gz]`` ...).

Format (big-endian): two zero bytes, one type code, one byte giving the number of
dimensions n, then n unsigned 32-bit sizes, then the values in C order.
Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from ..errors import DeltalabError

IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


class IDXError(DeltalabError, ValueError):
    """An IDX file that is missing, malformed or truncated; the message names the file."""


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise IDXError(f"{path}: cannot read IDX file: {exc.strerror or exc}") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IDXError(f"{path}: gzip data is corrupt or truncated ({exc})") from None
    return raw


def parse_idx(raw: bytes, name="<bytes>") -> np.ndarray:
    """Decode the bytes of one IDX file into an array of native byte order."""
    if len(raw) < 4:
        raise IDXError(f"{name}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte header")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"{name}: not an IDX file: bad magic number 0x{raw[:4].hex()} (an IDX file starts with two zero bytes)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02X} in the magic number (known: {known})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{name}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise IDXError(
            f"{name}: truncated IDX data: shape {shape} of {dtype.name} needs {expected} bytes, only {actual} present"
        )
    if actual > expected:
        raise IDXError(f"{name}: {actual - expected} unexpected bytes after the IDX data of shape {shape}")
    values = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into a NumPy array of its shape and type."""
    return parse_idx(_read_bytes(path), os.fspath(path))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise IDXError(f"{path}: IDX cannot store dtype {array.dtype}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(IDX_DTYPES[code]).tobytes()
    if os.fspath(path).endswith(".gz"):
        raw = gzip.compress(raw)
    with open(path, "wb") as f:
        f.write(raw)

"""Writing files safely: write to a temporary file beside the target, fsync it, then rename
it over the target (and fsync the directory), so an interrupted run never leaves a
half-written file -- the old file, if any, survives intact."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temp file beside ``path``, then move it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "wb", dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp", delete=False
    )
    temporary = handle.name
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # makes the rename itself durable; not every platform can open a directory
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))

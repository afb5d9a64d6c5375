"""Reading and writing files safely, for every file a user names on the command line.

Reading (:func:`read_regular_file`): only a regular file, and at most a size limit of it -- a
FIFO would block forever, ``/dev/zero`` never ends and a directory is not a file, so each is
refused from its ``stat`` before it is opened.

Writing (:func:`atomic_write`): into a temporary file beside the target, fsynced, then renamed
over the target (and the directory fsynced), so an interrupted run never leaves a half-written
file -- the old file, if any, survives intact.  The rename would replace whatever the name
points at, so a target that is not a regular file (a device, FIFO, symlink or directory) is
refused, and so is a missing directory.  The file gets the permissions a new file gets from
the umask (an existing file keeps its own).  Temporary files left by a crashed or killed writer
are removed on the next write into that directory.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import time

from .errors import DeltalabError, OutputError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)
_TEMPORARY = re.compile(r"^\..+\.deltalab-(\d+)-[A-Za-z0-9_]+\.tmp$")
STALE_AFTER_DEAD_WRITER = 10.0  # seconds: the writer's process is gone (a margin for another PID namespace)
STALE_AFTER = 3600.0  # seconds: no write takes an hour, whoever the writer was


def _kind(mode) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


# ------------------------------------------------------------------ reading
def read_regular_file(path, limit: int, error=DeltalabError, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refusing anything else with one ``error`` line.

    A FIFO, device, socket or directory is refused from ``stat`` before it is opened; a file
    larger than ``limit`` bytes is refused from its size, and at most ``limit + 1`` bytes are
    ever read (a file that grows while being read is refused too).  Every message starts with
    the path; ``what`` names the file in them ("problem file", "checkpoint").
    """
    shown = os.fspath(path)
    try:
        info = os.stat(shown)
    except FileNotFoundError:
        raise error(f"{shown}: no such {what}") from None
    except OSError as exc:
        raise error(f"{shown}: cannot read the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{shown}: is {_kind(info.st_mode)}, not a {what}; deltalab reads only regular files")
    if info.st_size > limit:
        raise error(_too_large(shown, info.st_size, limit, what))
    try:
        # O_NONBLOCK: if the name was swapped for a FIFO since the stat, opening it does not hang
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{shown}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{shown}: is {_kind(os.fstat(fd).st_mode)}, not a {what}; deltalab reads only regular files")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{shown}: cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise error(_too_large(shown, None, limit, what))
    return b"".join(chunks)


def _too_large(path, size, limit, what):
    has = f"has {size:,} bytes" if size is not None else "grew while being read"
    return f"{path}: the {what} {has}; the largest is {limit:,} bytes"


# ------------------------------------------------------------------ writing
def check_output_path(path) -> str:
    """Refuse (OutputError) a target ``atomic_write`` could not write, before any work is done.

    Returns the path as a string.  A missing directory is refused rather than created, and an
    existing target must be a regular file: the rename would replace a device, FIFO, symlink
    or directory with a regular file.
    """
    shown = os.fspath(path)
    if not shown:
        raise OutputError("the output file name is empty")
    directory = os.path.dirname(os.path.abspath(shown))
    try:
        directory_mode = os.stat(directory).st_mode
    except FileNotFoundError:
        raise OutputError(f"{shown}: the directory {directory} does not exist; create it first") from None
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write here: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(directory_mode):
        raise OutputError(f"{shown}: {directory} is not a directory")
    try:
        mode = os.lstat(shown).st_mode
    except FileNotFoundError:
        return shown
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write here: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise OutputError(f"{shown}: is {_kind(mode)}; deltalab writes only to a new or a regular file")
    return shown


def atomic_write(path, write) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it to ``path``.

    Every failure (a refused target, permission, a full disk, a name too long, a read-only
    file system) is an :class:`OutputError` naming the path; the old file is left as it was.
    """
    import tempfile  # with shutil, lzma and bz2: only when something is written (solve's start stays light)

    shown = check_output_path(path)
    directory = os.path.dirname(os.path.abspath(shown))
    remove_stale_temporaries(directory)
    temporary = None
    try:
        mode = _new_file_mode(shown)
        handle = tempfile.NamedTemporaryFile(
            "wb", dir=directory, prefix=f".{os.path.basename(shown)}.deltalab-{os.getpid()}-", suffix=".tmp",
            delete=False,
        )
        temporary = handle.name
        with handle:
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, shown)
        temporary = None
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"{shown}: cannot write the file: {_reason(exc)}") from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
    _fsync_directory(directory)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc)


def _new_file_mode(path) -> int:
    """An existing file's permissions, else what the umask gives a new file (0o666 & ~umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        pass
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def remove_stale_temporaries(directory) -> list:
    """Remove the temporary files an earlier, crashed or killed writer left in ``directory``.

    Only names of our own pattern (``.NAME.deltalab-PID-RANDOM.tmp``) are touched: those of a
    writer process that no longer exists (and untouched for a few seconds), or untouched for an
    hour.  Returns the removed names.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            age = now - info.st_mtime
            pid = int(match.group(1))
            if age > STALE_AFTER or (pid != os.getpid() and age > STALE_AFTER_DEAD_WRITER and not _alive(pid)):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number that is no PID here: leave it to the age rule
    except OSError:
        return True
    return True


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

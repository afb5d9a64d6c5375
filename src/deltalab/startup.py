"""How this process started: as the ``deltalab`` command, or as a program that imports deltalab.

Decided once, when deltalab is first imported: under ``python -m deltalab…`` that is the only
moment ``sys.argv[0]`` is ``-m`` (runpy then sets it to the module's file).  The command owns
its short process, so it skips start and exit costs a library must leave alone: OpenBLAS's
idle threads spinning after NumPy loads, and for the small-work commands the second BLAS thread
itself (:func:`quiet_blas_threads`), the collector's passes over the objects NumPy's and
deltalab's imports create (:func:`pause_collector`), and the final collection over every object
at exit (``deltalab.cli.main``).  Standard library only: it runs before NumPy.
"""
from __future__ import annotations

import gc
import os
import sys

__all__ = ["COMMAND_LINE", "SMALL_WORK_COMMANDS", "command_name", "is_command_line", "pause_collector",
           "quiet_blas_threads", "resume_collector"]

# OpenBLAS's workers, started when NumPy loads, spin for 2**28 cycles (~0.1 s of CPU) before they
# sleep; on a busy machine that spin takes a core from the run (50-90 ms of a solve with 2 cores).
# 2**24 cycles still keep a worker awake between the products of a training step; the results are
# the same bits (only how long an idle worker waits changes).
BLAS_THREAD_TIMEOUT = "24"

# Commands whose products are small (a worked solution, grading a hand solution, exercise
# variants): OpenBLAS runs a small product on one thread anyway, so a second thread started
# when NumPy loads only costs its start and its spin (5-20 ms of a 2-core start).  The thread
# variables OpenBLAS reads; any of them set is the user's choice and is left alone.
SMALL_WORK_COMMANDS = ("solve", "check", "generate")
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
# ... and where the user asked for more threads, theirs never get a product that size: they go to
# sleep at once (2**4 cycles, OpenBLAS's shortest wait) instead of spinning beside the main thread
# (an explicit 2-thread `import numpy`: 3-5 ms more CPU and wall time with 2**24).
SMALL_WORK_THREAD_TIMEOUT = "4"


def is_command_line() -> bool:
    """Whether this process is the ``deltalab`` command: its console script, ``python -m
    deltalab`` or ``python -m deltalab.cli`` (only meaningful while deltalab is first imported)."""
    if sys.argv[:1] == ["-m"]:  # python -m deltalab…: the package is imported while the module is found
        argv = getattr(sys, "orig_argv", [])
        module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
        return module == "deltalab" or module.startswith("deltalab.")
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name in ("deltalab", "deltalab.exe", "deltalab-script.py")


COMMAND_LINE = is_command_line()


def command_name(argv=None) -> str | None:
    """The subcommand of a ``deltalab`` command line (``solve`` of ``deltalab solve --example x``):
    its first argument that is not an option, as ``deltalab.cli`` picks it."""
    return next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)


def quiet_blas_threads() -> None:
    """In the command's own process, before NumPy loads: OPENBLAS_THREAD_TIMEOUT, and for the
    small-work commands a shorter one and OPENBLAS_NUM_THREADS=1 -- each only where the user set
    nothing."""
    if COMMAND_LINE and "numpy" not in sys.modules:
        small_work = command_name() in SMALL_WORK_COMMANDS
        timeout = SMALL_WORK_THREAD_TIMEOUT if small_work else BLAS_THREAD_TIMEOUT
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", timeout)
        if small_work and not any(v in os.environ for v in BLAS_THREAD_VARIABLES):
            os.environ["OPENBLAS_NUM_THREADS"] = "1"


def pause_collector() -> bool:
    """In the command's own process: the collector off while NumPy and deltalab import (its
    passes over the objects the imports create took 10-20 ms of every start); True if paused."""
    if COMMAND_LINE and gc.isenabled():
        gc.disable()
        return True
    return False


def resume_collector(paused: bool) -> None:
    """After the imports: what they created lives as long as the process, so it is frozen (never
    walked again by a collection) and the collector runs again for what the command creates."""
    if paused:
        gc.freeze()
        gc.enable()

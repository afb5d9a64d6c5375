"""How many threads deltalab's own parallel ops use, and the small pool that runs them.

NumPy runs its copies and ufuncs on one thread and only its BLAS (OpenBLAS) matmuls on
several.  Ops whose NumPy copies cost as much as their matmuls (conv2d) therefore split
their work into one part per thread themselves: :func:`run_parallel` runs part 0 on the
calling thread and part k on pool worker k (a fixed assignment), with BLAS limited to one
thread meanwhile, so copies and matmuls both run in parallel without oversubscribing.
NumPy releases the GIL inside copies, ufuncs and BLAS calls.

The thread count follows the BLAS thread count the process was started with (read once,
through ``threadpoolctl`` when it is installed -- the optional ``fast`` extra -- otherwise
from ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / the CPUs this process may use), or
whatever :func:`set_num_threads` set, like ``torch.set_num_threads`` (or, for a block,
``dl.tuning(threads=n)``: see :mod:`deltalab.fast.tuning`).

Limiting BLAS needs threadpoolctl (it finds NumPy's OpenBLAS and its thread setter); the
limit is one C call each way (well under a microsecond) and is process-wide while a
parallel section runs.  Without threadpoolctl the parallel sections are not used (each part's
matmuls would start BLAS threads of their own and oversubscribe the cores), unless
:func:`set_num_threads` was called explicitly.
"""
from __future__ import annotations

import contextlib
import functools
import operator
import os
import queue
import threading

from ..errors import ConfigurationError
from .tuning import current as current_tuning

__all__ = ["batch_ranges", "blas_kernels", "blas_libraries", "get_num_threads", "over_batch", "parallel_threads",
           "product", "restore", "run_parallel", "set_num_threads", "snapshot"]

_num_threads = None  # None: not decided yet (detected on first use)
_explicit = False  # set_num_threads was called
_blas = None  # list of threadpoolctl library controllers of NumPy's OpenBLAS, once looked up
_section = threading.Lock()  # one parallel section at a time; nested/concurrent ones run serially
_workers = []


def blas_libraries():
    """threadpoolctl controllers of the OpenBLAS that NumPy uses ([] without threadpoolctl)."""
    global _blas
    if _blas is None:
        try:
            import numpy  # noqa: F401  (the library must be loaded to be found)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas = []
        else:
            libs = ThreadpoolController().select(internal_api="openblas").lib_controllers
            numpy_dir = os.path.dirname(os.path.dirname(numpy.__file__))
            ours = [lib for lib in libs if lib.filepath.startswith(numpy_dir) and "numpy" in lib.filepath]
            _blas = ours or libs
    return _blas


def _env_threads():
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def get_num_threads():
    """Threads deltalab's parallel ops use (the process's BLAS thread count unless set)."""
    global _num_threads
    if current_tuning().threads is not None:
        return current_tuning().threads
    if _num_threads is None:
        libs = blas_libraries()
        _num_threads = max(1, libs[0].get_num_threads() or 1) if libs else _env_threads()
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads in deltalab's parallel ops and in NumPy's BLAS (when threadpoolctl
    can reach it), like ``torch.set_num_threads``."""
    global _num_threads, _explicit
    try:
        n = operator.index(n)
    except TypeError:
        raise ConfigurationError(f"set_num_threads: expected a whole number of threads, got {n!r}") from None
    if n < 1:
        raise ConfigurationError(f"set_num_threads: need at least 1 thread, got {n}")
    with _section:  # not while a parallel section has BLAS limited
        for lib in blas_libraries():
            lib.set_num_threads(n)
        _num_threads, _explicit = n, True


def snapshot():
    """The thread settings now, for :func:`restore` (``dl.tuning`` restores them on exit)."""
    return _num_threads, _explicit, [(lib, lib.get_num_threads()) for lib in blas_libraries()]


def restore(state):
    """Go back to the thread settings :func:`snapshot` returned.

    Takes no lock: it may run inside a parallel section (a ``dl.tuning`` block in a task),
    where BLAS counts are unchanged unless the block called set_num_threads."""
    global _num_threads, _explicit
    number, explicit, blas = state
    if (_num_threads, _explicit) == (number, explicit):
        return  # set_num_threads was not called (BLAS may be limited by a running section)
    for lib, n in blas:
        if lib.get_num_threads() != n:
            lib.set_num_threads(n)
    _num_threads, _explicit = number, explicit


def blas_kernels():
    """The kernel family of NumPy's OpenBLAS (e.g. 'SkylakeX', 'Haswell'), or None if unknown
    (``dl.tuning(blas_kernels=...)`` overrides it for the size rules)."""
    if current_tuning().blas_kernels is not None:
        return current_tuning().blas_kernels or None
    libs = blas_libraries()
    return getattr(libs[0], "architecture", None) if libs else None


def parallel_threads():
    """Threads a parallel section may use now: 1 means run serially."""
    n = get_num_threads()
    if current_tuning().threads is not None:
        return n
    if n > 1 and not _explicit and not blas_libraries():
        return 1  # cannot keep each part's matmuls on one thread
    return n


class _Worker:
    def __init__(self):
        self.cpu = None  # the CPU it is pinned to
        self.tasks = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="deltalab-worker", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            index, fn, done = self.tasks.get()
            try:
                done.put((index, True, fn()))
            except BaseException as exc:  # handed to the caller
                done.put((index, False, exc))


def _reset_after_fork():
    global _section, _workers
    _section, _workers = threading.Lock(), []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _current_cpu():
    global _sched_getcpu
    if _sched_getcpu is None:
        try:
            import ctypes

            _sched_getcpu = ctypes.CDLL(None).sched_getcpu
        except (OSError, AttributeError):
            _sched_getcpu = False
    return _sched_getcpu() if _sched_getcpu else -1


_sched_getcpu = None


def _pin(n_tasks):
    """Keep the caller on its current CPU and worker k on another one for the section.

    Left to the scheduler, a worker woken by the caller is often placed on the caller's
    CPU and the two halves then run one after the other (measured on a 2-vCPU KVM guest:
    conv b 4.2-5.2 ms instead of 2.3-2.8 ms, in bursts).  Returns the caller's previous
    CPU set to restore, or None when not pinned.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = os.sched_getaffinity(0)
        cpu = _current_cpu()
        if len(allowed) < n_tasks or cpu not in allowed:
            return None
        others = sorted(allowed - {cpu})
        for k, worker in enumerate(_workers[: n_tasks - 1]):
            want = others[k % len(others)]
            if worker.cpu != want:
                os.sched_setaffinity(worker.thread.native_id, {want})
                worker.cpu = want
        os.sched_setaffinity(0, {cpu})
        return allowed
    except OSError:
        return None


# What a section costs here (2-vCPU KVM guest that halts idle vCPUs at once, 2 threads): an empty
# one 75-82 us median (41-53 us at best), about two wake-ups of a sleeping thread.  In the CIFAR
# step the worker's task starts 90-150 us (median) after the section is entered, and each of the
# four conv sections runs in 0.85-0.92x of its serial time.  That is the worker's wake-up itself:
# with the caller asleep (the GIL free) it starts 86 us (median) after entry, 136 us after 2 ms
# idle -- torch's OpenMP threads spin between regions instead.  A shorter sys.setswitchinterval
# (50 or 200 us) changed nothing; ReLU and pooling split over two threads lost (524k elements:
# 87 us serial, 149 us split), so they stay serial below Tuning.elementwise_parallel_min_size.


def run_parallel(tasks):
    """Run zero-argument callables concurrently, task 0 on this thread and task k on worker k,
    with BLAS on one thread meanwhile; return their results in order.

    Returns None (having run nothing) when another parallel section is running -- e.g. a
    nested call from inside a task -- so the caller runs its serial path instead.
    """
    if not _section.acquire(blocking=False):
        return None
    try:
        while len(_workers) < len(tasks) - 1:
            _workers.append(_Worker())
        limited = []  # (setter, count to restore): the raw C calls, ~10x cheaper than threadpoolctl's
        for get, put in _blas_count_functions():
            count = get() or 1
            if count != 1:
                put(1)
                limited.append((put, count))
        restore = _pin(len(tasks)) if current_tuning().pin_threads else None
        try:
            done = queue.SimpleQueue()
            for index, (worker, task) in enumerate(zip(_workers, tasks[1:]), 1):
                worker.tasks.put((index, task, done))
            results = [None] * len(tasks)
            error = None
            try:
                results[0] = tasks[0]()
            except BaseException as exc:
                error = exc
            # wait for every worker before returning, even after an error: they use the
            # caller's arrays
            outcomes = [done.get() for _ in tasks[1:]]
        finally:
            if restore is not None:
                os.sched_setaffinity(0, restore)
            for put, count in limited:
                put(count)
        if error is not None:
            raise error
        for index, ok, value in outcomes:  # they arrive in completion order
            if not ok:
                raise value
            results[index] = value
        return results
    finally:
        _section.release()



# ----------------------------------------------------------------------------- small products
# A matrix product below Tuning.blas_parallel_min_product multiply-adds runs on one BLAS thread.
# Two OpenBLAS threads barely speed such a product up (32x2048x10: 46 -> 39 us), but afterwards
# OpenBLAS's idle thread keeps spinning for a while and takes a core from whatever runs next:
# in the CIFAR-sized training step (benchmarks/README.md, run 7) the Linear layer's three tiny
# products at 2 threads made the conv layers' parallel sections that follow 2x slower (step
# 27-29 ms vs 18-21 ms with those products on one thread; 1 thread: 21 ms).

_blas_count = None  # [(get, set)] raw C functions of NumPy's OpenBLAS, once looked up


def _blas_count_functions():
    """(get, set) C functions of each NumPy OpenBLAS thread count (~0.3 us a call, against
    ~3 us through threadpoolctl's controllers), falling back to the controllers' methods."""
    global _blas_count
    if _blas_count is None:
        found = []
        for lib in blas_libraries():
            pair = None
            try:
                import ctypes

                dll = ctypes.CDLL(lib.filepath)
                for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", "")):
                    get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
                    put = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        get.restype, get.argtypes, put.restype, put.argtypes = ctypes.c_int, [], None, [ctypes.c_int]
                        pair = (get, put)
                        break
            except (OSError, AttributeError):
                pair = None
            found.append(pair or (lib.get_num_threads, lib.set_num_threads))
        _blas_count = found
    return _blas_count


class _OneBlasThread:
    """BLAS on one thread for the block, unless a parallel section (which already holds BLAS
    at one thread) or another small product is running: then the block runs as it is."""

    __slots__ = ("held", "restore")

    def __enter__(self):
        self.held = _section.acquire(blocking=False)
        self.restore = []
        if self.held:
            for get, put in _blas_count_functions():
                n = get() or 1
                if n != 1:
                    put(1)
                    self.restore.append((put, n))
        return self

    def __exit__(self, *exc):
        if self.held:
            for put, n in self.restore:
                put(n)
            _section.release()
        return False


_NO_CHANGE = contextlib.nullcontext()

# OpenBLAS runs a matrix-vector product with m·n < 2304 · GEMM_MULTITHREAD_THRESHOLD (4 by
# default) on one thread by itself (interface/gemv.c; a matrix product's own bound, in
# interface/gemm.c, is higher): such products need no switch, and a worked solution's tiny
# products never pay for looking the BLAS library up.
BLAS_SINGLE_THREAD_BELOW = 2304 * 4


def product(multiply_adds):
    """Context for a matrix product (or a run of them) whose largest single BLAS call does
    ``multiply_adds`` = M·N·K: below ``Tuning.blas_parallel_min_product`` BLAS runs it on one
    thread (see the note above), otherwise nothing changes."""
    if multiply_adds < BLAS_SINGLE_THREAD_BELOW:
        return _NO_CHANGE
    if multiply_adds >= current_tuning().blas_parallel_min_product or get_num_threads() < 2:
        return _NO_CHANGE
    return _OneBlasThread()


# ----------------------------------------------------------------------------- elementwise ops
# NumPy runs ufuncs on one thread.  Elementwise ops that work image by image (pooling) or pass
# by pass with per-channel sums (batch norm) split the batch into one range per thread in a
# parallel section when the array is large enough to pay for it (a section costs ~0.1-0.2 ms):
# Tuning.elementwise_parallel_min_size (benchmarks/README.md, run 7).


def batch_ranges(n, size):
    """Batch ranges [(lo, hi)], one per thread, for an elementwise op on ``size`` elements of a
    batch of ``n``, or None to run serially (``Tuning.parallel``, the size rule)."""
    tuning = current_tuning()
    if n < 2 or tuning.parallel is False:
        return None
    if tuning.parallel is None and size < tuning.elementwise_parallel_min_size:
        return None
    count = min(parallel_threads(), n)
    if count < 2:
        return None
    bounds = [n * t // count for t in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def over_batch(n, size, task):
    """Run ``task(lo, hi)`` over batch ranges in one parallel section when it pays, else as
    ``task(0, n)``; the results in range order."""
    ranges = batch_ranges(n, size)
    if ranges is not None:
        results = run_parallel([functools.partial(task, lo, hi) for lo, hi in ranges])
        if results is not None:
            return results
    return [task(0, n)]

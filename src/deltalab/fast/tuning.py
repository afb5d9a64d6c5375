"""Every speed switch of deltalab in one object, changed for a block with ``dl.tuning(...)``.

Each field chooses between paths that compute the same maths (to the tolerance their tests
state); none changes what is computed, only how fast.  The defaults are the size rules
measured on the project's benchmark machine: benchmarks/README.md, "Tuning rules", has the
measurement behind each number.  ``with dl.tuning(parallel=False): ...`` changes a field for
the block (process-wide, like ``torch.set_num_threads``, so parallel workers see it too) and
restores everything on exit, including a thread count set inside with ``dl.set_num_threads``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading

from ..errors import ConfigurationError

__all__ = ["Tuning", "current", "override"]


@dataclasses.dataclass(frozen=True)
class Tuning:
    #: parallel sections of conv2d and the recurrent sequences: None, the size rules below
    #: decide; True / False, always / never (when 2+ threads are available)
    parallel: bool | None = None
    #: threads the parallel sections and size rules assume (None: ``get_num_threads()``);
    #: BLAS's own thread count is left alone (``dl.set_num_threads`` sets both)
    threads: int | None = None
    #: compiled numba step kernels for float32 sequences: None, on unless the environment
    #: variable ``DELTALAB_NUMBA=0``; True / False, on / off
    numba: bool | None = None
    #: OpenBLAS kernel family the recurrent size rules assume (None: the one NumPy loaded)
    blas_kernels: str | None = None  # "" : as if unknown (not OpenBLAS, or no threadpoolctl)
    #: batch·hidden·steps from which a float32 sequence uses the compiled kernels, and elements
    #: from which the float32 training-mode batch norm does (benchmarks/README.md, "Tuning
    #: rules": importing numba costs ~0.4 s)
    kernel_min_work: int = 1 << 16
    #: large-enough calls of a ReLU / max pooling before they import numba for their kernels
    #: (a one-off call saves ~0.3 ms, the import costs ~0.4 s; once numba is loaded: at once)
    kernel_warmup_calls: int = 8
    #: LSTM step products in column blocks: None, the small-matrix rule decides
    split_step_products: bool | None = None
    #: a range's whole LSTM / Elman tanh loop over time in one compiled call (False: Python step loops)
    loop_kernels: bool = True
    #: M·N·K up to which OpenBLAS's AVX-512 builds use small-matrix kernels at one thread
    small_matrix_max: int = 1_000_000
    #: fewest steps for a parallel LSTM with compiled loops / with Python step loops
    lstm_parallel_min_steps: int = 20
    lstm_parallel_min_steps_python_loops: int = 64
    #: float32 LSTM with compiled kernels: each backward step also computes its rows of
    #: ∂E/∂x(t) = δ(t)·W_ih while δ(t) is in cache (False: one (T·B, 4H)·(4H, F) product after)
    lstm_input_gradient_per_step: bool = True
    #: conv2d work (N·Ho·Wc·K·(O + 8)) from which a call splits its batch over threads
    conv_parallel_min_work: int = 16_000_000
    #: bytes of im2col columns per conv2d chunk (stays in cache; 2-4 MiB measured best)
    conv_chunk_bytes: int = 3 << 20
    #: Winograd F(2×2, 3×3) for float32 3×3 stride-1 conv2d (needs numba): None, from
    #: ``winograd_min_work`` on (and off with ``numba`` False or ``DELTALAB_NUMBA=0``);
    #: True / False, always / never.  float64 always runs the direct (reference) path
    winograd: bool | None = None
    #: N·Ho·Wo·C·O (multiply-adds of the direct forward) from which the size rule takes Winograd
    winograd_min_work: int = 1 << 20
    #: fewest input channels for the size rule's Winograd (its forward products have inner
    #: size C: conv c's C = 3 ran 3x slower than the direct path, conv b's C = 16 faster)
    winograd_min_channels: int = 16
    #: fewest images for the size rule's Winograd (its transforms run in groups of 16 images,
    #: one per vector lane: the CIFAR step's second conv, 16 -> 32 channels on 32 images of 16x16,
    #: 0.47-0.50x the direct path's time; at 16 images 0.55-0.64x, at 8 equal)
    winograd_min_batch: int = 16
    #: M·N·K of one matrix product below which BLAS runs it on one thread (Linear, matmul,
    #: conv2d's serial path): a 2-thread OpenBLAS call leaves a thread spinning afterwards
    blas_parallel_min_product: int = 4_000_000
    #: elements from which pooling and the float32 training-mode batch norm split the batch
    #: over threads: 1M (4 MB of float32), so the bench's rows stay serial until a quiet run
    #: shows the sections pay (benchmarks/README.md, run 7: under load they lost 1.4-16x)
    elementwise_parallel_min_size: int = 1 << 20
    #: pin a parallel section's caller and workers to distinct CPUs
    pin_threads: bool = True


_current = Tuning()
_lock = threading.Lock()


def current() -> Tuning:
    """The tuning in force now."""
    return _current


@contextlib.contextmanager
def override(**changes):
    """Run a block with some :class:`Tuning` fields changed (``dl.tuning`` also restores the
    thread count); unknown names and impossible values are refused."""
    global _current
    names = [f.name for f in dataclasses.fields(Tuning)]
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise ConfigurationError(f"tuning: no setting {unknown[0]!r} (settings: {', '.join(names)})")
    threads = changes.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigurationError(f"tuning: threads must be a whole number from 1 or None, got {threads!r}")
    with _lock:
        previous = _current
        _current = dataclasses.replace(previous, **changes)
    try:
        yield _current
    finally:
        with _lock:
            _current = previous

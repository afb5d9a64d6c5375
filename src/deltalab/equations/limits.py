"""Sizes an equations problem may reach, checked before the work or the allocation they bound.

An equations file is small, but what it asks for need not be: ``training.steps = 10**9``,
``model.time_steps = 10**8`` (a graph unrolled a hundred million times), a broadcast of a
(100000, 1) column against a (1, 100000) row (74 GB).  Each is refused with its field and
"the largest is N" instead of running for hours or exhausting memory.
"""
from __future__ import annotations

import math

from .. import limits as global_limits
from ..errors import ShapeError

MAX_GRAPH_NODES = 20_000  # nodes of the unrolled graph: leaves + equations + time_steps × recurrence
MAX_TIME_STEPS = 10_000
MAX_STEPS = global_limits.STEPS  # training.steps, as for the other problem types
MAX_STEP_WORK = 200_000  # training.steps × graph nodes: every step records the whole chain rule
MAX_RESULT_VALUES = 1 << 22  # entries of one operation's result (32 MB in float64)
MAX_PASS_VALUES = 1 << 24  # entries computed in one pass over the graph (128 MB)
MAX_MATMUL_WORK = 1 << 30  # multiply-adds of one @


def graph_nodes(problem):
    """The number of nodes :func:`deltalab.equations.graph.build` would create, counted from the tables."""
    per_step = len(problem.recurrence) + len(problem.sequences)
    leaves = len(problem.parameters) + len(problem.data) + len(problem.initial)
    return leaves + len(problem.equations) + problem.time_steps * per_step + 1


class Budget:
    """Counts the entries one pass computes; refuses an operation before it allocates past a limit."""

    def __init__(self, limit=MAX_PASS_VALUES):
        self.limit, self.used = limit, 0

    def charge(self, what, shape):
        entries = math.prod(shape)
        if entries > MAX_RESULT_VALUES:
            raise ShapeError(f"{what}: the result would have shape {tuple(shape)}, {entries:,} values; "
                             f"the largest is {MAX_RESULT_VALUES:,}")
        self.used += entries
        if self.used > self.limit:
            raise ShapeError(f"{what}: the equations compute more than {self.limit:,} values in one pass; "
                             f"the largest is {self.limit:,}")

    def broadcast(self, what, *shapes):
        try:
            import numpy as np

            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            return  # the operation itself reports the clash
        self.charge(what, shape)

    def matmul(self, a_shape, b_shape):
        """Charge ``a @ b`` from the shapes alone (a mismatch is left to the operation's own message)."""
        if not a_shape or not b_shape:
            return
        rows = math.prod(a_shape[:-1])
        inner = a_shape[-1]
        columns = b_shape[-1] if len(b_shape) >= 2 else 1
        batch = math.prod(b_shape[:-2]) if len(b_shape) > 2 else 1
        if rows * inner * columns * batch > MAX_MATMUL_WORK:
            raise ShapeError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} need "
                             f"{rows * inner * columns * batch:,} multiplications; the largest is {MAX_MATMUL_WORK:,}")
        self.charge("matmul", (rows * columns * batch,))

"""The largest inputs deltalab accepts, and why (the README's "What happens with bad input" lists them).

Every limit is checked before any work or allocation, from the file's numbers alone, and a
refusal says "the largest is N".  The sizes keep a worked solution something a person can
read and a run something that ends in seconds within a few hundred megabytes.
"""
from __future__ import annotations

FILE_BYTES = 1_000_000
"""A problem file: an exercise fits in a few kilobytes; the size is checked before reading."""

ARRAY_DEPTH = 8
"""Lists inside lists in a file: a batch of images (N, C, H, W) is 4 deep."""

FILE_NUMBERS = 100_000
"""Numbers in one file, all arrays together: every one of them is shown in the solution."""

INTEGER = 2**63 - 1
"""The largest integer in a file (and the smallest is −INTEGER − 1): beyond 64 bits no NumPy integer holds it."""

WIDTH = 10_000
"""units, out_channels, input_size, hidden_size, output_size and each entry of input_shape."""

WINDOW = 1_000
"""kernel_size, stride and padding of a layer: larger windows than images make no exercise."""

SEQUENCE = 1_000
"""Time steps of a sequence (data.inputs of an rnn / lstm): every step is recorded and printed."""

STEPS = 1_000
"""training.steps: every step is recorded and printed."""

PARAMETERS = 250_000
"""All parameters of the network together: each is printed before, as gradient and after a step."""

VALUES = 250_000
"""Values one forward pass computes over the data (every layer's output): each is printed with its delta."""

MULTIPLY_ADDS = 50_000_000
"""Multiply-adds of one forward pass: about a tenth of a second."""

SHOWN = 1_000_000
"""training.steps × (values + parameters): the numbers a whole solution prints."""

TOTAL_MULTIPLY_ADDS = 500_000_000
"""training.steps × multiply-adds of one forward pass: the whole run within a few seconds."""

FINITE_DIFFERENCE_WORK = 700_000_000
"""Cost units (multiply-adds + values + parameters + a fixed overhead per pass) the finite-difference
check may spend: it samples fewer entries of a bigger network, at most 4,000, at least 20."""

FORWARD_OVERHEAD = 20_000
"""A forward pass costs at least this much (Python overhead), however small the network."""

EPOCHS = 10_000
"""``deltalab train --epochs``: every epoch's record is kept in the checkpoint and the report."""

SEED = 2**63 - 1
"""``deltalab train --seed``: 0 … 2⁶³ − 1, the integers every generator accepts."""

COUNT = 1_000_000_000
"""``deltalab train --batch-size`` and ``--limit``: far more than any data set of a task."""


def finite_difference_entries(cost: int, most: int = 4000, least: int = 20) -> int:
    """How many parameter entries the finite-difference check perturbs for a forward pass of ``cost``."""
    return max(least, min(most, FINITE_DIFFERENCE_WORK // (2 * (cost + FORWARD_OVERHEAD))))

"""Datasets and batching: the digits, MNIST IDX files, and the lecture's sequence tasks."""
from .batching import iterate_batches, num_batches
from .digits import Digits, Split, load_digits
from .idx import IDXError, read_idx, write_idx
from .sequences import SequenceTask, sequence_completion, shift_register

__all__ = [
    "Digits", "IDXError", "SequenceTask", "Split", "iterate_batches", "load_digits", "num_batches", "read_idx",
    "sequence_completion", "shift_register", "write_idx",
]

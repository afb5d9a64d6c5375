"""The two recurrent tasks of the tutorial notes as ready datasets.

Both are time-major like ``nn.RNN`` (batch_first=False): inputs (T, N, F), targets (T', N)
as integer class indices (use ``F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1))``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LETTERS = "ABCDE"
CODES = {"A": "12", "B": "23", "C": "31", "D": "21", "E": "13"}


@dataclass(frozen=True)
class SequenceTask:
    """A small sequence dataset.

    ``inputs``: float array (T, N, F); ``targets``: int array (T_out, N) of class indices for
    the steps ``target_steps`` (0-based indices into the T axis, ``len == T_out``);
    ``names``: one label per sequence; ``num_classes``: C.
    """

    inputs: np.ndarray
    targets: np.ndarray
    target_steps: tuple
    num_classes: int
    names: tuple = field(default=())
    description: str = ""

    @property
    def num_sequences(self):
        return self.inputs.shape[1]

    def one_hot_targets(self, dtype=np.float64):
        """Targets as one-hot vectors, (T_out, N, C)."""
        return np.eye(self.num_classes, dtype=dtype)[self.targets]


def shift_register():
    """Circular shift register: 3 units, no hidden units, softmax outputs.

    The three one-hot patterns are given at T1 (``inputs`` (1, 3, 3): one step, N = 3
    patterns, 3 units).  At T2 the output must be the pattern rotated by one unit, at T3 by
    two, where rotating moves unit k to unit k + 1 (mod 3): ``targets`` (2, 3) holds the class
    index (p + 1) % 3 at T2 and (p + 2) % 3 at T3 for pattern p.  The network feeds its T2
    output back as the T3 input (x(3) = softmax(W x(2))), so only T1 is an input;
    ``target_steps = (1, 2)`` are the 0-based indices of T2 and T3.
    """
    patterns = np.arange(3)
    inputs = np.eye(3)[patterns][None]  # (1, 3, 3)
    targets = np.stack([(patterns + 1) % 3, (patterns + 2) % 3])  # (2, 3)
    names = tuple("".join("1" if i == p else "0" for i in range(3)) for p in patterns)
    return SequenceTask(inputs, targets, (1, 2), 3, names, "circular shift register: rotate by one unit per step")


def sequence_completion():
    """Sequence completion: 25 sequences XY + code(X) + code(Y), e.g. AB1223.

    Codes A=12, B=23, C=31, D=21, E=13.  Six steps t = 1 … 6:
    ``inputs`` (6, 25, 5) -- the one-hot letter X at t = 1, Y at t = 2, zeros at t = 3 … 6;
    ``targets`` (4, 25) -- the digit at t = 3 … 6 as a class index, digit − 1 (0, 1, 2);
    ``target_steps = (2, 3, 4, 5)`` (0-based).  Sequences in the order AA, AB, …, EE;
    ``names`` holds the strings ("AA1212", "AB1223", …).
    """
    pairs = [(a, b) for a in LETTERS for b in LETTERS]
    inputs = np.zeros((6, len(pairs), len(LETTERS)))
    targets = np.zeros((4, len(pairs)), dtype=np.int64)
    names = []
    for n, (first, second) in enumerate(pairs):
        inputs[0, n, LETTERS.index(first)] = 1.0
        inputs[1, n, LETTERS.index(second)] = 1.0
        digits = CODES[first] + CODES[second]
        targets[:, n] = [int(d) - 1 for d in digits]
        names.append(first + second + digits)
    return SequenceTask(inputs, targets, (2, 3, 4, 5), 3, tuple(names), "sequence completion: XY + code(X) + code(Y)")


__all__ = ["CODES", "LETTERS", "SequenceTask", "sequence_completion", "shift_register"]

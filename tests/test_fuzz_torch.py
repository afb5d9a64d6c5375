"""The differential fuzzer against PyTorch (tests/fuzz_programs.py) under hypothesis.

Each example is a random *program*: a sequence of conv2d / pooling / linear / activation /
loss / recurrent / tensor-op steps (and thread-count changes) run in one process, compared
with torch value by value and gradient by gradient.  See fuzz_programs for what is drawn and
the tolerances.

CI runs a fixed, derandomized set of programs (about 30 s).  Locally:

- ``DELTALAB_FUZZ_EXAMPLES=N`` runs N programs instead;
- ``DELTALAB_FUZZ_SEED=S`` draws them from seed S (otherwise derandomized: the same every run).

A failure prints the program (``check_program([...])`` with ``from fuzz_programs import *``
reproduces it).  For long soaks without hypothesis' shrinking, run
``python tests/fuzz_programs.py --programs 20000 --seed 1``.
"""
import os

import pytest

pytest.importorskip("torch")

from hypothesis import given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzz_programs import Disagreement, HypothesisChooser, check_program, draw_program  # noqa: E402

EXAMPLES = int(os.environ.get("DELTALAB_FUZZ_EXAMPLES", "500"))
SEED = os.environ.get("DELTALAB_FUZZ_SEED")


def with_seed(test):
    if SEED is None:
        return settings(max_examples=EXAMPLES, derandomize=True)(test)
    return seed(int(SEED))(settings(max_examples=EXAMPLES, derandomize=False)(test))


@with_seed
@given(st.data())
def test_random_programs_agree_with_torch(data):
    program = draw_program(HypothesisChooser(data))
    try:
        check_program(program)
    except Disagreement as error:
        pytest.fail(f"{error}\n  reproduce: check_program({program!r})", pytrace=False)

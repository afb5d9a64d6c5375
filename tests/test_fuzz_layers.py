"""The differential fuzzer (tests/fuzz_programs.py) on programs that each hold a BatchNorm,
Dropout or Embedding step at least, among the other steps, under hypothesis.

CI runs a fixed, derandomized set (a few seconds); ``DELTALAB_FUZZ_LAYER_EXAMPLES=N`` runs N
programs instead.  For a soak without hypothesis:
``python tests/fuzz_programs.py --programs 2000 --seed 12 --focus-layers``.
"""
import os

import pytest

pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzz_programs import Disagreement, HypothesisChooser, check_program, draw_program  # noqa: E402

EXAMPLES = int(os.environ.get("DELTALAB_FUZZ_LAYER_EXAMPLES", "60"))


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(st.data())
def test_programs_with_batch_norm_dropout_and_embedding_agree_with_torch(data):
    program = draw_program(HypothesisChooser(data), max_steps=3, focus_layers=True)
    try:
        check_program(program)
    except Disagreement as error:
        pytest.fail(f"{error}\n  reproduce: check_program({program!r})", pytrace=False)

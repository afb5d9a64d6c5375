"""The lecture's own printed answers (``deltalab check --example NAME --lecture``): every
numeric erratum of the lecture documents is flagged with its cause, the rest is right.

The errata, recomputed independently in float64 with torch autograd (and listed here so the
test stands alone): the exam's sigmoid network prints ∂L/∂b1 = −0.0625 (w2 left out; right:
+0.125); the exam's Elman ReLU cell prints ŷ₁ = 1 (right: 2, an arithmetic slip no rule
explains); the shift register's update drops the path from E⁽³⁾ through x⁽²⁾; the
AlarmworkNet in2 layer's δ looks one step ahead only (w_in2, b_in2; its w_rec2 is exact at
this instance because z2 is 0 before step 2).  Everything else the documents print is right
(0.1669 is a truncated 0.166997)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import deltalab as dl
from deltalab.marking.lecture import lecture_answers_path, lecture_names

ERRATA = {
    "eq-sigmoid-skip-network": {"gradients.b1": "factor_dropped"},
    "eq-elman-relu-cell": {"outputs.yhat(1)": None},
    "eq-shift-register": {"gradients.W": "path_dropped"},
    "eq-alarmwork-net": {"gradients.w_in2": "path_dropped", "gradients.b_in2": "path_dropped"},
}
FOLLOWS = {"eq-shift-register": {"parameters_after.W"}}  # computed from the erratum: consistent


def test_every_example_with_lecture_answers_is_listed():
    assert set(lecture_names()) == {
        "cnn-feature-detectors", "eq-alarmwork-net", "eq-elman-relu-cell", "eq-relu-exam-network",
        "eq-shift-register", "eq-sigmoid-skip-network", "rnn-many-to-many-identity", "rnn-many-to-many-softmax",
        "rnn-many-to-one-identity", "rnn-many-to-one-softmax"}


@pytest.mark.parametrize("name", lecture_names())
def test_the_lectures_answers_against_the_errata(name):
    result = dl.check(name, lecture_answers_path(name))
    errata = ERRATA.get(name, {})
    for q in result.quantities:
        if q.where in errata:
            assert q.verdict == "wrong", q.where
            ids = [d.mistake for d in q.diagnoses]
            expected = errata[q.where]
            assert (expected in ids) if expected else ids == [], (q.where, ids)
        elif q.where in FOLLOWS.get(name, ()):
            assert q.verdict == "consistent", q.where
        else:
            assert q.verdict == "right", (q.where, q.answer, q.true)
    assert {q.where for q in result.quantities} >= set(errata)


def test_the_sigmoid_networks_erratum_names_w2():
    result = dl.check("eq-sigmoid-skip-network", lecture_answers_path("eq-sigmoid-skip-network"))
    q = next(q for q in result.quantities if q.key == "b1")
    assert "without the factor ∂a2/∂h (= -2)" in q.diagnoses[0].explanation


def test_lecture_from_the_command_line():
    out = subprocess.run([sys.executable, "-m", "deltalab.cli", "check", "--example", "eq-sigmoid-skip-network",
                          "--lecture", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["student"] == "the exam" and data["score"] == data["max_score"] - 1
    wrong = [q for q in data["quantities"] if q["verdict"] == "wrong"]
    assert [(q["key"], q["diagnoses"][0]["mistake"]) for q in wrong] == [("b1", "factor_dropped")]
    assert wrong[0]["answer"] == -0.0625 and wrong[0]["true"] == pytest.approx(0.125)


def test_lecture_needs_an_example_with_printed_answers():
    out = subprocess.run([sys.executable, "-m", "deltalab.cli", "check", "--example", "eq-lstm-cell", "--lecture"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "prints no answers" in out.stderr

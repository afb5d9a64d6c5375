"""SPEC §6: the shift register and sequence completion datasets, and the shipped examples that
train them (loaded from examples/ in this repository)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from deltalab.data import sequence_completion, shift_register

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------- datasets
def test_sequence_completion_has_the_25_sequences_with_their_codes():
    task = sequence_completion()
    assert task.inputs.shape == (6, 25, 5) and task.targets.shape == (4, 25)
    assert task.target_steps == (2, 3, 4, 5) and task.num_classes == 3
    codes = {"A": "12", "B": "23", "C": "31", "D": "21", "E": "13"}  # SPEC §6
    expected = [x + y + codes[x] + codes[y] for x in "ABCDE" for y in "ABCDE"]
    assert list(task.names) == expected
    assert {"AA1212", "AB1223", "AC1231", "BA2312", "EE1313"} <= set(task.names)
    for n, name in enumerate(task.names):
        assert task.inputs[0, n].tolist() == [float(c == name[0]) for c in "ABCDE"]  # one-hot X at t = 1
        assert task.inputs[1, n].tolist() == [float(c == name[1]) for c in "ABCDE"]  # one-hot Y at t = 2
        assert not task.inputs[2:, n].any()  # nothing after
        assert (task.targets[:, n] + 1).tolist() == [int(d) for d in name[2:]]  # digits at t = 3 … 6
    assert task.one_hot_targets().shape == (4, 25, 3)


def test_shift_register_rotates_by_one_unit_per_step():
    task = shift_register()
    assert task.inputs.shape == (1, 3, 3) and task.targets.shape == (2, 3)
    np.testing.assert_array_equal(task.inputs[0], np.eye(3))
    # 100 -> 010 -> 001, 010 -> 001 -> 100, 001 -> 100 -> 010
    np.testing.assert_array_equal(task.one_hot_targets()[0], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(task.one_hot_targets()[1], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


# ------------------------------------------------------------------------------- training
def test_shift_register_exact_bptt_reaches_the_spec_loss_and_both_rules_learn_in_one_epoch():
    example = load_example("train_shift_register")
    exact, _ = example.train("exact", epochs=200, lr=0.5)
    seed, _ = example.train("seed", epochs=200, lr=0.5)
    assert exact[0][1] == 1.0 and seed[0][1] == 1.0  # 100% after one epoch of online SGD
    assert exact[-1][0] == pytest.approx(0.0191, abs=5e-5)  # SPEC §6: summed loss after 200 epochs
    assert exact[-1][1] == 1.0 and seed[-1][1] == 1.0
    assert seed[-1][0] > exact[-1][0] + 5e-4  # the seed's rule is not the gradient: it lags


def test_shift_register_rules_are_the_seed_formula_and_the_exact_gradient():
    # x(2) = softmax(W x(1)), x(3) = softmax(W x(2)).  The seed's ΔW(1) + ΔW(2) is
    # (x(2) − t(2)) x(1)ᵀ + (x(3) − t(3)) x(2)ᵀ; exact BPTT adds the path through x(2):
    # (J Wᵀ(x(3) − t(3))) x(1)ᵀ with the softmax Jacobian J = diag(x(2)) − x(2) x(2)ᵀ.
    import deltalab as dl
    import deltalab.functional as F

    example = load_example("train_shift_register")
    W = np.random.default_rng(2).standard_normal((3, 3))
    x1, t2, t3 = np.eye(3)[0], np.eye(3)[1], np.eye(3)[2]

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    x2 = softmax(W @ x1)
    x3 = softmax(W @ x2)
    seed_rule = np.outer(x2 - t2, x1) + np.outer(x3 - t3, x2)
    exact = seed_rule + np.outer((np.diag(x2) - np.outer(x2, x2)) @ W.T @ (x3 - t3), x1)
    for truncate, expected in ((1, seed_rule), (None, exact)):
        model = dl.nn.Recurrent(example.FeedbackCell(), truncate=truncate)
        model.cell.W.data = W.copy()
        logits, _ = model(dl.tensor(example.sequences(shift_register())[:, :1]))
        F.cross_entropy(logits.reshape(-1, 3), np.array([1, 2]), reduction="sum").backward()
        np.testing.assert_allclose(model.cell.W.grad.numpy(), expected, rtol=1e-12)
    assert not np.allclose(seed_rule, exact)


def test_sequence_completion_elman_rnn_learns_all_25_sequences():
    example = load_example("train_sequence_completion")
    # SPEC §6: 8 hidden units, Adam lr 0.05, 60–130 epochs
    history, solved, _ = example.train("adam", hidden_size=8, lr=0.05, epochs=300, seed=0)
    assert solved is not None and solved <= 130
    assert history[solved - 1][1:] == (1.0, 1.0)

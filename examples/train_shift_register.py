"""Train the circular shift register (SPEC §6) by exact BPTT and by the seed's truncated rule.

Three softmax units, no hidden units, one shared 3×3 weight matrix W (no bias):

    x(2) = softmax(W x(1)),   x(3) = softmax(W x(2)),   E = E(2) + E(3)   (cross-entropy)

The seed (tutorial notes 003) updates W ← W − ε(ΔW(1) + ΔW(2)) with ΔW(1) = (x(2) − t(2)) x(1)ᵀ
and ΔW(2) = (x(3) − t(3)) x(2)ᵀ: it treats x(2) as a constant input at T3, so it drops the
path from E(3) back through x(2).  That is truncated BPTT with k = 1; exact BPTT keeps it.

Both are the same model (``deltalab.models.shift_register``, also ``deltalab train shift-register``):
a cell z_t = W (x_t + s_{t−1}), s_t = softmax(z_t) unrolled by ``nn.Recurrent`` over the inputs
(x(1), 0) from s_0 = 0; ``truncate=1`` gives the seed's rule.

    python examples/train_shift_register.py --rule both --epochs 200
"""
from __future__ import annotations

import argparse

import numpy as np

import deltalab as dl
import deltalab.functional as F
from deltalab.data import shift_register
from deltalab.models.shift_register import FeedbackCell, shift_register_inputs, shift_register_model  # noqa: F401


def sequences(task):
    """Inputs (2, N, 3): the pattern at T1, zeros at T2 (x(2) comes from the feedback)."""
    return shift_register_inputs(task)


def evaluate(model, task):
    """Summed cross-entropy over the patterns and steps T2, T3, and the fraction of outputs right."""
    with dl.no_grad():
        logits, _ = model(dl.tensor(sequences(task)))
        loss = F.cross_entropy(logits.reshape(-1, 3), task.targets.reshape(-1), reduction="sum").item()
    correct = np.argmax(logits.numpy(), axis=-1) == task.targets
    return loss, float(correct.mean())


def train(rule, epochs=200, lr=0.5):
    """Online SGD from W0 = 0, patterns in the dataset's order; the loss and accuracy after each epoch."""
    task = shift_register()
    model = shift_register_model(rule)
    optimizer = dl.optim.SGD(model.parameters(), lr=lr)
    inputs = sequences(task)
    history = []
    for _ in range(epochs):
        for n in range(task.num_sequences):
            logits, _ = model(dl.tensor(inputs[:, n : n + 1]))
            loss = F.cross_entropy(logits.reshape(-1, 3), task.targets[:, n], reduction="sum")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(evaluate(model, task))
    return history, model.cell.W.numpy().copy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", choices=("exact", "seed", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args(argv)
    rules = ("exact", "seed") if args.rule == "both" else (args.rule,)
    results = {rule: train(rule, args.epochs, args.lr) for rule in rules}

    header = "epoch" + "".join(f"  {rule + ' loss':>12} {'acc':>5}" for rule in rules)
    print(header)
    marks = sorted({e for e in (1, 2, 5, 10, 20, 50, 100, 150, 200, args.epochs) if e <= args.epochs})
    for epoch in marks:
        row = f"{epoch:5d}"
        for rule in rules:
            loss, accuracy = results[rule][0][epoch - 1]
            row += f"  {loss:12.6f} {accuracy:5.0%}"
        print(row)
    for rule in rules:
        print(f"\nW after {args.epochs} epochs ({rule}):\n{np.array2string(results[rule][1], precision=4)}")


if __name__ == "__main__":
    main()

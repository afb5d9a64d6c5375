"""Train an Elman RNN on sequence completion (SPEC §6): all 25 sequences XY + code(X) + code(Y).

Input: the one-hot letters X, Y at t = 1, 2 and nothing after; target: the digits at
t = 3 … 6 (softmax over 1, 2, 3).  A tanh hidden layer learns every sequence; a network
without one (its 3 softmax output units fed back as the recurrent state, like the shift
register) cannot -- it plateaus around 60% of the digits.

The loss is the cross-entropy summed over the four scored steps and averaged over the 25
sequences (full batch).

    python examples/train_sequence_completion.py                      # 8 hidden, Adam lr 0.05
    python examples/train_sequence_completion.py --optimizer sgd --hidden 16 --lr 0.1
    python examples/train_sequence_completion.py --no-hidden
"""
from __future__ import annotations

import argparse

import numpy as np

import deltalab as dl
import deltalab.functional as F
from deltalab.data import sequence_completion
from deltalab.models import ElmanNetwork
from deltalab.nn import Module, Recurrent
from deltalab.nn.module import uniform_


class SoftmaxFeedbackCell(Module):
    """No hidden layer: z_t = W x_t + H s_{t−1} + b, s_t = softmax(z_t); the output is z_t."""

    def __init__(self, input_size, output_size):
        super().__init__()
        self.W = uniform_((output_size, input_size), output_size)
        self.H = uniform_((output_size, output_size), output_size)
        self.b = uniform_((output_size,), output_size)

    def initial_state(self, x_t):
        return dl.zeros(*(x_t.shape[:-1] + (self.H.shape[0],)))

    def forward(self, x_t, state):
        z = F.linear(x_t, self.W, self.b) + F.linear(state, self.H)
        return z, F.softmax(z, axis=-1)


def build(no_hidden, hidden_size):
    if no_hidden:
        recurrent = Recurrent(SoftmaxFeedbackCell(5, 3))
        return recurrent, lambda x: recurrent(x)[0]
    net = ElmanNetwork(5, hidden_size, 3, hidden_activation="tanh", output_activation="identity")
    return net, net


def scored_logits(forward, task, x):
    return forward(x)[list(task.target_steps)]


def train(optimizer="adam", hidden_size=8, lr=0.05, epochs=300, seed=0, no_hidden=False, stop_at_100=True):
    """Full-batch training; returns (history of (loss, digit accuracy, sequence accuracy), epoch of first 100%)."""
    dl.manual_seed(seed)
    task = sequence_completion()
    model, forward = build(no_hidden, hidden_size)
    make = dl.optim.Adam if optimizer == "adam" else dl.optim.SGD
    opt = make(model.parameters(), lr=lr)
    x = dl.tensor(task.inputs)
    targets = task.targets.reshape(-1)
    history, solved = [], None
    for epoch in range(1, epochs + 1):
        logits = scored_logits(forward, task, x)
        loss = F.cross_entropy(logits.reshape(-1, 3), targets, reduction="sum") / task.num_sequences
        opt.zero_grad()
        loss.backward()
        opt.step()
        with dl.no_grad():
            correct = np.argmax(scored_logits(forward, task, x).numpy(), axis=-1) == task.targets
        history.append((loss.item(), float(correct.mean()), float(correct.all(axis=0).mean())))
        if solved is None and correct.all():
            solved = epoch
            if stop_at_100:
                break
    return history, solved, (model, forward, task)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-hidden", action="store_true", help="the network without a hidden layer")
    args = parser.parse_args(argv)

    history, solved, (_, forward, task) = train(
        args.optimizer, args.hidden, args.lr, args.epochs, args.seed, args.no_hidden, stop_at_100=not args.no_hidden
    )
    label = "no hidden layer" if args.no_hidden else f"{args.hidden} tanh hidden units"
    print(f"{label}, {args.optimizer} lr {args.lr}")
    print("epoch        loss   digits  sequences")
    for epoch in sorted({1, 10, 25, 50, 100, 200, 300, 500, len(history)}):
        if epoch <= len(history):
            loss, digits, seqs = history[epoch - 1]
            print(f"{epoch:5d}  {loss:10.4f}  {digits:7.1%}  {seqs:9.1%}")
    print(f"all 25 sequences right after epoch {solved}" if solved else f"not all sequences right after {len(history)} epochs")

    with dl.no_grad():
        predicted = np.argmax(scored_logits(forward, task, dl.tensor(task.inputs)).numpy(), axis=-1) + 1
    for n, name in enumerate(task.names):
        guess = name[:2] + "".join(str(d) for d in predicted[:, n])
        print(f"{name} -> {guess}{'' if guess == name else '  ✗'}", end="\n" if n % 5 == 4 else "   ")


if __name__ == "__main__":
    main()

"""``sequence-completion``: the exercise sheet's Elman RNN completes the 25 sequences XY code(X) code(Y)."""
from __future__ import annotations

import numpy as np

from ...autograd import no_grad
from ...tensor import Tensor
from ..task import Task, classification_correct, register_task, sequence_data, sequence_loss, time_major

__all__ = ["sequence_completion_network"]


def _sequence_completion_data(dtype):
    from ...data import sequence_completion

    task = sequence_completion()
    return sequence_data(task.inputs, task.targets, dtype)


def sequence_completion_network(hidden_size=8):
    """The exercise sheet: 5 one-hot letters → ``hidden_size`` tanh units (Elman) → 3 logits (softmax in the loss)."""
    from ...models import ElmanNetwork

    return ElmanNetwork(5, hidden_size, 3, hidden_activation="tanh", output_activation="identity")


def _scored_steps_forward(model, x):
    """Logits (N, 4, 3) at t = 3 … 6 for sample-major letters x (N, 6, 5)."""
    from ...data import sequence_completion

    steps = list(sequence_completion().target_steps)
    return time_major(model(time_major(x))[steps])


def _sequence_completion_states(model, data, names=("AB1223", "CE3113", "DA2112")):
    from ...data import sequence_completion

    task = sequence_completion()
    index = [task.names.index(name) for name in names]
    x = Tensor(time_major(data.train_x[index]))
    with no_grad():
        hidden = np.asarray(model.run(x).hidden.data)  # (T, n, H)
        predicted = np.asarray(model(x).data)[list(task.target_steps)].argmax(axis=-1) + 1  # (4, n)
    panels = []
    for k, name in enumerate(names):
        guess = "".join(str(d) for d in predicted[:, k])
        labels = [f"t={t + 1}\n{name[t]}" if t < 2 else f"t={t + 1}\n→{guess[t - 2]}" for t in range(6)]
        panels.append((f"{name} (predicted {name[:2]}{guess})", hidden[:, k, :], labels))
    return panels


register_task(Task(
    name="sequence-completion",
    description="The exercise sheet: an Elman RNN (8 tanh hidden units) completes the 25 sequences XY code(X) code(Y), "
                "e.g. AB1223 (the test data are the same 25 sequences)",
    load_data=_sequence_completion_data,
    build_model=sequence_completion_network,
    loss=sequence_loss,
    correct=classification_correct,
    forward=_scored_steps_forward,
    sample_name="sequences",
    held_out=False,
    hidden_states=_sequence_completion_states,
    # full batch; 200 epochs at a constant rate end with all 25 right for seeds 0-19 (first at 46-142)
    defaults={"epochs": 200, "batch_size": 25, "lr": 0.05, "optimizer": "adam", "schedule": "constant"},
))

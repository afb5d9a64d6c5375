"""``shift-register`` / ``shift-register-seed``: the exercise sheet's circular shift register, by exact
BPTT / by the sheet's own truncated rule."""
from __future__ import annotations

import numpy as np

from ...autograd import no_grad
from ...tensor import Tensor
from ..task import Task, classification_correct, register_task, sequence_data, sequence_loss, time_major

__all__ = []


def _shift_register_data(dtype):
    from ...data import shift_register
    from ...models.shift_register import shift_register_inputs

    task = shift_register()
    return sequence_data(shift_register_inputs(task), task.targets, dtype)


def _shift_register_forward(model, x):
    """Logits (N, 2, 3) at T2, T3 for the patterns x (N, 2, 3) (T1's pattern, then zeros)."""
    return time_major(model(time_major(x))[0])


def _shift_register_states(model, data):
    x = Tensor(time_major(data.train_x))
    with no_grad():
        logits = np.asarray(model(x)[0].data)  # (2, 3, 3)
    states = np.exp(logits - logits.max(axis=-1, keepdims=True))
    states /= states.sum(axis=-1, keepdims=True)
    panels = []
    for n in range(data.train_x.shape[0]):
        columns = np.concatenate([data.train_x[n, :1], states[:, n]])  # x(1), x(2), x(3)
        pattern = "".join(str(int(v)) for v in data.train_x[n, 0])
        panels.append((f"pattern {pattern}", columns, ["T1\ninput x(1)", "T2\nx(2)", "T3\nx(3)"]))
    return panels


def _shift_register_metrics(result):
    summed = result.final.test_loss * result.final.test_samples  # the loss is the mean over the patterns
    return {"summed loss E(2)+E(3) over the 3 patterns": f"{summed:.4f}"}


def _shift_register_task(rule):
    from ...models.shift_register import shift_register_model

    seed = rule == "seed"
    return Task(
        name="shift-register" + ("-seed" if seed else ""),
        description=(
            "The exercise sheet: circular shift register, 3 softmax units, W (3×3) shared, W0 = 0, online SGD lr 0.5, "
            + ("the sheet's own rule W ← W − ε(ΔW(1) + ΔW(2)) (truncated BPTT, k = 1)" if seed else "exact BPTT")
            + " (the test data are the same 3 patterns)"
        ),
        load_data=_shift_register_data,
        build_model=lambda: shift_register_model(rule),
        loss=sequence_loss,
        correct=classification_correct,
        forward=_shift_register_forward,
        sample_name="patterns",
        held_out=False,
        shuffle=False,  # the patterns in the dataset's order, as the notes train them
        hidden_states=_shift_register_states,
        extra_metrics=_shift_register_metrics,
        state_label="unit", state_title="state (softmax outputs fed back; no hidden units)",
        defaults={"epochs": 200, "batch_size": 1, "lr": 0.5, "optimizer": "sgd", "momentum": 0.0,
                  "schedule": "constant", "dtype": "float64"},
    )


register_task(_shift_register_task("exact"))
register_task(_shift_register_task("seed"))

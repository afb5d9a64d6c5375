"""``file``: a problem file (``deltalab train file PROBLEM.toml``) trained for many SGD steps with the
loss ``deltalab solve`` uses."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...autograd import no_grad
from ...errors import ConfigurationError
from ...tensor import Tensor
from ..task import Task, TaskData, register_task

__all__ = []


def _prepare_file_task(path):
    """The ``file`` task for one problem file: its model, its data (every sample, one full batch by
    default), its loss exactly as ``deltalab solve`` computes it, and SGD with its learning rate.

    With the default full batch one epoch is one solve step and the reported loss is the
    problem's E (summed over the batch, as the lecture sums it)."""
    from ...problem import load_problem
    from ...problems.kinds import problem_kind
    from ...problems.layers import layer_kind
    from ...recorder import build_model, problem_forward

    problem = load_problem(path)
    if problem.targets is None:
        raise ConfigurationError(f"train file: {path} has no data.targets, so there is no loss to train on")
    recurrent = problem_kind(problem).sequence
    sequences = recurrent and problem.inputs.ndim == 3  # a batch of sequences (N, T, F)
    batched = sequences or not recurrent and problem.inputs.shape != problem.input_shape
    # one sample per row: a recurrent problem holds one sequence or a batch, a layered one a sample or a batch
    inputs = problem.inputs if batched else problem.inputs[None]
    targets = problem.targets if batched else problem.targets[None]
    if sequences and any(v is not None and v.ndim == 2 for v in (problem.initial_state, problem.initial_cell)):
        raise ConfigurationError(f"train file: {path}: data.initial_state / initial_cell give one row per sequence; "
                                 "training draws mini-batches of sequences, so give one state for all of them")

    def load_data(dtype):
        x = np.asarray(inputs, dtype=dtype)
        y = np.asarray(targets, dtype=dtype)
        return TaskData(x, y, x, y, x.shape[1:])

    def batch_loss(model, x, y):
        if recurrent and not sequences:
            (x,), (y,) = x, y  # batches of one sequence
        # a mini-batch of sequences is a batch of its own: its errors summed or averaged as the file says
        fwd = problem_forward(replace(problem, inputs=x, targets=y), model)
        output = fwd.output.data
        if sequences and not problem.many_to_one:
            output = output.transpose(1, 0, 2)  # (T, B, O) as the targets are, (B, T, O)
        if recurrent and problem.target_steps is not None:
            output = output[..., [step - 1 for step in problem.target_steps], :]
        return (output[None] if recurrent and not sequences else output), fwd.loss

    def correct(output, target):
        # a class per target row: the output's argmax is the target's (one-hot) argmax
        return np.asarray(output).argmax(axis=-1) == np.asarray(target).argmax(axis=-1)

    classifies = problem.loss == "cross_entropy" and (recurrent or layer_kind(problem.layers[-1].type).class_scores)

    def states(model, data):
        with no_grad():
            hidden = np.asarray(model.run(Tensor(data.train_x[0])).hidden.data)  # (T, H)
        return [(problem.title, hidden, [f"t={t + 1}" for t in range(hidden.shape[0])])]

    return Task(
        name="file",
        description=f"{problem.title} ({path}): {problem.model_type}, loss {problem.loss}, "
                    f"{len(inputs)} sample{'s' if len(inputs) != 1 else ''} (the test data are the training data)",
        load_data=load_data,
        build_model=lambda: build_model(problem),
        batch_loss=batch_loss,
        correct=correct if classifies else None,
        held_out=False,
        hidden_states=states if recurrent else None,
        defaults={"epochs": 100, "batch_size": len(inputs), "lr": problem.learning_rate, "optimizer": "sgd",
                  "momentum": 0.0, "schedule": "constant", "dtype": "float64"},
    )


register_task(Task(
    name="file",
    description="a problem file (deltalab train file PROBLEM.toml) trained for --epochs SGD steps with its loss",
    prepare=_prepare_file_task,
))

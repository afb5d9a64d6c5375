"""Pictures of a training run: loss/accuracy curves, first-layer kernels, feature maps, and the
hidden state of a recurrent network over time.

matplotlib is an optional extra (``pip install 'deltalab[plots]'``), imported only when a
plot is drawn, with the non-interactive Agg backend so plots work without a display.
Every figure has a title, labelled axes and, for images, a colour bar.
"""
from __future__ import annotations

import os

import numpy as np

from ..autograd import no_grad
from ..errors import DeltalabError
from ..tensor import Tensor


class PlotError(DeltalabError):
    """Plots were asked for but cannot be drawn (matplotlib missing, nothing to show)."""


def require_matplotlib():
    """Import matplotlib with the Agg backend, or explain how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("--plots needs matplotlib: pip install 'deltalab[plots]' (or matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ----------------------------------------------------------------- curves
MARKED_EPOCHS = 30  # more epochs: lines without a marker per epoch


def plot_curves(history, path, title="Training curves", held_out=True):
    """Loss (left) and accuracy (right) per epoch, training and test (``held_out`` False: the
    second curve is the training set again, evaluated after the epoch, and is labelled so)."""
    return _save(curves_figure(history, title, held_out), path)


def curves_figure(history, title="Training curves", held_out=True):
    """The figure of :func:`plot_curves`; epochs counted from 1 (the first epoch is epoch 1, as
    the progress lines and the report's table count them)."""
    plt = require_matplotlib()
    epochs = [r.epoch for r in history]
    marks = ("o-", "s-") if len(epochs) <= MARKED_EPOCHS else ("-", "--")
    second = "test" if held_out else "training set, after the epoch"
    fig, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [r.train_loss for r in history], marks[0], label="training (mean over the epoch)")
    loss_axis.plot(epochs, [r.test_loss for r in history], marks[1],
                   label="test (after the epoch)" if held_out else second)
    loss_axis.set_yscale("log")
    loss_axis.set(title="Loss", xlabel="epoch", ylabel="loss (log scale)")
    if all(r.train_accuracy is None for r in history):
        accuracy_axis.text(0.5, 0.5, "no accuracy for this loss\n(regression targets)", ha="center", va="center",
                           transform=accuracy_axis.transAxes)
        accuracy_axis.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
        axes = (loss_axis,)
    else:
        accuracy_axis.plot(epochs, [100 * r.train_accuracy for r in history], marks[0], label="training")
        accuracy_axis.plot(epochs, [100 * r.test_accuracy for r in history], marks[1], label=second)
        accuracy_axis.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
        axes = (loss_axis, accuracy_axis)
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)  # no tick at epoch 0, which never happened
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------- kernels
def plot_kernels(conv, path, title="First-layer kernels"):
    """Every kernel of ``conv`` (out_channels × in_channels images) on one symmetric colour scale."""
    return _save(kernels_figure(conv, title), path)


def kernels_figure(conv, title="First-layer kernels"):
    """The figure of :func:`plot_kernels`; kernels and channels counted from 1, as the worked
    solutions count them ("kernel 1, channel 1")."""
    plt = require_matplotlib()
    weight = np.asarray(conv.weight.data, dtype=np.float64)
    out_channels, in_channels = weight.shape[:2]
    limit = float(np.abs(weight).max()) or 1.0
    columns = min(out_channels, 8)
    rows_per_input = -(-out_channels // columns)
    rows = rows_per_input * in_channels
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns + 1.2, 1.5 * rows + 0.8), squeeze=False)
    image = None
    for i in range(in_channels):
        for k in range(rows_per_input * columns):
            axis = axes[i * rows_per_input + k // columns][k % columns]
            axis.set_xticks([])
            axis.set_yticks([])
            if k >= out_channels:
                axis.axis("off")
                continue
            image = axis.imshow(weight[k, i], cmap="RdBu_r", vmin=-limit, vmax=limit)
            axis.set_title(f"kernel {k + 1}" + (f", channel {i + 1}" if in_channels > 1 else ""), fontsize=8)
    kernel_h, kernel_w = weight.shape[2:]
    fig.suptitle(f"{title}: {out_channels} kernels of {kernel_h}×{kernel_w} (red +, blue −)")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    return fig


# ----------------------------------------------------------- feature maps
def conv_outputs(model, x):
    """[(layer name, Conv2d, output array of shape (C, H, W))] for one input ``x`` (C, H, W)."""
    from ..nn import Conv2d

    captured = []
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, Conv2d)]

    def recording(name, module, forward):
        def wrapped(*args, **kwargs):
            out = forward(*args, **kwargs)
            captured.append((name, module, np.asarray(out.data)[0]))
            return out

        return wrapped

    for name, module in convs:
        object.__setattr__(module, "forward", recording(name, module, module.forward))
    try:
        with no_grad():
            model(Tensor(np.asarray(x)[None].astype(model.dtype)))
    finally:
        for _, module in convs:
            object.__delattr__(module, "forward")
    return captured


def plot_feature_maps(name, conv, maps, path, image=None, label=None):
    """The output channels of one conv layer for one input (before the activation)."""
    return _save(feature_maps_figure(name, conv, maps, image, label), path)


def feature_maps_figure(name, conv, maps, image=None, label=None):
    """The figure of :func:`plot_feature_maps`; channels counted from 1, as in the solutions."""
    plt = require_matplotlib()
    channels = maps.shape[0]
    columns = min(channels, 8)
    rows = -(-channels // columns)
    extra = 1 if image is not None else 0
    fig, axes = plt.subplots(rows, columns + extra, figsize=(1.6 * (columns + extra) + 1.2, 1.6 * rows + 0.9), squeeze=False)
    limit = float(np.abs(maps).max()) or 1.0
    shown = None
    for k in range(rows * columns):
        axis = axes[k // columns][k % columns + extra]
        axis.set_xticks([])
        axis.set_yticks([])
        if k >= channels:
            axis.axis("off")
            continue
        shown = axis.imshow(maps[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(f"channel {k + 1}", fontsize=8)
    if extra:
        axes[0][0].imshow(np.asarray(image)[0], cmap="gray_r")
        axes[0][0].set_title("input" + (f" (label {label})" if label is not None else ""), fontsize=8)
        axes[0][0].set_xticks([])
        axes[0][0].set_yticks([])
        for r in range(1, rows):
            axes[r][0].axis("off")
    height, width = maps.shape[1:]
    fig.suptitle(f"Feature maps of layer {name} (Conv2d {conv.in_channels}→{conv.out_channels}): {channels}×{height}×{width}")
    fig.colorbar(shown, ax=axes[:, extra:].ravel().tolist(), shrink=0.8, label="pre-activation value")
    return fig


# ---------------------------------------------------------- hidden states
def plot_hidden_states(panels, path, title="Hidden state over time", unit_label="hidden unit"):
    """Heatmaps of a recurrent state: one panel per sequence, ``unit_label`` × time step.

    ``panels`` is a list of ``(subtitle, states (T, H), step labels)``; all panels share one
    colour scale (symmetric around 0 when any value is negative, as for tanh units).
    """
    return _save(hidden_states_figure(panels, title, unit_label), path)


def hidden_states_figure(panels, title="Hidden state over time", unit_label="hidden unit"):
    """The figure of :func:`plot_hidden_states`; units counted from 1 (h₁, h₂, … as the
    solutions write a state's entries), time steps labelled by the task (t=1, t=2, …)."""
    plt = require_matplotlib()
    arrays = [np.asarray(states, dtype=np.float64) for _, states, _ in panels]
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    if low < 0:
        limit = max(abs(low), abs(high)) or 1.0
        scale = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    else:
        scale = {"cmap": "viridis", "vmin": 0.0, "vmax": high or 1.0}
    steps, units = arrays[0].shape
    fig, axes = plt.subplots(1, len(panels), figsize=(1.0 + len(panels) * max(2.8, 0.6 * steps + 1.0),
                                                       max(3.4, 1.8 + 0.35 * units)), squeeze=False)
    image = None
    for axis, (subtitle, _, labels), states in zip(axes[0], panels, arrays):
        image = axis.imshow(states.T, aspect="auto", interpolation="nearest", **scale)
        axis.set_title(subtitle, fontsize=9)
        axis.set_xticks(range(states.shape[0]))
        axis.set_xticklabels(labels, fontsize=7)
        axis.set_yticks(range(states.shape[1]), [str(k + 1) for k in range(states.shape[1])])
        axis.set_xlabel("time step")
        if axis is axes[0][0]:
            axis.set_ylabel(unit_label)
        for t in range(states.shape[0]):
            for k in range(states.shape[1]):
                if states.shape[0] * states.shape[1] <= 64:  # small enough to print the values
                    value = states[t, k]
                    dark = abs(value) > 0.6 * scale["vmax"] if low < 0 else value < 0.6 * scale["vmax"]
                    axis.text(t, k, f"{value:.2f}", ha="center", va="center", fontsize=6,
                              color="white" if dark else "black")
    fig.suptitle(title)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="activation")
    return fig


# ------------------------------------------------------------------ a run
def training_plots(result, task, data):
    """Draw every plot of a finished run into its directory; returns {title: path}."""
    from ..nn import Conv2d

    out = result.out_dir
    images = {"Loss and accuracy": plot_curves(result.history, os.path.join(out, "curves.png"),
                                                 title=f"{result.config.task}: training curves",
                                                 held_out=task.held_out)}
    if task.hidden_states is not None:
        panels = task.hidden_states(result.model, data)
        images["Hidden state over time"] = plot_hidden_states(
            panels, os.path.join(out, "hidden_states.png"),
            title=f"{result.config.task}: {task.state_title} over time (after epoch {result.final.epoch})",
            unit_label=task.state_label,
        )
    convs = [m for m in result.model.modules() if isinstance(m, Conv2d)]
    if convs:
        images["First-layer kernels"] = plot_kernels(convs[0], os.path.join(out, "kernels.png"))
        x, label = data.test_x[0], data.test_y[0]
        for name, conv, maps in conv_outputs(result.model, x):
            safe = name.replace(".", "_")
            images[f"Feature maps, layer {name}"] = plot_feature_maps(
                name, conv, maps, os.path.join(out, f"feature_maps_{safe}.png"), image=x, label=int(label)
            )
    return images

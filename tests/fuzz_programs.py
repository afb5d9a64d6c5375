"""Random programs run in deltalab and in PyTorch side by side: the differential fuzzer.

A *program* is a list of steps run one after another in ONE process, so that whatever one
call leaves behind (cached work buffers, thread settings, compiled kernels) meets the next
call.  Each step builds its inputs and weights from its own seed, runs the same calls in
deltalab and in torch (weights copied), back-propagates the same upstream gradient, and every
forward value and every gradient must agree:

    |ours - torch| <= atol + rtol·|torch|,  rtol = 1e-10 (float64) / 1e-4 (float32),

(for float32, "torch" is torch's float64 result on the same values, and deltalab may also be
as far from it as 4x torch's own float32 result is), where
    atol = rtol · max(largest finite |torch| value of that tensor, 0.01; for a gradient also a
                      hundredth of the step's largest forward value)

with NaN where torch has NaN and the same infinities -- in forward values and gradients alike,
also for the NaN / inf a step puts into its input or a conv weight (``special``): torch's CPU
kernels decide every such case one way (max pooling sends a window's gradient to its last
NaN, max(dim) to its first, a padded convolution multiplies its zeros: 0 · inf = NaN), and
deltalab must do the same.  torch runs with its native kernels, not oneDNN's (see
native_torch).  Ties ("ties" data) reach a max only through exact ops; a float32 step whose max
sees computed values and whose gradients alone disagree passes if the same step agrees in
float64 (a near-tie of a few ulps routes the gradient differently in each engine: see
check_step).  A step both engines refuse (raise) passes; one that only one refuses fails.
The steps:

- ``Image``: NCHW (or unbatched CHW) input through a chain of conv2d (F.conv2d or nn.Conv2d,
  any kernel, stride, padding incl. "same"/"valid", bias on/off), max/avg pooling (overlapping
  windows, padding), activations, flatten + linear; half the float32 ones force deltalab's Winograd
  path on (``dl.tuning(winograd=True)``: every 3x3 stride-1 conv of the step runs it), some
  float32 ones are large enough (≥ 20×28) for conv2d's per-image layout on plain rows, and the
  compiled kernels run at any size (``kernel_min_work=0``: conv2d's column scatter);
- ``Recurrent``: nn.RNN (tanh, relu; the lecture's sigmoid/identity against a torch loop),
  nn.LSTM (and nn.GRU once deltalab has it), with h0/c0 or not, batch_first, unbatched, bias
  or not, truncated BPTT (deltalab's bptt_truncate against a torch loop that detaches);
- ``Cell``: nn.RNNCell / nn.LSTMCell (/ nn.GRUCell) unrolled by hand for a few steps;
- ``Tensor``: reshape/permute/transpose/squeeze/indexing/concatenation/padding, broadcast
  arithmetic with tensors and scalars, powers, reductions, matmul, softmax and friends;
- ``Loss``: cross_entropy / nll_loss / binary_cross_entropy (F. and nn.) with every reduction
  on corner inputs (-inf logits, log of one-hot probabilities, probabilities of exactly 0 and 1);
- ``BatchNorm``: nn.BatchNorm1d/2d (or F.batch_norm) called several times in training and then
  eval mode (momentum incl. None, affine, track_running_stats): outputs, gradients and the
  running statistics afterwards;
- ``Dropout``: nn.Dropout / F.dropout in training (p = 0, 1, or in between on the mask deltalab
  draws, see the step) and eval mode;
- ``Embedding``: nn.Embedding / F.embedding / from_pretrained with repeated indices and
  ``padding_idx`` (its row gets no gradient), an index out of range now and then;
- ``Threads``: ``deltalab.set_num_threads(n)`` between steps.

Every step ends in a *head*: a random upstream gradient, or a loss (any of them, any
reduction) on its output.  Sizes are mostly small; now and then a step is large enough for
the parallel conv2d sections and the compiled float32 recurrent kernels.

Run ``python tests/fuzz_programs.py --programs 2000 --seed 1`` for a soak (no hypothesis,
no shrinking): it prints the count, the time and the seed, and for a disagreement a minimal
program that reproduces it (``check_program([...])`` with ``from fuzz_programs import *``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import random
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

import deltalab as dl
import deltalab.functional as dl_functional

TF = torch.nn.functional
torch.set_num_threads(1)  # torch is only the oracle: its thread pool would fight deltalab's for the cores

RTOL = {"float64": 1e-10, "float32": 1e-4}
LOSSES = ("mse_loss", "half_squared_error", "squared_error", "cross_entropy", "cross_entropy_probs",
          "nll_loss", "binary_cross_entropy")
REDUCTIONS = ("mean", "sum", "none", None)  # None: the loss's default


class Disagreement(AssertionError):
    """deltalab and torch differ on a program."""


# ----------------------------------------------------------------------------- the engines
class Deltalab:
    """The calls whose spelling is the same in both engines go through ``F`` / ``nn`` / methods;
    the few that differ (documented deltalab forms) are methods here."""

    name = "deltalab"
    F = dl_functional
    nn = dl.nn

    def tensor(self, array, grad=False):
        return dl.tensor(np.array(array), requires_grad=grad)

    def numpy(self, t):
        return np.asarray(t.numpy())

    def grad(self, t):
        return None if t.grad is None else np.asarray(t.grad.numpy())

    def index(self, array):
        return array

    def max(self, t, dim, keepdim):
        result = t.max(dim, keepdim)
        return getattr(result, "values", result)  # (values, indices) as torch, once deltalab has it

    def amax_all(self, t):
        return t.max()

    def where(self, mask, a, b):
        return dl.where(mask, a, b)

    def pad(self, t, widths):
        if TORCH_PAD:
            return self.F.pad(t, torch_pad(widths))
        return self.F.pad(t, widths)  # the NumPy-style per-axis widths deltalab had first

    def cat(self, tensors, dim):
        return dl.cat(tensors, dim)

    def stack(self, tensors, dim):
        return dl.stack(tensors, dim)

    def half_squared_error(self, y, t, reduction):
        return self.F.half_squared_error(y, t, **_reduction(reduction))

    def elu(self, y):
        return self.F.elu(y)

    def squared_error(self, y, t, reduction):
        return self.F.squared_error(y, t, **_reduction(reduction))

    def set_threads(self, n):
        dl.set_num_threads(n)

    def tuning(self, **changes):
        return dl.tuning(**changes)

    def dropout(self, t, p, training, module, seed):
        with deltalab_seeded(seed):  # the mask the torch engines rebuild (see the Dropout step)
            return self.nn.Dropout(p).train(training)(t) if module else self.F.dropout(t, p, training)

    def set_param(self, module, name, array):
        getattr(module, name).data = np.array(array)

    def backward(self, pairs):
        total = None
        for t, g in pairs:
            term = (t * self.tensor(g)).sum() if g is not None else t
            total = term if total is None else total + term
        total.backward()

    def dtype(self, name):
        return name



class Torch(Deltalab):
    name = "torch"
    F = TF
    nn = torch.nn

    def tensor(self, array, grad=False):
        return torch.tensor(np.array(array), requires_grad=grad)

    def numpy(self, t):
        return t.detach().numpy()

    def grad(self, t):
        return None if t.grad is None else t.grad.numpy()

    def index(self, array):
        return torch.tensor(array)

    def max(self, t, dim, keepdim):
        return t.max(dim, keepdim).values

    def where(self, mask, a, b):
        return torch.where(torch.tensor(mask), a, b)

    def pad(self, t, widths):
        return TF.pad(t, torch_pad(widths))

    def cat(self, tensors, dim):
        return torch.cat(tensors, dim)

    def stack(self, tensors, dim):
        return torch.stack(tensors, dim)

    def half_squared_error(self, y, t, reduction):
        return _reduce_torch(0.5 * (y - t) ** 2, reduction or "sum")

    def elu(self, y):
        """F.elu with every element in torch's vectorised kernel: its backward gives NaN at a
        NaN input there (the slope αe^NaN), but the upstream gradient in the scalar loop over a
        tensor's last few elements (it tests x <= 0, the vector code x > 0).  Trailing zeros
        move the real elements out of that tail; deltalab follows the vectorised kernel."""
        flat = torch.cat([y.reshape(-1), y.new_zeros(64)])
        return TF.elu(flat)[: y.numel()].reshape(y.shape)

    def squared_error(self, y, t, reduction):
        return _reduce_torch((y - t) ** 2, reduction or "sum")

    def set_threads(self, n):
        pass

    def tuning(self, **changes):
        return contextlib.nullcontext()

    def dropout(self, t, p, training, module, seed):
        if training and 0 < p < 1:  # torch's formula on the mask deltalab draws (see the Dropout step)
            dtype = np.float64 if t.dtype == torch.float64 else np.float32
            noise = deltalab_dropout_mask(tuple(t.shape), p, seed).astype(dtype) / np.asarray(1 - p, dtype=dtype)
            return t * torch.tensor(noise)
        return self.nn.Dropout(p).train(training)(t) if module else self.F.dropout(t, p, training)

    def set_param(self, module, name, array):
        with torch.no_grad():
            getattr(module, name).copy_(torch.tensor(np.array(array)))

    def backward(self, pairs):
        total = None
        for t, g in pairs:
            term = (t * self.tensor(g)).sum() if g is not None else t
            total = term if total is None else total + term
        total.backward()

    def dtype(self, name):
        return getattr(torch, name)



def torch_pad(widths):
    """Per-axis (before, after) widths as torch.nn.functional.pad's flat list, last axis first."""
    return [n for pair in reversed(widths) for n in pair]


TORCH_PAD = "pad_width" not in inspect.signature(dl_functional.pad).parameters
# activations deltalab gained with the torch-shaped nn (F.elu, ...): fuzzed once they exist
EXTRA_ACTIVATIONS = tuple(name for name in ("elu", "leaky_relu", "softplus", "gelu") if hasattr(dl_functional, name))
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity", "softmax", "log_softmax", "exp") + EXTRA_ACTIVATIONS


def _reduction(reduction):
    return {} if reduction is None else {"reduction": reduction}


def _reduce_torch(values, reduction):
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean()
    return values


class Torch64(Torch):
    """torch in float64 on the very same (float32-rounded) values: the near-exact answer a
    float32 step is measured against (see compare)."""

    name = "torch64"

    def tensor(self, array, grad=False):
        array = np.array(array)
        if array.dtype == np.float32:
            array = array.astype(np.float64)
        return torch.tensor(array, requires_grad=grad)

    def set_param(self, module, name, array):
        with torch.no_grad():
            getattr(module, name).copy_(torch.tensor(np.array(array, dtype=np.float64)))

    def dtype(self, name):
        return torch.float64


ENGINES = (Deltalab(), Torch())
EXACT = Torch64()


# ------------------------------------------------------------------------------ inputs
def values(rng, shape, dtype, kind="normal", scale=1.0):
    """Test data: "normal", "ties" (a few repeated values: max-pooling ties), "positive"."""
    if kind == "ties":
        array = rng.integers(-2, 3, size=shape) * 0.5
    elif kind == "positive":
        array = rng.uniform(0.5, 2.0, size=shape)
    else:
        array = rng.standard_normal(shape)
    return np.asarray(array * scale, dtype=dtype)


def inject(rng, array, special):
    """Put one or two NaN / ±inf into ``array`` (a copy)."""
    if special == "none" or array.size == 0:
        return array
    array = array.copy()
    value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[special]
    for _ in range(int(rng.integers(1, 3))):
        array.flat[int(rng.integers(0, array.size))] = value
    return array


# --------------------------------------------------------------------------------- heads
@dataclass(frozen=True)
class Head:
    """What is done with a step's main output: a random upstream gradient ("grad") or a loss."""

    kind: str = "grad"
    reduction: str | None = "mean"
    module: bool = False        # nn.MSELoss(...)(y, t) instead of F.mse_loss(y, t)
    target_grad: bool = False   # the target is a leaf that needs a gradient too
    spatial: bool = False       # keep (N, C, H, W) for cross-entropy / nll: classes on axis 1
    hard_labels: bool = False   # binary cross-entropy labels exactly 0 / 1


def apply_head(E, head, y, rng, dtype, leaves):
    """The tensors (and their upstream gradients) that start backward: [(tensor, grad or None)]."""
    elementwise = head.kind in ("mse_loss", "half_squared_error", "squared_error", "binary_cross_entropy")
    if head.kind == "grad" or y.ndim == 0 and not elementwise:
        return [(y, values(rng, tuple(y.shape), dtype))]
    if not head.spatial and y.ndim > 2:
        y = y.reshape(y.shape[0], -1)
    axis = 0 if y.ndim <= 1 else 1
    shape = tuple(y.shape)
    classes = shape[axis] if shape else 1
    label_shape = shape[:axis] + shape[axis + 1:]
    kind = head.kind
    if kind in ("mse_loss", "half_squared_error", "squared_error", "binary_cross_entropy", "cross_entropy_probs"):
        if kind == "binary_cross_entropy":
            target = rng.integers(0, 2, size=shape).astype(dtype) if head.hard_labels else rng.uniform(0, 1, shape)
        elif kind == "cross_entropy_probs":
            target = rng.dirichlet(np.ones(classes), size=label_shape)
            target = np.moveaxis(target, -1, axis)
        else:
            target = values(rng, shape, dtype)
        t = E.tensor(np.asarray(target, dtype=dtype), grad=head.target_grad)
        if head.target_grad:
            leaves.append(("target", t))
    else:
        t = E.index(rng.integers(0, classes, size=label_shape).astype(np.int64))
    if kind == "half_squared_error":
        loss = E.half_squared_error(y, t, head.reduction)
    elif kind == "squared_error":
        loss = E.squared_error(y, t, head.reduction)
    else:
        if kind == "binary_cross_entropy":
            y = y.sigmoid()
        if kind == "nll_loss":
            y = E.F.log_softmax(y, axis)
        function = {"cross_entropy_probs": "cross_entropy"}.get(kind, kind)
        if head.module:
            module_name = {"mse_loss": "MSELoss", "cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss",
                           "binary_cross_entropy": "BCELoss"}[function]
            loss = getattr(E.nn, module_name)(**_reduction(head.reduction))(y, t)
        else:
            loss = getattr(E.F, function)(y, t, **_reduction(head.reduction))
    return [(loss, None if loss.ndim == 0 else values(rng, tuple(loss.shape), dtype))]


def activation(E, name, y, axis):
    if name == "identity":
        return y
    if name == "softmax":
        return E.F.softmax(y, axis)
    if name == "log_softmax":
        return E.F.log_softmax(y, axis)
    if name == "exp":
        return (y * 0.5).exp()
    if name == "elu":
        return E.elu(y)
    if name in EXTRA_ACTIVATIONS or name == "relu":
        return getattr(E.F, name)(y)
    return getattr(y, name)()


# --------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class Threads:
    """``deltalab.set_num_threads(n)`` (torch keeps its own)."""

    n: int

    def run(self, E):
        E.set_threads(self.n)
        return {}, {}


@dataclass(frozen=True)
class Image:
    """x (N, C, H, W) or unbatched (C, H, W) through ``layers``; each layer a tuple:
    ("conv", out_channels, kernel, stride, padding, bias, module), ("max_pool" | "avg_pool",
    kernel, stride, padding, module), ("act", name), ("linear", out_features, bias, module)
    (flattens first)."""

    seed: int
    dtype: str
    shape: tuple
    layers: tuple
    head: Head = Head()
    data: str = "normal"
    special: str = "none"
    x_grad: bool = True
    special_weight: bool = False  # the special value goes into the first conv's weight instead
    winograd: bool | None = None  # deltalab's Tuning.winograd for the step (True: every float32 3x3 stride-1 conv)

    def run(self, E):
        # kernel_min_work 0: the compiled kernels (conv2d's column scatter) run at any size
        with E.tuning(winograd=self.winograd, kernel_min_work=0):
            return self.run_layers(E)

    def run_layers(self, E):
        rng = np.random.default_rng(self.seed)
        x_special, w_special = ("none", self.special) if self.special_weight else (self.special, "none")
        x = E.tensor(inject(rng, values(rng, self.shape, self.dtype, self.data), x_special), grad=self.x_grad)
        leaves = [("x", x)] if self.x_grad else []
        y = x
        for number, layer in enumerate(self.layers):
            kind = layer[0]
            if kind == "conv":
                _, out_channels, kernel, stride, padding, bias, module = layer
                in_channels = y.shape[-3]
                kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
                w = inject(rng, values(rng, (out_channels, in_channels) + kernel, self.dtype,
                                       scale=1 / np.sqrt(in_channels * kernel[0] * kernel[1])), w_special)
                w_special = "none"
                b = values(rng, (out_channels,), self.dtype) if bias else None
                if module:
                    conv = E.nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias,
                                       dtype=E.dtype(self.dtype))
                    E.set_param(conv, "weight", w)
                    leaves.append((f"{number}.weight", conv.weight))
                    if bias:
                        E.set_param(conv, "bias", b)
                        leaves.append((f"{number}.bias", conv.bias))
                    y = conv(y)
                else:
                    wt = E.tensor(w, grad=True)
                    bt = None if b is None else E.tensor(b, grad=True)
                    leaves += [(f"{number}.weight", wt)] + ([(f"{number}.bias", bt)] if bias else [])
                    y = E.F.conv2d(y, wt, bt, stride=stride, padding=padding)
            elif kind in ("max_pool", "avg_pool"):
                _, kernel, stride, padding, module = layer
                if module:
                    name = "MaxPool2d" if kind == "max_pool" else "AvgPool2d"
                    y = getattr(E.nn, name)(kernel, stride=stride, padding=padding)(y)
                else:
                    y = getattr(E.F, kind + "2d")(y, kernel, stride, padding)
            elif kind == "act":
                y = activation(E, layer[1], y, -3 if y.ndim >= 3 else -1)  # channels, or features
            elif kind == "linear":
                _, out_features, bias, module = layer
                y = y.flatten(1) if len(self.shape) == 4 else y.flatten()
                in_features = y.shape[-1]
                w = values(rng, (out_features, in_features), self.dtype, scale=1 / np.sqrt(in_features))
                b = values(rng, (out_features,), self.dtype) if bias else None
                if module:
                    linear = E.nn.Linear(in_features, out_features, bias=bias, dtype=E.dtype(self.dtype))
                    E.set_param(linear, "weight", w)
                    leaves.append((f"{number}.weight", linear.weight))
                    if bias:
                        E.set_param(linear, "bias", b)
                        leaves.append((f"{number}.bias", linear.bias))
                    y = linear(y)
                else:
                    wt = E.tensor(w, grad=True)
                    bt = None if b is None else E.tensor(b, grad=True)
                    leaves += [(f"{number}.weight", wt)] + ([(f"{number}.bias", bt)] if bias else [])
                    y = E.F.linear(y, wt, bt)
        return finish(E, self, y, rng, leaves)


def finish(E, step, y, rng, leaves, extra=None):
    """Forward values of ``y`` (and ``extra`` outputs), then backward through the head."""
    extra = extra or {}
    outputs = {"y": y}
    outputs.update(extra)
    roots = apply_head(E, step.head, y, rng, step.dtype, leaves)
    if step.head.kind != "grad":
        outputs["loss"] = roots[0][0]
    for name, t in extra.items():
        if t.requires_grad:
            roots.append((t, values(rng, tuple(t.shape), step.dtype)))
    if any(t.requires_grad for t, _ in roots):
        E.backward([(t, g) for t, g in roots if t.requires_grad])
    return ({name: E.numpy(t) for name, t in outputs.items()},
            {name: E.grad(t) for name, t in leaves})


def _parameter_names(module):
    return set(dict(module.named_parameters()))


# deltalab's recurrent layers, before and after they took torch's parameter names: either
# weight_ih / weight_hh / one bias (= torch's bias_ih + bias_hh), or torch's *_l0 names and
# two biases.  Cells: one bias, or bias_ih and bias_hh.
TORCH_NAMES = "weight_ih_l0" in _parameter_names(dl.nn.RNN(1, 1))
CELL_TWO_BIASES = "bias_ih" in _parameter_names(dl.nn.RNNCell(1, 1))
HAS_GRU = hasattr(dl.nn, "GRU") and hasattr(dl.nn, "GRUCell")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def recurrent_weights(rng, kind, features, hidden, dtype):
    """weight_ih, weight_hh, bias_ih, bias_hh as torch lays them out, U-ish(±1/√H) values."""
    rows, scale = GATES[kind] * hidden, 1 / np.sqrt(hidden)
    return {"weight_ih": values(rng, (rows, features), dtype, scale=scale),
            "weight_hh": values(rng, (rows, hidden), dtype, scale=scale),
            "bias_ih": values(rng, (rows,), dtype, scale=scale),
            "bias_hh": values(rng, (rows,), dtype, scale=scale)}


def load_recurrent(E, module, weights, bias, suffix):
    """Copy ``weights`` into a recurrent layer (``suffix`` "_l0") or cell (""); returns the
    (name, parameter) leaves, named alike for both engines."""
    torch_style = E.name != "deltalab" or (TORCH_NAMES if suffix else CELL_TWO_BIASES)
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    if not torch_style:
        suffix = ""
    leaves = []
    for name in names[:2]:
        E.set_param(module, name + suffix, weights[name])
        leaves.append((name, getattr(module, name + suffix)))
    if bias and torch_style:
        for name in names[2:]:
            E.set_param(module, name + suffix, weights[name])
        both = TORCH_NAMES if suffix else CELL_TWO_BIASES
        if both or E.name == "deltalab":
            leaves += [(name, getattr(module, name + suffix)) for name in names[2:]]
        else:  # deltalab has one bias: compare it with torch's bias_ih (bias_hh's gradient is the same)
            leaves.append(("bias", getattr(module, "bias_ih" + suffix)))
    elif bias:
        E.set_param(module, "bias", weights["bias_ih"] + weights["bias_hh"])
        leaves.append(("bias", module.bias))
    return leaves


@dataclass(frozen=True)
class Recurrent:
    """nn.RNN (``nonlinearity``), nn.LSTM or nn.GRU (``kind`` "rnn" / "lstm" / "gru") over x
    (T, B, F) (or batch_first, or unbatched (T, F)); ``state``: give h0 (and c0);
    ``truncate``: bptt_truncate (deltalab's keyword; torch: a loop that detaches)."""

    seed: int
    dtype: str
    kind: str
    steps: int
    batch: int
    features: int
    hidden: int
    nonlinearity: str = "tanh"
    batch_first: bool = False
    unbatched: bool = False
    state: bool = False
    bias: bool = True
    truncate: int | None = None
    head: Head = Head()
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        if self.unbatched:
            shape = (self.steps, self.features)
        elif self.batch_first:
            shape = (self.batch, self.steps, self.features)
        else:
            shape = (self.steps, self.batch, self.features)
        x = E.tensor(inject(rng, values(rng, shape, self.dtype), self.special), grad=True)
        weights = recurrent_weights(rng, self.kind, self.features, self.hidden, self.dtype)
        state_shape = (1, self.hidden) if self.unbatched else (1, self.batch, self.hidden)
        leaves = [("x", x)]
        state = None
        if self.state:
            state = [E.tensor(values(rng, state_shape, self.dtype), grad=True) for _ in range(2 if self.kind == "lstm" else 1)]
            leaves += [(f"state{k}", s) for k, s in enumerate(state)]
        native = E.name == "deltalab" or self.truncate is None and self.nonlinearity in ("tanh", "relu")
        if native:
            output, finals, params = self._layer(E, x, weights, state)
        else:
            output, finals, params = self._torch_loop(E, x, weights, state)
        leaves += params
        return finish(E, self, output, rng, leaves, {f"final{k}": f for k, f in enumerate(finals)})

    def _layer(self, E, x, weights, state):
        kwargs = dict(bias=self.bias, batch_first=self.batch_first, dtype=E.dtype(self.dtype))
        if E.name == "deltalab" and self.truncate is not None:
            kwargs["bptt_truncate"] = self.truncate
        if self.kind == "rnn":
            layer = E.nn.RNN(self.features, self.hidden, nonlinearity=self.nonlinearity, **kwargs)
        else:
            layer = getattr(E.nn, self.kind.upper())(self.features, self.hidden, **kwargs)
        params = load_recurrent(E, layer, weights, self.bias, "_l0")
        if self.kind == "lstm":
            output, (h, c) = layer(x, None if state is None else tuple(state))
            return output, (h, c), params
        output, h = layer(x, None if state is None else state[0])
        return output, (h,), params

    def _torch_loop(self, E, x, weights, state):
        """The recurrence written out step by step in torch (truncation: detach between chunks)."""
        w = {name: E.tensor(array, grad=True) for name, array in weights.items()}
        two = TORCH_NAMES
        params = [("weight_ih", w["weight_ih"]), ("weight_hh", w["weight_hh"])]
        if self.bias:
            params += [("bias_ih", w["bias_ih"]), ("bias_hh", w["bias_hh"])] if two else [("bias", w["bias_ih"])]
        seq = x.unsqueeze(1) if self.unbatched else (x.transpose(0, 1) if self.batch_first else x)
        batch = seq.shape[1]
        dtype = E.dtype(self.dtype)
        h = state[0].reshape(batch, self.hidden) if state else torch.zeros(batch, self.hidden, dtype=dtype)
        c = None
        if self.kind == "lstm":
            c = state[1].reshape(batch, self.hidden) if state else torch.zeros(batch, self.hidden, dtype=dtype)
        f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}[self.nonlinearity]
        hs = []
        for t in range(seq.shape[0]):
            if self.truncate and t and t % self.truncate == 0:
                h = h.detach()
                c = None if c is None else c.detach()
            gi, gh = seq[t] @ w["weight_ih"].T, h @ w["weight_hh"].T
            if self.bias:
                gi, gh = gi + w["bias_ih"], gh + w["bias_hh"]
            if self.kind == "lstm":
                i, fg, g, o = (gi + gh).chunk(4, dim=1)
                c = torch.sigmoid(fg) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            elif self.kind == "gru":
                (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, dim=1), gh.chunk(3, dim=1)
                r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                n = torch.tanh(in_ + r * hn)
                h = (1 - z) * n + z * h
            else:
                h = f(gi + gh)
            hs.append(h)
        output = torch.stack(hs)
        if self.unbatched:
            output = output[:, 0]
        elif self.batch_first:
            output = output.transpose(0, 1)
        lead = (1,) if self.unbatched else (1, batch)
        finals = (h.reshape(lead + (self.hidden,)),)
        if self.kind == "lstm":
            finals += (c.reshape(lead + (self.hidden,)),)
        return output, finals, params


@dataclass(frozen=True)
class Cell:
    """nn.RNNCell / nn.LSTMCell / nn.GRUCell (``kind`` "rnn" / "lstm" / "gru") called
    ``steps`` times by hand on x (S, B, F) (unbatched: (S, F)); the h's are stacked."""

    seed: int
    dtype: str
    kind: str
    steps: int
    batch: int
    features: int
    hidden: int
    nonlinearity: str = "tanh"
    unbatched: bool = False
    state: bool = True
    bias: bool = True
    head: Head = Head()
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        shape = (self.steps,) + (() if self.unbatched else (self.batch,)) + (self.features,)
        x = E.tensor(inject(rng, values(rng, shape, self.dtype), self.special), grad=True)
        weights = recurrent_weights(rng, self.kind, self.features, self.hidden, self.dtype)
        kwargs = dict(bias=self.bias, dtype=E.dtype(self.dtype))
        if self.kind == "rnn":
            cell = E.nn.RNNCell(self.features, self.hidden, nonlinearity=self.nonlinearity, **kwargs)
        else:
            cell = getattr(E.nn, self.kind.upper() + "Cell")(self.features, self.hidden, **kwargs)
        leaves = [("x", x)] + load_recurrent(E, cell, weights, self.bias, "")
        state_shape = ((() if self.unbatched else (self.batch,)) + (self.hidden,))
        state = None
        if self.state:
            state = [E.tensor(values(rng, state_shape, self.dtype), grad=True) for _ in range(2 if self.kind == "lstm" else 1)]
            leaves += [(f"state{k}", s) for k, s in enumerate(state)]
            state = tuple(state) if self.kind == "lstm" else state[0]
        hs = []
        for t in range(self.steps):
            state = cell(x[t], state)
            hs.append(state[0] if self.kind == "lstm" else state)
        extra = {"c": state[1]} if self.kind == "lstm" else {}
        return finish(E, self, E.stack(hs, 0), rng, leaves, extra)


@dataclass(frozen=True)
class Tensor:
    """A tensor ``a`` (and operands drawn on the way) through ``ops``; see :func:`apply_op`."""

    seed: int
    dtype: str
    shape: tuple
    ops: tuple
    head: Head = Head()
    data: str = "normal"
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        a = E.tensor(inject(rng, values(rng, self.shape, self.dtype, self.data), self.special), grad=True)
        leaves = [("a", a)]
        y = a
        for number, op in enumerate(self.ops):
            y = apply_op(E, op, y, rng, self.dtype, leaves, number)
        return finish(E, self, y, rng, leaves)


def apply_op(E, op, y, rng, dtype, leaves, number):
    """``y`` through one op of a Tensor step (drawn by draw_op); operands it draws are leaves."""
    kind = op[0]
    if kind == "reshape":
        return y.reshape(*op[1])
    if kind == "permute":
        return y.permute(*op[1])
    if kind == "T":
        return y.T
    if kind == "flatten":
        return y.flatten(op[1], op[2])
    if kind == "squeeze":
        return y.squeeze(op[1])
    if kind == "unsqueeze":
        return y.unsqueeze(op[1])
    if kind == "index":
        index = tuple(E.index(np.array(p)) if isinstance(p, list) else p for p in op[1])
        return y[index[0] if len(index) == 1 else index]
    if kind == "mask":
        mask = np.array(rng.random(tuple(y.shape)) < 0.5)
        mask.reshape(-1)[0] = True  # never empty
        return y[E.index(mask)]
    if kind in ("add", "sub", "mul", "div"):
        _, other_shape, side, other_kind = op
        if other_kind == "scalar":
            other = float(np.round(rng.uniform(0.5, 2.0), 3)) * (1 if rng.random() < 0.5 else -1)
        else:
            array = values(rng, other_shape, dtype, "positive" if kind == "div" else "normal")
            other = E.tensor(array, grad=other_kind == "leaf")
            if other_kind == "leaf":
                leaves.append((f"{number}.other", other))
        left, right = (y, other) if side == "left" else (other, y)
        if kind == "div" and right is y:
            right = y * y + 0.5  # keep the divisor away from zero
        return {"add": lambda p, q: p + q, "sub": lambda p, q: p - q, "mul": lambda p, q: p * q,
                "div": lambda p, q: p / q}[kind](left, right)
    if kind == "pow":
        exponent = op[1]
        base = y if exponent in (2, 3, 1.0, 0) else y * y + 0.5
        return base ** exponent
    if kind == "rpow":
        return op[1] ** (y * 0.5)
    if kind == "pow_tensor":
        exponent = E.tensor(values(rng, tuple(y.shape), dtype), grad=True)
        leaves.append((f"{number}.exponent", exponent))
        return (y * y + 0.5) ** exponent
    if kind == "neg":
        return -y
    if kind in ("sum", "mean"):
        _, dim, keepdim = op
        return getattr(y, kind)() if dim is None else getattr(y, kind)(dim, keepdim)
    if kind == "max":
        _, dim, keepdim = op
        return E.amax_all(y) if dim is None else E.max(y, dim, keepdim)
    if kind == "matmul":
        _, other_shape, side = op
        other = E.tensor(values(rng, other_shape, dtype), grad=True)
        leaves.append((f"{number}.other", other))
        return y @ other if side == "left" else other @ y
    if kind in ("cat", "stack"):
        _, dim, other_shape = op
        other = E.tensor(values(rng, other_shape, dtype), grad=True)
        leaves.append((f"{number}.other", other))
        return (E.cat if kind == "cat" else E.stack)([y, other], dim)
    if kind == "where":
        other = E.tensor(values(rng, tuple(y.shape), dtype), grad=True)
        leaves.append((f"{number}.other", other))
        mask = rng.random(tuple(y.shape)) < 0.5
        return E.where(mask, y, other)
    if kind == "pad":
        return E.pad(y, op[1])
    if kind == "log":
        return (y * y + 0.25).log()
    if kind == "act":
        return activation(E, op[1], y, op[2])
    raise ValueError(f"unknown op {op!r}")


@dataclass(frozen=True)
class Loss:
    """One loss on corner-case inputs: ``case`` "plain", "-inf" (masked logits), "one_hot"
    (nll_loss on log of one-hot probabilities), "extreme" (BCE probabilities 0 and 1)."""

    seed: int
    dtype: str
    loss: str
    shape: tuple
    reduction: str | None
    case: str = "plain"
    module: bool = False

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        axis = 0 if len(self.shape) == 1 else 1
        classes = self.shape[axis]
        label_shape = self.shape[:axis] + self.shape[axis + 1:]
        labels = rng.integers(0, classes, size=label_shape)
        logits = values(rng, self.shape, self.dtype)
        if self.case == "-inf":
            mask = rng.random(self.shape) < 0.3
            np.put_along_axis(mask, np.expand_dims(labels, axis), False, axis)
            logits[mask] = -np.inf
        leaves = []
        kwargs = _reduction(self.reduction)
        if self.loss == "nll_loss":
            if self.case == "one_hot":
                one_hot = np.moveaxis(np.eye(classes, dtype=self.dtype)[labels], -1, axis)
                x = E.tensor(one_hot, grad=True)
                prediction = x.log()
            else:
                x = E.tensor(logits, grad=True)
                prediction = E.F.log_softmax(x, axis)
            target = E.index(labels.astype(np.int64))
        elif self.loss == "binary_cross_entropy":
            p = rng.uniform(0, 1, self.shape)
            if self.case == "extreme":
                p[rng.random(self.shape) < 0.3] = 0.0
                p[rng.random(self.shape) < 0.3] = 1.0
            x = E.tensor(p.astype(self.dtype), grad=True)
            prediction = x
            target = E.tensor(rng.integers(0, 2, size=self.shape).astype(self.dtype))
        else:  # cross_entropy with class indices
            x = E.tensor(logits, grad=True)
            prediction = x
            target = E.index(labels.astype(np.int64))
        leaves.append(("x", x))
        if self.module:
            name = {"nll_loss": "NLLLoss", "binary_cross_entropy": "BCELoss", "cross_entropy": "CrossEntropyLoss"}[self.loss]
            loss = getattr(E.nn, name)(**kwargs)(prediction, target)
        else:
            loss = getattr(E.F, self.loss)(prediction, target, **kwargs)
        upstream = None if loss.ndim == 0 else values(rng, tuple(loss.shape), self.dtype)
        E.backward([(loss, upstream)])
        return {"loss": E.numpy(loss)}, {name: E.grad(t) for name, t in leaves}


# ---------------------------------------------------------------- layers with state or randomness
@dataclass(frozen=True)
class BatchNorm:
    """nn.BatchNorm1d ((N, C) or (N, C, L)) / nn.BatchNorm2d ((N, C, H, W)), or F.batch_norm, called
    ``train_calls`` times in training mode and then ``eval_calls`` times in eval mode, each call on a
    fresh x; every call's output, every x's gradient, weight/bias gradients and the running
    statistics after the last call (from random starting values) must agree."""

    seed: int
    dtype: str
    shape: tuple
    momentum: float | None = 0.1
    eps: float = 1e-5
    affine: bool = True
    track_running_stats: bool = True
    train_calls: int = 1
    eval_calls: int = 0
    module: bool = True
    head: Head = Head()
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        channels = self.shape[1]
        weight, bias = values(rng, (channels,), self.dtype), values(rng, (channels,), self.dtype)
        mean, var = values(rng, (channels,), self.dtype), values(rng, (channels,), self.dtype, "positive")
        leaves = []
        if self.module:
            layer = getattr(E.nn, "BatchNorm2d" if len(self.shape) == 4 else "BatchNorm1d")(
                channels, eps=self.eps, momentum=self.momentum, affine=self.affine,
                track_running_stats=self.track_running_stats, dtype=E.dtype(self.dtype))
            if self.affine:
                E.set_param(layer, "weight", weight)
                E.set_param(layer, "bias", bias)
                leaves += [("weight", layer.weight), ("bias", layer.bias)]
            if self.track_running_stats:
                E.set_param(layer, "running_mean", mean)
                E.set_param(layer, "running_var", var)
            stats = (layer.running_mean, layer.running_var) if self.track_running_stats else None
        else:  # F.batch_norm with its own running tensors (momentum=None is the module's alone)
            w = E.tensor(weight, grad=True) if self.affine else None
            b = E.tensor(bias, grad=True) if self.affine else None
            leaves += [("weight", w), ("bias", b)] if self.affine else []
            stats = (E.tensor(mean), E.tensor(var)) if self.track_running_stats else None
        outputs = []
        for call in range(self.train_calls + self.eval_calls):
            training = call < self.train_calls
            x = E.tensor(inject(rng, values(rng, self.shape, self.dtype), self.special if call == 0 else "none"),
                         grad=True)
            leaves.append((f"x{call}", x))
            if self.module:
                layer.train(training)
                outputs.append(layer(x))
            else:
                running = stats if stats is not None else (None, None)
                outputs.append(E.F.batch_norm(x, running[0], running[1], w, b, training=training or stats is None,
                                              momentum=self.momentum, eps=self.eps))
        extra = {f"y{call}": y for call, y in enumerate(outputs[:-1])}
        if stats is not None:
            extra.update(running_mean=stats[0], running_var=stats[1])
            if self.module:
                extra["num_batches_tracked"] = layer.num_batches_tracked
        return finish(E, self, outputs[-1], rng, leaves, extra)


@dataclass(frozen=True)
class Dropout:
    """x through ``calls`` dropouts (nn.Dropout or F.dropout) in training or eval mode.  The same
    mask in both engines: p = 0 and eval are the identity and p = 1 all zeros in torch's own
    dropout; for 0 < p < 1 deltalab draws its mask from ``manual_seed(seed + call)`` and torch
    computes its dropout formula x · (mask / (1 − p)) with the mask deltalab draws for that seed
    (deltalab's generator, saved and restored around each draw, so the program is not disturbed)."""

    seed: int
    dtype: str
    shape: tuple
    p: float
    training: bool = True
    module: bool = True
    calls: int = 1
    activation: str = "identity"
    head: Head = Head()
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        x = E.tensor(inject(rng, values(rng, self.shape, self.dtype), self.special), grad=True)
        y = activation(E, self.activation, x, -1)
        for call in range(self.calls):
            y = E.dropout(y, self.p, self.training, self.module, self.seed + call)
        return finish(E, self, y, rng, [("x", x)])


def deltalab_dropout_mask(shape, p, seed):
    """The keep-mask deltalab's dropout draws after ``manual_seed(seed)`` (the generator is restored)."""
    with deltalab_seeded(seed):
        return dl.nn.Dropout(p)(dl.ones(shape, dtype=dl.float64)).numpy() != 0


class deltalab_seeded:  # noqa: N801 - used as a context manager
    """``dl.manual_seed(seed)`` for a block; deltalab's generator continues afterwards as before."""

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        self.saved = dl.random.generator().bit_generator.state
        dl.manual_seed(self.seed)

    def __exit__(self, *exc):
        dl.random.generator().bit_generator.state = self.saved


@dataclass(frozen=True)
class Embedding:
    """Integer indices of ``index_shape`` (repeats, the padding row, a negative ``padding_idx``)
    into a (num, dim) table: nn.Embedding, F.embedding or Embedding.from_pretrained(freeze=False);
    ``bad_index`` puts an index out of range (both engines must refuse)."""

    seed: int
    dtype: str
    num: int
    dim: int
    index_shape: tuple
    padding_idx: int | None = None
    make: str = "module"  # "module" | "functional" | "pretrained"
    bad_index: bool = False
    head: Head = Head()
    special: str = "none"

    def run(self, E):
        rng = np.random.default_rng(self.seed)
        weight = inject(rng, values(rng, (self.num, self.dim), self.dtype), self.special)
        indices = rng.integers(0, self.num, size=self.index_shape)
        if self.padding_idx is not None and indices.size:
            indices.flat[int(rng.integers(0, indices.size))] = self.padding_idx % self.num
        if self.bad_index and indices.size:
            indices.flat[0] = self.num
        idx = E.tensor(indices.astype(np.int64))
        if self.make == "module":
            table = E.nn.Embedding(self.num, self.dim, padding_idx=self.padding_idx, dtype=E.dtype(self.dtype))
            E.set_param(table, "weight", weight)
            w = table.weight
            y = table(idx)
        elif self.make == "pretrained":
            table = E.nn.Embedding.from_pretrained(E.tensor(weight), freeze=False, padding_idx=self.padding_idx)
            w = table.weight
            y = table(idx)
        else:
            w = E.tensor(weight, grad=True)
            y = E.F.embedding(idx, w, padding_idx=self.padding_idx)
        return finish(E, self, y, rng, [("weight", w)])



# ---------------------------------------------------------------------------- comparison
# ABSOLUTE_FLOOR: the inputs and upstream gradients are O(1), so no value is exact to better
# than a few ulps of 1 in absolute terms: a true 0 comes out as 1e-17, and a float32 gradient
# through a saturated tanh or sigmoid (1 − h² computed from a rounded h) is only good to
# ~eps32 absolute however small it is.  Hence atol ≥ rtol · 1e-2 (1e-6 / 1e-12), and for a
# gradient ≥ rtol · 1e-2 · (largest forward value of the step): a loss on outputs of 70 sends
# back upstream gradients of 140, and a softmax's Σ = 1 in float32 leaves 140 · 1e-7 of a true 0.


def largest_finite(arrays):
    """The largest finite |value| in any of ``arrays`` (0.0 when none)."""
    largest = 0.0
    for array in arrays:
        if array is not None:
            finite = np.abs(np.asarray(array, dtype=np.float64))
            finite = finite[np.isfinite(finite)]
            if finite.size:
                largest = max(largest, float(finite.max()))
    return largest


def compare(label, ours, theirs, dtype, scale=0.0, exact=None):
    """None when ``ours`` agrees with ``theirs`` (see the module docstring), else the reason.

    ``exact``: for float32, torch's float64 result on the same values; then deltalab is measured
    against it and passes where it is within the tolerance of it or no further from it than
    4x torch's own float32 error (a saturated softmax or sigmoid leaves only a few ulps of a
    small gradient, in either engine).

    ``scale``: a magnitude the absolute tolerance may not fall below (see ABSOLUTE_FLOOR).
    (It was also a tenth of the step's largest gradient, which let a leaf with small gradients
    be off by 100% in float32 next to a leaf with large ones; 7,000 programs without it found
    no case that needed it: a gradient that cancels to almost nothing is as inexact in torch's
    float32, which the 4x-torch's-error rule allows for.)"""
    if theirs is None and ours is None:
        return None
    if theirs is None or ours is None:  # no gradient on one side counts as zeros
        present = ours if theirs is None else theirs
        if np.all(present == 0):
            return None
        return f"{label}: gradient only in {'deltalab' if theirs is None else 'torch'}"
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        return f"{label}: shape {ours.shape} vs torch {theirs.shape}"
    if ours.dtype != theirs.dtype:
        return f"{label}: dtype {ours.dtype} vs torch {theirs.dtype}"
    rtol = RTOL[dtype]
    nan_ours, nan_theirs = np.isnan(ours), np.isnan(theirs)
    if (nan_ours != nan_theirs).any():
        where = np.argwhere(nan_ours != nan_theirs)[0]
        return (f"{label}: NaN differs at {tuple(where)}: deltalab {ours[tuple(where)]} vs torch "
                f"{theirs[tuple(where)]}")
    inf_ours, inf_theirs = np.isinf(ours), np.isinf(theirs)
    if (inf_ours != inf_theirs).any() or (ours[inf_theirs] != theirs[inf_theirs]).any():
        where = np.argwhere((inf_ours != inf_theirs) | (inf_theirs & (ours != theirs)))[0]
        return f"{label}: inf differs at {tuple(where)}: deltalab {ours[tuple(where)]} vs torch {theirs[tuple(where)]}"
    finite = ~(nan_theirs | inf_theirs)
    a, b = ours[finite].astype(np.float64), theirs[finite].astype(np.float64)
    if a.size == 0:
        return None
    torch_error = 0.0
    if exact is not None and np.shape(exact) == theirs.shape:
        reference = np.asarray(exact, dtype=np.float64)[finite]
        usable = np.isfinite(reference)
        torch_error = np.where(usable, np.abs(b - np.where(usable, reference, 0)), 0.0)
        b = np.where(usable, reference, b)
    atol = rtol * max(np.abs(b).max(), scale, 1e-2)  # see ABSOLUTE_FLOOR
    error = np.abs(a - b)
    bad = (error > atol + rtol * np.abs(b)) & (error > 4 * torch_error)
    if bad.any():
        worst = int(np.argmax(error - rtol * np.abs(b)))
        return (f"{label}: max |difference| {error.max():.3g} (largest |torch| {np.abs(b).max():.3g}, rtol {rtol}); "
                f"e.g. deltalab {a[worst]!r} vs torch {b[worst]!r}")
    return None


EXACT_OPS = {"reshape", "permute", "T", "flatten", "squeeze", "unsqueeze", "index", "mask", "neg", "cat", "stack",
             "pad", "where"}


def exact_until_max(steps):
    """Whether every op before the last max (pooling or reduction) is exact (moves, ReLU):
    only then are ties in the data still ties there in both engines (a computed near-tie
    is broken by the last bit, differently in each)."""
    exact = True
    for op in steps:
        if op[0] in ("max", "max_pool") and not exact:
            return False
        if not (op[0] in EXACT_OPS or op[0] in ("max", "max_pool") or op[0] == "act" and op[1] in ("relu", "identity")):
            exact = False
    return True


def tie_sensitive(step):
    """Whether a max in ``step`` sees computed values (see check_step)."""
    ops = step.layers if isinstance(step, Image) else step.ops if isinstance(step, Tensor) else ()
    return not exact_until_max(ops)


def native_torch():
    """torch's own CPU kernels, not oneDNN's, for the duration of a step.

    oneDNN (torch's float32 convolution for most shapes) gives NaN / inf results that depend on
    the kernel it picks for a shape: measured on 3,000 random float32 convolutions with a NaN or
    ±inf in x, w or the upstream gradient, its forward pass and dW sometimes multiply the zero
    padding (0 · inf = NaN at the border) and sometimes skip it, and dx sometimes matches
    neither.  torch's native kernels (float64 always; float32 whenever oneDNN is off or not
    chosen) always multiply the padding, and deltalab follows them.  Finite values are the same
    up to rounding, which the float32 tolerance covers."""
    return torch.backends.mkldnn.flags(enabled=False, deterministic=None, allow_tf32=None, fp32_precision=None)


def check_step(step):
    """Run one step in both engines; raises Disagreement with the reason(s)."""
    results, errors = [], []
    for E in ENGINES:
        with warnings.catch_warnings(), native_torch():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                try:
                    results.append(step.run(E))
                    errors.append(None)
                except Exception as error:  # noqa: BLE001 - compared below
                    # (both refusing passes below: e.g. NaN probabilities in binary_cross_entropy)
                    results.append(None)
                    errors.append(error)
    if errors[0] is not None and errors[1] is not None:
        return  # both refuse (e.g. NaN probabilities in binary_cross_entropy)
    if errors[0] is not None or errors[1] is not None:
        who = "deltalab" if errors[0] is not None else "torch"
        error = errors[0] if errors[0] is not None else errors[1]
        raise Disagreement(f"only {who} raised {type(error).__name__}: {error}") from error
    (ours_out, ours_grad), (torch_out, torch_grad) = results
    dtype = getattr(step, "dtype", "float64")
    exact_out, exact_grad = {}, {}
    if dtype == "float32":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exact_out, exact_grad = step.run(EXACT)
        except Exception:  # noqa: BLE001 - then float32 torch alone is the reference
            pass
    problems = []
    for name in torch_out:
        problem = compare(f"forward {name}", ours_out.get(name), torch_out[name], dtype, exact=exact_out.get(name))
        if problem:
            problems.append(problem)
    # gradients carry roundoff in proportion to the values flowing through the step (an
    # upstream gradient 2(y − t) of a large y): see ABSOLUTE_FLOOR
    scale = 0.01 * largest_finite((exact_out or torch_out).values())
    for name in torch_grad:
        problem = compare(f"gradient of {name}", ours_grad.get(name), torch_grad[name], dtype, scale,
                          exact=exact_grad.get(name))
        if problem:
            problems.append(problem)
    if problems and dtype == "float32" and tie_sensitive(step) and not any(p.startswith("forward") for p in problems):
        # A float32 max window often holds two values a few ulps apart (10⁵ windows of a large
        # image); each engine's rounding then picks its own maximum and routes the gradient
        # there.  If the same program agrees in float64, that is all it was.
        try:
            check_step(dataclasses.replace(step, dtype="float64"))
            return
        except Disagreement as error:
            problems.append(f"(and in float64: {error})")
    if problems:
        raise Disagreement("; ".join(problems))


def check_program(program):
    """Run every step of ``program`` in order (deltalab's thread count restored afterwards);
    raises Disagreement naming the first step that disagrees."""
    threads = dl.get_num_threads()
    try:
        for number, step in enumerate(program):
            try:
                check_step(step)
            except Disagreement as error:
                raise Disagreement(f"step {number} {step!r}: {error}") from None
            except Exception as error:
                raise Disagreement(f"step {number} {step!r}: {type(error).__name__}: {error}") from error
    finally:
        dl.set_num_threads(threads)


# ---------------------------------------------------------------------------- generation
class RandomChooser:
    """Choices from a seeded ``random.Random`` (the soak: no hypothesis overhead)."""

    def __init__(self, seed):
        self.random = random.Random(seed)

    def integer(self, low, high):
        return self.random.randint(low, high)

    def choice(self, options):
        return options[self.integer(0, len(options) - 1)]

    def chance(self, p):
        return self.random.random() < p


class HypothesisChooser(RandomChooser):
    """Choices drawn from hypothesis' ``data`` (so failures shrink)."""

    def __init__(self, data):
        from hypothesis import strategies

        self.data, self.strategies = data, strategies

    def integer(self, low, high):
        return self.data.draw(self.strategies.integers(low, high))

    def chance(self, p):
        return self.integer(0, 999) >= round((1 - p) * 1000)


def draw_head(ch, ndim, spatial_ok=False):
    if ch.chance(0.45):
        return Head()
    kind = ch.choice(LOSSES)
    module = kind in ("mse_loss", "cross_entropy", "cross_entropy_probs", "nll_loss", "binary_cross_entropy") and ch.chance(0.3)
    if kind == "cross_entropy_probs":
        module = False
    return Head(kind=kind, reduction=ch.choice(REDUCTIONS), module=module,
                target_grad=kind in ("mse_loss", "half_squared_error", "squared_error", "binary_cross_entropy") and ch.chance(0.3),
                spatial=spatial_ok and ndim == 4 and kind in ("cross_entropy", "cross_entropy_probs", "nll_loss") and ch.chance(0.5),
                hard_labels=ch.chance(0.4))


def draw_special(ch):
    return ch.choice(("nan", "inf", "-inf")) if ch.chance(0.06) else "none"


def draw_window(ch, size, kind):
    """(kernel, stride, padding) along one axis of length ``size`` for conv or pooling."""
    kernel = ch.integer(1, min(5, size + (2 if kind == "conv" else 0)))
    stride = ch.choice((1, 1, 2, 3))
    if kind == "pool":
        padding = ch.integer(0, kernel // 2)
    else:
        padding = ch.choice((0, 0, 1, 2))
    if kernel > size + 2 * padding:
        kernel = size + 2 * padding
    return kernel, stride, padding


def spell(pair, ch):
    """A pair as an int when both are equal (sometimes), else as a tuple."""
    return pair[0] if pair[0] == pair[1] and ch.chance(0.6) else tuple(pair)


def draw_image(ch, dtype, big=False, like=None):
    if like is not None:  # same input shape as an earlier step: work buffers of the same size
        shape = like
    elif big:
        shape = (ch.integer(8, 12), ch.integer(8, 16), ch.integer(28, 34), ch.integer(28, 34))
    else:
        shape = (ch.integer(1, 4), ch.integer(1, 4), ch.integer(1, 12), ch.integer(1, 30))
        if dtype == "float32" and ch.chance(0.15):  # large images: conv2d's per-image layout on plain rows
            shape = (ch.integer(1, 3), ch.integer(1, 4), ch.integer(20, 26), ch.integer(28, 34))
        elif ch.chance(0.1):
            shape = shape[1:]
    c, h, w = shape[-3:]
    layers = []
    winograd = True if dtype == "float32" and ch.chance(0.5) else None
    for _ in range(ch.integer(1, 4)):
        kind = ch.choice(("conv", "conv", "conv", "max_pool", "avg_pool", "act"))
        if kind == "conv":
            if winograd and ch.chance(0.6):  # 3x3 at stride 1: the kernels Winograd computes
                padding = ch.choice((0, 1, 1, 2, (0, 1), (1, 0)))
                ph, pw = (padding, padding) if isinstance(padding, int) else padding
                if h + 2 * ph < 3 or w + 2 * pw < 3:
                    padding, ph, pw = 1, 1, 1
                o = ch.integer(1, 16 if big else 6)
                out = (h + 2 * ph - 2, w + 2 * pw - 2)
                layers.append(("conv", o, 3, 1, padding, ch.chance(0.7), ch.chance(0.3)))
            elif ch.chance(0.15) and h >= 1:
                kh, kw = ch.choice((1, 3, 5)), ch.choice((1, 3, 5))
                padding = ch.choice(("same", "same", "valid"))
                if padding == "valid" and (kh > h or kw > w):
                    padding = "same"
                stride = 1
                out = (h, w) if padding == "same" else (h - kh + 1, w - kw + 1)
                o = ch.integer(1, 16 if big else 6)
                layers.append(("conv", o, (kh, kw), stride, padding, ch.chance(0.7), True))
            else:
                (kh, sh, ph), (kw, sw, pw) = draw_window(ch, h, "conv"), draw_window(ch, w, "conv")
                o = ch.integer(1, 16 if big else 6)
                out = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
                layers.append(("conv", o, spell((kh, kw), ch), spell((sh, sw), ch), spell((ph, pw), ch),
                               ch.chance(0.7), ch.chance(0.3)))
            c, (h, w) = o, out
        elif kind in ("max_pool", "avg_pool"):
            (kh, sh, ph), (kw, sw, pw) = draw_window(ch, h, "pool"), draw_window(ch, w, "pool")
            if 2 * ph > kh or 2 * pw > kw:
                continue
            stride = None if ch.chance(0.3) else spell((sh, sw), ch)
            if stride is None:
                sh, sw = kh, kw
            layers.append((kind + "", spell((kh, kw), ch), stride, spell((ph, pw), ch), ch.chance(0.3)))
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        else:
            layers.append(("act", ch.choice(ACTIVATIONS)))
        if h < 1 or w < 1:
            layers.pop()
            break
    if ch.chance(0.3):
        layers.append(("linear", ch.integer(1, 5), ch.chance(0.7), ch.chance(0.5)))
        if ch.chance(0.5):
            layers.append(("act", ch.choice(ACTIVATIONS)))
    ties = ch.chance(0.25) and exact_until_max(layers)
    return Image(seed=ch.integer(0, 2**31 - 1), dtype=dtype, shape=tuple(shape), layers=tuple(layers),
                 head=draw_head(ch, 2 if layers and layers[-1][0] in ("linear",) else len(shape), spatial_ok=True),
                 data="ties" if ties else "normal", special=draw_special(ch),
                 x_grad=ch.chance(0.9), special_weight=ch.chance(0.3), winograd=winograd)


def draw_recurrent(ch, dtype, big=False):
    kind = ch.choice(("rnn", "lstm", "gru") if HAS_GRU else ("rnn", "lstm"))
    if big:
        dtype = "float32"
        steps, batch, hidden = ch.integer(64, 128), ch.integer(8, 12), ch.integer(64, 80)
        while batch * hidden * steps < (1 << 16):
            steps += 16
        features = ch.integer(1, 16)
    else:
        steps, batch, hidden, features = ch.integer(1, 6), ch.integer(1, 4), ch.integer(1, 5), ch.integer(1, 4)
    nonlinearity = ch.choice(("tanh", "tanh", "relu", "sigmoid", "identity")) if kind == "rnn" else "tanh"
    return Recurrent(seed=ch.integer(0, 2**31 - 1), dtype=dtype, kind=kind, steps=steps, batch=batch,
                     features=features, hidden=hidden, nonlinearity=nonlinearity, batch_first=ch.chance(0.3),
                     unbatched=not big and ch.chance(0.15), state=ch.chance(0.5), bias=ch.chance(0.8),
                     truncate=ch.integer(1, 4) if not big and kind != "gru" and ch.chance(0.15) else None,
                     head=draw_head(ch, 3), special=draw_special(ch))


def draw_cell(ch, dtype):
    kind = ch.choice(("rnn", "lstm", "gru") if HAS_GRU else ("rnn", "lstm"))
    return Cell(seed=ch.integer(0, 2**31 - 1), dtype=dtype, kind=kind, steps=ch.integer(1, 3), batch=ch.integer(1, 4),
                features=ch.integer(1, 4), hidden=ch.integer(1, 5),
                nonlinearity=ch.choice(("tanh", "relu")) if kind == "rnn" else "tanh",
                unbatched=ch.chance(0.2), state=ch.chance(0.6), bias=ch.chance(0.8), head=draw_head(ch, 3),
                special=draw_special(ch))


def draw_tensor(ch, dtype):
    shape = tuple(ch.integer(1, 4) for _ in range(ch.integer(1, 4)))
    ops = []
    current = shape
    for _ in range(ch.integer(1, 5)):
        op, shape_after = draw_op(ch, current)
        if op is not None:
            ops.append(op)
        if shape_after is None:  # a boolean mask: the size depends on the data, so it ends the chain
            current = (1,)
            break
        current = shape_after
    return Tensor(seed=ch.integer(0, 2**31 - 1), dtype=dtype, shape=shape, ops=tuple(ops),
                  head=draw_head(ch, len(current)), data="ties" if ch.chance(0.2) and exact_until_max(ops) else "normal",
                  special=draw_special(ch))


def broadcast_partner(ch, shape):
    """A shape that broadcasts against ``shape`` (fewer axes, or 1s in some)."""
    drop = ch.integer(0, len(shape))
    return tuple(1 if ch.chance(0.3) else n for n in shape[drop:])


def draw_op(ch, shape):
    """One op valid for a tensor of ``shape``, and the shape it gives (op None: nothing fits)."""
    ndim = len(shape)
    size = int(np.prod(shape))
    kind = ch.choice(("reshape", "permute", "T", "flatten", "squeeze", "unsqueeze", "index", "mask", "add", "sub",
                      "mul", "div", "pow", "rpow", "pow_tensor", "neg", "sum", "mean", "max", "matmul", "cat", "stack",
                      "where", "pad", "log", "act", "act", "act"))
    if kind == "reshape":
        if size == 0:
            return None, shape
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        first = ch.choice(divisors)
        new = (first, size // first) if ch.chance(0.6) else (size,)
        spelled = (-1,) + new[1:] if ch.chance(0.3) else new
        return ("reshape", spelled), new
    if kind == "permute" and ndim >= 1:
        remaining, axes = list(range(ndim)), []
        while remaining:
            axes.append(remaining.pop(ch.integer(0, len(remaining) - 1)))
        return ("permute", tuple(axes)), tuple(shape[a] for a in axes)
    if kind == "T" and ndim == 2:
        return ("T",), shape[::-1]
    if kind == "flatten" and ndim >= 1:
        start = ch.integer(0, ndim - 1)
        end = ch.integer(start, ndim - 1)
        new = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
        return ("flatten", start, end if ch.chance(0.5) else end - ndim), new
    if kind == "squeeze" and 1 in shape:
        axis = shape.index(1)
        return ("squeeze", axis), shape[:axis] + shape[axis + 1:]
    if kind == "unsqueeze" and ndim < 4:
        axis = ch.integer(0, ndim)
        return ("unsqueeze", axis), shape[:axis] + (1,) + shape[axis:]
    if kind == "index" and ndim >= 1:
        parts, new = [], []
        for n in shape:
            pick = ch.choice(("all", "int", "slice", "list", "rest"))
            if pick == "int":
                k = ch.integer(-n, n - 1)
                parts.append(k)
            elif pick == "slice":
                start, step = ch.integer(0, n - 1), ch.integer(1, 2)
                parts.append(slice(start, None, step))
                new.append(len(range(start, n, step)))
            elif pick == "list" and not any(isinstance(p, list) for p in parts):
                picks = [ch.integer(0, n - 1) for _ in range(ch.integer(1, 4))]
                parts.append(picks)
                new.append(len(picks))
            elif pick == "rest":
                parts.append(Ellipsis)
                new.extend(shape[len(parts) - 1:])
                break
            else:
                parts.append(slice(None))
                new.append(n)
        if any(isinstance(p, list) for p in parts) and any(isinstance(p, int) for p in parts):
            return None, shape  # advanced-index placement rules: keep them out of it
        return ("index", tuple(parts)), tuple(new)
    if kind == "mask" and size > 0 and ch.chance(0.5):
        return ("mask",), None  # result size is data-dependent: the last op
    if kind in ("add", "sub", "mul", "div"):
        other_kind = ch.choice(("scalar", "tensor", "leaf", "leaf"))
        partner = broadcast_partner(ch, shape) if other_kind != "scalar" else ()
        if ch.chance(0.2) and other_kind != "scalar" and ndim < 4:
            partner = (1,) + shape  # the partner has more axes: the result grows
        result = np.broadcast_shapes(shape, partner)
        return (kind, partner, ch.choice(("left", "right")), other_kind), tuple(result)
    if kind == "pow":
        return ("pow", ch.choice((2, 3, 0.5, -1.5, 1.0, 0))), shape
    if kind == "rpow":
        return ("rpow", ch.choice((2.0, 0.5, 3.0))), shape
    if kind == "pow_tensor":
        return ("pow_tensor",), shape
    if kind == "neg":
        return ("neg",), shape
    if kind in ("sum", "mean", "max") and ndim >= 1:
        if ch.chance(0.25):
            return (kind, None, False), ()
        dim = ch.integer(-ndim, ndim - 1)
        keepdim = ch.chance(0.4)
        axis = dim % ndim
        new = shape[:axis] + ((1,) if keepdim else ()) + shape[axis + 1:]
        return (kind, dim, keepdim), new
    if kind == "matmul" and ndim >= 1:
        side = ch.choice(("left", "right"))
        k = ch.integer(1, 4)
        if side == "left":
            other = (shape[-1],) if ch.chance(0.3) else (shape[-1], k)
            result = shape[:-1] + other[1:]
        else:
            inner = shape[0] if ndim == 1 else shape[-2]
            other = (inner,) if ch.chance(0.3) else (k, inner)
            result = (other[:-1] + shape[1:]) if ndim == 1 else shape[:-2] + other[:-1] + shape[-1:]
            if ndim == 1:
                result = other[:-1]
        return ("matmul", other, side), tuple(result)
    if kind == "cat" and ndim >= 1:
        dim = ch.integer(0, ndim - 1)
        extra = ch.integer(1, 3)
        other = shape[:dim] + (extra,) + shape[dim + 1:]
        return ("cat", dim, other), shape[:dim] + (shape[dim] + extra,) + shape[dim + 1:]
    if kind == "stack" and ndim < 4:
        dim = ch.integer(0, ndim)
        return ("stack", dim, shape), shape[:dim] + (2,) + shape[dim:]
    if kind == "where":
        return ("where",), shape
    if kind == "pad" and ndim >= 1:
        widths = tuple((0, 0) for _ in shape[:-2]) + tuple((ch.integer(0, 2), ch.integer(0, 2)) for _ in shape[-2:])
        return ("pad", widths), tuple(n + a + b for n, (a, b) in zip(shape, widths))
    if kind == "log":
        return ("log",), shape
    if kind == "act" and ndim >= 1:
        return ("act", ch.choice(ACTIVATIONS), ch.integer(-ndim, ndim - 1)), shape
    return None, shape


def draw_loss(ch, dtype):
    loss = ch.choice(("cross_entropy", "nll_loss", "binary_cross_entropy"))
    case = {"cross_entropy": ("plain", "-inf"), "nll_loss": ("plain", "one_hot"),
            "binary_cross_entropy": ("plain", "extreme")}[loss]
    ndim = ch.choice((1, 2, 2, 3))
    shape = tuple(ch.integer(1, 4) for _ in range(ndim))
    return Loss(seed=ch.integer(0, 2**31 - 1), dtype=dtype, loss=loss, shape=shape, reduction=ch.choice(REDUCTIONS),
                case=ch.choice(case), module=ch.chance(0.3))


def draw_batch_norm(ch, dtype):
    batch, channels = ch.integer(1, 4), ch.integer(1, 4)
    form = ch.choice(("2d", "1d", "1d-length"))
    if ch.chance(0.2):  # large enough (>= Tuning.kernel_min_work) for the compiled float32 kernels
        shape = (ch.integer(4, 6), ch.integer(2, 4), ch.integer(96, 110), ch.integer(90, 100))
    elif form == "2d":
        shape = (batch, channels, ch.integer(1, 4), ch.integer(1, 4))
    elif form == "1d":
        shape = (batch, channels)
    else:
        shape = (batch, channels, ch.integer(1, 5))
    module = ch.chance(0.75)
    track = ch.chance(0.8)
    momentum = ch.choice((0.1, 0.1, 0.3, 1.0, None)) if module else ch.choice((0.1, 0.5))
    train_calls = ch.integer(0 if track else 1, 3)
    eval_calls = ch.integer(0 if train_calls else 1, 2)
    return BatchNorm(seed=ch.integer(0, 2**31 - 1), dtype=dtype, shape=shape, momentum=momentum,
                     eps=ch.choice((1e-5, 1e-5, 1e-3)), affine=ch.chance(0.8), track_running_stats=track,
                     train_calls=train_calls, eval_calls=eval_calls, module=module,
                     head=draw_head(ch, len(shape), spatial_ok=True), special=draw_special(ch))


def draw_dropout(ch, dtype):
    shape = tuple(ch.integer(1, 4) for _ in range(ch.integer(1, 4)))
    return Dropout(seed=ch.integer(0, 2**31 - 1), dtype=dtype, shape=shape, p=ch.choice((0.0, 0.2, 0.5, 0.9, 1.0)),
                   training=ch.chance(0.75), module=ch.chance(0.6), calls=ch.integer(1, 2),
                   activation=ch.choice(("identity", "tanh", "relu")), head=draw_head(ch, len(shape)),
                   special=draw_special(ch))


def draw_embedding(ch, dtype):
    num, dim = ch.integer(1, 6), ch.integer(1, 4)
    rank = ch.integer(0, 2)
    index_shape = tuple(ch.integer(1, 4) for _ in range(rank))
    padding_idx = ch.integer(-num, num - 1) if ch.chance(0.4) else None
    return Embedding(seed=ch.integer(0, 2**31 - 1), dtype=dtype, num=num, dim=dim, index_shape=index_shape,
                     padding_idx=padding_idx, make=ch.choice(("module", "functional", "pretrained")),
                     bad_index=ch.chance(0.05), head=draw_head(ch, rank + 1), special=draw_special(ch))


def draw_layer(ch, dtype):
    """A BatchNorm, Dropout or Embedding step."""
    return ch.choice((draw_batch_norm, draw_dropout, draw_embedding))(ch, dtype)


LAYER_STEPS = (BatchNorm, Dropout, Embedding)


def draw_program(ch, max_steps=6, big_chance=0.03, focus_layers=False):
    """A random program: a list of steps (see the module docstring); ``focus_layers``: one with a
    BatchNorm, Dropout or Embedding step at least (one is put in at a random place if none was drawn)."""
    program = []
    for _ in range(ch.integer(1, max_steps)):
        roll = ch.integer(0, 99)
        dtype = ch.choice(("float64", "float32"))
        big = ch.chance(big_chance)
        if big and ch.chance(0.5):
            program.append(Threads(ch.choice((1, 2))))  # the parallel sections only run with 2
        if roll < 6:
            program.append(Threads(ch.choice((1, 2))))
            continue
        if roll < 14 and program:
            earlier = [s for s in program if not isinstance(s, Threads)]
            if earlier:
                previous = ch.choice(earlier)
                if isinstance(previous, Image) and ch.chance(0.7):
                    program.append(draw_image(ch, previous.dtype, like=previous.shape))  # same buffers, new kernels
                else:
                    program.append(previous)  # the very same call again
                continue
        if roll < 40:
            program.append(draw_image(ch, dtype, big=big))
        elif roll < 60:
            program.append(draw_recurrent(ch, dtype, big=big))
        elif roll < 68:
            program.append(draw_cell(ch, dtype))
        elif roll < 86:
            program.append(draw_tensor(ch, dtype))
        elif roll < 94:
            program.append(draw_loss(ch, dtype))
        else:
            program.append(draw_layer(ch, dtype))
    if focus_layers and not any(isinstance(step, LAYER_STEPS) for step in program):
        program.insert(ch.integer(0, len(program)), draw_layer(ch, ch.choice(("float64", "float32"))))
    return program


# --------------------------------------------------------------------------------- soak
def fails(program):
    try:
        check_program(program)
    except Disagreement as error:
        return str(error)
    return None


def minimise(program):
    """Drop steps while the program still disagrees (a state leak needs its earlier steps)."""
    program = list(program)
    changed = True
    while changed:
        changed = False
        for k in range(len(program)):
            shorter = program[:k] + program[k + 1:]
            if shorter and fails(shorter):
                program, changed = shorter, True
                break
    return program


def soak(programs, seed, max_steps=6, stop_after=5, out=sys.stdout, focus_layers=False):
    """Run ``programs`` random programs from ``seed``; returns the disagreements found."""
    start = time.perf_counter()
    found = []
    steps = 0
    for number in range(programs):
        program = draw_program(RandomChooser(seed * 1_000_003 + number),
                               max_steps=max_steps, focus_layers=focus_layers)
        steps += len(program)
        problem = fails(program)
        if problem:
            smallest = minimise(program)
            found.append((number, smallest, fails(smallest) or problem))
            print(f"program {number} (seed {seed}) disagrees: {fails(smallest) or problem}\n"
                  f"  minimal program: check_program({smallest!r})", file=out, flush=True)
            if len(found) >= stop_after:
                break
    elapsed = time.perf_counter() - start
    print(f"{number + 1} programs ({steps} steps) from seed {seed} in {elapsed:.1f} s: "
          f"{len(found)} disagreement(s)", file=out, flush=True)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run random programs in deltalab and torch and compare them.")
    parser.add_argument("--programs", type=int, default=1000, help="how many programs (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first program (default 0)")
    parser.add_argument("--max-steps", type=int, default=6, help="steps per program at most (default 6)")
    parser.add_argument("--stop-after", type=int, default=5, help="stop after this many disagreements (default 5)")
    parser.add_argument("--focus-layers", action="store_true",
                        help="every program has a BatchNorm, Dropout or Embedding step")
    args = parser.parse_args(argv)
    found = soak(args.programs, args.seed, args.max_steps, args.stop_after, focus_layers=args.focus_layers)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

"""Reverse-mode automatic differentiation: graph nodes, grad mode and ``backward``.

An op is a :class:`Function` with a NumPy ``forward`` and a ``backward`` that maps the
gradient of its outputs to the gradients of its inputs.  Calling ``Function.apply`` records a
:class:`Node` (the op, its parent tensors and what it saved) on every output that needs a
gradient.  :func:`backward` walks those nodes in reverse topological order -- found with an
explicit stack, so an unrolled graph of any depth never hits Python's recursion limit.

Gradients *accumulate*: ``backward`` adds into ``.grad`` of leaf tensors (and of tensors that
called ``retain_grad``), exactly like PyTorch.  Call ``zero_grad`` between steps.

In-place changes are guarded as in PyTorch by a version counter (one per buffer, shared by its
views): a node remembers the version of every tensor whose array its backward reads, and
``backward`` refuses to run it once one of them has been changed in place since.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad`."""
    return getattr(_state, "grad_enabled", True)


class no_grad:
    """Context manager and decorator: ops inside record no graph (inference, optimiser steps)."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.grad_enabled = False

    def __exit__(self, *exc):
        _state.grad_enabled = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    """Context manager and decorator: record the graph again (inside ``no_grad``)."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.grad_enabled = True


class set_grad_enabled(no_grad):
    """``set_grad_enabled(False)`` as a context manager, decorator, or plain call (as torch)."""

    def __init__(self, mode):
        self._previous = is_grad_enabled()
        self.mode = bool(mode)
        _state.grad_enabled = self.mode

    def __enter__(self):
        _state.grad_enabled = self.mode

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class inference_mode(no_grad):
    """``torch.inference_mode(mode=True)``: here the same as ``no_grad`` (or a no-op for False)."""

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.grad_enabled = self._previous and not self.mode

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class Node:
    """One recorded op application: the op, its parent tensors and what forward saved.

    It doubles as the ``ctx`` object given to ``forward``/``backward``; ops may store any
    attribute on it.  ``retained`` maps output index -> tensor whose ``.grad`` must be kept.
    """

    def __init__(self, function, parents):
        self.function = function
        self.parents = parents  # tuple of Tensor (or None for non-tensor inputs)
        self.saved = ()
        self.n_outputs = 1
        self.retained = {}
        self.saved_versions = ()  # (Version, value) of each tensor whose array backward reads
        self.needs_input_grad = tuple(p is not None and p.requires_grad for p in parents)
        # where each input's gradient goes, fixed now: an in-place op may later give the input
        # tensor a new grad_fn, but this node consumed the value from before
        self.edges = tuple(None if p is None else (p.grad_fn, p._output_index) for p in parents)

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @property
    def name(self) -> str:
        return self.function.__name__

    def __repr__(self):
        return f"<{self.name}Backward>"


class Version:
    """How many in-place changes a buffer has seen; shared by a tensor and its views."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Function:
    """Base class of differentiable ops.

    Subclasses define ``forward(ctx, *arrays, **options)`` returning an array (or a tuple of
    arrays) and ``backward(ctx, *output_grads)`` returning one gradient (or None) per
    tensor input.  ``apply`` converts tensors to arrays, runs forward and links the graph.
    """

    differentiable = True
    #: True when every array ``backward`` returns is new and kept nowhere else: a leaf's first
    #: gradient then takes it as it is (as torch's AccumulateGrad steals an unshared gradient)
    #: instead of a copy
    fresh_gradients = False

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options):
        Tensor = _tensor_class()
        parents = tuple(x if isinstance(x, Tensor) else None for x in inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        ctx = Node(cls, parents)
        result = cls.forward(ctx, *arrays, **options)
        track = cls.differentiable and is_grad_enabled() and any(ctx.needs_input_grad)
        if isinstance(result, tuple):
            ctx.n_outputs = len(result)
            outputs = tuple(_wrap(r, ctx if track else None, i, parents) for i, r in enumerate(result))
        else:
            outputs = _wrap(result, ctx if track else None, 0, parents)
        if track and ctx.saved:
            _remember_versions(ctx, parents, outputs if isinstance(outputs, tuple) else (outputs,))
        return outputs


def _remember_versions(ctx, parents, outputs):
    """Note the version of each input or output whose array the backward will read."""
    saved_ids = [id(s) for s in ctx.saved]
    ctx.saved_versions = tuple(
        (t._version, t._version.value) for t in parents + outputs if t is not None and id(t.data) in saved_ids)


def check_versions(node):
    """RuntimeError (as PyTorch) if a tensor this node saved was changed in place since."""
    for version, expected in node.saved_versions:
        if version.value != expected:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: it is an input or output of {node.name}, is at version {version.value}; "
                f"expected version {expected} instead."
            )


def _tensor_class():
    """The Tensor class, imported on first use (tensor.py imports this module) and then cached:
    an import statement on every op call costs more than the op on small arrays."""
    global _Tensor
    if _Tensor is None:
        from .tensor import Tensor

        _Tensor = Tensor
    return _Tensor


_Tensor = None


def _wrap_array(array):
    """``tensor.from_array``, imported on first use (as the Tensor class above)."""
    global _wrap_function
    if _wrap_function is None:
        from .tensor import from_array

        _wrap_function = from_array
    return _wrap_function(array)


_wrap_function = None


def _wrap(array, node, index, parents=()):
    out = _wrap_array(array)
    base = getattr(out.data, "base", None)
    if base is not None:
        # a view shares its input's buffer, so it shares the version counter (and in-place rules)
        for parent in parents:
            if parent is not None and np.may_share_memory(out.data, parent.data):
                out._version = parent._version
                out._base = parent._base if parent._base is not None else parent
                break
    if node is not None and out.data.dtype.kind in "fc":  # integer and bool results carry no gradient
        out.requires_grad = True
        out.grad_fn = node
        out._output_index = index
    return out


def _topological_order(root_node):
    """Nodes reachable from ``root_node``, each after every node that consumes its outputs.

    Kahn's algorithm: count each node's consumers inside the graph, then release a node only
    when all of them are done.  (A depth-first order that marks nodes when first *seen* can
    run a node before a consumer reached by a longer path, e.g. ``b + exp(b)``.)
    """
    consumers = {id(root_node): 0}
    nodes = {id(root_node): root_node}
    stack = [root_node]
    while stack:
        node = stack.pop()
        for edge in node.edges:
            if edge is None or edge[0] is None:
                continue
            key = id(edge[0])
            if key not in consumers:
                consumers[key] = 0
                nodes[key] = edge[0]
                stack.append(edge[0])
            consumers[key] += 1
    order, ready = [], [root_node]
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in node.edges:
            if edge is None or edge[0] is None:
                continue
            key = id(edge[0])
            consumers[key] -= 1
            if consumers[key] == 0:
                ready.append(edge[0])
    return order


def _accumulate(tensor, grad, fresh=False):
    """Add ``grad`` into ``tensor.grad``; ``fresh``: the array is new and unshared, so a first
    gradient may be the array itself (when it already has the tensor's dtype and shape)."""
    grad = np.asarray(grad, dtype=tensor.data.dtype)
    if grad.shape != tensor.data.shape:
        grad = np.broadcast_to(grad, tensor.data.shape)
    if tensor.grad is None:
        own = fresh and grad.base is None and grad.flags.writeable
        tensor.grad = _grad_tensor(grad if own else np.array(grad, copy=True))
    else:
        tensor.grad.data = tensor.grad.data + grad


def _grad_tensor(array):
    return _wrap_array(array)


def backward(tensor, grad=None):
    """Backpropagate from ``tensor``: add d(tensor)/d(leaf) * grad into every leaf's ``.grad``."""
    if not tensor.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad (no graph was recorded)")
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a single value, got shape {tensor.shape}; "
                "reduce it first (e.g. .sum()) or pass grad="
            )
        grad = np.ones_like(tensor.data)
    grad = np.asarray(getattr(grad, "data", grad), dtype=tensor.data.dtype)
    if tensor.grad_fn is None:
        _accumulate(tensor, grad)
        return
    pending = {id(tensor.grad_fn): [None] * tensor.grad_fn.n_outputs}
    pending[id(tensor.grad_fn)][tensor._output_index] = grad
    with no_grad():
        for node in _topological_order(tensor.grad_fn):
            out_grads = pending.pop(id(node), None)
            if out_grads is None:
                continue
            check_versions(node)
            for index, kept in node.retained.items():
                if out_grads[index] is not None:
                    _accumulate(kept, out_grads[index])
            if node.n_outputs > 1:
                in_grads = node.function.backward(node, *out_grads)
            else:
                in_grads = node.function.backward(node, out_grads[0])
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            fresh = node.function.fresh_gradients
            for parent, edge, needed, g in zip(node.parents, node.edges, node.needs_input_grad, in_grads):
                if parent is None or g is None or not needed:
                    continue
                producer, i = edge
                if producer is None:
                    _accumulate(parent, g, fresh and sum(g is other for other in in_grads) == 1)
                else:
                    slots = pending.setdefault(id(producer), [None] * producer.n_outputs)
                    slots[i] = g if slots[i] is None else slots[i] + g

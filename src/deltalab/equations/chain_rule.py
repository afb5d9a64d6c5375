"""The chain rule made visible: local derivatives of every edge and ∂L/∂θ as a sum over paths.

Each local derivative comes from the engine, never from a table of hand-written rules: the
one equation is evaluated again with its operands as fresh leaf tensors and backpropagated
(once per output entry for the Jacobian; once with ∂L/∂output for the vector-Jacobian product).
The backward accumulation here, δ(m) = Σ over consumers n of (∂n/∂m)ᵀ δ(n), uses only those
local results, so it is a check of the engine's whole-graph backward pass; listing the paths
(products of local Jacobians) shows the same sum term by term.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from ..trace import ChainPath, LocalDerivative, PathSum
from .evaluate import EngineBackend, evaluate

JACOBIAN_LIMIT = 4096  # entries of a local Jacobian kept (output size × input size)
PATH_LIMIT = 2000  # paths per parameter enumerated and summed one by one
PATHS_SHOWN = 6  # paths per parameter written out in the report


def _local_graph(graph, node, values):
    """The node's equation on fresh leaves: (output tensor, {operand key: leaf})."""
    leaves = {}
    for key in node.operands:
        data = np.array(values[key].data, dtype=np.float64)
        leaves[key] = Tensor(data, requires_grad=graph.nodes[key].differentiable)
    inputs = dict(values)
    inputs.update(leaves)
    backend = EngineBackend()
    if node.kind == "total":
        out = backend.total([leaves[k] for k in node.operands])
    else:
        out = evaluate(node, inputs, backend, condition_values=values)
    return out, leaves


def _backward(out, leaves, grad):
    for leaf in leaves.values():
        leaf.grad = None
    if out.requires_grad:
        out.backward(np.asarray(grad, dtype=np.float64).reshape(out.shape))
    return {k: (np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.data.copy()) for k, leaf in leaves.items()}


def local_derivatives(graph, values, loss_key):
    """([LocalDerivative], chain-rule deltas) for every differentiable edge of the graph.

    ``values`` are the forward values (tensors); the deltas are accumulated from the local
    vector-Jacobian products alone (loss_key None: Jacobians only).
    """
    edges, delta = [], {}
    if loss_key is not None:
        delta[loss_key] = np.ones(values[loss_key].shape)
    records = {}
    for key, node, targets in graph.backward_order():
        with np.errstate(all="ignore"):
            out, leaves = _local_graph(graph, node, values)
            jacobians = {}
            size = out.data.size
            for k in targets:
                jacobians[k] = None
            small = [k for k in targets if size * leaves[k].data.size <= JACOBIAN_LIMIT]
            if small:
                rows = {k: [] for k in small}
                for i in range(size):
                    onehot = np.zeros(size)
                    onehot[i] = 1.0
                    grads = _backward(out, leaves, onehot)
                    for k in small:
                        rows[k].append(grads[k].reshape(-1))
                for k in small:
                    jacobians[k] = np.array(rows[k]).reshape(out.shape + leaves[k].shape)
            shares = {}
            if key in delta:
                shares = _backward(out, leaves, delta[key])
                for k in targets:
                    delta[k] = delta[k] + shares[k] if k in delta else shares[k]
        for k in targets:
            records[(key, k)] = LocalDerivative(key, k, node.step, out.shape + leaves[k].shape, jacobians[k],
                                                shares.get(k))
    # computation order: the edges of the first equation first
    for key in graph.nodes:
        for k in graph.nodes[key].operands:
            if (key, k) in records:
                edges.append(records[(key, k)])
    return edges, delta


def path_sums(graph, edges, delta, loss_key, loss_ndim=0):
    """parameter -> PathSum: every path from the loss to the parameter and their sum."""
    jacobian = {(e.output, e.input): e.value for e in edges}
    consumers = {}
    for e in edges:
        consumers.setdefault(e.input, []).append(e.output)
    # number of paths from the loss to each node (backward order)
    count = {loss_key: 1}
    for key in reversed(list(graph.nodes)):
        if key not in count:
            continue
        for k in graph.nodes[key].operands:
            if (key, k) in jacobian:
                count[k] = count.get(k, 0) + count[key]
    out = {}
    for name in graph.parameters:
        total = count.get(name, 0)
        if total == 0:
            out[name] = PathSum(name, 0, [], np.zeros(np.shape(graph.nodes[name].value)), "no path: the gradient is 0")
            continue
        paths = _enumerate(name, loss_key, consumers, min(total, PATH_LIMIT))
        products = [_product(p, jacobian, loss_ndim) for p in paths]
        if total <= PATH_LIMIT and all(v is not None for _, v in products):
            value = np.sum([v for _, v in products], axis=0)
            method = f"sum over all {total} paths" if total > 1 else "the one path"
        else:
            value = delta[name]
            method = "backward accumulation (Σ over consumers of local derivative × delta)"
        shown = [ChainPath(p, factors, v) for p, (factors, v) in zip(paths[:PATHS_SHOWN], products[:PATHS_SHOWN])
                 if v is not None]
        out[name] = PathSum(name, total, shown, np.asarray(value, dtype=np.float64), method)
    return out


def _enumerate(parameter, loss_key, consumers, limit):
    """Up to ``limit`` paths [loss, …, parameter], found from the parameter upwards (iteratively)."""
    paths, stack = [], [[parameter]]
    while stack and len(paths) < limit:
        path = stack.pop()
        head = path[-1]
        if head == loss_key:
            paths.append(list(reversed(path)))
            continue
        for consumer in reversed(consumers.get(head, [])):
            stack.append(path + [consumer])
    return paths


def _product(path, jacobian, loss_ndim):
    """(factors, product) of the local Jacobians along ``path``; (factors, None) if one is missing."""
    factors = [jacobian.get((a, b)) for a, b in zip(path, path[1:])]
    if any(f is None for f in factors):
        return factors, None
    vector = factors[0].reshape(factors[0].shape[loss_ndim:])  # the loss is one number
    for factor in factors[1:]:
        vector = np.tensordot(vector, factor, axes=vector.ndim)
    return factors, vector


def contributions(graph, edges, formula):
    """parameter -> [(step, formula, array)] for parameters read at two or more steps."""
    by_parameter = {}
    for e in edges:
        if graph.nodes[e.input].kind != "parameter" or e.step is None or e.backprop is None:
            continue
        by_parameter.setdefault(e.input, {}).setdefault(e.step, []).append(e)
    out = {}
    for name, steps in by_parameter.items():
        if len(steps) < 2:
            continue
        out[name] = [(s, " + ".join(formula(e) for e in items), np.sum([e.backprop for e in items], axis=0))
                     for s, items in sorted(steps.items())]
    return out


__all__ = ["JACOBIAN_LIMIT", "PATHS_SHOWN", "PATH_LIMIT", "contributions", "local_derivatives", "path_sums"]

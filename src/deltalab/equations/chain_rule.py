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
PATHS_SHOWN = 6  # largest paths per parameter kept and written out in the report
SHOWN_PATH_EDGES = 100  # a longer path is counted and summed but not written out


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


def path_sums(graph, edges, delta, loss_key, loss_ndim=0):  # noqa: ARG001 (loss_ndim: the loss's shape is delta's)
    """parameter -> PathSum: the number of paths from the loss to the parameter, their sum, and
    the :data:`PATHS_SHOWN` largest of them (by |contribution|) written out, largest first.

    Linear in the graph size, however many paths there are: the count and the sum are formed by
    dynamic programming over the graph in backward order — the sum at a node is Σ over its
    consumers n of (sum at n) · ∂n/∂node, which by distributivity *is* the sum over every path
    of the product of its local Jacobians.  The largest paths come from the same sweep: each
    node keeps its :data:`PATHS_SHOWN` largest partial products from the loss, and a node's
    largest paths are among its consumers' largest ones times the edge's derivative (exact for
    scalar nodes, where |a·b| = |a|·|b|; for tensor nodes the partial products are ranked by
    the sum of their absolute entries, a close guide)."""
    jacobian = {(e.output, e.input): e.value for e in edges}
    count = {loss_key: 1}
    start = np.ones(np.shape(delta[loss_key]))
    summed = {loss_key: start}  # None: a Jacobian on the way is too large
    best = {loss_key: [(start, (loss_key, None), 0)]}  # (partial product, path link, edges)
    parameters = set(graph.parameters)
    for key in reversed(list(graph.nodes)):
        if key not in count:
            continue
        partial = best.get(key, []) if key in parameters else best.pop(key, [])
        for k in graph.nodes[key].operands:
            if (key, k) not in jacobian:
                continue
            count[k] = count.get(k, 0) + count[key]
            factor, above = jacobian[(key, k)], summed[key]
            if factor is not None and partial:
                candidates = best.get(k, []) + [(_contract(vector, factor), (k, link), depth + 1)
                                                for vector, link, depth in partial
                                                if depth < SHOWN_PATH_EDGES]
                best[k] = _largest(candidates, PATHS_SHOWN)
            if factor is None or above is None or summed.get(k, 0) is None:
                summed[k] = None
                continue
            share = _contract(above, factor)
            summed[k] = share if k not in summed else summed[k] + share
    out = {}
    for name in graph.parameters:
        total = count.get(name, 0)
        if total == 0:
            out[name] = PathSum(name, 0, [], np.zeros(np.shape(graph.nodes[name].value)), "no path: the gradient is 0")
            continue
        shown = []
        for vector, link, _ in best.get(name, []):
            path = _unlink(link)
            shown.append(ChainPath(path, [jacobian[(a, b)] for a, b in zip(path, path[1:])], vector))
        if summed[name] is not None:
            value = summed[name]
            method = f"sum over all {_count(total)} paths" if total > 1 else "the one path"
        else:
            value = delta[name]
            method = "backward accumulation (Σ over consumers of local derivative × delta)"
        out[name] = PathSum(name, total, shown, np.asarray(value, dtype=np.float64), method)
    return out


def _largest(candidates, limit):
    """The ``limit`` partial products of largest magnitude, in a stable order."""
    ranked = sorted(candidates, key=lambda c: -float(np.abs(np.asarray(c[0])).sum()))
    return ranked[:limit]


def _unlink(link):
    """A path kept as links (node, link towards the loss) as the list [loss, …, node]: a path
    costs one link per edge while the sweep runs, not a copied list."""
    path = []
    while link is not None:
        path.append(link[0])
        link = link[1]
    return path[::-1]


def _count(total):
    """A path count as text: 1,234, or 3.3e+150 for the astronomically many paths of a lattice."""
    if total < 10**15:
        return f"{total:,}"
    digits = total.bit_length() * 0.30102999566398120  # log10(2)
    exponent = int(digits)
    mantissa = total // 10 ** max(exponent - 3, 0) / 10 ** min(exponent, 3)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}e+{exponent}"


def _contract(vector, factor):
    """Σ over the vector's axes of vector · factor (a vector-Jacobian product), as one matrix
    product: np.tensordot costs ~20 times more for the small arrays of an exercise."""
    rows = vector.size
    return (vector.reshape(1, rows) @ factor.reshape(rows, -1)).reshape(factor.shape[vector.ndim:])


def contributions(graph, edges, formula, general):
    """parameter -> [(step, formula, general, array)] for parameters read at two or more steps;
    ``general(edge)`` writes an edge's formula at any step t (with t, t−1, t+1)."""
    by_parameter = {}
    for e in edges:
        if graph.nodes[e.input].kind != "parameter" or e.step is None or e.backprop is None:
            continue
        by_parameter.setdefault(e.input, {}).setdefault(e.step, []).append(e)
    out = {}
    for name, steps in by_parameter.items():
        if len(steps) < 2:
            continue
        out[name] = [(s, " + ".join(formula(e) for e in items), " + ".join(general(e) for e in items),
                      np.sum([e.backprop for e in items], axis=0))
                     for s, items in sorted(steps.items())]
    return out


__all__ = ["JACOBIAN_LIMIT", "PATHS_SHOWN", "SHOWN_PATH_EDGES", "contributions", "local_derivatives", "path_sums"]

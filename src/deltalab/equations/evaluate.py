"""Evaluating a parsed equation: one walk over the whitelisted tree, values from a backend.

The :class:`EngineBackend` builds deltalab engine operations (so autodiff records the graph);
:mod:`deltalab.equations.exact` has a SymPy backend with the same methods. Conditions of
``where`` are evaluated on plain numbers (``backend.number``) and never differentiated: a
scalar condition (``t % 2 == 0``) picks one branch, so only that branch enters the graph.
"""
from __future__ import annotations

import ast

import numpy as np

from .. import losses, ops
from ..errors import ShapeError
from ..tensor import Tensor
from .limits import Budget
from .parser import STEP, EquationError

_SYMBOL_OPS = {ast.Add: "+", ast.Sub: "−", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
            ast.Eq: np.equal, ast.NotEq: np.not_equal}
_SYMBOL_NAMES = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
# RuntimeError: PyTorch's domain errors, e.g. binary_cross_entropy of a value outside [0, 1]
_FAILURES = (ShapeError, ValueError, TypeError, ZeroDivisionError, OverflowError, FloatingPointError, IndexError,
             RuntimeError)


class EngineBackend:
    """Values are engine tensors; parameters are leaves that require grad.

    Every operation is charged to a :class:`~deltalab.equations.limits.Budget` from its
    operands' shapes before it runs, so a broadcast to 74 GB is refused, not attempted."""

    def __init__(self, budget=None):
        self.budget = budget or Budget()

    def leaf(self, node, value, requires_grad):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":  # numbers only: no symbol to look for
            return Tensor(np.array(value, dtype=np.float64), requires_grad=requires_grad)
        array = np.asarray(value, dtype=object)
        if any(isinstance(v, str) for v in array.reshape(-1)):  # symbols: shapes only
            value = np.array([0.0 if isinstance(v, str) else v for v in array.reshape(-1)],
                             dtype=np.float64).reshape(array.shape)
        return Tensor(np.array(value, dtype=np.float64), requires_grad=requires_grad)

    def const(self, number):
        return Tensor(np.array(float(number)))

    def binary(self, op, a, b):
        if op is ast.MatMult and (a.ndim == 0 or b.ndim == 0):
            raise ShapeError(f"@ needs vectors or matrices, got shapes {a.shape} and {b.shape} (use * for scalars)")
        if op is ast.MatMult:
            self.budget.matmul(a.shape, b.shape)
        else:
            self.budget.broadcast(_SYMBOL_NAMES[op], a.shape, b.shape)
        return {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.Pow: ops.pow,
                ast.MatMult: ops.matmul}[op](a, b)

    def neg(self, a):
        return ops.neg(a)

    def number(self, value):
        return np.asarray(value.data, dtype=np.float64)

    def where(self, mask, a, b):
        self.budget.broadcast("where", np.shape(mask), a.shape, b.shape)
        return ops.where(mask, a, b)

    def total(self, values):
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out

    def call(self, name, args):
        x = args[0]
        self.budget.broadcast(name, *(a.shape for a in args))
        if name in ("relu", "sigmoid", "tanh", "exp", "log"):
            return getattr(ops, name)(x)
        if name == "softmax":
            if x.ndim == 0:
                raise ShapeError("softmax needs a vector, got a single number")
            return ops.softmax(x, axis=-1)
        if name == "sum":
            return ops.sum(x)
        if name == "mean":
            return ops.mean(x)
        if name == "transpose":
            return ops.transpose(x)
        if name == "max":
            if len(args) == 1:
                return ops.max(x)
            return ops.where(self.number(x) >= self.number(args[1]), x, args[1])
        function = {"half_squared_error": losses.half_squared_error, "squared_error": losses.squared_error,
                    "mse": losses.mse_loss, "cross_entropy": losses.cross_entropy,
                    "binary_cross_entropy": losses.binary_cross_entropy}[name]
        return function(x, args[1])


def located(exc, node, tree_node):
    """An EquationError at the column of ``tree_node`` in the equation of ``node``."""
    column = getattr(tree_node, "col_offset", -1) + 1 or None
    if isinstance(tree_node, ast.BinOp) and node.equation is not None:  # point at the operator itself
        text = node.equation.text
        start = tree_node.left.end_col_offset
        while start < tree_node.right.col_offset and text[start] in " ()":
            start += 1
        column = start + 1
    message = str(exc) if not isinstance(exc, EquationError) else exc.message
    error = EquationError(message, column)
    error.where = node.where(column)
    return error


def evaluate(node, values, backend, condition_values=None):
    """The value of equation ``node`` given its operands' ``values`` (dict key -> value).

    ``condition_values`` (default ``values``) supplies the numbers conditions are decided on.
    """
    condition_values = values if condition_values is None else condition_values

    def lookup(name, when, source):
        return source[node.bindings[(name, when)]]

    def walk(tree):
        try:
            if isinstance(tree, ast.Constant):
                return backend.const(tree.value)
            if isinstance(tree, ast.Name):
                if tree.id == STEP and node.step is not None:  # else t is a name (no recurrence)
                    return backend.const(node.step)
                return lookup(tree.id, "plain", values)
            if isinstance(tree, ast.Subscript):
                when = "now" if isinstance(tree.slice, ast.Name) else "previous"
                return lookup(tree.value.id, when, values)
            if isinstance(tree, ast.UnaryOp):
                operand = walk(tree.operand)
                return backend.neg(operand) if isinstance(tree.op, ast.USub) else operand
            if isinstance(tree, ast.BinOp):
                left, right = walk(tree.left), walk(tree.right)
                return backend.binary(type(tree.op), left, right)
            if isinstance(tree, ast.Call):
                name = tree.func.id
                if name == "where":
                    mask = np.asarray(condition(tree.args[0]), dtype=bool)
                    if mask.ndim == 0:
                        return walk(tree.args[1] if mask else tree.args[2])
                    return backend.where(mask, walk(tree.args[1]), walk(tree.args[2]))
                args = [walk(a) for a in tree.args]
                return backend.call(name, args)
        except EquationError:
            raise
        except _FAILURES as exc:
            raise located(exc, node, tree) from None
        raise located(EquationError(f"cannot evaluate {type(tree).__name__}"), node, tree)

    def condition(tree):
        """Plain numbers (float arrays) for a where-condition."""
        try:
            if isinstance(tree, ast.Constant):
                return np.float64(tree.value)
            if isinstance(tree, ast.Name) and tree.id == STEP and node.step is not None:
                return np.float64(node.step)
            if isinstance(tree, ast.Name):
                return backend.number(lookup(tree.id, "plain", condition_values))
            if isinstance(tree, ast.Subscript):
                when = "now" if isinstance(tree.slice, ast.Name) else "previous"
                return backend.number(lookup(tree.value.id, when, condition_values))
            if isinstance(tree, ast.UnaryOp):
                value = condition(tree.operand)
                return -value if isinstance(tree.op, ast.USub) else value
            if isinstance(tree, ast.BinOp):
                a, b = condition(tree.left), condition(tree.right)
                with np.errstate(all="ignore"):
                    return {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
                            ast.Pow: np.power, ast.MatMult: np.matmul, ast.Mod: np.mod}[type(tree.op)](a, b)
            if isinstance(tree, ast.Compare):
                result, left = None, condition(tree.left)
                for op, right_tree in zip(tree.ops, tree.comparators):
                    right = condition(right_tree)
                    part = _COMPARE[type(op)](left, right)
                    result = part if result is None else np.logical_and(result, part)
                    left = right
                return result
            if isinstance(tree, ast.Call):
                return backend.number(walk(tree))
        except EquationError:
            raise
        except _FAILURES as exc:
            raise located(exc, node, tree) from None
        raise located(EquationError("cannot evaluate this condition"), node, tree)

    return walk(node.equation.tree)


def evaluate_graph(graph, mode="engine", parameters=None, backend=None, keep=False):
    """Every node's value in evaluation order (engine tensors; ``mode="shapes"``: no graph recorded).

    ``parameters`` overrides parameter values (name -> array, or a Tensor used as the leaf itself); ``keep`` retains the gradient of
    every computed node (its delta ∂L/∂node after ``backward``).
    """
    from ..autograd import no_grad

    backend = backend or EngineBackend()
    values = {}
    grad = mode != "shapes"
    with np.errstate(all="ignore"):
        if not grad:
            with no_grad():
                return _run(graph, backend, values, parameters, False, keep)
        return _run(graph, backend, values, parameters, True, keep)


def _run(graph, backend, values, parameters, grad, keep):
    for key, node in graph.nodes.items():
        if node.kind == "parameter":
            value = node.value if parameters is None else parameters[key]
            # a Tensor is the caller's own leaf (the recorder's parameter, which optim.SGD updates)
            values[key] = value if isinstance(value, Tensor) else backend.leaf(node, value, grad)
        elif node.kind in ("data", "initial"):
            values[key] = backend.leaf(node, node.value, False)
        elif node.kind == "total":
            values[key] = backend.total([values[o] for o in node.operands])
        else:
            value = evaluate(node, values, backend)
            if isinstance(value, Tensor) and any(value is values[o] for o in node.operands):
                value = ops.reshape(value, value.shape)  # "y = h": a node of its own, with its own delta
            values[key] = value
            if keep and isinstance(values[key], Tensor) and values[key].grad_fn is not None:
                values[key].retain_grad()
    return values

"""Grading answers to a problem with unknown symbols (an equations problem whose labels are
names, e.g. ``y = ["y1", "y2"]``): the solution is a set of exact expressions
(``solve --exact``), and each answer -- a string such as ``"4 - 4*y2"`` or a number -- is
right when it equals the expression exactly (SymPy), else wrong.  No follow-through or
diagnosis: the derivation record holds numbers, which these quantities do not have.

A string answer is read by a small parser (numbers, the problem's symbols, + − * / ** and
parentheses; nothing is evaluated as Python) and built into a SymPy expression directly.
"""
from __future__ import annotations

import ast

import numpy as np

from .answers import MAX_EXPRESSION, AnswersError, arithmetic
from .grading import Quantity

_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Add, ast.Sub, ast.Mult,
            ast.Div, ast.Pow, ast.USub, ast.UAdd)


def expression(text, symbols, where, path):
    """The answer ``text`` as a SymPy expression over ``symbols`` (name -> sympy.Symbol)."""
    import sympy

    def fail(message):
        raise AnswersError(f"{path}: {where}: {message}")

    if len(text) > MAX_EXPRESSION:
        fail(f"a string answer may have at most {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text.replace("−", "-").replace("^", "**"), mode="eval")
    except SyntaxError:
        tree = None
    if tree is None or not all(isinstance(n, _ALLOWED) for n in ast.walk(tree)):
        fail(f"cannot read {text!r}: write numbers, the unknowns ({', '.join(symbols)}), + − * / ** and parentheses")

    def name(identifier):
        if identifier not in symbols:
            fail(f"{identifier!r} is not an unknown of this problem ({', '.join(symbols)})")
        return symbols[identifier]

    def constant(number):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            fail(f"cannot read {text!r}")
        return sympy.Rational(str(number))

    def power(a, b):
        if not (b.is_Integer and abs(int(b)) <= 16):
            fail(f"{text!r}: only small integer powers are supported")
        return a ** b

    try:
        return arithmetic(tree, constant, lambda a, b: a / b, power, name)
    except RecursionError:
        fail(f"{text!r} is nested too deeply")


def exact_keys(step, problem):
    """(section, key) -> (symbol, exact expression text) of the quantities an answer may name."""
    eq = problem.equations
    outputs = {v.key for v in step.outputs}
    out = {}
    for entry in step.exact:
        if entry.kind == "value":
            name = entry.key.split("(")[0]
            if entry.key == eq.loss:
                out["loss", "loss"] = (entry.key, entry.sympy)
            elif name == eq.loss:
                out["errors", entry.key] = (entry.key, entry.sympy)
            else:
                out["outputs" if entry.key in outputs else "forward", entry.key] = (entry.key, entry.sympy)
        elif entry.kind == "gradient":
            out["gradients", entry.key.partition("/∂")[2]] = (entry.key, entry.sympy)
    return out


def grade_exact(trace, problem, answers, weights=None):
    import difflib

    import sympy

    step = trace.steps[0]
    keys = exact_keys(step, problem)
    names = sorted({str(s) for _, text in keys.values() for s in sympy.sympify(text).free_symbols})
    quantities, asked = [], (weights or {}).get(1, {})
    given = {}
    for answer in answers.entries:
        if answer.step != 1:
            raise AnswersError(f"{answers.source}: {answer.where}: a problem with unknowns is solved for one step")
        if (answer.section, answer.key) not in keys:
            valid = [k for s, k in keys if s == answer.section]
            close = difflib.get_close_matches(answer.key, valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + (", ".join(valid) or "(none)")
            raise AnswersError(f"{answers.source}: {answer.where}: unknown key; {hint}")
        given[answer.section, answer.key] = answer
    for (section, key), (symbol, text) in keys.items():
        truth = sympy.sympify(text)
        symbols = {str(s): s for s in truth.free_symbols} | {n: sympy.Symbol(n, real=True) for n in names
                                                            if n not in {str(s) for s in truth.free_symbols}}
        answer, weight = given.get((section, key)), asked.get((section, key))
        if answer is None and weight is None:
            continue
        weight = 1.0 if weight is None else float(weight)
        if answer is None:
            quantities.append(Quantity(section, key, 1, symbol, None, None, None, text, None, "missing", weight=weight))
            continue
        if np.ndim(answer.written) != 0:
            raise AnswersError(f"{answers.source}: {answer.where}: expected one expression")
        written = str(answer.written)
        if isinstance(answer.raw, str):
            student = expression(answer.raw, symbols, answer.where, answers.source)
            right = sympy.simplify(student - truth) == 0
        elif truth.free_symbols:
            right = False
        else:
            right = abs(float(answer.value) - float(truth)) < float(answer.tolerance)
        quantities.append(Quantity(section, key, 1, symbol, None, written, written, text, None,
                                   "right" if right else "wrong", weight=weight, points=weight if right else 0.0))
    return quantities


__all__ = ["exact_keys", "expression", "grade_exact"]

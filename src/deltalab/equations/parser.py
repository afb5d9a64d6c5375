"""Safe parsing of one equation: Python's ``ast`` through a fixed whitelist, nothing executed.

Allowed: numbers, names, ``+ − * / ** @``, unary minus/plus, calls to :data:`FUNCTIONS`,
comparisons and ``%`` only inside the condition (first argument) of ``where``, and in a
recurrence the subscripts ``x[t]`` (a data sequence at step t) and ``h[t-1]`` (a recurrence
node at the previous step). No attribute access, no strings, no keywords, no lambdas.
Size and nesting are checked *before* ``ast.parse`` (a 10 MB or deeply nested expression is
refused at once); every error carries the 1-based column it points at.
"""
from __future__ import annotations

import ast
import keyword
import math
import unicodedata
from dataclasses import dataclass, field

MAX_LENGTH = 4000  # characters in one equation
MAX_NESTING = 40  # brackets open at once
MAX_DEPTH = 100  # depth of the syntax tree (a chain a+a+…+a of 100 terms)
MAX_NODES = 5000

# name -> (smallest, largest) number of arguments
FUNCTIONS = {
    "relu": (1, 1), "sigmoid": (1, 1), "tanh": (1, 1), "exp": (1, 1), "log": (1, 1), "softmax": (1, 1),
    "sum": (1, 1), "mean": (1, 1), "max": (1, 2), "transpose": (1, 1), "where": (3, 3),
    "half_squared_error": (2, 2), "squared_error": (2, 2), "mse": (2, 2), "cross_entropy": (2, 2),
    "binary_cross_entropy": (2, 2),
}
STEP = "t"  # the step index inside a recurrence

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
           ast.Mod: "%"}
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_DESCRIBE = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.Starred: "unpacking",
             ast.JoinedStr: "f-strings", ast.IfExp: "if-else (use where)", ast.BoolOp: "and/or",
             ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.DictComp: "comprehensions",
             ast.SetComp: "comprehensions", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dictionaries",
             ast.Set: "sets", ast.NamedExpr: "assignment (:=)", ast.Await: "await", ast.Slice: "slices"}


class EquationError(Exception):
    """A mistake in one equation; ``column`` is 1-based (None: the whole equation)."""

    def __init__(self, message, column=None):
        super().__init__(message)
        self.message, self.column = message, column


@dataclass
class Reference:
    """One name read by an equation: ``h`` (plain), ``x[t]`` ("now") or ``h[t-1]`` ("previous")."""

    name: str
    when: str  # "plain" | "now" | "previous"
    column: int


@dataclass
class Equation:
    """A parsed, whitelisted equation ``name = text``."""

    name: str
    text: str
    tree: ast.expr
    references: list = field(default_factory=list)  # [Reference] in reading order
    uses_step: bool = False  # reads t


def normalize(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def check_name(name: str, step_index: bool = True) -> str | None:
    """Why ``name`` cannot name a node (None if it can); ``t`` is taken only where there is a step
    index (``step_index``: the problem has a [recurrence]), else it may name a target, as in the lecture."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return "is not a valid name (letters, digits and _, not starting with a digit)"
    if name.startswith("_"):
        return "may not start with an underscore"
    if name in FUNCTIONS:
        return f"is the name of a function ({name}(…))"
    if name == STEP and step_index:
        return "is reserved for the step index t"
    return None


def _precheck(text):
    if len(text) > MAX_LENGTH:
        raise EquationError(f"the equation is {len(text):,} characters long; at most {MAX_LENGTH:,} are allowed")
    depth = 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise EquationError(f"brackets nested more than {MAX_NESTING} deep", i + 1)
        elif c in ")]}":
            depth -= 1
    if "\n" in text or "\r" in text:
        raise EquationError("an equation is one line")


def _tree_size(tree):
    """(depth, node count) of the tree, iteratively (a deep tree must not recurse)."""
    stack, deepest, count = [(tree, 1)], 0, 0
    while stack:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH or count > MAX_NODES:
            return deepest, count
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(node)]
    return deepest, count


def parse_equation(name: str, text: str, recurrent: bool = False, step_index: bool = True) -> Equation:
    """Parse and whitelist ``text``; raises :class:`EquationError` with a column. ``step_index``
    False (a problem without a [recurrence]): ``t`` is an ordinary name."""
    if not isinstance(text, str):
        raise EquationError("expected the equation as a string, e.g. \"h1 * w31 + b3\"")
    text = normalize(text)
    _precheck(text)
    if not text.strip():
        raise EquationError("the equation is empty")
    try:
        module = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = exc.offset + (len(text) - len(text.lstrip())) if exc.offset else None
        raise EquationError(f"syntax error: {exc.msg}", column) from None
    except (RecursionError, MemoryError, ValueError):
        raise EquationError("the expression is too large or too deeply nested") from None
    depth, count = _tree_size(module)
    if depth > MAX_DEPTH or count > MAX_NODES:
        raise EquationError(f"the expression is too large (more than {MAX_DEPTH} levels or {MAX_NODES} parts)")
    offset = len(text) - len(text.lstrip())
    equation = Equation(name, text.strip(), module.body)
    _Checker(equation, recurrent, offset, step_index or recurrent).check(module.body, condition=False)
    return equation


class _Checker:
    def __init__(self, equation, recurrent, offset, step_index=True):
        self.equation, self.recurrent, self.offset = equation, recurrent, offset
        self.step_index = step_index

    def fail(self, node, message):
        raise EquationError(message, getattr(node, "col_offset", -1) + 1 + self.offset)

    def check(self, node, condition):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self.fail(node, f"{type(node.value).__name__} constants are not allowed, only numbers")
            try:
                value = float(node.value)
            except OverflowError:
                self.fail(node, "the number is too large")
            if not math.isfinite(value):
                self.fail(node, "the number is not finite")
        elif isinstance(node, ast.Name):
            if node.id == STEP and self.step_index:
                if not self.recurrent:
                    self.fail(node, "the step index t exists only in [recurrence]")
                self.equation.uses_step = True
            elif node.id in FUNCTIONS:
                self.fail(node, f"{node.id} is a function: call it as {node.id}(…)")
            else:
                if node.id.startswith("_"):
                    self.fail(node, f"unknown name {node.id!r}")
                self.equation.references.append(Reference(node.id, "plain", node.col_offset + 1 + self.offset))
        elif isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                self.fail(node, f"the operator {type(node.op).__name__} is not allowed (use + - * / ** @)")
            if op == "%" and not condition:
                self.fail(node, "% is allowed only in the condition of where(…), e.g. where(t % 2 == 0, a, b)")
            self.check(node.left, condition)
            self.check(node.right, condition)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                self.fail(node, f"the operator {type(node.op).__name__} is not allowed")
            self.check(node.operand, condition)
        elif isinstance(node, ast.Compare):
            if not condition:
                self.fail(node, "comparisons are allowed only in the condition of where(…)")
            if not all(isinstance(op, _COMPARE) for op in node.ops):
                self.fail(node, "only < <= > >= == != compare")
            self.check(node.left, condition)
            for item in node.comparators:
                self.check(item, condition)
        elif isinstance(node, ast.Call):
            self.check_call(node, condition)
        elif isinstance(node, ast.Subscript):
            self.check_subscript(node)
        else:
            what = _DESCRIBE.get(type(node), type(node).__name__)
            self.fail(node, f"{what} is not allowed in an equation")

    def check_call(self, node, condition):
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                self.fail(node.func, "attribute access is not allowed in an equation")
            self.fail(node, "only the listed functions can be called")
        name = node.func.id
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            self.fail(node, f"unknown function {name!r} (known: {known})")
        if node.keywords:
            self.fail(node.keywords[0].value, f"{name}(…) takes no keyword arguments")
        low, high = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} or {high}"
            self.fail(node, f"{name}(…) takes {count} argument{'s' if high > 1 else ''}, got {len(node.args)}")
        for i, arg in enumerate(node.args):
            self.check(arg, condition or (name == "where" and i == 0))

    def check_subscript(self, node):
        if not self.recurrent:
            self.fail(node, "subscripts like x[t] and h[t-1] exist only in [recurrence]")
        if not isinstance(node.value, ast.Name) or node.value.id.startswith("_") or node.value.id == STEP:
            self.fail(node, "only a name can be subscripted: x[t] or h[t-1]")
        index = node.slice
        if isinstance(index, ast.Name) and index.id == STEP:
            when = "now"
        elif (isinstance(index, ast.BinOp) and isinstance(index.op, ast.Sub) and isinstance(index.left, ast.Name)
              and index.left.id == STEP and isinstance(index.right, ast.Constant) and index.right.value == 1
              and not isinstance(index.right.value, bool)):
            when = "previous"
        else:
            self.fail(node, "the subscript must be [t] (a data sequence at step t) or [t-1] (the previous step)")
        self.equation.references.append(Reference(node.value.id, when, node.col_offset + 1 + self.offset))

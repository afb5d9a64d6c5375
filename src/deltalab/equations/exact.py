"""Exact mode (``deltalab solve --exact``): the same graph evaluated with SymPy.

Inputs become exact rationals (``sympy.Rational(str(0.1)) = 1/10``), functions stay exact
(``tanh(1/2)``), and a string in ``[data]`` / ``[initial]`` is an unknown symbol. Gradients
are formed by the same backward accumulation as the numeric chain rule, δ(m) = Σ (∂n/∂m)ᵀ δ(n),
with each local derivative taken by SymPy on that one equation; so with unknown labels a
gradient is an expression in them (Elman ReLU cell: ∂L/∂w_hh = 4 − 4·y2).

Expressions are printed the way the lecture writes them: decimals for rationals with a finite
decimal expansion, ``·`` for products, ``0.3·tanh(0.3·tanh(0.5) + 1.1) + 0.1``.
``relu`` is exact with derivative ``step`` (step(0) = 0, as the engine's ReLU).
SymPy is imported only here, only in this mode.
"""
from __future__ import annotations

import ast
import math

import numpy as np

from ..errors import SpecError
from ..trace import Check, ExactValue
from .evaluate import evaluate, evaluate_graph
from .parser import EquationError

MAX_VALUES = 3000  # entries over all nodes: exact mode is for exercises, not for big nets
MAX_EXPONENT = 1000
MAX_EXPRESSION_PARTS = 20_000  # parts of one exact value written out (a long rational counts per 64 bits)
MAX_MATMUL_PRODUCTS = 30_000  # exact multiplications of one @
MAX_JACOBIAN_ENTRIES = 20_000  # local derivatives SymPy takes over the whole graph
MAX_FUNCTION_NESTING = 5  # tanh(w·tanh(w·tanh(…))) levels: SymPy's sign tests cost ~2^depth
MAX_EXPANDED_TERMS = 2_000  # a gradient with symbols is expanded only if it stays this short


def _sympy():
    try:
        import sympy
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError("--exact needs SymPy: pip install 'deltalab[exact]' (or pip install sympy)") from None
    return sympy


_FUNCTIONS = None


def functions():
    """relu, step and sigmoid as SymPy functions (built once, on first use)."""
    global _FUNCTIONS
    if _FUNCTIONS is not None:
        return _FUNCTIONS
    sp = _sympy()

    class step(sp.Function):  # noqa: N801 - printed name
        """1 for x > 0, else 0 (the engine's ReLU derivative)."""

        @classmethod
        def eval(cls, x):
            if x.is_number and x.is_real is not False:
                try:
                    return sp.Integer(1) if bool(x > 0) else sp.Integer(0)
                except TypeError:
                    return None
            return None

    class relu(sp.Function):  # noqa: N801
        @classmethod
        def eval(cls, x):
            if x.is_number:
                try:
                    return x if bool(x > 0) else sp.Integer(0)
                except TypeError:
                    return None
            return None

        def fdiff(self, argindex=1):
            return step(self.args[0])

    class sigmoid(sp.Function):  # noqa: N801
        @classmethod
        def eval(cls, x):
            if x == 0:
                return sp.Rational(1, 2)
            return None

        def fdiff(self, argindex=1):
            return self * (1 - self)

        def _eval_evalf(self, prec):
            return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

        def _eval_rewrite_as_exp(self, x, **kwargs):
            return 1 / (1 + sp.exp(-x))

    _FUNCTIONS = {"relu": relu, "step": step, "sigmoid": sigmoid}
    return _FUNCTIONS


def _object(value):
    array = np.empty(np.shape(value), dtype=object)
    if array.ndim == 0:
        array[()] = value if not isinstance(value, np.ndarray) else value[()]
    else:
        array[...] = value
    return array


def exact_number(x):
    """A TOML number or symbol name as an exact SymPy value: 0.1 → 1/10, "y2" → Symbol('y2')."""
    sp = _sympy()
    if isinstance(x, str):
        return sp.Symbol(x, real=True)
    if float(x).is_integer():
        return sp.Integer(int(x))
    return sp.Rational(repr(float(x)))


class ExactBackend:
    """Values are object arrays of SymPy expressions (0-d for one number)."""

    def __init__(self):
        self.sp = _sympy()
        self.f = functions()
        self.depths = {}  # expression -> functions nested in it
        self.sizes = {}  # expression -> parts, shared by every value of the pass (each new op costs its own args)

    def leaf(self, node, value, requires_grad):
        array = np.asarray(value, dtype=object)
        return _object(np.vectorize(exact_number, otypes=[object])(array)) if array.size else _object(array)

    def const(self, number):
        return _object(exact_number(number))

    def _wrap(self, value):
        value = _object(value)
        for entry in value.reshape(-1):
            check_size(entry, self.sizes)
        return value

    def binary(self, op, a, b):
        if op is ast.MatMult:
            if a.ndim == 0 or b.ndim == 0:
                raise ValueError(f"@ needs vectors or matrices, got shapes {a.shape} and {b.shape} (use * for scalars)")
            products = math.prod(a.shape) * (b.shape[-1] if b.ndim > 1 else 1)
            if products > MAX_MATMUL_PRODUCTS:
                raise ValueError(f"@ of shapes {a.shape} and {b.shape} needs {products:,} exact products; the largest "
                                 f"is {MAX_MATMUL_PRODUCTS:,} (solve without --exact)")
            return self._wrap(np.matmul(a, b))
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"shapes {a.shape} and {b.shape} cannot be broadcast together") from None
        if math.prod(shape) > MAX_VALUES:
            raise ValueError(f"the result would have shape {shape}, {math.prod(shape):,} exact values; the largest "
                             f"is {MAX_VALUES:,} (solve without --exact)")
        if op is ast.Pow:
            for e in b.reshape(-1):
                if e.is_number and abs(e) > MAX_EXPONENT:
                    raise ValueError(f"exponent {e} is too large for exact arithmetic (at most {MAX_EXPONENT})")
        result = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
                  ast.Pow: np.power}[op](a, b)
        return self._wrap(result)

    def neg(self, a):
        return self._wrap(-a)

    def number(self, value):
        try:
            return np.vectorize(lambda e: float(e), otypes=[np.float64])(value)
        except TypeError:
            raise EquationError("a condition (where/max) depends on an unknown symbol") from None

    def where(self, mask, a, b):
        return self._wrap(np.where(mask, a, b))

    def total(self, values):
        out = values[0]
        for v in values[1:]:
            out = self._wrap(out + v)
        return out

    def _map(self, function, x):
        for entry in x.reshape(-1):
            depth = nesting(entry, self.depths)
            if depth >= MAX_FUNCTION_NESTING:
                raise ValueError(f"functions nested {depth + 1} deep in exact arithmetic; the largest is "
                                 f"{MAX_FUNCTION_NESTING} (SymPy's sign tests grow exponentially with the depth; "
                                 "solve without --exact)")
        return self._wrap(np.vectorize(function, otypes=[object])(x)) if x.ndim else self._wrap(function(x[()]))

    def _sum(self, x):
        return self._wrap(self.sp.Add(*x.reshape(-1)) if x.size else self.sp.Integer(0))

    def call(self, name, args):
        sp, x = self.sp, args[0]
        if name in ("relu", "sigmoid"):
            return self._map(self.f[name], x)
        if name in ("tanh", "exp", "log"):
            return self._map(getattr(sp, name), x)
        if name == "softmax":
            if x.ndim == 0:
                raise ValueError("softmax needs a vector, got a single number")
            e = self._map(sp.exp, x)
            return self._wrap(e / np.sum(e, axis=-1, keepdims=True))
        if name == "sum":
            return self._sum(x)
        if name == "mean":
            return self._wrap(self._sum(x)[()] / max(x.size, 1))
        if name == "transpose":
            return self._wrap(x.T)
        if name == "max":
            if len(args) == 1:
                return self._wrap(sp.Max(*x.reshape(-1)))
            mask = self.number(x) >= self.number(args[1])
            return self._wrap(np.where(mask, x, args[1]))
        y, t = x, args[1]
        if y.shape != t.shape:
            raise ValueError(f"{name}: prediction of shape {y.shape} and target of shape {t.shape} differ")
        if name == "half_squared_error":
            return self._wrap(self._sum((y - t) ** 2)[()] / 2)
        if name == "squared_error":
            return self._sum((y - t) ** 2)
        if name == "mse":
            return self._wrap(self._sum((y - t) ** 2)[()] / max(y.size, 1))
        if name == "cross_entropy":
            if y.ndim == 0:
                raise ValueError("cross_entropy needs a vector of logits")
            log_z = self._map(sp.log, np.sum(self._map(sp.exp, y), axis=-1, keepdims=True))
            per_row = -np.sum(t * (y - log_z), axis=-1)
            rows = np.size(per_row)
            return self._wrap(self._sum(_object(per_row))[()] / rows)
        # binary_cross_entropy (mean over entries, like the engine)
        terms = -(t * self._map(sp.log, y) + (1 - t) * self._map(sp.log, self._wrap(1 - y)))
        return self._wrap(self._sum(_object(terms))[()] / max(y.size, 1))


# ---------------------------------------------------------------- printing
def _decimal(rational):
    """'0.3' for 3/10, None when the expansion does not end (or is long)."""
    q = int(rational.q)
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1 or max(twos, fives) > 12:
        return None
    digits = max(twos, fives)
    text = f"{int(rational.p) * 10 ** digits // int(rational.q)}"
    negative = text.startswith("-")
    text = text.lstrip("-").rjust(digits + 1, "0")
    text = (text[:-digits] + "." + text[-digits:]) if digits else text
    return ("-" if negative else "") + text


def lecture(expr) -> str:
    """An expression as the lecture writes it: ``0.3·tanh(0.3·tanh(0.5) + 1.1) + 0.1``, ``4 − 4·y2``."""
    sp = _sympy()
    from sympy.printing.precedence import PRECEDENCE
    from sympy.printing.str import StrPrinter

    class Printer(StrPrinter):
        def _print_Rational(self, r):
            text = _decimal(r)
            return text if text is not None else super()._print_Rational(r)

        def _print_Mul(self, m):
            coefficient, rest = m.as_coeff_Mul()
            if coefficient.is_Rational and not coefficient.is_Integer and _decimal(coefficient) is not None \
                    and rest != 1:
                body = self.parenthesize(rest, PRECEDENCE["Mul"])
                return f"{self._print(coefficient)}*{body}"
            return super()._print_Mul(m)

    if isinstance(expr, np.ndarray):
        if expr.ndim == 0:
            return lecture(expr[()])
        return "[" + ", ".join(lecture(e) for e in expr) + "]"
    expr = sp.sympify(expr)
    size = tree_size(expr)
    if size > PRINT_LIMIT:
        return f"(an exact expression of {size:,} parts, too long to print)"
    text = Printer({"order": "none"}).doprint(sp.sympify(expr))
    return text.replace("**", "^").replace("*", "·").replace("-", "−")


def plain(expr) -> str:
    sp = _sympy()
    if isinstance(expr, np.ndarray):
        if expr.ndim == 0:
            return plain(expr[()])
        return "[" + ", ".join(plain(e) for e in expr) + "]"
    expr = sp.sympify(expr)
    if tree_size(expr) > 5 * PRINT_LIMIT:
        return ""
    return sp.sstr(expr, order="none")


PRINT_LIMIT = 400  # parts of an expression tree printed; longer ones are summarised


def check_size(expr, sizes):
    """Refuse an exact value whose written-out tree has more than :data:`MAX_EXPRESSION_PARTS`
    parts (a rational counts one part per 64 bits of its numerator and denominator).

    ``sizes`` caches every subexpression seen, so checking each new result costs only its own
    arguments: h = h·h + h repeated doubles the tree while the check stays linear."""

    def parts(node, inner):
        own = 1
        if getattr(node, "is_Rational", False):
            own += (abs(int(node.p)).bit_length() + int(node.q).bit_length()) // 64
        return own + sum(inner)

    size = fold_tree(expr, sizes, parts)
    if size > MAX_EXPRESSION_PARTS:
        raise ValueError(f"an exact value grew to {_parts(size)} parts; the largest exact-mode expression has "
                         f"{MAX_EXPRESSION_PARTS:,} (solve without --exact for the numbers)")
    return size


def nesting(expr, depths):
    """How deeply function applications (tanh, exp, log, sigmoid, relu, …) nest in ``expr``."""
    return fold_tree(expr, depths,
                     lambda node, inner: max(inner, default=0) + (1 if getattr(node, "is_Function", False) else 0))


def fold_tree(expr, memo, combine):
    """``combine(node, [results of its args])`` bottom up over a SymPy tree, without recursion
    (trees nest deeper than Python's stack) and once per distinct subexpression: ``memo`` keeps
    every result, shared between calls."""
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in memo:
            continue
        args = getattr(node, "args", ())
        if ready or not args:
            memo[node] = combine(node, [memo[a] for a in args])
            continue
        stack.append((node, True))
        stack += [(a, False) for a in args if a not in memo]
    return memo[expr]


def _parts(size):
    return f"{size:,}" if size < 10**12 else f"about 10^{len(str(size)) - 1}"


def expanded_terms(expr, limit=MAX_EXPANDED_TERMS):
    """How many terms ``sympy.expand(expr)`` would write (at most a little over ``limit``),
    estimated from the tree without expanding: a sum adds, a product multiplies, (a + b)^n has
    C(k + n − 1, n) terms for a sum of k terms."""
    cache = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in cache:
            continue
        args = node.args
        if not args or not (node.is_Add or node.is_Mul or node.is_Pow):
            cache[node] = 1
            continue
        if not ready:
            stack.append((node, True))
            stack += [(a, False) for a in args if a not in cache]
            continue
        if node.is_Add:
            cache[node] = min(sum(cache[a] for a in args), limit + 1)
        elif node.is_Mul:
            product = 1
            for a in args:
                product = min(product * cache[a], limit + 1)
            cache[node] = product
        else:
            base, exponent = args
            k = cache[base]
            if exponent.is_Integer and exponent > 0 and k > 1:
                n = min(int(exponent), limit + 1)
                cache[node] = min(math.comb(k + n - 1, n), limit + 1)
            else:
                cache[node] = k
    return cache[expr]


def tree_size(expr, cache=None) -> int:
    """Parts of the expression written out as a tree (shared subexpressions counted each time)."""
    cache = {} if cache is None else cache
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in cache:
            continue
        args = getattr(node, "args", ())
        if ready or not args:
            cache[node] = 1 + sum(cache[a] for a in args)
            continue
        stack.append((node, True))
        stack += [(a, False) for a in args if a not in cache]
    return cache[expr]


def _value(expr, cache):
    """mpmath value at 40 digits, each shared subexpression once (SymPy's evalf walks the tree)."""
    import mpmath

    sp = _sympy()
    f = functions()
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in cache:
            continue
        args = node.args
        if node.is_Number:
            cache[node] = mpmath.mpf(node.p) / node.q if node.is_Rational else mpmath.mpf(str(node.evalf(45)))
            continue
        if node.is_Symbol:
            raise ValueError(f"free symbol {node}")
        if node in (sp.pi, sp.E):
            cache[node] = mpmath.mpf(str(node.evalf(45)))
            continue
        if not ready:
            stack.append((node, True))
            stack += [(a, False) for a in args if a not in cache]
            continue
        v = [cache[a] for a in args]
        if node.is_Add:
            cache[node] = mpmath.fsum(v)
        elif node.is_Mul:
            out = mpmath.mpf(1)
            for x in v:
                out *= x
            cache[node] = out
        elif node.is_Pow:
            cache[node] = mpmath.power(v[0], v[1])
        elif node.func == sp.exp:
            cache[node] = mpmath.exp(v[0])
        elif node.func == sp.log:
            cache[node] = mpmath.log(v[0])
        elif node.func == sp.tanh:
            cache[node] = mpmath.tanh(v[0])
        elif node.func == f["sigmoid"]:
            cache[node] = 1 / (1 + mpmath.exp(-v[0]))
        elif node.func == f["relu"]:
            cache[node] = v[0] if v[0] > 0 else mpmath.mpf(0)
        elif node.func == f["step"]:
            cache[node] = mpmath.mpf(1) if v[0] > 0 else mpmath.mpf(0)
        elif node.func == sp.Max:
            cache[node] = max(v)
        else:
            cache[node] = mpmath.mpf(str(sp.N(node, 45)))
    return cache[expr]


def decimal(expr):
    """The float64 value of an exact array (None while free symbols remain)."""
    import mpmath

    sp = _sympy()
    flat = [sp.sympify(e) for e in np.asarray(expr, dtype=object).reshape(-1)]
    if any(e.free_symbols for e in flat):
        return None
    cache = {}
    with mpmath.workdps(40):
        out = [float(_value(e, cache)) for e in flat]
    return np.array(out, dtype=np.float64).reshape(np.shape(expr))


# ---------------------------------------------------------------- the graph, exactly
def _symbols_like(key, value):
    sp = _sympy()
    array = np.empty(np.shape(value), dtype=object)
    if array.ndim == 0:
        array[()] = sp.Symbol(key, real=True)
    else:
        for index in np.ndindex(array.shape):
            array[index] = sp.Symbol(f"{key}[{','.join(map(str, index))}]", real=True)
    return array


def _local_output(graph, node, inputs, values, backend):
    if node.kind == "total":
        return backend.total([inputs[k] for k in node.operands])
    return evaluate(node, inputs, backend, condition_values=values)


def _exact_error(message, where="exact mode"):
    error = EquationError(message)
    error.where = where
    return error


def exact_pass(graph, parameters=None):
    """(values, deltas, local expressions) of the graph in exact arithmetic."""
    sp = _sympy()
    backend = ExactBackend()
    size = sum(int(np.size(n.value)) for n in graph.nodes.values() if n.value is not None)
    values = evaluate_graph(graph, "shapes", parameters=parameters, backend=backend)
    size += sum(int(np.size(v)) for v in values.values())
    if size > MAX_VALUES:
        raise _exact_error(f"the graph has {size:,} values; exact mode is for small exercises (the largest is "
                           f"{MAX_VALUES:,})")
    entries = sum(int(np.size(values[key])) * sum(int(np.size(values[k])) for k in targets)
                  for key, node, targets in graph.backward_order())
    if entries > MAX_JACOBIAN_ENTRIES:
        raise _exact_error(f"the local derivatives have {entries:,} entries; exact mode takes at most "
                           f"{MAX_JACOBIAN_ENTRIES:,} (solve without --exact)")
    deltas = {}
    if graph.loss is not None:
        deltas[graph.loss] = _object(np.full(np.shape(values[graph.loss]), sp.Integer(1), dtype=object))
    local = {}
    for key, node, targets in graph.backward_order():
        # every operand a symbol: the local derivative as an expression in the equation's names
        symbols = {k: _symbols_like(k, values[k]) for k in node.operands}
        inputs = dict(values)
        inputs.update(symbols)
        out = _local_output(graph, node, inputs, values, backend)
        substitution = {s: v for k in node.operands for s, v in zip(symbols[k].reshape(-1), values[k].reshape(-1))}
        outputs = [sp.sympify(o) for o in out.reshape(-1)]
        for k in targets:
            # the local Jacobian: differentiate the small symbolic equation, then put the values in
            jacobian = [[sp.diff(o, s).xreplace(substitution) for s in symbols[k].reshape(-1)] for o in outputs]
            if len(outputs) == 1 and symbols[k].size == 1:
                derivative = sp.diff(outputs[0], symbols[k].reshape(-1)[0])
                local[(key, k)] = (derivative, jacobian[0][0])
            if key not in deltas:
                continue
            incoming = deltas[key].reshape(-1)
            share = [sp.Add(*[incoming[i] * jacobian[i][j] for i in range(len(outputs)) if jacobian[i][j] != 0])
                     for j in range(symbols[k].size)]
            share = _object(np.array(share, dtype=object).reshape(np.shape(values[k])))
            deltas[k] = share if k not in deltas else _object(deltas[k] + share)
            try:
                for entry in deltas[k].reshape(-1):
                    check_size(sp.sympify(entry), backend.sizes)
            except ValueError as exc:
                where = graph.nodes[k].where() if graph.nodes[k].kind in ("equation", "total") else f"parameters.{k}"
                raise _exact_error(f"{exc} (in the gradient with respect to {k})", where) from None
    return values, deltas, local


def exact_entries(graph, values, deltas, local, symbol):
    entries = []
    for key, node in graph.nodes.items():
        if node.kind in ("equation", "total"):
            entries.append(ExactValue(key, lecture(values[key]), plain(values[key]), decimal(values[key]), "value"))
    order = {key: i for i, key in enumerate(graph.nodes)}
    for (out, inp), (expression, value) in sorted(local.items(), key=lambda item: (order[item[0][0]],
                                                                                    order[item[0][1]])):
        text = lecture(expression)
        exact = lecture(value)
        entries.append(ExactValue(f"∂{out}/∂{inp}", text if text == exact else f"{text} = {exact}", plain(expression),
                                  decimal(_object(value)), "local"))
    for name in graph.parameters:
        if name in deltas:
            gradient = simplified(deltas[name])
            entries.append(ExactValue(f"∂{symbol}/∂{name}", lecture(gradient), plain(gradient), decimal(gradient),
                                      "gradient"))
    return entries


def simplified(array):
    sp = _sympy()
    out = np.empty(np.shape(array), dtype=object)
    for index, e in zip(np.ndindex(out.shape), np.asarray(array, dtype=object).reshape(-1)):
        e = sp.sympify(e)
        # expanded only while that stays short: (a + b)^40 is kept as it is, not written as 41 terms of 40 digits
        out[index] = sp.expand(e) if e.free_symbols and expanded_terms(e) <= MAX_EXPANDED_TERMS else e
    return _object(out)


def annotate(trace, problem, graph, parameters, tolerance):
    """Add the exact values of step 1 to a numeric trace and check them against it."""
    symbol = problem.equations.loss or "E"
    try:
        values, deltas, local = exact_pass(graph, parameters)
    except EquationError as exc:
        raise SpecError(f"{problem.path}: {getattr(exc, 'where', 'equations')}: {exc.message}") from None
    step = trace.steps[0]
    step.exact = exact_entries(graph, values, deltas, local, symbol)
    for edge in step.local_derivatives:
        if (edge.output, edge.input) in local:
            edge.expression = lecture(local[(edge.output, edge.input)][0])
    trace.checks.append(compare(step, graph, values, deltas, numeric_values(step), tolerance))
    return trace


def numeric_values(step):
    out = {v.key: v.array for v in step.forward + step.outputs}
    out.update(step.errors)
    if step.loss is not None:
        out["__loss__"] = step.loss
    return out


def close_error(exact, numeric):
    """max|exact − numeric| relative to the larger magnitude, absolute below 1 (so a gradient that
    is exactly 0 and 1e-18 in float64 agree)."""
    exact, numeric = np.asarray(exact, dtype=float), np.asarray(numeric, dtype=float)
    scale = max(1.0, np.max(np.abs(exact), initial=0.0), np.max(np.abs(numeric), initial=0.0))
    return float(np.max(np.abs(exact - numeric), initial=0.0) / scale)


def compare(step, graph, values, deltas, numeric, tolerance, names=None):
    """Check: exact decimals against the numeric solve (values and gradients), see close_error."""
    per = {}
    worst_value = 0.0
    for key in graph.nodes:
        if key in numeric and key in values:
            exact = decimal(values[key])
            if exact is not None:
                worst_value = max(worst_value, close_error(exact, numeric[key]))
    if graph.loss in values and step.loss is not None:
        worst_value = max(worst_value, close_error(decimal(values[graph.loss]), step.loss))
    for name in graph.parameters:
        target = (names or {}).get(name, name)
        if name in deltas and target in step.gradients:
            per[target] = close_error(decimal(deltas[name]), step.gradients[target])
    per["forward values"] = worst_value
    return Check("SymPy exact arithmetic", max(per.values(), default=0.0), per, tolerance)

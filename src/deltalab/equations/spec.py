"""Reading the tables of an ``equations`` problem file into an :class:`EquationProblem`.

Checks every name (unknown, cycle, use before definition, did-you-mean) with one message
naming the table, the equation and the column; shapes are checked by a dry run of the
forward pass (:func:`deltalab.equations.graph.dry_run`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import limits
from .parser import EquationError, check_name, normalize, parse_equation

TOP_KEYS = ("title", "description", "model", "equations", "recurrence", "initial", "parameters", "data",
            "training", "check")  # check: points per quantity (deltalab check)
MODEL_KEYS = ("type", "loss", "loss_steps", "time_steps", "outputs")
TRAINING_KEYS = ("learning_rate", "steps")


@dataclass
class EquationProblem:
    equations: list  # [Equation] of [equations], in order
    recurrence: list  # [Equation] of [recurrence], in order (empty: feed-forward)
    parameters: dict  # name -> float64 array (trainable leaves)
    data: dict  # name -> float64 array, or object array holding symbol names (str)
    initial: dict  # recurrence name -> array (value at t = 0)
    loss: str | None  # the loss node's name (None: forward pass only)
    loss_steps: object = "all"  # a recurrent loss: "all" (Σ_t), "last", or a tuple of steps
    time_steps: int = 0
    outputs: list | None = None
    sequences: set = field(default_factory=set)  # data read as x[t]

    @property
    def symbols(self) -> list:
        """Names of the unknowns (string entries of [data] / [initial])."""
        names = []
        for table in (self.data, self.initial):
            for array in table.values():
                if array.dtype == object:
                    names += [v for v in array.reshape(-1) if isinstance(v, str) and v not in names]
        return names


def _array(r, value, where):
    """A number, a symbol name, or a rectangular (nested) list of them."""
    def flat(item, depth):
        if isinstance(item, list):
            if depth > 8:
                r.fail(where, "nested too deeply")
            return [flat(i, depth + 1) for i in item]
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            r.fail(where, "expected numbers (or symbol names as strings)")
        if isinstance(item, str):
            if not item.isidentifier() or item.startswith("_"):
                r.fail(where, f"{item!r} is not a number or a symbol name")
            return item
        value = float(item)
        if not np.isfinite(value):
            r.fail(where, "contains a non-finite number (nan or inf)")
        return value

    data = flat(value, 0)
    try:
        array = np.array(data, dtype=object)
    except ValueError:
        array = None
    if array is None or any(isinstance(v, list) for v in array.reshape(-1)):
        r.fail(where, "expected a rectangular list (rows of equal length)")
    if array.size and all(isinstance(v, float) for v in array.reshape(-1)):
        return array.astype(np.float64)
    if array.size == 0:
        r.fail(where, "is empty")
    return array


def _names(r, table, where, step_index=True):
    out, keys = {}, {}
    for key, value in table.items():
        name = normalize(key)
        problem = check_name(name, step_index)
        if problem:
            r.fail(f"{where}.{key}", f"the name {key!r} {problem}")
        if name in out:  # 'w' and full-width 'ｗ' are one identifier: never merge them silently
            r.fail(f"{where}.{key}", f"{key!r} and {keys[name]!r} are the same name {name!r} after Unicode "
                                     "normalisation (NFKC); use one of them")
        keys[name] = key
        out[name] = _array(r, value, f"{where}.{key}")
    return out


def read(data, r, path):
    """Validate the tables of an equations problem; returns (EquationProblem, learning_rate, steps)."""
    from .graph import dry_run

    r.check_keys(data, TOP_KEYS, "")
    model = data["model"]
    r.check_keys(model, MODEL_KEYS, "model")
    equations_table = r.table(data, "equations", "equations", required=False)
    recurrence_table = r.table(data, "recurrence", "recurrence", required=False)
    if not equations_table and not recurrence_table:
        r.fail("equations", "missing: give the model as [equations] (and/or [recurrence])")
    step_index = bool(recurrence_table)  # t is the step index only where there is a recurrence
    parameters = _names(r, r.table(data, "parameters", "parameters", required=False), "parameters", step_index)
    for name, value in parameters.items():
        if value.dtype == object:
            r.fail(f"parameters.{name}", "a parameter needs numbers (symbols are for [data])")
    values = _names(r, r.table(data, "data", "data", required=False), "data", step_index)
    initial = _names(r, r.table(data, "initial", "initial", required=False), "initial", step_index)
    seen = {}
    for table, names in (("parameters", parameters), ("data", values)):
        for name in names:
            if name in seen:
                r.fail(f"{table}.{name}", f"{name!r} is already defined in [{seen[name]}]")
            seen[name] = table
    parsed = {}
    for table, source, recurrent in (("recurrence", recurrence_table, True), ("equations", equations_table, False)):
        parsed[table] = []
        for key, text in source.items():
            name = normalize(key)
            problem = check_name(name, step_index)
            if problem:
                r.fail(f"{table}.{key}", f"the name {key!r} {problem}")
            if name in seen:
                r.fail(f"{table}.{key}", f"{name!r} is already defined in [{seen[name]}]")
            seen[name] = table
            try:
                parsed[table].append(parse_equation(name, text, recurrent, step_index))
            except EquationError as exc:
                r.fail(_where(table, name, exc.column), exc.message)
    equations, recurrence = parsed["equations"], parsed["recurrence"]
    recurrent_names = {e.name for e in recurrence}
    for name in initial:
        if name not in recurrent_names:
            r.fail(f"initial.{name}", "initial values are for [recurrence] nodes read as name[t-1]"
                   + (f"; {name!r} is not one" if recurrence else "; this problem has no [recurrence]"))
    sequences = _check_references(r, equations, recurrence, parameters, values, initial)
    problem = EquationProblem(equations, recurrence, parameters, values, initial, None, sequences=sequences)
    defined = [e.name for e in equations + recurrence]
    defined_names = set(defined)
    # the loss
    if "loss" in model:
        loss = model["loss"]
        if not isinstance(loss, str) or normalize(loss) not in defined_names:
            import difflib  # only for the message: a correct file never loads it

            close = [n for n in defined if n.lower() == str(loss).lower()] or \
                difflib.get_close_matches(str(loss), defined, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            r.fail("model.loss", f"expected the name of an equation (the loss node), got {loss!r}{hint}")
        problem.loss = normalize(loss)
    elif "loss" in defined_names:
        problem.loss = "loss"
    # time steps
    if recurrence:
        problem.time_steps = _time_steps(r, model, problem)
    elif "time_steps" in model:
        r.fail("model.time_steps", "only a problem with [recurrence] has time steps")
    if "loss_steps" in model:
        if problem.loss not in recurrent_names:
            r.fail("model.loss_steps", "only a loss defined in [recurrence] is summed over steps")
        problem.loss_steps = _loss_steps(r, model["loss_steps"], problem.time_steps)
    if "outputs" in model:
        outputs = model["outputs"]
        if not isinstance(outputs, list) or not all(isinstance(o, str) and normalize(o) in defined_names for o in outputs):
            r.fail("model.outputs", f"expected a list of equation names (from {', '.join(defined)})")
        problem.outputs = [normalize(o) for o in outputs]
    # without [training] (or its learning_rate) a question asks for the gradients only: no update
    training = r.table(data, "training", "training", required=False)
    r.check_keys(training, TRAINING_KEYS, "training")
    learning_rate = None
    if "learning_rate" in training:
        learning_rate = r.number(training, "learning_rate", "training.learning_rate", positive=True)
    steps = r.positive_int(training, "steps", "training.steps", default=1)
    if steps > 1 and problem.loss is not None and learning_rate is None:
        r.fail("training.steps", f"{steps} training steps need training.learning_rate "
                                 "(without it the gradients of one pass are worked out)")
    nodes = limits.graph_nodes(problem)
    if nodes > limits.MAX_GRAPH_NODES:
        where = "model.time_steps" if problem.time_steps > 1 and problem.recurrence else "equations"
        r.fail(where, f"the unrolled graph would have {nodes:,} nodes; the largest is {limits.MAX_GRAPH_NODES:,}")
    if steps > limits.MAX_STEPS:
        r.fail("training.steps", f"{steps:,} steps; the largest is {limits.MAX_STEPS:,}")
    if problem.loss is not None and steps * nodes > limits.MAX_STEP_WORK:
        r.fail("training.steps", f"{steps:,} steps of a graph of {nodes:,} nodes are too much work (each step "
                                 f"records the whole chain rule); the largest for this graph is "
                                 f"{max(1, limits.MAX_STEP_WORK // nodes):,}")
    try:
        dry_run(problem)
    except EquationError as exc:
        r.fail(exc.where, exc.message)
    return problem, learning_rate, steps


def _where(table, name, column):
    text = f"{table}.{name}"
    if column:
        text += f" (column {column})"
    return text


def _check_references(r, equations, recurrence, parameters, values, initial):
    leaves = set(parameters) | set(values)
    forward = [e.name for e in equations]
    rec = [e.name for e in recurrence]
    known = sorted(leaves | set(forward) | set(rec))
    by_name = {e.name: e for e in equations + recurrence}
    sequences = set()

    def unknown(table, equation, ref):
        import difflib  # only for the message: a correct file never loads it

        close = difflib.get_close_matches(ref.name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if ref.name == "t" and not recurrence:
            hint = " (define it in [data], e.g. as the target; it is the step index only in a [recurrence])"
        r.fail(_where(table, equation.name, ref.column), f"unknown name {ref.name!r}{hint}")

    def reaches(start, target, names):
        """Does equation ``start`` read ``target`` (directly or through later equations of ``names``)?"""
        stack, seen = [start], set()
        while stack:
            name = stack.pop()
            if name in seen or name not in names:
                continue
            seen.add(name)
            for ref in by_name[name].references:
                if ref.when == "previous":
                    continue
                if ref.name == target:
                    return True
                stack.append(ref.name)
        return False

    positions = {table: {name: i for i, name in enumerate(names)} for table, names in (("equations", forward),
                                                                                       ("recurrence", rec))}

    def order(table, equation, ref, names, position):
        later = positions[table][ref.name]
        if later == position:
            advice = " (write h[t-1] for the previous step)" if table == "recurrence" else ""
            r.fail(_where(table, equation.name, ref.column), f"cycle: {equation.name} reads itself{advice}")
        if later > position:
            if reaches(ref.name, equation.name, names):
                r.fail(_where(table, equation.name, ref.column),
                       f"cycle: {equation.name} reads {ref.name}, which reads {equation.name}")
            r.fail(_where(table, equation.name, ref.column),
                   f"{ref.name!r} is used before it is defined ([{table}] is evaluated in order; "
                   f"move {ref.name} above {equation.name})")

    for i, equation in enumerate(equations):
        for ref in equation.references:
            if ref.name in positions["recurrence"]:
                r.fail(_where("equations", equation.name, ref.column),
                       f"{ref.name!r} is a [recurrence] node (one value per step): compute "
                       f"{equation.name} in [recurrence] too")
            if ref.name in positions["equations"]:
                order("equations", equation, ref, forward, i)
            elif ref.name not in leaves:
                unknown("equations", equation, ref)
    for i, equation in enumerate(recurrence):
        for ref in equation.references:
            where = _where("recurrence", equation.name, ref.column)
            if ref.when == "previous":
                if ref.name not in positions["recurrence"]:
                    what = "a data sequence: read it as x[t]" if ref.name in values else "not a [recurrence] node"
                    if ref.name not in leaves and ref.name not in positions["equations"]:
                        unknown("recurrence", equation, ref)
                    r.fail(where, f"{ref.name}[t-1]: only [recurrence] nodes have a previous step; "
                                  f"{ref.name!r} is {what}")
                if ref.name not in initial:
                    r.fail(where, f"{ref.name}[t-1] at t = 1 needs the initial value {ref.name}(0): "
                                  f"add {ref.name} = … to [initial]")
                continue
            if ref.name in positions["recurrence"]:
                order("recurrence", equation, ref, rec, i)
            elif ref.when == "now":
                if ref.name not in values:
                    if ref.name not in leaves and ref.name not in positions["equations"]:
                        unknown("recurrence", equation, ref)
                    r.fail(where, f"{ref.name}[t]: only a [data] sequence is read at step t")
                if values[ref.name].ndim == 0:
                    r.fail(where, f"{ref.name}[t]: data.{ref.name} is one number, not a sequence (time first)")
                sequences.add(ref.name)
            elif ref.name not in leaves and ref.name not in positions["equations"]:
                unknown("recurrence", equation, ref)
    return sequences


def _time_steps(r, model, problem):
    lengths = {name: problem.data[name].shape[0] for name in sorted(problem.sequences)}
    if "time_steps" in model:
        steps = r.positive_int(model, "time_steps", "model.time_steps")
        if steps > limits.MAX_TIME_STEPS:
            r.fail("model.time_steps", f"{steps:,} steps; the largest is {limits.MAX_TIME_STEPS:,}")
        short = {n: k for n, k in lengths.items() if k < steps}
        if short:
            name, length = next(iter(short.items()))
            r.fail(f"data.{name}", f"the sequence has {length} steps, model.time_steps is {steps}")
        return steps
    if not lengths:
        r.fail("model.time_steps", "missing: no data sequence is read as x[t], so give the number of steps")
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{n}: {k}" for n, k in lengths.items())
        r.fail("data", f"the sequences read as x[t] differ in length ({listed}); give model.time_steps")
    steps = next(iter(lengths.values()))
    if steps > limits.MAX_TIME_STEPS:
        name = next(iter(lengths))
        r.fail(f"data.{name}", f"the sequence has {steps:,} steps; the largest is {limits.MAX_TIME_STEPS:,}")
    return steps


def _loss_steps(r, value, time_steps):
    if value in ("all", "last"):
        return value
    if (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and all(1 <= v <= time_steps for v in value) and len(set(value)) == len(value)):
        return tuple(value)
    r.fail("model.loss_steps", f'expected "all", "last" or a list of distinct steps 1..{time_steps}, got {value!r}')

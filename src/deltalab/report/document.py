"""A worked solution as a format-neutral document: headings, text, equations and equation chains.

Every format renders this one list of blocks, so the formats cannot drift apart in content.
A :class:`Chain` is ``lhs = row₁ = row₂ …``; a row is terms joined by operators, and a term is
either notation (plain text, ``δ[1](1) · x[1](0)ᵀ``) or a recorded array.
"""
from __future__ import annotations

import re
from dataclasses import field

import numpy as np

from ..records import dataclass
from .derived import substituted
from ._common import LARGE, delta_groups, general_formula, integral, number, parameter_names, time_groups, written

LOCAL_SHOWN = 80  # local derivatives written out per step (big graphs: the rest are counted)
JACOBIAN_SHOWN = 16  # entries of a tensor edge's Jacobian written out (larger: its shape only)
EXPRESSION_SHOWN = 600  # characters of an exact expression in text reports (all of it is in the JSON)


@dataclass
class Term:
    op: str  # "" for the first term of a row, else "+", "−", "·"
    content: object  # str (notation) or np.ndarray (a value)
    keep_decimals: bool = False  # a whole-number array beside decimal ones: written with decimals too
    marked: object = None  # booleans of the value's shape: entries to mark (each pooling window's winner)


@dataclass
class Chain:
    lhs: str
    rows: list  # [[Term]]


@dataclass
class Block:
    kind: str  # "title" | "heading" | "text" | "list" | "equations" | "chains" | "table"
    text: str = ""
    level: int = 2
    items: list = field(default_factory=list)  # lines, equations, [Chain] or table rows
    headers: list = field(default_factory=list)


_MATHS = [(re.compile(r"\*\*"), "^"), (re.compile(r"\s*@\s*"), " "), (re.compile(r"\s*%\s*"), " mod "),
          (re.compile(r"\s*==\s*"), " = "), (re.compile(r"\s*!=\s*"), " ≠ "), (re.compile(r"\s*<=\s*"), " ≤ "),
          (re.compile(r"\s*>=\s*"), " ≥ "), (re.compile(r"(?<=[\w)\]]) - (?=[\w(\[])"), " − ")]
_SUPERSCRIPT_DIGITS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def maths_notation(equation: str) -> str:
    """An equation as written in a problem file, in maths notation: ``(h - y)^2`` → ``(h − y)²``,
    ``W @ x`` → ``W x`` (a matrix product, as the lecture writes it), ``t % 2 == 0`` → ``t mod 2 = 0``."""
    for pattern, replacement in _MATHS:
        equation = pattern.sub(replacement, equation)
    return re.sub(r"\^([0-9]+)(?![0-9.])", lambda m: m.group(1).translate(_SUPERSCRIPT_DIGITS), equation)


def _with_identity_activations(equations) -> list:
    """``x[1] = z[1]`` after ``z[1] = …`` when a later equation reads x[1] that none defines (a
    layer without an activation function), so no symbol appears from nowhere."""
    defined = {e.partition("=")[0].strip() for e in equations if "=" in e}
    out = []
    for equation in equations:
        out.append(equation)
        lhs = equation.partition("=")[0].strip()
        match = re.fullmatch(r"z\[(\d+)\](\(t\))?", lhs)
        if not match:
            continue
        activation = f"x[{match.group(1)}]{match.group(2) or ''}"
        if activation not in defined and any(activation in e.partition("=")[2] for e in equations):
            out.append(f"{activation} = {lhs}  (no activation function)")
            defined.add(activation)
    return out


def loss_name(name: str) -> str:
    """``half_squared_error`` as words: half squared error."""
    return name.replace("_", " ") if re.fullmatch(r"[a-z]+(?:_[a-z]+)+", name) else name


def value_chain(label: str, array) -> Chain:
    return Chain(label, [[Term("", np.asarray(array, dtype=float))]])


def _lr(trace) -> str:
    return "—" if trace.learning_rate is None else f"{float(trace.learning_rate):g}"


def build(trace, decimals: int = 4) -> list:
    """The blocks of the worked solution of ``trace``, in reading order."""
    blocks = [Block("title", trace.title)]
    blocks.append(Block("heading", "Problem"))
    statement = getattr(trace, "statement", "")  # the problem file's description, set by the caller
    for paragraph in re.split(r"\n\s*\n", statement.strip()) if statement.strip() else []:
        blocks.append(Block("text", " ".join(paragraph.split())))
    if trace.description:
        blocks.append(Block("list", items=list(trace.description)))
    has_loss = any(step.loss is not None for step in trace.steps) or not trace.steps
    equations = _with_identity_activations(list(trace.equations))
    equations += [trace.loss_formula] if trace.loss_formula and has_loss else []
    if equations:
        blocks.append(Block("equations", "Equations", items=[maths_notation(e) for e in equations]))
    training = f" Learning rate: η = {_lr(trace)}." if trace.learning_rate is not None else ""
    if has_loss:  # without targets there is no loss to name
        blocks.append(Block("text", f"Loss function: {loss_name(trace.loss_name)}.{training}"))
    if trace.steps:
        first = trace.steps[0]
        blocks.append(Block("heading", "Parameters before", level=3))
        blocks.append(Block("chains", items=[value_chain(n, first.parameters_before[n])
                                             for n in first.parameters_before]))
    many = len(trace.steps) > 1
    for step in trace.steps:
        blocks += _step_blocks(trace, step, f"Step {step.index}: " if many else "", decimals, many)
    if trace.checks:
        blocks += _check_blocks(trace)
    for block in blocks:
        if block.kind == "chains":
            _tidy(block.items, decimals)
    return blocks


IMAGE_ENTRIES = 16  # a whole-number array with more entries (an image) keeps its integers in a list of values
_OPERATOR_END = ("·", "×", "*", "/", "⊙", "(", "=")


def _tidy(chains, decimals) -> None:
    """Signs and decimals as the lecture writes a sum: "+ -0.0018" becomes "− 0.0018",
    "0.5 · -0.0216" becomes "0.5 · (-0.0216)", and a whole-number array next to decimal ones
    (in one chain, or in one list of values) is written with the same decimals."""
    def arrays(chain):
        return [t for row in chain.rows for t in row if not isinstance(t.content, str)]

    def decimal(term):
        return not integral(np.asarray(term.content, dtype=float))

    listed = all(len(c.rows) == 1 and len(c.rows[0]) == 1 for c in chains)
    if listed and any(decimal(t) for c in chains for t in arrays(c)):
        for c in chains:
            for t in arrays(c):
                t.keep_decimals = t.keep_decimals or np.size(t.content) <= IMAGE_ENTRIES
    for chain in chains:
        terms = arrays(chain)
        if any(decimal(t) for t in terms):
            for t in terms:
                t.keep_decimals = True
        chain.rows = [_signed_row(row, decimals) for row in chain.rows]


def _signed_row(row, decimals) -> list:
    out = []
    for term in row:
        value = term.content
        negative = not isinstance(value, str) and np.ndim(value) == 0 and number(value, decimals).startswith("-")
        if not negative:
            out.append(term)
            continue
        value = np.asarray(value, dtype=float)
        previous = out[-1].content if out and isinstance(out[-1].content, str) and not term.op else None
        if term.op == "+":
            out.append(Term("−", -value, term.keep_decimals))
        elif term.op in ("−", "·"):
            out.append(Term(term.op, f"({number(value, decimals)})"))
        elif previous is not None and previous.rstrip().endswith(("+", "−")):
            stripped = previous.rstrip()
            flipped = "−" if stripped.endswith("+") else "+"
            out[-1] = Term(out[-1].op, stripped[:-1] + flipped + previous[len(stripped):], out[-1].keep_decimals)
            out.append(Term(term.op, -value, term.keep_decimals))
        elif previous is not None and previous.rstrip().endswith(_OPERATOR_END):
            out.append(Term(term.op, f"({number(value, decimals)})"))
        else:
            out.append(term)
    return out


def _step_blocks(trace, step, prefix, decimals, many) -> list:
    blocks = []
    if many and step.index != trace.steps[0].index:
        blocks.append(Block("heading", f"{prefix}Parameters before"))
        blocks.append(Block("chains", items=[value_chain(n, step.parameters_before[n])
                                             for n in step.parameters_before]))
    # Forward pass
    blocks.append(Block("heading", f"{prefix}Forward pass"))
    groups, loose = time_groups(step)
    derivation = getattr(step, "derivation", None)
    winners = _pooled_inputs(derivation)
    for group in groups:
        if group.step is not None:
            title = f"t = {group.step}" + (" (initial state)" if group.step == 0 else "")
            if group.sequence is not None:
                title = f"sequence {group.sequence}, {title}"
            blocks.append(Block("heading", title, level=3))
        chains, notes = [], []
        for v in group.forward + group.outputs + group.targets:
            chain = value_chain(v.key, v.array)
            if v.key in winners:  # the input of a max pooling: each window's winner marked
                chain.rows[-1][-1].marked = winners[v.key]
            chains.append(chain)
            node = None if derivation is None or v not in group.forward else derivation.by_key("forward", v.key)
            if node is not None and node.worked is not None:
                chains.append(worked_chain(node, decimals))
                notes.append(_worked_note(node))
            if node is not None and node.windows is not None:
                notes.append(_pooling_note(node, derivation))
        if group.error is not None:
            chains.append(value_chain(*group.error))
        if chains:
            blocks.append(Block("chains", items=chains))
        blocks += [Block("text", note) for note in notes]
    totals = [value_chain(name, value) for name, value in loose]
    symbol = loss_symbol(trace)
    last_only = None
    derivation = getattr(step, "derivation", None)
    batch = getattr(step, "sequences", None) is not None and derivation is not None
    if batch and step.loss is not None:  # E⁽ⁿ⁾ of each sequence, then E, each with its formula
        totals = [derived_chain(node, derivation) for node in derivation
                  if node.kind in ("error", "loss") and node.time_step is None]
    elif step.loss is not None:
        names = [name for name, _ in step.errors.items()]
        last_only = _last_step_loss(step, symbol)
        rows = [[Term("", " + ".join(names))]] if len(names) > 1 else [[Term("", last_only)]] if last_only else []
        rows.append([Term("", np.asarray(step.loss, dtype=float))])
        totals.append(Chain(symbol, rows))
    if totals:
        blocks.append(Block("heading", "Total error", level=3))
        blocks.append(Block("chains", items=totals))
    if last_only:
        earlier = [v.key for v in step.forward if v.key != last_only and re.fullmatch(rf"{re.escape(symbol)}\(\d+\)", v.key)]
        zeros = " = ".join(f"∂{symbol}/∂{k}" for k in earlier)
        blocks.append(Block("text", f"Only the last step's loss counts: {symbol} = {last_only}"
                                    + (f", so {zeros} = 0." if earlier else ".")))
    if getattr(step, "exact", None):
        blocks += _exact_blocks(step, prefix)
    if step.loss is None:
        if any(getattr(e, "kind", "") == "gradient" for e in getattr(step, "exact", [])):
            blocks.append(Block("text", "The loss holds unknown symbols: its gradients are the exact expressions above."))
        else:
            blocks.append(Block("text", "No targets: forward pass only."))
        return blocks
    # Backward pass
    if step.deltas and derivation is not None and any(n.kind == "delta" for n in derivation):
        blocks.append(Block("heading", f"{prefix}Backward pass"))
        if any(n.time_step is not None for n in derivation if n.kind == "delta"):
            blocks.append(Block("text", "Back-propagation through time: the last time step first."))
        if batch:
            blocks.append(Block("text", f"A batch of sequences: each sequence n is back-propagated through its "
                                        f"own error {symbol}⁽ⁿ⁾, so its deltas are δ⁽ⁿ⁾ = ∂{symbol}⁽ⁿ⁾/∂z⁽ⁿ⁾ (the "
                                        f"sequences share the weights, nothing else); the gradients below combine "
                                        f"the sequences as {symbol} does."))
        current = object()
        chains, notes = [], []
        for node in derivation:
            if node.kind != "delta":
                continue
            if (node.sequence, node.time_step) != current:
                if chains:
                    blocks.append(Block("chains", items=chains))
                    chains = []
                current = (node.sequence, node.time_step)
                if node.time_step is not None:
                    blocks.append(Block("heading", f"t = {node.time_step}" if node.sequence is None
                                        else f"sequence {node.sequence}, t = {node.time_step}", level=3))
            chain = derived_chain(node, derivation)
            chains.append(chain)
            if node.windows is not None:  # routed back by max pooling: the winners get the deltas
                chain.rows[-1][-1].marked = node.windows.mask()
                notes.append(f"{node.symbol}: each window's delta goes back to the window's winner (marked "
                             f"{MARK_NAMES}); every other entry gets 0.")
            if node.worked is not None:
                chains.append(worked_chain(node, decimals))
                notes.append(_worked_note(node))
        if chains:
            blocks.append(Block("chains", items=chains))
        blocks += [Block("text", note) for note in notes]
    elif step.deltas:
        blocks.append(Block("heading", f"{prefix}Backward pass"))
        for t, values in delta_groups(step):
            if t is not None:
                blocks.append(Block("heading", f"t = {t}", level=3))
            blocks.append(Block("chains", items=[value_chain(delta_symbol(trace, v), v.array) for v in values]))
    if getattr(step, "local_derivatives", None) or getattr(step, "paths", None):
        blocks += _chain_rule_blocks(trace, step, prefix, decimals)
    # Gradients
    if step.gradients:
        blocks.append(Block("heading", f"{prefix}Gradients"))
        chains, worked_notes = [], []
        for name in parameter_names(step):
            if name not in step.gradients:
                continue
            contributions = sorted(step.contributions.get(name, []), key=lambda c: c.step)
            node = None if derivation is None else derivation.by_key("gradients", name)
            if batch and node is not None and node.formula is not None:  # each sequence's part, then their sum / mean
                chains += [derived_chain(part, derivation) for part in derivation
                           if part.kind == "contribution" and part.key == name]
                rows = derived_chain(node, derivation).rows
                if len(rows) == 2:  # matrices are not substituted into a formula: the parts' sum written out
                    parts = [Term("" if i == 0 else "+", np.asarray(derivation.evaluate(ref), dtype=float))
                             for i, ref in enumerate(node.inputs)]
                    mean = node.formula.name == "mean_of"
                    rows.insert(1, ([Term("", f"1/{len(parts)} · (")] if mean else []) + parts
                                + ([Term("", ")")] if mean else []))
                chains.append(Chain(f"∂{symbol}/∂{name}", rows))
                continue
            if not contributions and node is not None and node.formula is not None:
                chain = derived_chain(node, derivation)
                chains.append(Chain(f"∂{symbol}/∂{name}", chain.rows))
                if node.worked is not None:
                    chains.append(worked_chain(node, decimals, f"∂{symbol}/∂{name}"))
                    worked_notes.append(_worked_note(node, f"∂{symbol}/∂{name}"))
                continue
            rows = []
            if contributions:
                general = general_formula(contributions)
                if general:
                    rows.append([Term("", f"Σ_t {general}")])
                rows.append([Term("" if i == 0 else "+", c.formula) for i, c in enumerate(contributions)])
                if len(contributions) > 1:
                    rows.append([Term("" if i == 0 else "+", np.asarray(c.array, dtype=float))
                                 for i, c in enumerate(contributions)])
            rows.append([Term("", np.asarray(step.gradients[name], dtype=float))])
            chains.append(Chain(f"∂{symbol}/∂{name}", rows))
        blocks.append(Block("chains", items=chains))
        blocks += [Block("text", note) for note in worked_notes]
    # Update
    if step.parameters_after:
        blocks.append(Block("heading", f"{prefix}Update"))
        blocks.append(Block("text", f"SGD: θ ← θ − η · ∂{symbol}/∂θ with η = {_lr(trace)}."))
        chains = []
        for name in parameter_names(step):
            if name not in step.parameters_after:
                continue
            rows = []
            if name in step.parameters_before and name in step.gradients:
                rows.append([Term("", np.asarray(step.parameters_before[name], dtype=float)),
                             Term("−", _lr(trace)),
                             Term("·", np.asarray(step.gradients[name], dtype=float))])
            rows.append([Term("", np.asarray(step.parameters_after[name], dtype=float))])
            chains.append(Chain(f"{name} − η · ∂{symbol}/∂{name}", rows))
        blocks.append(Block("chains", items=chains))
    return blocks


PRODUCTS_SHOWN = 81  # products of a worked entry written out (a 3×3 kernel over 9 channels); the rest counted
MARK_NAMES = "* in text, bold and underlined on a page"


def _entry(index) -> str:
    return ", ".join(str(i + 1) for i in index)


def worked_chain(node, decimals, symbol=None) -> Chain:
    """One entry of a node term by term, as recorded: ``z[1](1, 2, 2) = Σ_{c,i,j} W1(1, c, i, j) ·
    x[0](c, i, j) = 1·10 + 1·10 + … = 46`` -- the general formula, every product with the
    window's numbers, the value."""
    worked = node.worked
    factors = [v for pair in worked.products for v in pair] + ([] if worked.bias is None else [worked.bias])
    places = 0 if integral(np.asarray(factors + [worked.value], dtype=float)) else decimals
    # each side of the products with its own decimals: weights 0.0316 against an image's 1, not 1.0000
    sides = [0 if not worked.products or integral(np.asarray([p[k] for p in worked.products], dtype=float))
             else decimals for k in (0, 1)]

    def factor(v, side):
        text = number(v, sides[side])
        return f"({text})" if text.startswith("-") else text

    products = worked.products
    zeros = 0
    if node.kind != "forward":  # a backward sum: products with a zero factor (a dead unit's δ) are counted, not written
        products = [(a, b) for a, b in worked.products if a != 0 and b != 0]
        zeros = len(worked.products) - len(products)
    terms = [Term("" if k == 0 else "+", f"{factor(a, 0)}·{factor(b, 1)}")
             for k, (a, b) in enumerate(products[:PRODUCTS_SHOWN])]
    if len(products) > PRODUCTS_SHOWN:
        hidden = len(products) - PRODUCTS_SHOWN
        rest = sum(a * b for a, b in products[PRODUCTS_SHOWN:])
        terms += [Term("+", np.asarray(rest, dtype=float)), Term("", f"({hidden} more products)")]
    if zeros:
        terms.append(Term("+" if terms else "", f"0 ({zeros} product{'s' if zeros != 1 else ''} with a factor 0)"))
    if worked.bias is not None:
        terms.append(Term("+" if terms else "", np.asarray(worked.bias, dtype=float)))
    if not terms:
        terms = [Term("", "0")]  # no window puts a weight on this entry
    value = number(worked.value, 0) if places == 0 else np.asarray(worked.value, dtype=float)  # 46 after 1·10 + …
    rows = [[Term("", worked.general)], terms, [Term("", value)]]
    return Chain(f"{symbol or node.symbol}({_entry(worked.index)})", rows)


def _worked_note(node, symbol=None) -> str:
    worked = node.worked
    axes = {4: "sample, channel, row, column", 3: "channel, row, column"}.get(len(worked.index), "")
    if node.kind == "gradient":
        axes = "kernel, channel, row, column"
    padding = "; a 0 from outside the image is the zero padding" if any(worked.padded) else ""
    return (f"{symbol or node.symbol}({_entry(worked.index)}) is one entry worked out term by term "
            f"({axes}, counted from 1){padding}.")


def _pooled_inputs(derivation) -> dict:
    """{forward key of a max pooling's input: the mask of its windows' winners}."""
    out = {}
    for node in derivation or ():
        if node.kind in ("forward", "output") and node.windows is not None and node.formula is not None:
            source = derivation[node.formula.refs()[0]]
            out[source.key] = node.windows.mask()
    return out


def _pooling_note(node, derivation) -> str:
    windows = node.windows
    source = derivation[node.formula.refs()[0]].symbol
    size = f"{windows.kernel[0]}×{windows.kernel[1]}"
    stride = windows.stride[0] if windows.stride[0] == windows.stride[1] else tuple(windows.stride)
    return (f"{node.symbol} = max_pool2d({source}) with {size} windows, stride {stride}: each window's winner, its "
            f"largest entry (the first one on a tie), is marked in {source} ({MARK_NAMES}) and is the window's "
            f"entry in {node.symbol}.")


def _last_step_loss(step, symbol):
    """``L(3)`` when the loss is one step's ``L(t)`` while other steps have their own ``L(t)``
    (an equations problem with loss_steps = "last"), so the solution can say L = L(3); else None."""
    names = list(step.errors)
    pattern = rf"{re.escape(symbol)}\(\d+\)"
    if len(names) != 1 or not re.fullmatch(pattern, names[0]):
        return None
    return names[0] if any(re.fullmatch(pattern, v.key) for v in step.forward) else None


def count(n: int) -> str:
    """A count as a person reads it: 1,234,567; from 10¹⁵ on in scientific notation (a lattice
    of 1,000 diamonds has a 302-digit number of paths)."""
    return f"{n:,}" if n < 10**15 else f"{float(n):.3e}" if n < 10**308 else f"about 10^{len(str(n)) - 1}"


def derived_chain(node, derivation) -> Chain:
    """symbol = formula = the formula with its numbers = value."""
    formula = node.formula.text()
    rows = [] if formula == node.symbol else [[Term("", formula)]]
    numbers = substituted(node.formula, derivation.values())
    if numbers is not None:
        rows.append([Term("", p if isinstance(p, str) else np.asarray(p, dtype=float)) for p in numbers])
    rows.append([Term("", np.asarray(node.value, dtype=float))])
    return Chain(node.symbol, rows)


def loss_symbol(trace) -> str:
    return getattr(trace, "loss_symbol", "E") or "E"


def delta_symbol(trace, value) -> str:
    """δ[l](t) for a layer's pre-activation, else ∂E/∂node with the trace's loss symbol."""
    symbol = value.delta_symbol
    if symbol.startswith("∂E/∂"):
        return f"∂{loss_symbol(trace)}/∂{value.key}"
    return symbol


def _shape(shape) -> str:
    return "×".join(str(n) for n in shape) if shape else "1×1"


def _chain_rule_blocks(trace, step, prefix, decimals) -> list:
    """Local derivative of every edge, then each parameter's gradient as a sum over paths."""
    symbol = loss_symbol(trace)
    blocks = [Block("heading", f"{prefix}Chain rule")]
    edges = list(step.local_derivatives)
    if edges:
        blocks.append(Block("heading", "Local derivatives (each equation alone, by the engine)", level=3))
        chains = []
        for edge in edges[:LOCAL_SHOWN]:
            lhs = f"∂{edge.output}/∂{edge.input}"
            rows = [[Term("", edge.expression)]] if edge.expression else []
            value = None if edge.value is None else np.asarray(edge.value, dtype=float)
            if value is not None and value.size == 1:
                rows.append([Term("", value.reshape(()))])
                chains.append(Chain(lhs, rows))
                continue
            if value is not None and value.size <= JACOBIAN_SHOWN:
                out_size = int(np.prod(edge.shape[:len(edge.shape) - np.ndim(edge.backprop)])) \
                    if edge.backprop is not None else value.shape[0]
                matrix = value.reshape(out_size, -1)
                how = "" if value.ndim <= 2 else f", written {matrix.shape[0]}×{matrix.shape[1]}"
                rows.append([Term("", f"Jacobian {_shape(edge.shape)}{how}")])
                rows.append([Term("", matrix)])
            else:
                rows.append([Term("", f"Jacobian {_shape(edge.shape)}")])
            chains.append(Chain(lhs, rows))
            if edge.backprop is not None:
                chains.append(Chain(f"(∂{edge.output}/∂{edge.input})ᵀ · ∂{symbol}/∂{edge.output}",
                                    [[Term("", np.asarray(edge.backprop, dtype=float))]]))
        blocks.append(Block("chains", items=chains))
        if len(edges) > LOCAL_SHOWN:
            blocks.append(Block("text", f"{LOCAL_SHOWN} of {len(edges)} local derivatives shown; all are in the JSON output."))
        if any(int(np.prod(e.shape)) != 1 for e in edges):
            reshaped = any(e.value is not None and np.ndim(e.value) > 2 for e in edges[:LOCAL_SHOWN])
            blocks.append(Block("text", "For a tensor node the Jacobian has the shape (output entries × input entries); "
                                        + ("one with more than two axes (2×2×2) is written as a matrix with a row per "
                                           "output entry and a column per input entry, the entries of each taken row "
                                           "by row; " if reshaped else "")
                                        + "the line below it is its vector-Jacobian product, this edge's share of "
                                        f"∂{symbol}/∂input."))
    if step.paths:
        blocks.append(Block("heading", f"Sum over paths: ∂{symbol}/∂θ = Σ over paths of the product of local "
                                       "derivatives", level=3))
        chains, notes = [], []
        for name, path_sum in step.paths.items():
            chains.append(Chain(f"∂{symbol}/∂{name}", _path_rows(path_sum, decimals)))
            if path_sum.total > len(path_sum.paths):
                notes.append(f"{name}: {count(path_sum.total)} paths, the {len(path_sum.paths)} largest shown; "
                             f"{_hidden_sum_text(path_sum)}; the value is the {path_sum.method}")
        blocks.append(Block("chains", items=chains))
        if notes:
            blocks.append(Block("list", items=notes))
    return blocks


def _path_rows(path_sum, decimals) -> list:
    """The largest paths (by |contribution|) term by term, then the rest as one term, so the
    terms on screen add up to the total on screen: ``−0.0148 − 0.0046 + … + 0.0001 (24 more paths)
    = −0.0216``.

    Every term is written rounded to ``decimals``, and rounded terms need not add up to the
    rounded total (−0.0148 − 0.0046 − 0.0015 − 0.0008 + 0.0004 − 0.0003 + 0.0001 = −0.0215, the
    total −0.0216). So the last term is not the hidden paths' sum rounded on its own but the total
    as written minus the shown terms as written: it is the hidden paths' sum plus the rounding of
    the shown terms, and its label says so when the rounding changed it ("24 more paths and the
    rounding"). With every path shown, a rounding difference is one more term labelled
    "(rounding)". The exact sum of the hidden paths is in the note under the chain."""
    shown = path_sum.paths
    value = np.asarray(path_sum.value, dtype=float)
    hidden = path_sum.total - len(shown)
    rows = []
    more = f"({count(hidden)} more path{'s' if hidden != 1 else ''})"
    if shown:
        rows.append([Term("" if i == 0 else "+", " · ".join(f"∂{a}/∂{b}" for a, b in zip(p.nodes, p.nodes[1:])))
                     for i, p in enumerate(shown)])
        if all(np.size(f) == 1 for p in shown for f in p.factors):
            rows.append([Term("" if i == 0 else "+", "·".join(f"({number(np.asarray(f).reshape(-1)[0], decimals)})"
                                                           for f in p.factors)) for i, p in enumerate(shown)])
        if hidden > 0:
            for row in rows:
                row.append(Term("+", more))
        if len(shown) > 1 or hidden > 0:
            values = [np.asarray(p.value, dtype=float) for p in shown]
            terms = [Term("" if i == 0 else "+", v) for i, v in enumerate(values)]
            exact_rest = value - sum(values, np.zeros_like(value))
            rest = _closing_term(value, values, decimals)
            if rest is None:  # too large to write in fixed decimals: the exact remainder
                rest = exact_rest
            if hidden > 0:
                rounded = not np.array_equal(written(rest, decimals), written(exact_rest, decimals))
                label = f"({count(hidden)} more path{'s' if hidden != 1 else ''}{' and the rounding' if rounded else ''})"
                terms += [Term("+", rest), Term("", label)]
            elif np.any(written(rest, decimals) != 0):
                terms += [Term("+", rest), Term("", "(rounding)")]
            rows.append(terms)
    rows.append([Term("", value)])
    return rows


def _hidden_sum_text(path_sum) -> str:
    """What the paths left out add up to, unrounded (the chain's last term carries it rounded,
    together with the rounding of the terms shown)."""
    hidden = path_sum.total - len(path_sum.paths)
    value = np.asarray(path_sum.value, dtype=float)
    rest = value - sum((np.asarray(p.value, dtype=float) for p in path_sum.paths), np.zeros_like(value))
    if rest.size != 1:
        return f"the last term is the other {count(hidden)} paths' sum (with the rounding, where it says so)"
    return f"the other {count(hidden)} add up to {float(rest.reshape(-1)[0]):.3g}"


def _closing_term(total, terms, decimals):
    """total − Σ terms, each as written with ``decimals`` (in whole units of the last decimal, so
    no binary rounding creeps in); None when a value is too large for fixed decimals."""
    arrays = [np.asarray(total, dtype=float)] + [np.asarray(t, dtype=float) for t in terms]
    if any(not np.all(np.isfinite(a)) or np.any(np.abs(a) >= LARGE) for a in arrays):
        return None
    scale = 10 ** decimals
    units = [np.rint(written(a, decimals) * scale).astype(np.int64) for a in arrays]
    return (units[0] - sum(units[1:], np.zeros_like(units[0]))) / scale


def _exact_blocks(step, prefix) -> list:
    """Exact mode: every value and derivative as an exact expression beside its decimal value."""
    blocks = [Block("heading", f"{prefix}Exact values (SymPy)")]
    titles = {"value": "Forward values", "local": "Local derivatives", "gradient": "Gradients"}
    for kind in ("value", "local", "gradient"):
        items = [e for e in step.exact if e.kind == kind]
        if not items:
            continue
        blocks.append(Block("heading", titles[kind], level=3))
        chains = []
        for e in items:
            text = e.expression
            if len(text) > EXPRESSION_SHOWN:
                text = f"(an exact expression of {len(text):,} characters; see the JSON output)"
            rows = [[Term("", text)]]
            if e.value is not None and not _plain_number(text, e.value):  # "1/3 = 0.3333"; "0.5" once
                rows.append([Term("", np.asarray(e.value, dtype=float))])
            chains.append(Chain(e.key, rows))
        blocks.append(Block("chains", items=chains))
    return blocks


def _plain_number(text, value) -> bool:
    """Whether an exact expression is just a decimal number equal to its value (0.5, −2): the
    decimal beside it would say the same thing twice."""
    last = text.rsplit("=", 1)[-1].strip()  # "w1 = 0.5": the exact value is its last part
    if not re.fullmatch(r"[−-]?\d+(?:\.\d+)?", last):
        return False
    value = np.asarray(value, dtype=float)
    return value.size == 1 and float(last.replace("−", "-")) == float(value.reshape(-1)[0])


def _check_blocks(trace) -> list:
    first = trace.steps[0].index if trace.steps else 1
    blocks = [Block("heading", "Check")]
    blocks.append(Block("text", f"Gradients of step {first} compared with independent methods."))
    rows = [[c.method, f"{float(c.max_relative_error):.2e}", f"{float(c.tolerance):.0e}",
             "✓" if c.passed else "✗"] for c in trace.checks]
    blocks.append(Block("table", items=rows, headers=["Method", "Max relative error", "Tolerance", "Passed"]))
    names = []
    for c in trace.checks:
        names += [n for n in c.per_parameter if n not in names]
    if names:
        per = [[n] + [f"{float(c.per_parameter[n]):.2e}" if n in c.per_parameter else "—" for c in trace.checks]
               for n in names]
        blocks.append(Block("table", items=per, headers=["Parameter"] + [c.method for c in trace.checks]))
    for c in trace.checks:
        if c.atol is not None:
            blocks.append(Block("text", f"{c.method.capitalize()}: {c.entries} gradient entries compared; an entry "
                                        f"passes when |analytic − numeric| ≤ {c.atol:.0e}·max(1, |E|) + {c.tolerance:.0e}·|numeric|."))
        if c.one_sided:
            shown = ", ".join(c.one_sided[:6]) + (f" and {len(c.one_sided) - 6} more" if len(c.one_sided) > 6 else "")
            blocks.append(Block("text", f"At {shown} an input sits exactly at a kink (such as a ReLU at 0): the "
                                        "gradient there is one-sided (PyTorch's convention), and the one-sided "
                                        "difference agrees."))
    return blocks


__all__ = ["Block", "Chain", "Term", "build", "number"]

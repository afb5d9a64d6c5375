"""A picture of a problem's computation graph: ``deltalab solve … --graph FILE.svg``, the figure
of the HTML page and of a notebook's Solution.

Every problem kind is drawn from the one derivation record of its first step: the givens
(inputs, targets, parameters), the forward values and the losses are the nodes, the formulas'
operands are the edges.  Each node shows the lecture's symbol, its value and its delta
(δ[l] for a pre-activation, ∂E/∂node otherwise, a parameter's gradient), small arrays written
out and large ones as their shape; a CNN's feature maps are one node per channel; an
unrolled RNN/LSTM has one column per time step.  Each edge carries its local derivative
∂(node)/∂(operand): the engine's own Jacobian for an equations problem, else read off the
node's recorded formula (z = W x + b: ∂z/∂x = W; x = tanh(z): 1 − x²), with its numbers
where they are few.  networkx lays the graph out (``multipartite_layout``), matplotlib draws
it and writes the SVG, deterministically (fixed ids, no date), so pages stay reproducible.
"""
from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass

import numpy as np

from ..derivation import Node
from ..errors import DeltalabError
from ._common import number

MAX_NODES = 150  # more nodes than this make an unreadable picture: refused with the count
EDGE_LABELS_SHOWN = 80  # more labelled edges than this: none labelled (they would cover the picture)
INLINE_SIZE = 4  # matrices (and edge labels) with at most this many entries are written out in a label
VECTOR_SIZE = 6  # … vectors with at most this many
GRID_SIZE = 3  # … and matrices of at most GRID_SIZE × GRID_SIZE, one row per line
KERNEL_LABELS_SHOWN = 12  # a convolution with more channel pairs: its edges unlabelled
PLOTS_EXTRA = "pip install 'deltalab[plots]'"
DRAWN_KINDS = ("input", "target", "parameter", "forward", "output", "error", "loss")
COLOURS = {"parameter": "#fde68a", "input": "#e5e7eb", "target": "#e5e7eb", "error": "#fecaca", "loss": "#fecaca"}
NODE_COLOUR = "#dbeafe"
SVG_SALT = "deltalab"  # matplotlib's ids from a fixed salt: the same picture gives the same bytes


class GraphError(DeltalabError):
    """The graph cannot be drawn (nothing recorded, too many nodes, a library missing)."""


class MissingPlotsExtra(GraphError):
    """networkx or matplotlib is not installed."""


def _networkx():
    try:
        import networkx
    except ImportError:
        raise MissingPlotsExtra(f"--graph needs networkx and matplotlib (the plots extra): {PLOTS_EXTRA}") from None
    return networkx


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingPlotsExtra(f"--graph needs networkx and matplotlib (the plots extra): {PLOTS_EXTRA}") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def require_plots() -> None:
    """Refuse (MissingPlotsExtra, one line naming the extra) before any work when the picture
    cannot be drawn."""
    _networkx()
    _pyplot()


# ------------------------------------------------------------------ numbers in labels
def _minus(text: str) -> str:
    return text.replace("-", "−")


def compact(value, decimals: int = 3, one_line: bool = False) -> str:
    """A value as a label writes it: a number, a vector of up to 6 ``(1.500, 0.000)``, a 2×2
    matrix ``[1 2; 3 4]``, a matrix up to 3×3 one row per line (not ``one_line``), anything
    larger as its shape ``10×10``."""
    array = np.asarray(value, dtype=float)
    if array.size == 1:
        return _minus(number(array.reshape(-1)[0], decimals))
    if array.ndim == 1 and array.size <= VECTOR_SIZE:
        return "(" + ", ".join(_minus(number(v, decimals)) for v in array) + ")"
    if array.ndim == 2 and (array.size <= INLINE_SIZE or not one_line and max(array.shape) <= GRID_SIZE):
        rows = [" ".join(_minus(number(v, decimals)) for v in row) for row in array]
        return "[" + "; ".join(rows) + "]" if array.size <= INLINE_SIZE else "\n".join(f"[{r}]" for r in rows)
    return f"{array.size}-vector" if array.ndim == 1 else "×".join(str(n) for n in array.shape)


# ------------------------------------------------------------------ local derivatives
@dataclass(frozen=True)
class Local:
    """∂(node)/∂(operand) read off a formula: ``form`` says how it acts -- "one" (the identity),
    "diag" (elementwise: ``expr`` holds the factor), "matrix" (``expr`` is the Jacobian), "text"
    (only written: ``text``)."""

    form: str
    expr: object = None
    text: str = ""

    def written(self) -> str:
        if self.form == "one":
            return "1"
        return self.text or self.expr.text()


def _depends(expr, target) -> bool:
    return target in expr.refs()


def local_derivative(formula, target, itself=None):
    """∂(formula)/∂(the node ``target``) for the forms the lecture's layers are made of
    (sums, W x products, elementwise products and activations); None for any other form
    (the edge is then drawn without a label).  ``itself``: a reference to the node the
    formula defines, so that tanh′ is written 1 − x[1]² over the node's own value."""
    from ..derivation.expressions import Const, Op, Ref
    from ..derivation.layered import activation_derivative

    if isinstance(formula, Ref):
        return Local("one") if formula.node == target else None
    if not isinstance(formula, Op) or not _depends(formula, target):
        return None
    name, args = formula.name, formula.args
    if name in ("add", "sum_of", "sub"):
        found = [(i, local_derivative(a, target)) for i, a in enumerate(args) if _depends(a, target)]
        if len(found) != 1 or found[0][1] is None:
            return None
        index, part = found[0]
        return part if not (name == "sub" and index == 1) else _scaled(part, Const(-1.0, "−1"))
    if name == "mul":
        (a, b) = args
        if _depends(a, target) and _depends(b, target):
            return None
        inner, factor = (a, b) if _depends(a, target) else (b, a)
        part = local_derivative(inner, target)
        return None if part is None else _scaled(part, factor)
    if name == "matmul":
        (m, v) = args
        if _depends(v, target) and not _depends(m, target):
            part = local_derivative(v, target)
            if part is None:
                return None
            return Local("matrix", m) if part.form == "one" else Local("text", text=f"{m.text()} · {part.written()}")
        if _depends(m, target) and not _depends(v, target):  # ∂(W x)/∂W: the row x ᵀ in each row
            return Local("text", v, text=f"{v.text()}ᵀ (each row)")
        return None
    if name == "apply":
        function = dict(formula.params).get("function")
        part = local_derivative(args[0], target)
        if part is None:
            return None
        if function == "identity":
            return part
        if function == "softmax":
            return Local("text", text=f"softmax′({args[0].text()})")
        factor = activation_derivative(function, args[0], itself if itself is not None else formula)
        return _scaled(part, factor)
    if name == "gate_rows":
        part = local_derivative(args[0], target)
        return None if part is None else Local("text", text=f"rows {dict(formula.params)['gate']}")
    if name == "reshape" and isinstance(args[0], Ref):
        return Local("text", text=dict(formula.params)["label"])
    if name == "pool" and isinstance(args[0], Ref):
        kind = dict(formula.params)["kind"]
        return Local("text", text="1 at each max" if kind == "max" else f"{kind}pool′")
    return None


def _scaled(part, factor):
    """``part`` followed by the elementwise factor ``factor`` (the chain rule's ⊙)."""
    if part.form == "one":
        return Local("diag", factor)
    if part.form == "diag":
        return Local("diag", factor * part.expr)
    return None  # an elementwise factor times a matrix: too long to write on an edge


def _edge_label(local, values, decimals):
    if local is None:
        return None
    text = local.written()
    if local.form == "one":
        return "1"
    if local.form == "text" and local.expr is None:
        return text
    try:
        value = np.asarray(local.expr.evaluate(values), dtype=float)
    except (KeyError, ValueError):  # a formula over nodes not kept, or shapes it cannot combine: the symbol alone
        return text
    if value.size <= INLINE_SIZE:
        return f"{text} = {compact(value, decimals, one_line=True)}"
    return text


# ------------------------------------------------------------------ the graph
def _channels(node) -> int:
    """How many feature-map nodes a value is drawn as: its channels (C of C×H×W), else 1."""
    array = np.asarray(node.value)
    if node.kind in ("input", "forward", "output") and array.ndim >= 3 and array.shape[-3] > 1:
        return array.shape[-3]
    return 1


def _channel(array, c):
    array = np.asarray(array)
    return np.take(array, c, axis=array.ndim - 3)


def _alias_of(node, drawn):
    """A node that only renames another (y = z[2]) is drawn as that node."""
    from ..derivation.expressions import Ref

    if node.kind == "output" and isinstance(node.formula, Ref) and node.formula.node in drawn:
        return node.formula.node
    return None


def graph_of(trace, decimals: int = 3):
    """The networkx DiGraph of step 1 (operand → result): nodes with their label lines, kind and
    column, edges with their label (or None)."""
    nx = _networkx()
    if not trace.steps or trace.steps[0].derivation is None or not len(trace.steps[0].derivation.nodes):
        raise GraphError("--graph: nothing was recorded to draw for this problem")
    step = trace.steps[0]
    d = step.derivation
    values = d.values()
    drawn = {n.id: n for n in d if n.kind in DRAWN_KINDS}
    alias = {}
    for node in list(drawn.values()):
        target = _alias_of(node, drawn)
        if target is not None:
            alias[node.id] = target
    for key in alias:
        drawn.pop(key)
    renamed = {target: d[source].symbol for source, target in alias.items()}
    graph = nx.DiGraph()
    parts = {}  # node id -> [graph keys] (one per channel)
    count = sum(_channels(n) for n in drawn.values())
    if count > MAX_NODES:
        raise GraphError(f"--graph: the graph has {count:,} nodes; the largest drawn is {MAX_NODES}")
    stacked = _stacked_deltas(d)
    for node in drawn.values():
        delta_node = _delta_node(d, node, stacked)
        channels = _channels(node)
        symbol = node.symbol + (f" = {renamed[node.id]}" if node.id in renamed else "")
        parts[node.id] = []
        for c in reversed(range(channels)):  # networkx stacks a column bottom-up: channel 1 on top
            key = node.id if channels == 1 else f"{node.id}#{c + 1}"
            value = node.value if channels == 1 else _channel(node.value, c)
            lines = [symbol if channels == 1 else f"{symbol} ch {c + 1}", compact(value, decimals)]
            if node.kind == "loss":
                lines.append("δ 1")  # ∂E/∂E
            elif delta_node is not None:
                delta = delta_node.value if channels == 1 else _channel(delta_node.value, c)
                head = delta_node.symbol if delta_node.symbol.startswith("δ") else "δ"
                written = compact(delta, decimals)
                lines.append(f"{head}\n{written}" if "\n" in written else f"{head} {written}")
            graph.add_node(key, lines=lines, kind=node.kind, step=node.time_step)
            parts[node.id].insert(0, key)
    unrolled = not _is_graph_kind(trace) and _unrolled(drawn.values())
    local_edges = {(e.output, e.input): e.value for e in getattr(step, "local_derivatives", [])
                   if e.value is not None}  # an equations problem's Jacobians, as the engine computed them
    for node in drawn.values():
        if node.formula is None:
            continue
        for operand in node.formula.refs():
            source = alias.get(operand, operand)
            if source not in drawn:
                continue
            if node.key is not None and (node.key, drawn[source].key) in local_edges:  # the engine's Jacobian
                jacobian = np.asarray(local_edges[node.key, drawn[source].key])
                label = compact(np.squeeze(jacobian), decimals, one_line=True) if jacobian.size <= INLINE_SIZE else None
            elif unrolled and drawn[source].kind == "parameter":
                label = None  # the same shared weight at every step: its edges stay unlabelled
            else:
                label = _edge_label(local_derivative(node.formula, operand, d.ref(node.id)), values, decimals)
            _connect(graph, parts[source], parts[node.id], node, drawn[source], label)
    _columns(nx, graph, time_columns=unrolled)
    return graph


def _is_graph_kind(trace) -> bool:
    """An equations problem: a graph of named nodes, laid out by distance even when unrolled
    (its cells have many small nodes per step)."""
    from ..problems.kinds import kind_named

    try:
        return bool(kind_named(trace.model_type).graph)
    except KeyError:  # a hand-made trace of no registered kind
        return False


def _stacked_deltas(d) -> dict:
    """node id -> the delta that stacks its part (an LSTM's δ[l](t) = [δi; δf; δg; δo], formed
    from the gates it is recorded over)."""
    from ..derivation.expressions import Op

    stacked = {}
    for node in d:
        if node.kind == "delta" and isinstance(node.formula, Op) and node.formula.name == "concat":
            for operand in node.formula.refs():
                stacked.setdefault(operand, node)
    return stacked


def _gate_rows(formula):
    """(gate, first row, row after the last) of the weight rows a gate's formula reads, else None."""
    from ..derivation.expressions import Op

    if not isinstance(formula, Op):
        return None
    if formula.name == "gate_rows":
        params = dict(formula.params)
        return params["gate"], params["start"], params["stop"]
    return next((rows for rows in map(_gate_rows, formula.args) if rows is not None), None)


def _delta_node(d, node, stacked):
    """The node's recorded delta (a parameter: its gradient); an LSTM gate's is its rows of the
    layer's δ[l](t), the delta of the gate's pre-activation."""
    if node.key is None:
        return None
    wanted = f"gradients:{node.key}" if node.kind == "parameter" else f"deltas:{node.key}"
    if wanted in d.nodes:
        return d.nodes[wanted]
    rows = _gate_rows(node.formula)
    if rows is None or node.id not in stacked:
        return None
    gate, start, stop = rows
    layer = stacked[node.id]
    return Node(layer.id, f"{layer.symbol}[{gate}]", "delta", np.take(layer.value, range(start, stop), axis=-1))


def _connect(graph, sources, targets, node, source_node, label):
    """Edges from an operand's drawn nodes to a node's: channel to channel, every channel to
    every channel through a convolution (its kernel W[o, c] on the edge), or all to one."""
    from ..derivation.expressions import Op

    convolution = isinstance(node.formula, Op) and node.formula.name == "conv2d"
    if len(sources) > 1 and len(sources) == len(targets) and not convolution:
        for a, b in zip(sources, targets):
            graph.add_edge(a, b, label=label)
        return
    kernel = None  # each edge's kernel W[o, c], when there are few enough edges to read them
    if convolution and source_node.kind != "parameter" and node.formula.args[1].refs() and \
            len(sources) * len(targets) <= KERNEL_LABELS_SHOWN:
        kernel = node.formula.args[1]
    for o, b in enumerate(targets):
        for c, a in enumerate(sources):
            text = label
            if kernel is not None:
                text = f"{kernel.text()}[{o + 1},{c + 1}]"
            elif convolution:
                text = None
            graph.add_edge(a, b, label=text)


def _unrolled(nodes) -> bool:
    """Whether every computed node belongs to a time step: the picture runs over time."""
    computed = [n for n in nodes if n.kind in ("forward", "output")]
    return bool(computed) and all(n.time_step is not None for n in computed) and any(
        n.time_step > 1 for n in computed)


def _columns(nx, graph, time_columns: bool):
    """Each node's column: its time step for an unrolled recurrence (the shared parameters and
    the total after the last step), else its distance from the inputs, where a given (input,
    target, parameter) stands just before the first node that reads it."""
    if time_columns:
        last = max(s for _, s in graph.nodes(data="step") if s is not None)
        for key, data in graph.nodes(data=True):
            data["column"] = data["step"] if data["step"] is not None else last + 1
        return
    given = {"input", "target", "parameter"}
    depth = {}
    for key in nx.topological_sort(graph):
        computed = [depth[p] for p in graph.predecessors(key)]
        depth[key] = 1 + max(computed) if computed else 0
    for key, data in graph.nodes(data=True):
        if data["kind"] in given:
            readers = [depth[s] for s in graph.successors(key) if graph.nodes[s]["kind"] not in given]
            depth[key] = max(0, min(readers) - 1) if readers else depth[key]
    # the inputs' own depth can now be smaller: recompute the computed nodes from them
    for key in nx.topological_sort(graph):
        if graph.nodes[key]["kind"] not in given:
            depth[key] = 1 + max((depth[p] for p in graph.predecessors(key)), default=-1)
    for key, data in graph.nodes(data=True):
        data["column"] = depth[key]


# ------------------------------------------------------------------ drawing
def render_svg(trace, decimals: int = 3) -> bytes:
    """The SVG document of the computation graph of ``trace``'s first step."""
    nx = _networkx()
    graph = graph_of(trace, decimals)
    plt = _pyplot()
    columns = sorted({c for _, c in graph.nodes(data="column")})
    by_column = {c: [k for k in graph.nodes if graph.nodes[k]["column"] == c] for c in columns}
    tallest = max(len(keys) for keys in by_column.values())
    lines = max(len("\n".join(graph.nodes[k]["lines"]).splitlines()) for k in graph.nodes)
    widest = max(len(line) for k in graph.nodes for line in "\n".join(graph.nodes[k]["lines"]).splitlines())
    positions = nx.multipartite_layout(graph, subset_key={c: by_column[c] for c in columns}, align="vertical")
    width = max(6.0, len(columns) * max(1.5, 0.075 * widest + 0.6))
    height = max(3.0, tallest * (0.14 * lines + 0.35))
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": SVG_SALT, "font.size": 7}):
        symbol = getattr(trace, "loss_symbol", "E")
        title = textwrap.wrap(trace.title, max(40, int(width * 14))) + [
            f"node: symbol, value, δ = ∂{symbol}/∂node (a parameter: its gradient); edge: local derivative "
            "∂node/∂operand" + (" (step 1)" if len(trace.steps) > 1 else "")]
        top = 0.2 + 0.16 * len(title)  # inches above the graph for the title
        # the axes fill the figure below the title and every label fits inside them (half a column
        # and half a row of margin), so no second drawing pass is needed to crop the picture
        fig = plt.figure(figsize=(width, height + top))
        axis = fig.add_axes((0.0, 0.0, 1.0, height / (height + top)))
        fig.text(0.5, 1 - 0.1 / (height + top), "\n".join(title), ha="center", va="top", fontsize=8)
        axis.set_axis_off()
        texts = {}
        for key, data in graph.nodes(data=True):
            x, y = positions[key]
            texts[key] = axis.text(x, y, "\n".join(data["lines"]), ha="center", va="center", fontsize=7, zorder=3,
                                   bbox=dict(boxstyle="round,pad=0.35", facecolor=COLOURS.get(data["kind"], NODE_COLOUR),
                                             edgecolor="#333", linewidth=0.8))
        curved = any(graph.nodes[a]["column"] == graph.nodes[b]["column"] for a, b in graph.edges)
        style = "arc3,rad=0.18" if curved else "arc3"
        for a, b in graph.edges:
            shared = graph.nodes[a]["kind"] == "parameter"
            axis.annotate("", xy=positions[b], xytext=positions[a], zorder=2,
                          arrowprops=dict(arrowstyle="-|>", color="#9ca3af" if shared else "#444",
                                          linestyle="--" if shared else "-", linewidth=0.7 if shared else 0.9,
                                          patchA=texts[a].get_bbox_patch(), patchB=texts[b].get_bbox_patch(),
                                          shrinkA=1, shrinkB=1, connectionstyle=style, mutation_scale=8))
        labels = {(a, b): text for a, b, text in graph.edges(data="label") if text}
        if labels and len(labels) <= EDGE_LABELS_SHOWN:
            nx.draw_networkx_edge_labels(graph, positions, edge_labels=labels, ax=axis, font_size=5.5,
                                         label_pos=0.5, rotate=False, connectionstyle=style, clip_on=False,
                                         bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none",
                                                   alpha=0.85))
        span = [positions[k] for k in graph.nodes]
        xs, ys = [p[0] for p in span], [p[1] for p in span]
        pad_x = 0.5 * (max(xs) - min(xs)) / max(1, len(columns) - 1) if len(columns) > 1 else 0.5
        axis.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
        pad_y = 0.5 * (max(ys) - min(ys)) / max(1, tallest - 1) if tallest > 1 else 0.5
        axis.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
    return buffer.getvalue()


def inline_svg(trace) -> str:
    """The picture as an ``<svg>`` element for an HTML page (scaled to the page's width), or
    one line saying why there is none (the plots extra missing, a graph too big)."""
    try:
        svg = render_svg(trace).decode("utf-8")
    except MissingPlotsExtra:
        return f"<p>The picture of the computation graph needs the plots extra: <code>{PLOTS_EXTRA}</code></p>"
    except GraphError as exc:
        return f"<p>No picture of the computation graph: {exc.args[0].removeprefix('--graph: ')}.</p>"
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside a page
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)  # its rules would restyle the page
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)  # matplotlib's credits, with links
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)  # HTML knows <svg>: the page links to nothing
    width = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg)
    limit = f"max-width:{float(width.group(1)) * 4 / 3:.0f}px;" if width else ""
    svg = re.sub(r'(<svg[^>]*?)\s(width|height)="[^"]*"', r"\1", svg, count=1)
    svg = re.sub(r'(<svg[^>]*?)\s(width|height)="[^"]*"', r"\1", svg, count=1)
    svg = svg.replace("<svg", f'<svg role="img" aria-label="computation graph" class="graph" '
                              f'style="width:100%;{limit}height:auto"', 1)
    return f'<figure class="graph">{svg.strip()}</figure>'


__all__ = ["GraphError", "MAX_NODES", "MissingPlotsExtra", "compact", "graph_of", "inline_svg",
           "local_derivative", "render_svg", "require_plots"]

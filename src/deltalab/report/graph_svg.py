"""A picture of an equations problem's computation graph (``deltalab solve … --graph FILE.svg``).

Each node shows its name, its value and its delta ∂L/∂node (a parameter: its gradient); each
edge carries its local derivative when that is one number.  An unrolled recurrence is drawn
with time running left to right: a node's column is its distance from the inputs, computed
by networkx (``topological_generations``) and laid out by its ``multipartite_layout``; matplotlib
draws and writes the SVG.  Like every report it only draws what the recorder stored.
"""
from __future__ import annotations

import io

import numpy as np

from ..errors import DeltalabError
from ._common import number

MAX_NODES = 150  # more nodes than this make an unreadable picture: refused with the count


class GraphError(DeltalabError):
    """The graph cannot be drawn (a problem type without a recorded graph, too many nodes, a
    library missing)."""


def _short(value, decimals) -> str:
    array = np.asarray(value, dtype=float)
    if array.size == 1:
        return number(array.reshape(-1)[0], decimals)
    return "×".join(str(n) for n in array.shape)


def graph_of(trace):
    """The networkx DiGraph of step 1 (operand → result), nodes labelled with value and delta."""
    try:
        import networkx as nx
    except ImportError:
        raise GraphError("--graph needs networkx and matplotlib: pip install 'deltalab[plots]'") from None
    from ..problems.kinds import kind_named

    if not kind_named(trace.model_type).graph or not trace.steps:
        raise GraphError(f"--graph: drawn for equations problems (the eq-… examples); this is a "
                         f"{trace.model_type} problem")
    step = trace.steps[0]
    edges = list(getattr(step, "local_derivatives", []))
    if not edges:
        raise GraphError("--graph: this problem has no loss, so no derivatives to draw")
    graph = nx.DiGraph()
    for e in edges:
        graph.add_edge(e.input, e.output, derivative=e.value)
    if graph.number_of_nodes() > MAX_NODES:
        raise GraphError(f"--graph: the graph has {graph.number_of_nodes():,} nodes; the largest drawn is {MAX_NODES}")
    values = {v.key: v.array for v in step.forward + step.outputs + step.targets}
    values.update(step.parameters_before)
    values.update(step.errors)
    deltas = {v.key: v.array for v in step.deltas}
    deltas.update(step.gradients)
    for key in graph.nodes:
        if graph.out_degree(key) == 0 and step.loss is not None:  # the loss itself: ∂L/∂L = 1
            values.setdefault(key, step.loss)
            deltas.setdefault(key, 1.0)
        graph.nodes[key]["value"] = values.get(key)
        graph.nodes[key]["delta"] = deltas.get(key)
        graph.nodes[key]["parameter"] = key in step.parameters_before
    for column, keys in enumerate(nx.topological_generations(graph)):
        for key in keys:
            graph.nodes[key]["column"] = column
    return graph


def render_svg(trace, decimals: int = 3) -> bytes:
    """The SVG document of the graph of ``trace``'s first step."""
    graph = graph_of(trace)
    from ..training.plots import PlotError, require_matplotlib
    import networkx as nx

    try:
        plt = require_matplotlib()
    except PlotError:
        raise GraphError("--graph needs matplotlib: pip install 'deltalab[plots]'") from None
    positions = nx.multipartite_layout(graph, subset_key="column", align="vertical", scale=1.0)
    columns = 1 + max(graph.nodes[k]["column"] for k in graph.nodes)
    tallest = max(sum(1 for k in graph.nodes if graph.nodes[k]["column"] == c) for c in range(columns))
    fig, axis = plt.subplots(figsize=(max(6.0, 1.9 * columns), max(3.5, 1.1 * tallest)))
    axis.set_axis_off()
    colours = ["#fde68a" if graph.nodes[k]["parameter"] else "#dbeafe" for k in graph.nodes]
    nx.draw_networkx_edges(graph, positions, ax=axis, arrows=True, arrowsize=12, edge_color="#555",
                           node_size=2600, width=1.0)
    nx.draw_networkx_nodes(graph, positions, ax=axis, node_color=colours, node_size=2600, edgecolors="#333")
    labels = {}
    for key in graph.nodes:
        node = graph.nodes[key]
        lines = [key]
        if node["value"] is not None:
            lines.append(_short(node["value"], decimals))
        if node["delta"] is not None:
            lines.append("δ " + _short(node["delta"], decimals))
        labels[key] = "\n".join(lines)
    nx.draw_networkx_labels(graph, positions, labels=labels, ax=axis, font_size=7)
    edge_labels = {(a, b): number(np.asarray(d).reshape(-1)[0], decimals)
                   for a, b, d in graph.edges(data="derivative") if d is not None and np.size(d) == 1}
    if edge_labels and len(edge_labels) <= 80:
        nx.draw_networkx_edge_labels(graph, positions, edge_labels=edge_labels, ax=axis, font_size=6,
                                     label_pos=0.5, rotate=False)
    axis.set_title(f"{trace.title}\nnode: name, value, δ = ∂{getattr(trace, 'loss_symbol', 'E')}/∂node; "
                   "edge: local derivative", fontsize=8)
    buffer = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "none"}):  # labels stay text: searchable, selectable, small
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


__all__ = ["GraphError", "MAX_NODES", "graph_of", "render_svg"]

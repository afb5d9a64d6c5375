"""``deltalab summary [NAME]``: shape and parameter tables of the lecture's CNN examples."""
from __future__ import annotations

from ..errors import DeltalabError


def register(subparsers):
    p = subparsers.add_parser("summary", help="layer/shape/parameter table of a problem file or a lecture CNN")
    p.add_argument("name", nargs="?", help="a problem file (.toml), a built-in lecture CNN (default: all of them)")
    p.add_argument("--example", metavar="NAME", help="a built-in example problem (see `deltalab examples`), "
                                                     "as in `deltalab solve --example`")
    p.set_defaults(run=run)


def run(args):
    from rich.console import Console

    from ..models import LECTURE_CNNS, lecture_cnn
    from ..summary import summary

    console = Console()
    if args.example:
        if args.name:
            raise DeltalabError("summary: give a NAME or --example NAME, not both")
        from ..examples import example_path

        return _problem_summary(example_path(args.example), console)
    if args.name and (args.name.endswith(".toml") or "/" in args.name):
        return _problem_summary(args.name, console)
    names = [args.name] if args.name else list(LECTURE_CNNS)
    for name in names:
        if name not in LECTURE_CNNS:
            raise DeltalabError(f"summary: unknown example {name!r}; choose from {', '.join(LECTURE_CNNS)}")
        model, input_shape = lecture_cnn(name)
        result = summary(model, input_shape, print_table=False)
        console.print(result.table(title=f"{name}  (input {'×'.join(map(str, input_shape))})"))
    return 0


def _problem_summary(path, console):
    from ..problem import load_problem
    from ..problems.kinds import problem_kind
    from ..recorder import build_model
    from ..summary import summary

    problem = load_problem(path)
    input_shape = problem_kind(problem).summary_input_shape(problem)
    if input_shape is None:
        return _equations_summary(problem, console)
    model = build_model(problem)
    result = summary(model, input_shape, print_table=False)
    console.print(result.table(title=f"{problem.title}  (input {'×'.join(map(str, input_shape))})"))
    return 0


def _equations_summary(problem, console):
    """An equations problem has no layers: its parameters and the nodes of one step, with shapes."""
    import numpy as np
    from rich.table import Table
    from rich.text import Text

    from ..equations.evaluate import evaluate_graph
    from ..equations.graph import build
    from ..text import one_line

    graph = build(problem.equations)
    shapes = evaluate_graph(graph, "shapes")  # the dry run the loader already made: shapes only
    table = Table(title=Text(one_line(f"{problem.title}  (equations)")))
    for column, justify in (("node", "left"), ("kind", "left"), ("shape", "right"), ("parameters", "right")):
        table.add_column(column, justify=justify)
    total = 0
    for key, node in graph.nodes.items():
        if node.kind not in ("parameter", "equation") or node.step not in (None, 1):
            continue
        shape = np.shape(getattr(shapes.get(key), "data", shapes.get(key)))
        count = int(np.prod(shape)) if node.kind == "parameter" else 0
        total += count
        table.add_row(Text(one_line(key)), node.kind, "×".join(map(str, shape)) or "1", f"{count:,}")
    table.add_section()
    table.add_row("total", "", "", f"{total:,}")
    console.print(table)
    return 0

"""``deltalab examples``: the built-in problem files, with their titles."""
from __future__ import annotations


def register(subparsers):
    p = subparsers.add_parser("examples", help="list the built-in problem files (for solve --example)")
    p.set_defaults(run=run)


def run(args):
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..text import one_line

    from ..examples import example_names, example_path
    from ..problem import load_problem

    table = Table(title="Built-in examples  (deltalab solve --example NAME)")
    table.add_column("name")
    table.add_column("title")
    for name in example_names():
        table.add_row(name, Text(one_line(load_problem(example_path(name)).title)))
    Console().print(table)
    return 0

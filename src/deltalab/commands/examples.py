"""``deltalab examples [NAME] [--copy DIR]``: the built-in problem files — listed with their
titles, one printed as it is written, or copied out so a student can start from it."""
from __future__ import annotations

import sys


def register(subparsers):
    p = subparsers.add_parser("examples", help="list the built-in problem files, print one, or copy one out")
    p.add_argument("name", nargs="?", help="a built-in example: print its problem file")
    p.add_argument("--copy", metavar="DIR", help="write the example's problem file NAME.toml into DIR")
    p.set_defaults(run=run)


def run(args):
    from ..errors import DeltalabError
    from ..examples import example_path

    if args.copy and not args.name:
        raise DeltalabError("examples: --copy needs an example NAME (see `deltalab examples`)")
    if not args.name:
        return _list()
    path = example_path(args.name)
    text = path.read_text(encoding="utf-8")
    if not args.copy:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    from pathlib import Path

    from ..files import write_text_atomic

    folder = Path(args.copy)
    if not folder.is_dir():
        raise DeltalabError(f"examples: --copy: {args.copy}: no such directory")
    target = folder / path.name
    if target.exists():
        raise DeltalabError(f"examples: --copy: {target} exists already; remove it or choose another directory")
    write_text_atomic(str(target), text)
    print(f"wrote {target}  (deltalab solve {target})")
    return 0


def _list():
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..examples import example_names, example_path
    from ..problem import load_problem
    from ..text import one_line

    table = Table(title="Built-in examples  (deltalab solve --example NAME; deltalab examples NAME prints one)")
    table.add_column("name")
    table.add_column("title")
    for name in example_names():
        table.add_row(name, Text(one_line(load_problem(example_path(name)).title)))
    Console().print(table)
    return 0

"""``deltalab summary [NAME]``: shape and parameter tables of the lecture's CNN examples."""
from __future__ import annotations

from ..errors import DeltalabError


def register(subparsers):
    p = subparsers.add_parser("summary", help="layer/shape/parameter table of the lecture's CNN examples")
    p.add_argument("name", nargs="?", help="one example (default: all)")
    p.set_defaults(run=run)


def run(args):
    from rich.console import Console

    from ..models import LECTURE_CNNS, lecture_cnn
    from ..summary import summary

    console = Console()
    names = [args.name] if args.name else list(LECTURE_CNNS)
    for name in names:
        if name not in LECTURE_CNNS:
            raise DeltalabError(f"summary: unknown example {name!r}; choose from {', '.join(LECTURE_CNNS)}")
        model, input_shape = lecture_cnn(name)
        result = summary(model, input_shape, print_table=False)
        console.print(result.table(title=f"{name}  (input {'×'.join(map(str, input_shape))})"))
    return 0

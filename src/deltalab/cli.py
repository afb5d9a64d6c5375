"""The ``deltalab`` command line.  User errors print one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import sys

from .errors import DeltalabError


def _summary(args):
    from rich.console import Console

    from .models import LECTURE_CNNS, lecture_cnn
    from .summary import summary

    console = Console()
    names = [args.name] if args.name else list(LECTURE_CNNS)
    for name in names:
        if name not in LECTURE_CNNS:
            raise DeltalabError(f"summary: unknown example {name!r}; choose from {', '.join(LECTURE_CNNS)}")
        model, input_shape = lecture_cnn(name)
        result = summary(model, input_shape, print_table=False)
        console.print(result.table(title=f"{name}  (input {'×'.join(map(str, input_shape))})"))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="deltalab", description="A neural-network engine that shows its work.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="layer/shape/parameter table of the lecture's CNN examples")
    p.add_argument("name", nargs="?", help="one example (default: all)")
    p.set_defaults(run=_summary)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DeltalabError as exc:
        print(f"deltalab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltalab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``deltalab`` command line.  User errors print one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS
from .errors import DeltalabError


def build_parser():
    parser = argparse.ArgumentParser(prog="deltalab", description="A neural-network engine that shows its work.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
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

"""The ``deltalab`` command line.  User errors print one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS
from .errors import DeltalabError


def build_parser(commands=COMMANDS):
    parser = argparse.ArgumentParser(prog="deltalab", description="A neural-network engine that shows its work.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in commands:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    # register only the command being run (its module may import a lot); all of them for --help
    named = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser([named] if named in COMMANDS else COMMANDS).parse_args(argv)
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

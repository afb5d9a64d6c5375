"""The ``deltalab`` command line.

Whatever the input, a refusal is one line on stderr and exit code 2 (bad input; see the
README's "What happens with bad input"); a valid run whose result is not finite exits 1.
NumPy's floating-point warnings never reach stderr: the commands check their results
themselves and say what went wrong in one line.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import sys

from .commands import COMMANDS
from .errors import DeltalabError
from .startup import COMMAND_LINE, command_name
from .text import one_line, terminal_columns


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout; the terminal's width found without shutil (argparse imports it
    for every ``add_argument``, 2-3 ms of each start, see :func:`deltalab.text.terminal_columns`)."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position, terminal_columns() - 2 if width is None else width)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a wrong option is one line (the usage block would be several)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)  # the subcommands' parsers too (add_parser)
        super().__init__(*args, **kwargs)

    def error(self, message):
        command = self.prog.removeprefix("deltalab").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"deltalab: error: {where}{one_line(message)} (see {self.prog} --help)\n")


def build_parser(commands=COMMANDS):
    parser = OneLineArgumentParser(prog="deltalab", description="A neural-network engine that shows its work.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in commands:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv=None):
    """Run the command in ``argv`` (default: this process's arguments) and return its exit code."""
    code = run_command(sys.argv[1:] if argv is None else list(argv))
    if argv is None and COMMAND_LINE:
        # The process ends now. At exit the interpreter's collector walks every object still alive
        # (NumPy's and deltalab's: 20-40 ms of a solve); frozen, they are left to the exit itself.
        # Only the command's own process: a program calling main() keeps its collector as it was.
        gc.freeze()
    return code


def run_command(argv):
    """The command in ``argv`` (without the program name): its exit code."""
    import numpy as np

    # register only the command being run (its module may import a lot); all of them for --help
    named = command_name(argv)
    args = build_parser([named] if named in COMMANDS else COMMANDS).parse_args(argv)
    try:
        with np.errstate(all="ignore"):  # overflow is checked (and reported) where it matters
            return args.run(args)
    except DeltalabError as exc:
        print(f"deltalab: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print(f"deltalab: error: {args.command}: out of memory (the input is larger than this machine can hold)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltalab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

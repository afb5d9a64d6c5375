"""``deltalab solve FILE | --example NAME``: the worked solution of a training step."""
from __future__ import annotations

import sys

from ..errors import DeltalabError

FORMATS = ("terminal", "markdown", "latex", "json", "html")


def register(subparsers):
    p = subparsers.add_parser("solve", help="print the complete worked solution of a problem file")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="problem file (TOML)")
    source.add_argument("--example", metavar="NAME", help="a built-in example (see `deltalab examples`)")
    p.add_argument("--format", choices=FORMATS, default="terminal", help="output format (default: terminal)")
    p.add_argument("--maths", action="store_true",
                   help="markdown: write the maths as $$ … $$ blocks for KaTeX/MathJax (Jupyter, GitHub)")
    p.add_argument("--decimals", type=int, default=4, metavar="N", help="decimals in text formats (default 4)")
    p.add_argument("--check-torch", action="store_true", help="also compare the gradients with PyTorch")
    p.add_argument("--exact", action="store_true",
                   help="also evaluate exactly with SymPy: exact values and every derivative as an expression "
                        "(equations problems; small mlp/rnn problems)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(run=run)


def problem_path(args):
    from ..examples import example_path

    return example_path(args.example) if args.example else args.file


def run(args):
    from ..problem import load_problem
    from ..solve import solve_problem

    if args.decimals < 0 or args.decimals > 16:
        raise DeltalabError(f"--decimals: expected 0..16, got {args.decimals}")
    problem = load_problem(problem_path(args))
    trace = solve_problem(problem, check_torch=args.check_torch, exact=args.exact)
    from .. import report

    if args.format == "terminal" and not args.output:
        report.print_terminal(trace, decimals=args.decimals)
    else:
        text = report.render(trace, args.format, decimals=args.decimals, maths=args.maths)
        if args.output:
            from ..files import write_text_atomic

            write_text_atomic(args.output, text)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    failed = [c for c in trace.checks if not c.passed]
    return 1 if failed else 0

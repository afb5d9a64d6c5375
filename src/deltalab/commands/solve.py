"""``deltalab solve FILE | --example NAME``: the worked solution of a training step."""
from __future__ import annotations

import sys

from ..errors import DeltalabError
from ..text import one_line

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
    p.add_argument("--graph", metavar="FILE.svg",
                   help="also draw the computation graph (every problem type; an RNN/LSTM unrolled over time) with "
                        "every node's value and delta and the edges' local derivatives, as SVG (needs the plots "
                        "extra: networkx and matplotlib)")
    p.set_defaults(run=run)


def problem_path(args):
    from ..examples import example_file

    return example_file(args.example) if args.example else args.file


def run(args):
    from ..problems.file import load_problem
    from ..recorder import solve_problem
    from ..trace import non_finite_values

    if args.decimals < 0 or args.decimals > 16:
        raise DeltalabError(f"--decimals: expected 0..16, got {args.decimals}")
    if args.output is not None:
        from ..files import check_output_path

        check_output_path(args.output)  # before the work: a refused -o costs nothing
    if args.graph is not None:
        from ..files import check_output_path
        from ..report.graph_svg import require_plots

        check_output_path(args.graph)
        require_plots()  # a missing plots extra is named before the problem is solved
    problem = load_problem(problem_path(args))
    trace = solve_problem(problem, check_torch=args.check_torch, exact=args.exact)
    trace.statement = problem.description  # the problem as its author states it, shown first
    if args.graph is not None:  # drawn first: a graph that cannot be drawn stops before any output
        from ..files import write_bytes_atomic
        from ..report.graph_svg import render_svg

        write_bytes_atomic(args.graph, render_svg(trace))
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
    sys.stdout.flush()
    bad = non_finite_values(trace)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        print(f"deltalab: warning: {one_line(problem.path)}: {shown} {'is' if len(bad) == 1 else 'are'} not finite "
              "(inf or nan: an overflow or an undefined operation such as log of a negative number)", file=sys.stderr)
        return 1
    failed = [c for c in trace.checks if not c.passed]
    if failed:
        check = failed[0]
        print(f"deltalab: check failed: {check.method}: largest relative error {check.max_relative_error:.3g} "
              f"(tolerance {check.tolerance:g})" + (f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""),
              file=sys.stderr)
        return 1
    return 0

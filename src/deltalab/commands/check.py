"""``deltalab check PROBLEM ANSWERS…``: grade hand solutions (error carried forward, mistakes named)."""
from __future__ import annotations

import sys

from ..errors import DeltalabError

FORMATS = ("terminal", "markdown", "html", "json")


def register(subparsers):
    p = subparsers.add_parser(
        "check", help="grade a hand solution: verdicts, follow-through, the mistake named",
        description="Grade answers files (TOML, keyed like `deltalab solve --format json`) against a problem. "
                    "Each answer is compared with the true value and with what its formula gives from your own "
                    "earlier answers; a wrong value is explained by the library of known mistakes.")
    p.add_argument("problem", nargs="?", help="the problem file (TOML); leave out with --example")
    p.add_argument("answers", nargs="*", help="answers files (TOML); several for a class")
    p.add_argument("--example", metavar="NAME", help="a built-in example as the problem (see `deltalab examples`)")
    p.add_argument("--lecture", action="store_true",
                   help="check the answers the lecture document itself prints for --example NAME")
    p.add_argument("--format", choices=FORMATS, default="terminal", help="report format (default: terminal)")
    p.add_argument("--csv", metavar="FILE", help="write one row per submission (score, verdict counts, mistakes)")
    p.add_argument("--out", metavar="DIR", help="write one feedback page per submission (markdown; html with "
                                                 "--format html)")
    p.add_argument("--tolerance", default="auto", metavar="auto|ABS",
                   help="auto: right if it is the true value rounded or truncated to the decimals written "
                        "(default); a number: one absolute tolerance for every entry")
    p.add_argument("--no-follow-through", action="store_true",
                   help="no credit for answers that are wrong only because an earlier answer was")
    p.set_defaults(run=run)


def _tolerance(text):
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value < float("inf")):
        raise DeltalabError(f"--tolerance: expected auto or a non-negative number, got {text!r}")
    return value


def run(args):
    from ..marking import check, check_weights, load
    from ..examples import example_path

    tolerance = _tolerance(args.tolerance)
    answers = list(args.answers)
    if args.example:
        if args.problem:  # with --example every positional is an answers file
            answers.insert(0, args.problem)
        problem_path = example_path(args.example)
    else:
        if not args.problem:
            raise DeltalabError("check: give a problem file (or --example NAME) and answers files")
        problem_path = args.problem
    if args.lecture:
        if not args.example:
            raise DeltalabError("--lecture: needs --example NAME")
        from ..marking.lecture import lecture_answers_path

        answers.insert(0, str(lecture_answers_path(args.example)))
    if not answers:
        raise DeltalabError("check: no answers file given")
    from ..problems.kinds import problem_kind
    from ..recorder import solve_problem

    problem = load(problem_path)
    trace = solve_problem(problem, exact=problem_kind(problem).solved_exactly(problem))
    weights = check_weights(problem)
    results = [check(problem, a, tolerance=tolerance, follow_through=not args.no_follow_through, trace=trace,
                     weights=weights) for a in answers]
    from ..marking import report
    from ..files import write_text_atomic

    if args.csv:
        from ..marking.batch import csv_text

        try:
            write_text_atomic(args.csv, csv_text(results))
        except OSError as exc:
            raise DeltalabError(f"--csv: cannot write {args.csv} ({exc.strerror or exc})") from None
    if args.out:
        from ..marking.batch import write_feedback

        try:
            write_feedback(results, args.out, "html" if args.format == "html" else "markdown")
        except OSError as exc:
            raise DeltalabError(f"--out: cannot write to {args.out} ({exc.strerror or exc})") from None
    if args.format == "json":
        data = [r.to_dict() for r in results]
        import json

        sys.stdout.write(json.dumps(data[0] if len(data) == 1 else data, ensure_ascii=False, indent=2,
                                    allow_nan=False) + "\n")
    elif args.format == "terminal":
        if len(results) > 1 and (args.csv or args.out):
            for r in results:
                print(f"{r.name}: {r.score:g} / {r.max_score:g}")
        else:
            for r in results:
                report.print_terminal(r)
    else:
        sys.stdout.write("\n\n".join(r.render(args.format) for r in results) + "\n")
    return 0
